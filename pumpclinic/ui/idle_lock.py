"""Lock the window after the clinic's idle time; only the signed-in user's password unlocks.

Patient data stay on screen in a shared consulting room only while someone is working."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QLineEdit, QWidget

from pumpclinic.ui.login import _FormDialog

if TYPE_CHECKING:
    from pumpclinic.services.clinic import Services
    from pumpclinic.services.context import Actor

_ACTIVITY = frozenset(
    {
        QEvent.Type.KeyPress,
        QEvent.Type.MouseButtonPress,
        QEvent.Type.MouseMove,
        QEvent.Type.Wheel,
        QEvent.Type.TouchBegin,
    }
)


class IdleTimer(QObject):
    """Emits ``idle`` after ``minutes`` without keyboard, mouse or touch input."""

    idle = Signal()

    def __init__(self, minutes: float, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.idle)
        self.set_minutes(minutes)
        app = QApplication.instance()
        if app is not None:
            app.installEventFilter(self)

    def set_minutes(self, minutes: float) -> None:
        self.timer.setInterval(max(1, round(minutes * 60_000)))
        self.timer.start()

    def pause(self) -> None:
        self.timer.stop()

    def resume(self) -> None:
        self.timer.start()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in _ACTIVITY and self.timer.isActive():
            self.timer.start()
        return False


class UnlockDialog(_FormDialog):
    def __init__(self, services: Services, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__(
            "PumpClinic is locked",
            f"Locked after inactivity. {actor.full_name}, enter your password to continue, "
            "or sign out.",
            "Unlock",
            parent,
        )
        self.setObjectName("unlockDialog")
        self.cancel_button.setText("Sign out")
        self._services = services
        self.actor = actor
        self.password = QLineEdit()
        self.password.setObjectName("password")
        self.password.setAccessibleName("Password")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setMinimumWidth(280)
        self.add_field("Password", self.password, "password")

    def perform(self) -> None:
        try:
            self.actor = self._services.users.authenticate(
                self.actor.username, self.password.text()
            )
        finally:
            self.password.clear()
