"""Signing in: the first-run administrator, the login dialog, changing a password."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from pumpclinic.services.errors import AuthenticationFailed, ServiceError, ValidationFailed
from pumpclinic.ui.errors import show_bug
from pumpclinic.ui.widgets import FieldErrorLabels, banner, button, primary_button, set_banner

if TYPE_CHECKING:
    from pumpclinic.services.clinic import Services
    from pumpclinic.services.context import Actor
    from pumpclinic.services.demo import DemoUser


def demo_note(users: Iterable[DemoUser]) -> str:
    """The sign-in hint for the demo clinic: one account per line."""
    lines = "".join(
        f"<tr><td>{u.role.label}</td><td><b>{u.username}</b></td><td><tt>{u.password}</tt></td></tr>"
        for u in users
    )
    return (
        "Demo clinic with made-up patients. Sign in with any of these accounts:"
        f"<table cellspacing='0' cellpadding='3' style='margin-top:4px'>{lines}</table>"
    )


def _line(name: str, accessible: str, password: bool = False) -> QLineEdit:
    widget = QLineEdit()
    widget.setObjectName(name)
    widget.setAccessibleName(accessible)
    widget.setMinimumWidth(280)
    if password:
        widget.setEchoMode(QLineEdit.EchoMode.Password)
    return widget


def _heading(title: str, subtitle: str) -> QWidget:
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 6)
    title_label = QLabel(title)
    title_label.setObjectName("pageTitle")
    sub = QLabel(subtitle)
    sub.setObjectName("pageSubtitle")
    sub.setWordWrap(True)
    layout.addWidget(title_label)
    layout.addWidget(sub)
    return box


class _FormDialog(QDialog):
    """A dialog with a heading, an error banner, a form with field errors, two buttons."""

    def __init__(self, title: str, subtitle: str, ok_text: str, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.errors = FieldErrorLabels()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(26, 22, 26, 18)
        heading = _heading(title, subtitle)
        self.title_label = heading.findChild(QLabel, "pageTitle")
        self.subtitle_label = heading.findChild(QLabel, "pageSubtitle")
        layout.addWidget(heading)
        self.error_banner = banner("dialogError")
        layout.addWidget(self.error_banner)
        self.form = QFormLayout()
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.form.setVerticalSpacing(6)
        layout.addLayout(self.form)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.cancel_button = button("Cancel", "cancelButton")
        self.cancel_button.clicked.connect(self.reject)
        self.ok_button = primary_button(ok_text, "okButton")
        self.ok_button.clicked.connect(self.submit)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.ok_button)
        layout.addSpacing(8)
        layout.addLayout(buttons)

    def add_field(self, label: str, widget: QWidget, field: str) -> None:
        column = QWidget()
        column_layout = QVBoxLayout(column)
        column_layout.setContentsMargins(0, 0, 0, 0)
        column_layout.setSpacing(1)
        column_layout.addWidget(widget)
        column_layout.addWidget(self.errors.label_for(field, widget))
        self.form.addRow(label, column)

    def submit(self) -> None:
        set_banner(self.error_banner, [])
        self.errors.clear()
        try:
            self.perform()
        except ValidationFailed as failure:
            set_banner(self.error_banner, self.errors.show(failure.errors))
            return
        except ServiceError as error:
            set_banner(self.error_banner, [str(error)])
            return
        except Exception as error:  # a bug: logged with its traceback
            show_bug(self, error)
            return
        self.accept()

    def perform(self) -> None:
        raise NotImplementedError


class FirstRunDialog(_FormDialog):
    """On a new database: name the clinic, pick its time zone, create the administrator."""

    def __init__(self, services: Services, parent: QWidget | None = None) -> None:
        super().__init__(
            "Welcome to PumpClinic",
            "This clinic database is new. Create the administrator account; the administrator "
            "then adds nurses, clinicians and front-desk staff.",
            "Create administrator",
            parent,
        )
        self.setObjectName("firstRunDialog")
        self._services = services
        self.actor: Actor | None = None
        defaults, _version = services.settings.get()
        self.clinic_name = _line("clinic_name", "Clinic name")
        self.clinic_name.setText(defaults.clinic_name)
        self.time_zone = QComboBox()
        self.time_zone.setObjectName("time_zone")
        self.time_zone.setAccessibleName("Clinic time zone")
        self.time_zone.setEditable(True)
        self.time_zone.addItems(sorted(zoneinfo.available_timezones()))
        self.time_zone.setCurrentText(defaults.time_zone)
        completer = QCompleter(self.time_zone.model(), self.time_zone)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.time_zone.setCompleter(completer)
        self.full_name = _line("full_name", "Full name")
        self.username = _line("username", "Username")
        self.password = _line("password", "Password", password=True)
        self.confirm = _line("confirm", "Repeat password", password=True)
        self.add_field("Clinic name", self.clinic_name, "clinic_name")
        self.add_field("Clinic time zone", self.time_zone, "time_zone")
        self.add_field("Your full name", self.full_name, "full_name")
        self.add_field("Username", self.username, "username")
        self.add_field("Password", self.password, "password")
        self.add_field("Repeat password", self.confirm, "confirm")
        self.full_name.setFocus()

    def perform(self) -> None:
        settings, version = self._services.settings.get()
        clinic = replace(
            settings,
            clinic_name=self.clinic_name.text(),
            time_zone=self.time_zone.currentText().strip(),
        )
        # Check the clinic fields before the account exists, so nothing is half-made.
        from pumpclinic.domain.clinic import validate_settings

        problems = [e for e in validate_settings(clinic) if e.field in {"clinic_name", "time_zone"}]
        if problems:
            raise ValidationFailed(problems)
        actor = self._services.users.create_first_admin(
            self.username.text(), self.full_name.text(), self.password.text(), self.confirm.text()
        )
        self._services.settings.update(actor, clinic, version)
        self.actor = actor


class LoginDialog(_FormDialog):
    """Sign-in. Without ``services`` it comes on screen before the clinic database is
    opened, and "Sign in" waits for ``set_clinic``. The database is opened on the same thread:
    the dialog does not respond meanwhile, and keys typed then are delivered once it is open."""

    def __init__(
        self,
        services: Services | None,
        clinic_name: str,
        username: str = "",
        password: str = "",
        note: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(
            _sign_in_title(clinic_name),
            "Opening the clinic database…"
            if services is None
            else note or "Sign in with your PumpClinic account.",
            "Sign in",
            parent,
        )
        self.setObjectName("loginDialog")
        self._services = services
        self.actor: Actor | None = None
        self.username = _line("username", "Username")
        self.password = _line("password", "Password", password=True)
        self.username.setText(username)
        self.password.setText(password)
        self.add_field("Username", self.username, "username")
        self.add_field("Password", self.password, "password")
        (self.password if username else self.username).setFocus()
        self.ok_button.setEnabled(services is not None)

    def set_clinic(
        self,
        services: Services,
        clinic_name: str,
        username: str = "",
        password: str = "",
        note: str = "",
    ) -> None:
        """The clinic is open: name it and let the user sign in. What the user has typed
        meanwhile is kept; a pre-filled account only fills empty fields."""
        self._services = services
        title = _sign_in_title(clinic_name)
        self.setWindowTitle(title)
        if self.title_label is not None:
            self.title_label.setText(title)
        if self.subtitle_label is not None:
            self.subtitle_label.setText(note or "Sign in with your PumpClinic account.")
        if username and not self.username.text() and not self.password.text():
            self.username.setText(username)
            self.password.setText(password)
            self.password.setFocus()
        self.ok_button.setEnabled(True)

    def perform(self) -> None:
        if self._services is None:  # "Sign in" is not enabled before the clinic is open
            raise ServiceError("The clinic database is still being opened: a moment, please.")
        try:
            self.actor = self._services.users.authenticate(
                self.username.text(), self.password.text()
            )
        except AuthenticationFailed:
            self.password.clear()
            self.password.setFocus()
            raise


def _sign_in_title(clinic_name: str) -> str:
    return f"Sign in — {clinic_name}" if clinic_name else "Sign in — PumpClinic"


class ChangePasswordDialog(_FormDialog):
    def __init__(
        self, services: Services, actor: Actor, required: bool, parent: QWidget | None = None
    ) -> None:
        super().__init__(
            "Change password",
            "Your administrator set a temporary password: choose your own to continue."
            if required
            else "Choose a new password of at least 8 characters, mixing letters with digits.",
            "Change password",
            parent,
        )
        self.setObjectName("changePasswordDialog")
        self._services = services
        self.actor = actor
        self.old = _line("old_password", "Current password", password=True)
        self.new = _line("password", "New password", password=True)
        self.confirm = _line("confirm", "Repeat new password", password=True)
        self.add_field("Current password", self.old, "old_password")
        self.add_field("New password", self.new, "password")
        self.add_field("Repeat new password", self.confirm, "confirm")

    def perform(self) -> None:
        self.actor = self._services.users.change_password(
            self.actor, self.old.text(), self.new.text(), self.confirm.text()
        )
