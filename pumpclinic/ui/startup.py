"""The end of start-up: the main window's first paint, and the start-up timing report.

``pumpclinic --benchmark-startup USERNAME`` opens the main window without the dialog and
signs in with the ordinary password check once the window is on screen. At the end of
start-up (the first page shown with its data, the alert count on the navigation) it prints
one JSON line and quits: seconds since the process started at the main window's first
paint (``painted_s``), once the first page had its data (``content_ready_s``) and at each
step, and the resident memory then. The benchmark in ``tests/benchmarks`` starts it that way.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QWidget

# The starter's time.time() just before it started this process; without it, the kernel's
# record of when the process began (Linux) is used.
STARTED_AT_ENV = "PUMPCLINIC_STARTED_AT"
# --benchmark-startup signs in with this password, through the ordinary password check.
PASSWORD_ENV = "PUMPCLINIC_BENCHMARK_PASSWORD"


class FirstPaint(QObject):
    """Emits ``painted`` once, when the window's first round of painting is over."""

    painted = Signal()

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self._window = window
        self._seen = False
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._window and event.type() == QEvent.Type.Paint and not self._seen:
            self._seen = True
            self._window.removeEventFilter(self)
            # The window gets its paint event before it and its children paint and before
            # the result goes to the screen: report once that round of painting is over.
            QTimer.singleShot(0, self.painted.emit)
        return False


def after_first_paint(window: QWidget, action: Callable[[], object]) -> FirstPaint:
    """Run ``action`` once, after ``window`` has first been painted (call before show())."""
    watcher = FirstPaint(window)
    watcher.painted.connect(action)
    return watcher


def process_started_at() -> float | None:
    """time.time() when this process started: from the starter, else from the kernel."""
    given = os.environ.get(STARTED_AT_ENV, "").strip()
    if given:
        try:
            return float(given)
        except ValueError:
            return None
    try:
        # Field 22 of /proc/self/stat: clock ticks from boot to the process's start.
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def resident_memory_mb() -> float | None:
    """VmRSS from /proc/self/status, in MB (10^6 bytes); None where there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) * 1024 / 1e6, 1)
    except (OSError, ValueError, IndexError):
        return None
    return None


class StartupReport:
    """Seconds from the process's start to each step of start-up, printed at the end."""

    def __init__(self, started_at: float | None = None) -> None:
        self.started_at = started_at if started_at is not None else process_started_at()
        self.steps_s: dict[str, float] = {}

    def mark(self, step: str) -> None:
        if self.started_at is not None:
            self.steps_s[step] = round(time.time() - self.started_at, 4)

    def finish(self) -> None:
        """Start-up is over: print the report and leave the event loop."""
        self.mark("started")
        print(
            json.dumps(
                {
                    "painted_s": self.steps_s.get("painted"),
                    "content_ready_s": self.steps_s.get("content_ready"),
                    "vm_rss_mb": resident_memory_mb(),
                    "steps_s": self.steps_s,
                }
            ),
            flush=True,
        )
        QApplication.quit()
