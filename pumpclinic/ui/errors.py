"""How the GUI reports problems: a clear message for what the user can fix, a logged
traceback and a short apology for bugs. Never a traceback in the user's face."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from PySide6.QtWidgets import QMessageBox, QWidget

from pumpclinic.services.errors import ServiceError

log = logging.getLogger("pumpclinic")
T = TypeVar("T")

_log_path: Path | None = None


def set_log_path(path: Path | None) -> None:
    global _log_path
    _log_path = path


def show_known_error(parent: QWidget | None, error: ServiceError, title: str = "Not saved") -> None:
    log.info("%s: %s", type(error).__name__, error)
    box = QMessageBox(QMessageBox.Icon.Warning, title, str(error), parent=parent)
    box.setObjectName("knownErrorBox")
    box.open() if _non_blocking else box.exec()


def plain_message(error: BaseException) -> str:
    """What to tell the user about ``error``: its own words when it is one they can act on."""
    if isinstance(error, ServiceError):
        return str(error)
    where = f" Details were written to {_log_path}." if _log_path else ""
    return f"PumpClinic hit an unexpected problem.{where}"


def show_bug(parent: QWidget | None, error: BaseException) -> None:
    log.error("unexpected error", exc_info=error)
    where = f"\n\nDetails were written to {_log_path}." if _log_path else ""
    box = QMessageBox(
        QMessageBox.Icon.Critical,
        "Something went wrong",
        "PumpClinic hit an unexpected problem and did not finish this action. "
        f"Nothing half-done was saved.{where}",
        parent=parent,
    )
    box.setObjectName("bugBox")
    box.open() if _non_blocking else box.exec()


# Tests switch this on so that message boxes never block the event loop.
_non_blocking = False


def set_non_blocking_messages(value: bool) -> None:
    global _non_blocking
    _non_blocking = value


def guarded(parent: QWidget | None, action: Callable[[], T], title: str = "Not saved") -> T | None:
    """Run ``action``; report a known error or a bug and return None if it fails."""
    try:
        return action()
    except ServiceError as error:
        show_known_error(parent, error, title)
    except Exception as error:  # a bug: log it with its traceback, tell the user plainly
        show_bug(parent, error)
    return None
