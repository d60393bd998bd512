"""Starting the GUI: first run, sign-in, the main window."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from types import TracebackType

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.ui.errors import show_bug
from pumpclinic.ui.login import ChangePasswordDialog, FirstRunDialog, LoginDialog
from pumpclinic.ui.main_window import MainWindow
from pumpclinic.ui.startup import after_first_paint
from pumpclinic.ui.style import STYLESHEET

log = logging.getLogger("pumpclinic")


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
    services: Services, prefill: tuple[str, str] | None = None, note: str = ""
) -> MainWindow | None:
    """Run the first-run/login dialogs; the main window, or None when the user gave up."""
    if services.users.needs_first_admin():
        first_run = FirstRunDialog(services)
        if not first_run.exec() or first_run.actor is None:
            return None
        actor = first_run.actor
    else:
        settings, _version = services.settings.get()
        username, password = prefill or ("", "")
        login = LoginDialog(services, settings.clinic_name, username, password, note)
        if not login.exec() or login.actor is None:
            return None
        actor = login.actor
    if actor.must_change_password:
        change = ChangePasswordDialog(services, actor, required=True)
        if not change.exec():
            return None
        actor = change.actor
    return MainWindow(services, actor)


def fit_to_screen(window: QWidget) -> None:
    """Open at 1280×800, or maximised where the screen is smaller (a 1366×768 laptop)."""
    screen = window.screen() or QApplication.primaryScreen()
    if screen is None:
        return
    available = screen.availableGeometry()
    window.resize(min(1280, available.width()), min(800, available.height()))
    if available.width() < 1300 or available.height() < 840:
        window.setWindowState(window.windowState() | Qt.WindowState.WindowMaximized)


def run_gui(
    services: Services,
    prefill: tuple[str, str] | None = None,
    note: str = "",
    *,
    actor: Actor | None = None,
    when_painted: Callable[[], object] | None = None,
    mark_step: Callable[[str], object] | None = None,
) -> int:
    """Sign in (or, given ``actor``, go straight to the main window) and run the event loop.

    ``when_painted`` runs once the main window has first been painted: work that must not
    delay the first sight of the clinic. ``mark_step`` is told when the window is built and
    when it is shown (the start-up timing report).
    """
    app = make_application()
    sys.excepthook = _excepthook
    window = MainWindow(services, actor) if actor is not None else sign_in(services, prefill, note)
    if window is None:
        return 0
    if mark_step is not None:
        mark_step("window_built")
    fit_to_screen(window)
    if when_painted is not None:
        after_first_paint(window, when_painted)
    window.show()
    if mark_step is not None:
        mark_step("window_shown")
    return app.exec()
