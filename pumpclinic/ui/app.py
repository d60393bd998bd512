"""Starting the GUI: first run, sign-in, the main window.

The first window comes on screen before the clinic database is opened: the sign-in dialog
is painted first, and the database is opened (and its schema checked) just after, on the
same thread, so that the dialog does not respond meanwhile (keys typed then are kept and
shown once it is open); the main window then builds each page when it is first shown.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from pumpclinic.services.errors import ServiceError
from pumpclinic.ui.errors import show_bug
from pumpclinic.ui.main_window import MainWindow
from pumpclinic.ui.startup import StartupReport, after_first_paint
from pumpclinic.ui.style import STYLESHEET

if TYPE_CHECKING:
    from pumpclinic.services.clinic import Services
    from pumpclinic.ui.login import LoginDialog

log = logging.getLogger("pumpclinic")


@dataclass(frozen=True, slots=True)
class OpenedClinic:
    """The open clinic, and the account the sign-in dialog offers (the demo clinic's)."""

    services: Services
    prefill: tuple[str, str] | None = None
    note: str = ""


# Opens the clinic database (creating or upgrading it); raises what it cannot open.
ClinicOpener = Callable[[], OpenedClinic]


def make_application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("PumpClinic")
    app.setOrganizationName("PumpClinic")
    app.setStyle("Fusion")
    app.setStyleSheet(STYLESHEET)
    return app


def _excepthook(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    # An exception escaping a Qt slot: log it and tell the user plainly, never a traceback.
    log.error("uncaught exception", exc_info=(kind, error, traceback))
    show_bug(QApplication.activeWindow(), error)


def show_startup_error(message: str) -> None:
    box = QMessageBox(QMessageBox.Icon.Critical, "PumpClinic cannot start", message)
    box.setObjectName("startupErrorBox")
    box.exec()


def sign_in(
    services: Services,
    prefill: tuple[str, str] | None = None,
    note: str = "",
    login: LoginDialog | None = None,
) -> MainWindow | None:
    """Run the first-run/login dialogs; the main window, or None when the user gave up.

    ``login`` is a sign-in dialog already on screen (opened before the clinic was)."""
    from pumpclinic.ui.login import ChangePasswordDialog, FirstRunDialog, LoginDialog

    if services.users.needs_first_admin():
        if login is not None:
            login.hide()
        first_run = FirstRunDialog(services)
        if not first_run.exec() or first_run.actor is None:
            return None
        actor = first_run.actor
    else:
        settings, _version = services.settings.get()
        username, password = prefill or ("", "")
        if login is None:
            login = LoginDialog(services, settings.clinic_name, username, password, note)
        else:
            login.set_clinic(services, settings.clinic_name, username, password, note)
        if not login.exec() or login.actor is None:
            return None
        actor = login.actor
    if actor.must_change_password:
        change = ChangePasswordDialog(services, actor, required=True)
        if not change.exec():
            return None
        actor = change.actor
    return MainWindow(services, actor)


def show_fitted(window: QWidget) -> None:
    """Show at 1280×800, or maximised where the screen is smaller (a 1366×768 laptop)."""
    screen = window.screen() or QApplication.primaryScreen()
    if screen is None:
        window.show()
        return
    available = screen.availableGeometry()
    window.resize(min(1280, available.width()), min(800, available.height()))
    if available.width() < 1300 or available.height() < 840:
        window.showMaximized()
    else:
        window.show()


class _Start:
    """What a start-up step failed with, to raise once the event loop is left."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.window: MainWindow | None = None

    def fail(self, error: BaseException) -> None:
        self.error = error
        QApplication.exit(1)

    def result(self, status: int) -> int:
        if self.error is not None:
            raise self.error
        return status


def run_gui(open_clinic: ClinicOpener, *, when_painted: Callable[[], object] | None = None) -> int:
    """Sign in and run the event loop.

    The sign-in dialog is painted first; the clinic is opened just after (the dialog does
    not respond until it is open). ``when_painted`` runs once the main window has first been
    painted: work that must not delay the first sight of the clinic. What ``open_clinic``
    raises is raised here, once the dialog is closed; so is what signing in to the opened
    clinic raises (a database that became unavailable), once it has been shown in a
    message box as well.
    """
    from pumpclinic.ui.login import LoginDialog

    app = make_application()
    sys.excepthook = _excepthook
    start = _Start()
    login = LoginDialog(None, "")

    def cancelled() -> None:
        QApplication.exit(0)

    def open_and_sign_in() -> None:
        if not login.isVisible():  # closed before the clinic was opened
            return
        # From here on, sign_in says whether the user gave up.
        login.rejected.disconnect(cancelled)
        try:
            opened = open_clinic()  # says itself, in a window, why it cannot open the clinic
        except Exception as error:  # raised by run_gui once the event loop is left
            login.reject()
            start.fail(error)
            return
        try:
            window = sign_in(opened.services, opened.prefill, opened.note, login)
        except Exception as error:  # raised by run_gui once the event loop is left
            login.reject()
            # Started from a desktop there is no terminal to read: say it in a window too.
            if isinstance(error, ServiceError):
                show_startup_error(str(error))
            else:
                show_bug(None, error)
            start.fail(error)
            return
        login.close()
        if window is None:
            QApplication.exit(0)
            return
        start.window = window
        if when_painted is not None:
            after_first_paint(window, when_painted)
        show_fitted(window)
        app.setQuitOnLastWindowClosed(True)

    # Between the dialog and the main window no window is open: quit only when told to.
    app.setQuitOnLastWindowClosed(False)
    login.rejected.connect(cancelled)
    after_first_paint(login, lambda: QTimer.singleShot(0, open_and_sign_in))
    login.show()
    try:
        return start.result(app.exec())
    finally:
        app.setQuitOnLastWindowClosed(True)


def run_timed_start(
    open_clinic: ClinicOpener,
    username: str,
    password: str,
    database_label: str,
    report: StartupReport,
) -> int:
    """The start-up timing mode: the main window without the dialog, signed in as
    ``username`` through the ordinary password check.

    The window's frame is painted first ("painted"); then the clinic is opened, the password
    checked ("signed_in") and the first page loaded ("content_ready"); the report is printed
    once start-up is over (the navigation shows the alert count: "started"), and the event
    loop left. A wrong password
    raises AuthenticationFailed before any page is built: nothing clinical is shown.
    """
    app = make_application()
    report.mark("qt_ready")
    sys.excepthook = _excepthook
    start = _Start()
    window = MainWindow(signing_in_as=username, database_label=database_label)
    report.mark("window_built")

    def open_and_sign_in() -> None:
        try:
            services = open_clinic().services
            report.mark("database_open")
            actor = services.users.authenticate(username, password)
            report.mark("signed_in")
            window.content_ready.connect(lambda: report.mark("content_ready"))
            window.started.connect(report.finish)
            window.start_session(services, actor)
        except Exception as error:  # raised by run_timed_start once the event loop is left
            window.close()
            start.fail(error)

    def painted() -> None:
        report.mark("painted")
        QTimer.singleShot(0, open_and_sign_in)

    after_first_paint(window, painted)
    show_fitted(window)
    report.mark("window_shown")
    start.window = window
    try:
        return start.result(app.exec())
    finally:
        window.close()
        window.deleteLater()
