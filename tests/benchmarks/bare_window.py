"""The cold-start baseline: Python, PySide6 and an empty QMainWindow, nothing of PumpClinic.

Started like ``pumpclinic --benchmark-startup``: at the window's first paint (detected the
same way as in pumpclinic/ui/startup.py) it prints one JSON line with the seconds since
``$PUMPCLINIC_STARTED_AT`` and its VmRSS, then quits.
"""

import json
import os
import sys
import time

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow


def rss_mb() -> float | None:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) * 1024 / 1e6, 1)
    return None


class FirstPaint(QObject):
    def __init__(self, window: QMainWindow, started_at: float) -> None:
        super().__init__(window)
        self.started_at = started_at
        self.seen = False
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and not self.seen:
            self.seen = True
            QTimer.singleShot(0, self.report)
        return False

    def report(self) -> None:
        painted_s = round(time.time() - self.started_at, 4)
        print(json.dumps({"painted_s": painted_s, "vm_rss_mb": rss_mb()}), flush=True)
        QApplication.quit()


def main() -> int:
    started_at = float(os.environ["PUMPCLINIC_STARTED_AT"])
    app = QApplication(sys.argv[:1])
    window = QMainWindow()
    window.setWindowTitle("Bare window")
    window.resize(1280, 800)
    FirstPaint(window, started_at)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
