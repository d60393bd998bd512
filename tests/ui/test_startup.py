"""The end of start-up: the first paint, the daily backup after it, and the start-up timing
mode that the benchmark uses."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

from pumpclinic import cli
from pumpclinic.domain.enums import Role
from pumpclinic.services import backup as backup_service
from pumpclinic.ui import app as app_module
from pumpclinic.ui.main_window import MainWindow
from pumpclinic.ui.startup import PASSWORD_ENV, STARTED_AT_ENV, FirstPaint
from tests.conftest import PASSWORDS

pytestmark = pytest.mark.sqlite_only


class PaintCounter(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.count += 1
        return False


def test_first_paint_is_reported_once_after_the_window_and_its_contents_are_painted(
    qtbot,
) -> None:
    window = QMainWindow()
    qtbot.addWidget(window)
    content = QLabel("Patients")
    window.setCentralWidget(content)
    counter = PaintCounter()
    content.installEventFilter(counter)
    paints_seen: list[int] = []
    watcher = FirstPaint(window)
    watcher.painted.connect(lambda: paints_seen.append(counter.count))
    qtbot.wait(50)
    assert paints_seen == []  # not on screen yet

    window.show()
    qtbot.waitUntil(lambda: bool(paints_seen))
    assert paints_seen[0] >= 1  # the window's contents were painted before the report
    window.update()
    content.repaint()
    qtbot.wait(50)
    assert len(paints_seen) == 1


@pytest.fixture
def gui_start(monkeypatch, tmp_path: Path, services):
    """cli.main with no subcommand, signed in as the nurse without the dialog; the log,
    the exception hook and the application's look are put back afterwards."""
    monkeypatch.setattr(cli, "log_path", lambda: tmp_path / "log" / "pumpclinic.log")
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    windows: list[MainWindow] = []

    def sign_in(clinic, prefill=None, note="", login=None):
        window = MainWindow(clinic, clinic.users.authenticate("nina", PASSWORDS[Role.NURSE]))
        windows.append(window)
        return window

    monkeypatch.setattr(app_module, "sign_in", sign_in)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    look = app.styleSheet(), app.style().name()
    handlers = list(logging.getLogger("pumpclinic").handlers)
    yield windows
    for window in windows:
        window.close()
        window.deleteLater()
    for handler in logging.getLogger("pumpclinic").handlers:
        if handler not in handlers:
            logging.getLogger("pumpclinic").removeHandler(handler)
            handler.close()
    app.setStyleSheet(look[0])
    app.setStyle(look[1])


def _backup_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "daily-backup"]


def test_the_daily_backup_waits_for_the_first_paint_and_never_blocks_the_window(
    qtbot, gui_start, monkeypatch, db_path: Path, nurse
) -> None:
    real_backup = backup_service.automatic_backup
    started = threading.Event()
    release = threading.Event()
    painted_before_backup: list[bool] = []
    painted = threading.Event()

    def slow_backup(*args, **kwargs):
        painted_before_backup.append(painted.is_set())
        started.set()
        release.wait(10)  # a large database takes a while to copy
        return real_backup(*args, **kwargs)

    monkeypatch.setattr(backup_service, "automatic_backup", slow_backup)

    class MainWindowPaints(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and isinstance(watched, MainWindow):
                painted.set()
            return False

    app = QApplication.instance()
    spy = MainWindowPaints()
    app.installEventFilter(spy)
    ticks_during_backup = []

    def tick() -> None:
        if not started.is_set():
            return
        ticks_during_backup.append(1)
        if len(ticks_during_backup) == 5:  # the window kept working during the backup
            release.set()
            app.quit()

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(10)
    try:
        assert cli.main(["--db", str(db_path)]) == 0
    finally:
        timer.stop()
        app.removeEventFilter(spy)
        release.set()
    for thread in _backup_threads():
        thread.join(30)

    assert gui_start, "the main window was opened"
    assert painted_before_backup == [True]
    assert len(ticks_during_backup) == 5
    backups = list((db_path.parent / "backups" / db_path.stem).glob("pumpclinic-*.sqlite3"))
    assert len(backups) == 1
    backup_service.verify_backup(backups[0])


def test_the_background_backup_is_made_at_most_once_a_day(db_path: Path, nurse) -> None:
    cli.start_daily_backup(db_path).join(30)
    cli.start_daily_backup(db_path).join(30)
    folder = db_path.parent / "backups" / db_path.stem
    assert len(list(folder.glob("pumpclinic-*.sqlite3"))) == 1
    assert not list(folder.glob("*.partial"))


@pytest.mark.parametrize("problem", ["no database", "backup folder is a file"])
def test_a_failed_background_backup_is_logged_and_warned(
    problem: str, db_path: Path, nurse, caplog, capsys
) -> None:
    if problem == "no database":
        db_path = db_path.with_name("missing.sqlite3")
    else:
        (db_path.parent / "backups").write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="pumpclinic"):
        thread = cli.start_daily_backup(db_path)
        thread.join(30)
    assert not thread.is_alive()
    assert any("automatic backup failed" in r.getMessage() for r in caplog.records)
    assert "warning: automatic backup failed" in capsys.readouterr().err


def _start_timed(db_path: Path, username: str, password: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        PASSWORD_ENV: password,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_STATE_HOME": str(db_path.parent / "state"),
    }
    env.pop(STARTED_AT_ENV, None)  # the kernel's start time is used instead
    command = [sys.executable, "-m", "pumpclinic.cli", "--db", str(db_path)]
    return subprocess.run(
        [*command, "--benchmark-startup", username],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_startup_timing_mode_reports_the_first_paint_and_quits(db_path: Path, nurse) -> None:
    done = _start_timed(db_path, "nina", PASSWORDS[Role.NURSE])
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert 0 < report["painted_s"] < 120
    assert report["vm_rss_mb"] > 0
    steps = list(report["steps_s"])
    assert steps[0] == "pyside6_imported" and steps[-1] == "started"
    assert list(report["steps_s"].values()) == sorted(report["steps_s"].values())
    # The window is painted before the clinic is opened and the password checked; the
    # first page's data come after the sign-in.
    assert steps.index("painted") < steps.index("database_open") < steps.index("signed_in")
    assert steps.index("signed_in") < steps.index("content_ready")
    assert report["painted_s"] == report["steps_s"]["painted"]
    assert report["content_ready_s"] == report["steps_s"]["content_ready"]
    # The measured run ends at the first paint: it makes no backup.
    assert not (db_path.parent / "backups").exists()


def test_the_startup_timing_mode_signs_in_with_the_password(db_path: Path, nurse) -> None:
    done = _start_timed(db_path, "nina", "not-her-password")
    assert done.returncode == cli.EXIT_USAGE
    assert done.stdout == ""
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")
