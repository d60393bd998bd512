"""PySide6 6.12.0 on Python 3.11 aborted the interpreter ("none_dealloc") after a few
thousand processEvents() calls; this fails (by crashing) on such a build."""

from __future__ import annotations

import subprocess
import sys


def test_twenty_thousand_process_events_calls_do_not_crash() -> None:
    script = (
        "import os; os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "from PySide6.QtWidgets import QApplication, QLabel\n"
        "app = QApplication([])\n"
        "label = QLabel('x'); label.show()\n"
        "for _ in range(20_000):\n"
        "    app.processEvents()\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def test_processevents_in_this_process(qapp) -> None:
    for _ in range(20_000):
        qapp.processEvents()
