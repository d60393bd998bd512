"""Administration: user accounts, clinic-wide settings and catalogs (administrators only)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from dataclasses import replace

from PySide6.QtCore import (
    QAbstractTableModel,
    QDate,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTime,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QCompleter,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QScrollArea,
    QSpinBox,
    QTableView,
    QTabWidget,
    QTimeEdit,
    QVBoxLayout,
    QWidget,
)

from pumpclinic.domain.clinic import (
    DUE_SOON_HORIZON_DAYS_RANGE,
    IDLE_LOCK_MINUTES_RANGE,
    ISO_WEEKDAY_NAMES,
    OBSERVATION_BEDS_RANGE,
    REFILL_SAFETY_MARGIN_DAYS_RANGE,
    REFILL_SLOT_MINUTES_RANGE,
    ClinicSettingsData,
)
from pumpclinic.domain.enums import Role
from pumpclinic.domain.passwords import password_problem, username_problem
from pumpclinic.domain.validation import FieldError
from pumpclinic.services.catalogs import (
    STABILITY_DAYS_RANGE,
    DrugProductEdit,
    DrugProductRow,
    PumpModelEdit,
    PumpModelRow,
)
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.services.errors import StaleRecord, ValidationFailed
from pumpclinic.services.permissions import Permission, can
from pumpclinic.services.users import UserRow
from pumpclinic.ui.bus import DataBus
from pumpclinic.ui.errors import guarded
from pumpclinic.ui.models import RowTableModel
from pumpclinic.ui.widgets import (
    FieldErrorLabels,
    banner,
    button,
    page_header,
    primary_button,
    set_banner,
)

AnyIndex = QModelIndex | QPersistentModelIndex

ACCESS_MESSAGE = "Administration is for administrators: users, clinic settings and catalogs."

# Sort keys that Qt can compare (Python datetimes are opaque to QSortFilterProxyModel).
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
ROW_ROLE = Qt.ItemDataRole.UserRole


_DISABLED_FG = QBrush(QColor("#8a96a3"))


def _labelled(widget: QWidget, text: str, object_name: str) -> QWidget:
    widget.setObjectName(object_name)
    widget.setAccessibleName(text)
    return widget


def _line_edit(text: str, object_name: str) -> QLineEdit:
    edit = QLineEdit()
    _labelled(edit, text, object_name)
    return edit


def _password_edit(text: str, object_name: str) -> QLineEdit:
    edit = QLineEdit()
    edit.setEchoMode(QLineEdit.EchoMode.Password)
    _labelled(edit, text, object_name)
    return edit


# --- users --------------------------------------------------------------------------------


def user_status(row: UserRow, now: dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    if not row.active:
        return "Deactivated"
    if row.locked_until is not None and row.locked_until > now:
        return f"Locked until {row.locked_until.astimezone(zone):%H:%M}"
    return "Active"


class UsersTableModel(RowTableModel[UserRow]):
    """One row per account; ``ROW_ROLE`` gives the UserRow, ``SORT_ROLE`` a sortable key."""

    COLUMNS = (
        "Username",
        "Full name",
        "Role",
        "Status",
        "Last sign-in",
        "Must change password",
    )
    USERNAME, FULL_NAME, ROLE, STATUS, LAST_SIGN_IN, MUST_CHANGE = range(6)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._now = dt.datetime.now(dt.UTC)
        self._zone = zoneinfo.ZoneInfo("UTC")

    def set_users(self, rows: Sequence[UserRow], now: dt.datetime, zone: zoneinfo.ZoneInfo) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self._now = now
        self._zone = zone
        self.endResetModel()

    def user_at(self, row: int) -> UserRow:
        return self._rows[row]

    def users(self) -> list[UserRow]:
        return list(self._rows)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(self.COLUMNS)
        ):
            return self.COLUMNS[section]
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        user = self._rows[index.row()]
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return self._text(user, column)
        if role == SORT_ROLE:
            if column == self.LAST_SIGN_IN:
                return user.last_login_at.timestamp() if user.last_login_at else -1.0
            return self._text(user, column).casefold()
        if role == ROW_ROLE:
            return user
        if role == Qt.ItemDataRole.ForegroundRole and not user.active:
            return _DISABLED_FG
        if role == Qt.ItemDataRole.ToolTipRole and column == self.STATUS and not user.active:
            return "This account cannot sign in. Reactivate it to allow sign-in again."
        return None

    def _text(self, user: UserRow, column: int) -> str:
        if column == self.USERNAME:
            return user.username
        if column == self.FULL_NAME:
            return user.full_name
        if column == self.ROLE:
            return user.role.label
        if column == self.STATUS:
            return user_status(user, self._now, self._zone)
        if column == self.LAST_SIGN_IN:
            if user.last_login_at is None:
                return "never"
            return f"{user.last_login_at.astimezone(self._zone):%d %b %Y %H:%M}"
        return "yes" if user.must_change_password else "no"


class _FormDialog(QDialog):
    """A small dialog: a form with a red error under each field, OK/Cancel below."""

    def __init__(self, title: str, object_name: str, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setObjectName(object_name)
        self.setWindowTitle(title)
        self.setAccessibleName(title)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setMinimumWidth(520)
        self.errors = FieldErrorLabels()
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(18, 16, 18, 14)
        self._layout.setSpacing(12)
        self.banner = banner(f"{object_name}Banner")
        self.form = QFormLayout()
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        self.form.setHorizontalSpacing(12)
        self.form.setVerticalSpacing(10)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.setObjectName(f"{object_name}Buttons")
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setObjectName(f"{object_name}OkButton")
        self.ok_button.setProperty("primary", True)
        cancel = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        cancel.setObjectName(f"{object_name}CancelButton")
        cancel.setAccessibleName("Cancel")
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)

    def add_intro(self, text: str) -> None:
        intro = QLabel(text)
        intro.setObjectName("dialogIntro")
        intro.setWordWrap(True)
        self._layout.addWidget(intro)

    def add_field(self, label: str, field: str, widget: QWidget) -> None:
        cell = QWidget()
        column = QVBoxLayout(cell)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(3)
        column.addWidget(widget)
        column.addWidget(self.errors.label_for(field, widget))
        caption = QLabel(label)
        caption.setBuddy(widget)
        self.form.addRow(caption, cell)

    def finish_layout(self, ok_text: str) -> None:
        self.ok_button.setText(ok_text)
        self.ok_button.setAccessibleName(ok_text.replace("&", ""))
        self._layout.addLayout(self.form)
        self._layout.addWidget(self.banner)
        self._layout.addStretch(1)
        self._layout.addWidget(self.buttons)

    def show_errors(self, errors: Sequence[FieldError]) -> None:
        leftover = self.errors.show(errors)
        set_banner(self.banner, leftover)
        first = next((e.field for e in errors if e.field in self.errors.fields()), None)
        if first is not None:
            self.errors.fields()[first].setFocus()
        # A top-level window ignores height-for-width: grow it to fit wrapped messages.
        layout = self.layout()
        if layout is None:
            return
        layout.activate()
        needed = layout.totalHeightForWidth(self.width())
        if needed > self.height():
            self.resize(self.width(), needed)

    def submit(self) -> None:
        def attempt() -> bool:
            try:
                self.save()
            except ValidationFailed as failed:
                self.show_errors(failed.errors)
                return False
            return True

        if guarded(self, attempt):
            self.accept()

    def save(self) -> None:
        """Call the service; raise ValidationFailed to keep the dialog open."""
        raise NotImplementedError


class UserDialog(_FormDialog):
    """Create an account. The administrator's password is temporary for the user."""

    def __init__(self, services: Services, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__("New user", "userDialog", parent)
        self._services = services
        self._actor = actor
        self.created: UserRow | None = None
        self.username_edit = _line_edit("Username", "userUsernameEdit")
        self.username_edit.setPlaceholderText("e.g. jsmith")
        self.full_name_edit = _line_edit("Full name", "userFullNameEdit")
        self.full_name_edit.setPlaceholderText("As shown on records and the audit trail")
        self.role_combo = QComboBox()
        _labelled(self.role_combo, "Role", "userRoleCombo")
        for role in (Role.NURSE, Role.CLINICIAN, Role.STAFF, Role.ADMIN):
            self.role_combo.addItem(role.label, role.value)
        self.password_edit = _password_edit("Temporary password", "userPasswordEdit")
        self.confirm_edit = _password_edit("Confirm password", "userConfirmEdit")
        self.add_intro(
            "The new user signs in with this temporary password and must choose their own "
            "at the first sign-in."
        )
        self.add_field("&Username:", "username", self.username_edit)
        self.add_field("&Full name:", "full_name", self.full_name_edit)
        self.add_field("&Role:", "role", self.role_combo)
        self.add_field("&Password:", "password", self.password_edit)
        self.add_field("C&onfirm:", "confirm", self.confirm_edit)
        self.finish_layout("Create user")

    def role(self) -> Role:
        return Role(self.role_combo.currentData())

    def save(self) -> None:
        username = self.username_edit.text()
        password = self.password_edit.text()
        if password != self.confirm_edit.text():
            # Checked here (the service never sees the confirmation); report the rest too.
            errors = [FieldError("confirm", "The two passwords do not match.")]
            problem = username_problem(username.strip().lower())
            if problem:
                errors.append(FieldError("username", problem))
            if not self.full_name_edit.text().strip():
                errors.append(FieldError("full_name", "Full name is required."))
            problem = password_problem(password, username)
            if problem:
                errors.append(FieldError("password", problem))
            raise ValidationFailed(errors)
        self.created = self._services.users.create_user(
            self._actor, username, self.full_name_edit.text(), self.role(), password
        )


class ResetPasswordDialog(_FormDialog):
    """Give a user a temporary password; they must change it at the next sign-in."""

    def __init__(
        self, services: Services, actor: Actor, user: UserRow, parent: QWidget | None = None
    ) -> None:
        super().__init__(f"Reset password for {user.username}", "resetPasswordDialog", parent)
        self._services = services
        self._actor = actor
        self.user = user
        self.updated: UserRow | None = None
        self.password_edit = _password_edit("New temporary password", "resetPasswordEdit")
        self.confirm_edit = _password_edit("Confirm new password", "resetConfirmEdit")
        self.add_intro(
            f"Set a temporary password for {user.full_name} ({user.username}). They must "
            "change it at their next sign-in. A lock after failed sign-ins is lifted."
        )
        self.add_field("&New password:", "password", self.password_edit)
        self.add_field("C&onfirm:", "confirm", self.confirm_edit)
        self.finish_layout("Reset password")

    def save(self) -> None:
        password = self.password_edit.text()
        if password != self.confirm_edit.text():
            errors = [FieldError("confirm", "The two passwords do not match.")]
            problem = password_problem(password, self.user.username)
            if problem:
                errors.append(FieldError("password", problem))
            raise ValidationFailed(errors)
        self.updated = self._services.users.reset_password(self._actor, self.user.id, password)


class UsersTab(QWidget):
    def __init__(
        self, services: Services, actor: Actor, bus: DataBus, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("usersTab")
        self._services = services
        self._actor = actor
        self._bus = bus

        self.model = UsersTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

        self.filter_edit = QLineEdit()
        _labelled(self.filter_edit, "Filter users", "usersFilterEdit")
        self.filter_edit.setPlaceholderText("Filter by name, username, role or status…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setMinimumWidth(320)
        self.filter_edit.textChanged.connect(self.proxy.setFilterFixedString)
        self.count_label = QLabel()
        self.count_label.setObjectName("usersCount")

        self.table = QTableView()
        _labelled(self.table, "User accounts", "usersTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(UsersTableModel.USERNAME, Qt.SortOrder.AscendingOrder)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setStretchLastSection(True)
        for column, width in enumerate((150, 240, 130, 170, 170)):
            self.table.setColumnWidth(column, width)

        self.new_button = primary_button("&New user…", "usersNewButton")
        self.new_button.setToolTip("Create an account (Ctrl+N)")
        self.new_button.setDefault(False)
        self.reset_button = button("&Reset password…", "usersResetPasswordButton")
        self.active_button = button("&Deactivate", "usersActiveButton")
        self.new_button.clicked.connect(self.open_new_user_dialog)
        self.reset_button.clicked.connect(self.open_reset_password_dialog)
        self.active_button.clicked.connect(self.toggle_active)
        shortcut = QShortcut(QKeySequence(QKeySequence.StandardKey.New), self)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(self.open_new_user_dialog)

        toolbar = QHBoxLayout()
        toolbar.setSpacing(8)
        toolbar.addWidget(self.filter_edit)
        toolbar.addWidget(self.count_label)
        toolbar.addStretch(1)
        toolbar.addWidget(self.reset_button)
        toolbar.addWidget(self.active_button)
        toolbar.addWidget(self.new_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 14, 14, 14)
        layout.setSpacing(10)
        layout.addLayout(toolbar)
        layout.addWidget(self.table, 1)

        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        self.proxy.modelReset.connect(self._update_buttons)
        self.proxy.layoutChanged.connect(self._update_buttons)
        bus.changed.connect(self._on_data_changed)
        self.reload()

    # --- data ---

    def reload(self) -> None:
        selected = self.selected_user()

        def fetch() -> tuple[list[UserRow], zoneinfo.ZoneInfo]:
            settings, _version = self._services.settings.get()
            return self._services.users.list_users(self._actor), settings.zone

        fetched = guarded(self, fetch, "Could not load users")
        if fetched is None:
            return
        rows, zone = fetched
        self.model.set_users(rows, self._services.context.now(), zone)
        inactive = sum(1 for row in rows if not row.active)
        text = f"{len(rows)} user{'s' if len(rows) != 1 else ''}"
        self.count_label.setText(f"{text} ({inactive} deactivated)" if inactive else text)
        if selected is not None:
            self.select_user(selected.id)
        self._update_buttons()

    def _on_data_changed(self, entities: frozenset[str]) -> None:
        if "user" in entities or "settings" in entities:
            self.reload()

    def select_user(self, user_id: int) -> None:
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            user = index.data(ROW_ROLE)
            if isinstance(user, UserRow) and user.id == user_id:
                self.table.selectRow(row)
                self.table.scrollTo(index)
                return

    def selected_user(self) -> UserRow | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        user = rows[0].data(ROW_ROLE)
        return user if isinstance(user, UserRow) else None

    def _update_buttons(self) -> None:
        user = self.selected_user()
        self.reset_button.setEnabled(user is not None)
        self.active_button.setEnabled(user is not None)
        text = "&Reactivate" if user is not None and not user.active else "&Deactivate"
        self.active_button.setText(text)
        self.active_button.setAccessibleName(text.replace("&", ""))

    # --- actions ---

    def open_new_user_dialog(self) -> UserDialog:
        dialog = UserDialog(self._services, self._actor, self)

        def created() -> None:
            if dialog.created is not None:
                self._changed(dialog.created.id)

        dialog.accepted.connect(created)
        dialog.open()
        dialog.username_edit.setFocus()
        return dialog

    def open_reset_password_dialog(self) -> ResetPasswordDialog | None:
        user = self.selected_user()
        if user is None:
            return None
        dialog = ResetPasswordDialog(self._services, self._actor, user, self)
        dialog.accepted.connect(lambda: self._changed(user.id))
        dialog.open()
        dialog.password_edit.setFocus()
        return dialog

    def toggle_active(self) -> None:
        user = self.selected_user()
        if user is None:
            return
        if user.active and not self.confirm(
            f"Deactivate {user.full_name} ({user.username})?\n\n"
            "They will no longer be able to sign in. Their records and audit trail are kept, "
            "and you can reactivate the account later."
        ):
            return
        result = guarded(
            self,
            lambda: self._services.users.set_active(self._actor, user.id, not user.active),
            "Not changed",
        )
        if result is not None:
            self._changed(user.id)

    def confirm(self, text: str) -> bool:
        """Ask before a consequential action; tests replace this to avoid a modal box."""
        answer = QMessageBox.question(
            self,
            "Deactivate user",
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _changed(self, user_id: int) -> None:
        self.reload()
        self.select_user(user_id)
        self._bus.notify("user")


# --- clinic settings ----------------------------------------------------------------------


class HolidaysTableModel(QAbstractTableModel):
    """The clinic's closed dates, kept in date order."""

    COLUMNS = ("Date", "Name")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[tuple[dt.date, str]] = []

    def set_holidays(self, holidays: Sequence[tuple[dt.date, str]]) -> None:
        self.beginResetModel()
        self._rows = sorted(holidays)
        self.endResetModel()

    def holidays(self) -> tuple[tuple[dt.date, str], ...]:
        return tuple(self._rows)

    def has_day(self, day: dt.date) -> bool:
        return any(existing == day for existing, _ in self._rows)

    def add(self, day: dt.date, name: str) -> int:
        row = sum(1 for existing, _ in self._rows if existing < day)
        self.beginInsertRows(QModelIndex(), row, row)
        self._rows.insert(row, (day, name))
        self.endInsertRows()
        return row

    def remove(self, row: int) -> None:
        if not 0 <= row < len(self._rows):
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._rows[row]
        self.endRemoveRows()

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(self.COLUMNS)
        ):
            return self.COLUMNS[section]
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        day, name = self._rows[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return f"{day:%a %d %b %Y}" if index.column() == 0 else name
        if role == ROW_ROLE:
            return day.isoformat()
        return None


def _help(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("fieldHelp")
    label.setWordWrap(True)
    return label


def _spin(label: str, object_name: str, limits: tuple[int, int], suffix: str = "") -> QSpinBox:
    spin = QSpinBox()
    _labelled(spin, label, object_name)
    spin.setRange(*limits)
    spin.setSuffix(suffix)
    spin.setMinimumWidth(110)
    spin.setAlignment(Qt.AlignmentFlag.AlignRight)
    return spin


def _group(title: str, object_name: str) -> tuple[QGroupBox, QFormLayout]:
    group = QGroupBox(title)
    group.setObjectName(object_name)
    form = QFormLayout(group)
    form.setContentsMargins(10, 8, 10, 4)
    form.setHorizontalSpacing(14)
    form.setVerticalSpacing(8)
    form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    return group, form


class SettingsTab(QWidget):
    """Every clinic-wide setting on one form, saved together with an optimistic version."""

    def __init__(
        self, services: Services, actor: Actor, bus: DataBus, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("settingsTab")
        self._services = services
        self._actor = actor
        self._bus = bus
        self._loaded = ClinicSettingsData()
        self._version: int | None = None
        self._loading = False
        self.errors = FieldErrorLabels()

        # Clinic
        self.clinic_name_edit = QLineEdit()
        _labelled(self.clinic_name_edit, "Clinic name", "settingsClinicNameEdit")
        self.clinic_name_edit.setMaxLength(200)
        self.clinic_phone_edit = QLineEdit()
        _labelled(self.clinic_phone_edit, "Clinic phone", "settingsClinicPhoneEdit")
        self.clinic_phone_edit.setMaxLength(50)
        self.time_zone_combo = QComboBox()
        _labelled(self.time_zone_combo, "Time zone", "settingsTimeZoneCombo")
        self.time_zone_combo.setEditable(True)
        self.time_zone_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.time_zone_combo.setMaxVisibleItems(15)
        self.time_zone_combo.addItems(sorted(zoneinfo.available_timezones()))
        completer = QCompleter(self.time_zone_combo.model(), self.time_zone_combo)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.time_zone_combo.setCompleter(completer)

        # Opening hours
        self.opens_edit = QTimeEdit()
        _labelled(self.opens_edit, "Opening time", "settingsOpensEdit")
        self.closes_edit = QTimeEdit()
        _labelled(self.closes_edit, "Closing time", "settingsClosesEdit")
        for edit in (self.opens_edit, self.closes_edit):
            edit.setDisplayFormat("HH:mm")
            edit.setMinimumWidth(110)
        self.weekdays_box = QWidget()
        _labelled(self.weekdays_box, "Open weekdays", "settingsWeekdays")
        weekdays_row = QHBoxLayout(self.weekdays_box)
        weekdays_row.setContentsMargins(0, 0, 0, 0)
        weekdays_row.setSpacing(12)
        self.weekday_checks: dict[int, QCheckBox] = {}
        for day, name in ISO_WEEKDAY_NAMES.items():
            check = QCheckBox(name)
            _labelled(check, f"Open on {name}", f"settingsWeekday{name}")
            self.weekday_checks[day] = check
            weekdays_row.addWidget(check)
        weekdays_row.addStretch(1)

        # Refills, screening, security
        self.margin_spin = _spin(
            "Refill safety margin",
            "settingsMarginSpin",
            REFILL_SAFETY_MARGIN_DAYS_RANGE,
            " days",
        )
        self.horizon_spin = _spin(
            "Due-soon horizon", "settingsHorizonSpin", DUE_SOON_HORIZON_DAYS_RANGE, " days"
        )
        self.slot_spin = _spin(
            "Refill slot length", "settingsSlotSpin", REFILL_SLOT_MINUTES_RANGE, " min"
        )
        self.slot_spin.setSingleStep(5)
        self.beds_spin = _spin("Observation beds", "settingsBedsSpin", OBSERVATION_BEDS_RANGE)
        self.idle_spin = _spin(
            "Lock after idle", "settingsIdleLockSpin", IDLE_LOCK_MINUTES_RANGE, " min"
        )

        # Holidays
        self.holidays_model = HolidaysTableModel(self)
        self.holidays_table = QTableView()
        _labelled(self.holidays_table, "Holidays", "holidaysTable")
        self.holidays_table.setModel(self.holidays_model)
        self.holidays_table.setAlternatingRowColors(True)
        self.holidays_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.holidays_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.holidays_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.holidays_table.verticalHeader().setVisible(False)
        self.holidays_table.horizontalHeader().setStretchLastSection(True)
        self.holidays_table.horizontalHeader().setHighlightSections(False)
        self.holidays_table.setColumnWidth(0, 150)
        self.holidays_table.setMinimumHeight(170)
        self.holiday_date_edit = QDateEdit()
        _labelled(self.holiday_date_edit, "Holiday date", "holidayDateEdit")
        self.holiday_date_edit.setCalendarPopup(True)
        self.holiday_date_edit.setDisplayFormat("ddd d MMM yyyy")
        self.holiday_date_edit.setMinimumWidth(150)
        self.holiday_name_edit = QLineEdit()
        _labelled(self.holiday_name_edit, "Holiday name", "holidayNameEdit")
        self.holiday_name_edit.setPlaceholderText("e.g. Christmas Day")
        self.holiday_name_edit.setMaxLength(200)
        self.holiday_add_button = button("Add holiday", "holidayAddButton")
        self.holiday_remove_button = button("Remove", "holidayRemoveButton")
        self.holiday_add_button.clicked.connect(self.add_holiday)
        self.holiday_name_edit.returnPressed.connect(self.add_holiday)
        self.holiday_remove_button.clicked.connect(self.remove_holiday)
        self.holidays_table.selectionModel().selectionChanged.connect(self._update_holiday_buttons)

        # Save bar
        self.banner = banner("settingsBanner")
        self.stale_banner = banner("settingsStaleBanner")
        self.reload_button = button("Re&load", "settingsReloadButton")
        self.reload_button.setToolTip("Discard your edits and show the saved settings")
        self.reload_button.clicked.connect(self.reload)
        self.status_label = QLabel()
        self.status_label.setObjectName("settingsStatus")
        self.status_label.setAccessibleName("Settings save status")
        self.save_button = primary_button("&Save settings", "settingsSaveButton")
        self.save_button.setToolTip("Save all clinic settings (Ctrl+S)")
        self.save_button.clicked.connect(self.save)
        save_shortcut = QShortcut(QKeySequence(QKeySequence.StandardKey.Save), self)
        save_shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        save_shortcut.activated.connect(self.save)

        self._build_layout()
        self._watch_edits()
        self.reload()

    # --- layout ---

    def _row(
        self,
        form: QFormLayout,
        label: str,
        field: str,
        widget: QWidget,
        help_text: str,
        grow: bool = False,
    ) -> None:
        cell = QWidget()
        column = QVBoxLayout(cell)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        if grow:
            column.addWidget(widget)
        else:
            line = QHBoxLayout()
            line.setContentsMargins(0, 0, 0, 0)
            line.addWidget(widget)
            line.addStretch(1)
            column.addLayout(line)
        column.addWidget(_help(help_text))
        column.addWidget(self.errors.label_for(field, widget))
        caption = QLabel(label)
        caption.setBuddy(widget)
        # Line the caption up with the field, not with the help text below it.
        caption.setMinimumHeight(widget.sizeHint().height())
        caption.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form.addRow(caption, cell)

    def _build_layout(self) -> None:
        clinic, form = _group("Clinic", "settingsClinicGroup")
        self._row(
            form,
            "Clinic &name:",
            "clinic_name",
            self.clinic_name_edit,
            "Shown in the window title and on printed lists and letters.",
            grow=True,
        )
        self._row(
            form,
            "Clinic &phone:",
            "clinic_phone",
            self.clinic_phone_edit,
            "Printed on patient cards: who to call when the pump alarms.",
            grow=True,
        )
        self._row(
            form,
            "&Time zone:",
            "time_zone",
            self.time_zone_combo,
            "All dates and times are shown in this zone. Type to search.",
            grow=True,
        )

        hours, form = _group("Opening hours", "settingsHoursGroup")
        self._row(form, "&Opens at:", "opens_at", self.opens_edit, "First bookable time.")
        self._row(
            form,
            "&Closes at:",
            "closes_at",
            self.closes_edit,
            "Appointments end by this time.",
        )
        self._row(
            form,
            "Open &weekdays:",
            "open_weekdays",
            self.weekdays_box,
            "Days with appointments; due dates move back to an open day.",
            grow=True,
        )

        refills, form = _group("Refills and alerts", "settingsRefillsGroup")
        self._row(
            form,
            "Safety &margin:",
            "refill_safety_margin_days",
            self.margin_spin,
            "Refill due = alarm − this margin, moved back to an open day.",
        )
        self._row(
            form,
            "Due-soon &horizon:",
            "due_soon_horizon_days",
            self.horizon_spin,
            "Refills due within this many days are listed as due soon.",
        )
        self._row(
            form,
            "Refill s&lot:",
            "refill_slot_minutes",
            self.slot_spin,
            "Length of a refill appointment in the schedule.",
        )

        screening, form = _group("Screening", "settingsScreeningGroup")
        self._row(
            form,
            "Observation &beds:",
            "observation_beds",
            self.beds_spin,
            "Patients observed at the same time after a test dose.",
        )

        security, form = _group("Security", "settingsSecurityGroup")
        self._row(
            form,
            "Lock after &idle:",
            "idle_lock_minutes",
            self.idle_spin,
            "The screen locks after this long without input.",
        )

        holidays = QGroupBox("Holidays")
        holidays.setObjectName("settingsHolidaysGroup")
        holidays_layout = QVBoxLayout(holidays)
        holidays_layout.setContentsMargins(10, 8, 10, 6)
        holidays_layout.setSpacing(8)
        holidays_layout.addWidget(
            _help(
                "Closed dates: due dates and bookings avoid them. "
                "Added or removed dates are kept when you save the settings."
            )
        )
        holidays_layout.addWidget(self.holidays_table, 1)
        add_row = QHBoxLayout()
        add_row.setSpacing(8)
        add_row.addWidget(self.holiday_date_edit)
        add_row.addWidget(self.holiday_name_edit, 1)
        add_row.addWidget(self.holiday_add_button)
        add_row.addWidget(self.holiday_remove_button)
        holidays_layout.addLayout(add_row)
        holidays_layout.addWidget(self.errors.label_for("holidays", self.holidays_table))

        # Two independent columns, so the short groups on the right do not stretch to
        # the height of their neighbours on the left.
        left = QVBoxLayout()
        left.setSpacing(8)
        left.addWidget(clinic)
        left.addWidget(hours)
        left.addWidget(refills)
        left.addStretch(1)
        right = QVBoxLayout()
        right.setSpacing(8)
        right.addWidget(screening)
        right.addWidget(security)
        right.addWidget(holidays, 1)

        content = QWidget()
        content.setObjectName("settingsContent")
        content_layout = QHBoxLayout(content)
        content_layout.setContentsMargins(14, 0, 14, 4)
        content_layout.setSpacing(16)
        content_layout.addLayout(left, 1)
        content_layout.addLayout(right, 1)
        scroll = QScrollArea()
        scroll.setObjectName("settingsScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(content)

        stale_row = QHBoxLayout()
        stale_row.setSpacing(8)
        stale_row.addWidget(self.stale_banner, 1)
        stale_row.addWidget(self.reload_button)

        save_row = QHBoxLayout()
        save_row.setSpacing(10)
        save_row.addStretch(1)
        save_row.addWidget(self.status_label)
        save_row.addWidget(self.save_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 8, 0, 12)
        layout.setSpacing(8)
        layout.addWidget(scroll, 1)
        bottom = QVBoxLayout()
        bottom.setContentsMargins(14, 0, 14, 0)
        bottom.setSpacing(8)
        bottom.addWidget(self.banner)
        bottom.addLayout(stale_row)
        bottom.addLayout(save_row)
        layout.addLayout(bottom)

    def _watch_edits(self) -> None:
        self.clinic_name_edit.textChanged.connect(self._on_edited)
        self.clinic_phone_edit.textChanged.connect(self._on_edited)
        self.time_zone_combo.currentTextChanged.connect(self._on_edited)
        self.opens_edit.timeChanged.connect(self._on_edited)
        self.closes_edit.timeChanged.connect(self._on_edited)
        for check in self.weekday_checks.values():
            check.toggled.connect(self._on_edited)
        for spin in self._spins().values():
            spin.valueChanged.connect(self._on_edited)
        self.holidays_model.rowsInserted.connect(self._on_edited)
        self.holidays_model.rowsRemoved.connect(self._on_edited)

    def _spins(self) -> dict[str, QSpinBox]:
        return {
            "refill_safety_margin_days": self.margin_spin,
            "due_soon_horizon_days": self.horizon_spin,
            "observation_beds": self.beds_spin,
            "refill_slot_minutes": self.slot_spin,
            "idle_lock_minutes": self.idle_spin,
        }

    # --- form <-> data ---

    def form_data(self) -> ClinicSettingsData:
        values = {name: spin.value() for name, spin in self._spins().items()}
        return replace(
            self._loaded,
            clinic_name=self.clinic_name_edit.text(),
            clinic_phone=self.clinic_phone_edit.text(),
            time_zone=self.time_zone_combo.currentText().strip(),
            opens_at=_to_time(self.opens_edit.time()),
            closes_at=_to_time(self.closes_edit.time()),
            open_weekdays=frozenset(d for d, c in self.weekday_checks.items() if c.isChecked()),
            holidays=self.holidays_model.holidays(),
            **values,
        )

    def set_form(self, data: ClinicSettingsData) -> None:
        self._loading = True
        try:
            self.clinic_name_edit.setText(data.clinic_name)
            self.clinic_phone_edit.setText(data.clinic_phone)
            index = self.time_zone_combo.findText(data.time_zone)
            if index >= 0:
                self.time_zone_combo.setCurrentIndex(index)
            self.time_zone_combo.setEditText(data.time_zone)
            self.opens_edit.setTime(QTime(data.opens_at.hour, data.opens_at.minute))
            self.closes_edit.setTime(QTime(data.closes_at.hour, data.closes_at.minute))
            for day, check in self.weekday_checks.items():
                check.setChecked(day in data.open_weekdays)
            for name, spin in self._spins().items():
                spin.setValue(getattr(data, name))
            self.holidays_model.set_holidays(data.holidays)
            today = self._services.context.now().astimezone(data.zone).date()
            self.holiday_date_edit.setDate(QDate(today.year, today.month, today.day))
            self.holiday_name_edit.clear()
        finally:
            self._loading = False
        self._update_holiday_buttons()

    def is_dirty(self) -> bool:
        return self.form_data() != self._loaded

    def _on_edited(self, *_args: object) -> None:
        if self._loading:
            return
        self._set_status("dirty" if self.is_dirty() else "", "Unsaved changes")

    def _set_status(self, state: str, text: str) -> None:
        self.status_label.setProperty("state", state)
        self.status_label.setText(text if state else "")
        style = self.status_label.style()
        style.unpolish(self.status_label)
        style.polish(self.status_label)

    # --- actions ---

    def reload(self) -> None:
        loaded = guarded(self, self._services.settings.get, "Could not load settings")
        if loaded is None:
            return
        self._show_saved(*loaded)
        self._set_status("", "")

    def _show_saved(self, data: ClinicSettingsData, version: int) -> None:
        self._loaded, self._version = data, version
        self.set_form(data)
        self.errors.clear()
        set_banner(self.banner, [])
        set_banner(self.stale_banner, [])
        self.reload_button.setVisible(False)

    def save(self) -> bool:
        data = self.form_data()
        version = self._version if self._version is not None else 0

        def attempt() -> tuple[ClinicSettingsData, int] | None:
            try:
                return self._services.settings.update(self._actor, data, version)
            except ValidationFailed as failed:
                leftover = self.errors.show(failed.errors)
                set_banner(self.banner, leftover)
                self._set_status("dirty", "Not saved: correct the marked fields")
                fields = self.errors.fields()
                first = next((e.field for e in failed.errors if e.field in fields), None)
                if first is not None:
                    fields[first].setFocus()
            except StaleRecord as stale:
                set_banner(self.stale_banner, [str(stale)])
                self.reload_button.setVisible(True)
                self._set_status("dirty", "Not saved")
            return None

        saved = guarded(self, attempt)
        if saved is None:
            return False
        self._show_saved(*saved)
        self._set_status("saved", f"✓ Saved at {self._services.context.now():%H:%M}")
        self._bus.notify("settings")
        return True

    def add_holiday(self) -> None:
        day = _to_date(self.holiday_date_edit.date())
        name = self.holiday_name_edit.text().strip()
        problem = None
        if not name:
            problem = "Give the holiday a name, e.g. Christmas Day."
        elif self.holidays_model.has_day(day):
            problem = f"{day:%a %d %b %Y} is already listed."
        if problem:
            self.errors.show([FieldError("holidays", problem)])
            self.holiday_name_edit.setFocus()
            return
        self.errors.show([])
        row = self.holidays_model.add(day, name)
        self.holidays_table.selectRow(row)
        self.holiday_name_edit.clear()
        self.holiday_date_edit.setFocus()

    def remove_holiday(self) -> None:
        rows = self.holidays_table.selectionModel().selectedRows()
        if rows:
            self.holidays_model.remove(rows[0].row())
        self._update_holiday_buttons()

    def _update_holiday_buttons(self, *_args: object) -> None:
        self.holiday_remove_button.setEnabled(
            bool(self.holidays_table.selectionModel().selectedRows())
        )


def _to_time(value: QTime) -> dt.time:
    return dt.time(value.hour(), value.minute())


def _to_date(value: QDate) -> dt.date:
    return dt.date(value.year(), value.month(), value.day())


# --- catalogs -----------------------------------------------------------------------------

CATALOG_NOTE = (
    "Edits apply to new implants and new fills only: implanted pumps keep the reservoir and "
    "alarm volumes copied at implant, and recorded fills are never changed."
)


def _status_text(active: bool) -> str:
    return "Active" if active else "Inactive"


class PumpModelsTableModel(RowTableModel[PumpModelRow]):
    """One row per pump model; inactive models are greyed. ``ROW_ROLE`` gives the row."""

    COLUMNS = (
        "Pump model",
        "Reservoir",
        "Alarm",
        "Accuracy",
        "Pocket fill",
        "Status",
    )
    NAME, RESERVOIR, ALARM, ACCURACY, POCKET, STATUS = range(6)

    def set_rows(self, rows: Sequence[PumpModelRow]) -> None:
        self._reset(rows)

    def rows(self) -> list[PumpModelRow]:
        return list(self._rows)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not self._valid(index):
            return None
        model = self._rows[index.row()]
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return self._text(model, column)
        if role == ROW_ROLE:
            return model
        if role == Qt.ItemDataRole.ForegroundRole and not model.active:
            return _DISABLED_FG
        if role == Qt.ItemDataRole.ToolTipRole:
            extra = "" if model.active else "\nInactive: not offered for new implants."
            return f"{model.name} ({model.manufacturer}){extra}"
        if role == Qt.ItemDataRole.TextAlignmentRole and self.RESERVOIR <= column <= self.POCKET:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, model: PumpModelRow, column: int) -> str:
        if column == self.NAME:
            return model.name
        if column == self.RESERVOIR:
            return f"{model.reservoir_ml:g} mL"
        if column == self.ALARM:
            return f"{model.low_reservoir_alarm_ml:g} mL"
        if column == self.ACCURACY:
            return f"±{model.flow_accuracy_pct:g} %"
        if column == self.POCKET:
            return f"{model.pocket_fill_warning_ml:g} mL"
        return _status_text(model.active)


class DrugProductsTableModel(RowTableModel[DrugProductRow]):
    """One row per drug product; inactive products are greyed. ``ROW_ROLE`` gives the row."""

    # The product's name already states its concentration.
    COLUMNS = ("Drug product", "Use", "Stability", "Status")
    NAME, USE, STABILITY, STATUS = range(4)

    def set_rows(self, rows: Sequence[DrugProductRow]) -> None:
        self._reset(rows)

    def rows(self) -> list[DrugProductRow]:
        return list(self._rows)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not self._valid(index):
            return None
        drug = self._rows[index.row()]
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return self._text(drug, column)
        if role == ROW_ROLE:
            return drug
        if role == Qt.ItemDataRole.ForegroundRole and not drug.active:
            return _DISABLED_FG
        if role == Qt.ItemDataRole.ToolTipRole:
            extra = "" if drug.active else "\nInactive: not offered for new fills."
            return f"{drug.name}{extra}"
        if role == Qt.ItemDataRole.TextAlignmentRole and column == self.STABILITY:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, drug: DrugProductRow, column: int) -> str:
        if column == self.NAME:
            return drug.name
        if column == self.USE:
            return "Screening only" if drug.screening_only else "Pump refills"
        if column == self.STABILITY:
            return f"{drug.stability_days} day{'s' if drug.stability_days != 1 else ''}"
        return _status_text(drug.active)


def _catalog_table(model: QAbstractTableModel, label: str, object_name: str) -> QTableView:
    table = QTableView()
    _labelled(table, label, object_name)
    table.setModel(model)
    table.setAlternatingRowColors(True)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setWordWrap(False)
    table.verticalHeader().setVisible(False)
    header = table.horizontalHeader()
    header.setHighlightSections(False)
    # The name takes what the fixed-width number columns leave: no sideways scrolling.
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    table.setMinimumHeight(150)
    return table


def _ml_spin(label: str, object_name: str) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    _labelled(spin, label, object_name)
    spin.setRange(0.0, 999.0)
    spin.setDecimals(1)
    spin.setSingleStep(0.5)
    spin.setSuffix(" mL")
    spin.setMinimumWidth(110)
    spin.setAlignment(Qt.AlignmentFlag.AlignRight)
    return spin


class _CatalogEditor(QWidget):
    """A table of catalog rows beside a form that edits the selected one."""

    # The id of the row just saved.
    saved = Signal(str)

    def __init__(
        self,
        title: str,
        object_name: str,
        model: RowTableModel[PumpModelRow] | RowTableModel[DrugProductRow],
        table_label: str,
        save_text: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName(object_name)
        self.errors = FieldErrorLabels()
        self.model = model
        self.table = _catalog_table(model, table_label, f"{object_name}Table")
        self.heading = QLabel("Select a row to edit it.")
        self.heading.setObjectName("catalogSelection")
        self.heading.setWordWrap(True)
        self.banner = banner(f"{object_name}Banner")
        # Another administrator saved the row since this form was filled: say who and when,
        # keep what was typed, offer the saved values.
        self.stale_banner = banner(f"{object_name}StaleBanner")
        self.reload_button = button("Reload", f"{object_name}ReloadButton")
        self.reload_button.setToolTip("Discard your edits and show the saved values")
        self.reload_button.setVisible(False)
        self.reload_button.clicked.connect(self.reload_selected)
        self.status_label = QLabel()
        self.status_label.setObjectName(f"{object_name}Status")
        self.status_label.setAccessibleName(f"{table_label} save status")
        self.status_label.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.status_label.setWordWrap(True)
        self.status_label.setVisible(False)
        self.save_button = primary_button(save_text, f"{object_name}SaveButton")
        self.save_button.setDefault(False)
        self.form_box = QGroupBox(title)
        self.form_box.setObjectName(f"{object_name}Form")
        self.form = QFormLayout()
        self.form.setHorizontalSpacing(12)
        self.form.setVerticalSpacing(8)
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.save_button.clicked.connect(self.save)

    def add_field(self, label: str, field: str, widget: QWidget) -> None:
        cell = QWidget()
        column = QVBoxLayout(cell)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        line = QHBoxLayout()
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(widget)
        line.addStretch(1)
        column.addLayout(line)
        column.addWidget(self.errors.label_for(field, widget))
        caption = QLabel(label)
        caption.setBuddy(widget)
        caption.setMinimumHeight(widget.sizeHint().height())
        caption.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.form.addRow(caption, cell)

    def finish_layout(self) -> None:
        box = QVBoxLayout(self.form_box)
        box.setContentsMargins(12, 10, 12, 10)
        box.setSpacing(8)
        box.addWidget(self.heading)
        box.addLayout(self.form)
        box.addWidget(self.banner)
        stale_row = QHBoxLayout()
        stale_row.addWidget(self.stale_banner, 1)
        stale_row.addWidget(self.reload_button, 0, Qt.AlignmentFlag.AlignTop)
        box.addLayout(stale_row)
        box.addStretch(1)
        box.addWidget(self.status_label)
        save_row = QHBoxLayout()
        save_row.addStretch(1)
        save_row.addWidget(self.save_button)
        box.addLayout(save_row)
        self.form_box.setMinimumWidth(380)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(12)
        layout.addWidget(self.table, 2)
        layout.addWidget(self.form_box, 1)
        self._show_selected()

    def selected_id(self) -> str | None:
        return getattr(self.selected_row(), "id", None)

    def selected_row(self) -> PumpModelRow | DrugProductRow | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        row = rows[0].data(ROW_ROLE)
        return row if isinstance(row, PumpModelRow | DrugProductRow) else None

    def select_id(self, row_id: str) -> bool:
        for row in range(self.model.rowCount()):
            index = self.model.index(row, 0)
            if getattr(index.data(ROW_ROLE), "id", None) == row_id:
                self.table.selectRow(row)
                self.table.scrollTo(index)
                return True
        return False

    def _on_selection(self, *_args: object) -> None:
        self._show_selected()

    def _show_selected(self) -> None:
        self.errors.clear()
        set_banner(self.banner, [])
        set_banner(self.stale_banner, [])
        self.reload_button.setVisible(False)
        self.set_status("")
        rows = self.table.selectionModel().selectedRows()
        row = rows[0].data(ROW_ROLE) if rows else None
        for widget in self.errors.fields().values():
            widget.setEnabled(row is not None)
        self.save_button.setEnabled(row is not None)
        if row is None:
            self.heading.setText("Select a row in the table to edit it.")
        else:
            self.fill(row)

    def set_status(self, text: str, state: str = "") -> None:
        self.status_label.setProperty("state", state)
        self.status_label.setText(text)
        self.status_label.setVisible(bool(text))
        style = self.status_label.style()
        style.unpolish(self.status_label)
        style.polish(self.status_label)

    def fill(self, row: object) -> None:
        raise NotImplementedError

    def submit(self, row_id: str, version: int) -> None:
        """Call the service; raise ValidationFailed to show the field errors."""
        raise NotImplementedError

    def reload(self) -> None:
        raise NotImplementedError

    def reload_selected(self) -> None:
        """Show the saved values of the selected row, dropping the edits."""
        self.reload()
        self._show_selected()

    def save(self) -> bool:
        row = self.selected_row()
        if row is None:
            return False
        row_id = row.id
        set_banner(self.stale_banner, [])
        self.reload_button.setVisible(False)

        def attempt() -> bool:
            try:
                self.submit(row_id, row.version)
            except StaleRecord as stale:
                # The form keeps what was typed: the administrator decides what to keep.
                set_banner(self.banner, [])
                set_banner(self.stale_banner, [str(stale)])
                self.reload_button.setVisible(True)
                self.set_status("Not saved", "dirty")
                return False
            except ValidationFailed as failed:
                set_banner(self.banner, self.errors.show(failed.errors))
                self.set_status("Not saved: correct the marked fields", "dirty")
                fields = self.errors.fields()
                first = next((e.field for e in failed.errors if e.field in fields), None)
                if first is not None:
                    fields[first].setFocus()
                return False
            return True

        if not guarded(self, attempt):
            return False
        self.saved.emit(row_id)
        return True


class PumpModelEditor(_CatalogEditor):
    def __init__(self, services: Services, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__(
            "Edit pump model",
            "pumpModels",
            PumpModelsTableModel(),
            "Pump models",
            "&Save pump model",
            parent,
        )
        self.model.setParent(self)
        self._services = services
        self._actor = actor
        self.alarm_spin = _ml_spin("Low-reservoir alarm", "pumpAlarmSpin")
        self.accuracy_spin = QDoubleSpinBox()
        _labelled(self.accuracy_spin, "Flow accuracy", "pumpAccuracySpin")
        self.accuracy_spin.setRange(0.0, 100.0)
        self.accuracy_spin.setDecimals(1)
        self.accuracy_spin.setPrefix("± ")
        self.accuracy_spin.setSuffix(" %")
        self.accuracy_spin.setMinimumWidth(110)
        self.accuracy_spin.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.pocket_spin = _ml_spin("Pocket-fill warning", "pumpPocketSpin")
        self.active_check = QCheckBox("Offered for new implants")
        _labelled(self.active_check, "Pump model active", "pumpActiveCheck")
        self.add_field("&Low-reservoir alarm:", "low_reservoir_alarm_ml", self.alarm_spin)
        self.add_field("Flow a&ccuracy:", "flow_accuracy_pct", self.accuracy_spin)
        self.add_field("Poc&ket-fill warning:", "pocket_fill_warning_ml", self.pocket_spin)
        self.add_field("Acti&ve:", "active", self.active_check)
        self.finish_layout()
        for column, width in enumerate((84, 70, 84, 94, 80), start=1):
            self.table.setColumnWidth(column, width)

    def fill(self, row: object) -> None:
        if not isinstance(row, PumpModelRow):
            return
        number = f" {row.model_number}" if row.model_number else ""
        self.heading.setText(
            f"<b>{row.name}</b><br>{row.manufacturer}{number}, {row.kind}, "
            f"reservoir {row.reservoir_ml:g} mL"
        )
        self.alarm_spin.setValue(row.low_reservoir_alarm_ml)
        self.accuracy_spin.setValue(row.flow_accuracy_pct)
        self.pocket_spin.setValue(row.pocket_fill_warning_ml)
        self.active_check.setChecked(row.active)

    def edit(self) -> PumpModelEdit:
        return PumpModelEdit(
            low_reservoir_alarm_ml=self.alarm_spin.value(),
            flow_accuracy_pct=self.accuracy_spin.value(),
            pocket_fill_warning_ml=self.pocket_spin.value(),
            active=self.active_check.isChecked(),
        )

    def submit(self, row_id: str, version: int) -> None:
        self._services.catalogs.update_pump_model(self._actor, row_id, version, self.edit())

    def reload(self) -> None:
        selected = self.selected_id()
        rows = guarded(
            self,
            lambda: self._services.catalogs.pump_models(self._actor),
            "Could not load pump models",
        )
        if rows is None:
            return
        assert isinstance(self.model, PumpModelsTableModel)
        self.model.set_rows(rows)
        if selected is None or not self.select_id(selected):
            self._show_selected()


class DrugProductEditor(_CatalogEditor):
    def __init__(self, services: Services, actor: Actor, parent: QWidget | None = None) -> None:
        super().__init__(
            "Edit drug product",
            "drugProducts",
            DrugProductsTableModel(),
            "Drug products",
            "Save &drug product",
            parent,
        )
        self.model.setParent(self)
        self._services = services
        self._actor = actor
        self.stability_spin = _spin(
            "Stability after filling", "drugStabilitySpin", STABILITY_DAYS_RANGE, " days"
        )
        self.active_check = QCheckBox("Offered for new fills")
        _labelled(self.active_check, "Drug product active", "drugActiveCheck")
        self.add_field("S&tability:", "stability_days", self.stability_spin)
        self.add_field("Activ&e:", "active", self.active_check)
        self.finish_layout()
        for column, width in enumerate((130, 84, 80), start=1):
            self.table.setColumnWidth(column, width)

    def fill(self, row: object) -> None:
        if not isinstance(row, DrugProductRow):
            return
        use = "screening test doses only" if row.screening_only else "pump refills"
        self.heading.setText(
            f"<b>{row.name}</b><br>{row.concentration_mcg_per_ml:g} mcg/mL, for {use}"
        )
        self.stability_spin.setValue(row.stability_days)
        self.active_check.setChecked(row.active)

    def edit(self) -> DrugProductEdit:
        return DrugProductEdit(
            stability_days=self.stability_spin.value(), active=self.active_check.isChecked()
        )

    def submit(self, row_id: str, version: int) -> None:
        self._services.catalogs.update_drug_product(self._actor, row_id, version, self.edit())

    def reload(self) -> None:
        selected = self.selected_id()
        rows = guarded(
            self,
            lambda: self._services.catalogs.drug_products(self._actor),
            "Could not load drug products",
        )
        if rows is None:
            return
        assert isinstance(self.model, DrugProductsTableModel)
        self.model.set_rows(rows)
        if selected is None or not self.select_id(selected):
            self._show_selected()


class CatalogsTab(QWidget):
    """Pump models and drug products, each a table with a form for the selected row."""

    def __init__(
        self, services: Services, actor: Actor, bus: DataBus, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("catalogsTab")
        self._services = services
        self._bus = bus
        self.note = banner("catalogsNote", "info")
        set_banner(self.note, [CATALOG_NOTE], prefix="")
        self.pumps = PumpModelEditor(services, actor)
        self.drugs = DrugProductEditor(services, actor)
        self.pumps.saved.connect(lambda row_id: self._saved(self.pumps, row_id))
        self.drugs.saved.connect(lambda row_id: self._saved(self.drugs, row_id))

        pumps_title = QLabel("Pump models")
        pumps_title.setObjectName("catalogSectionTitle")
        drugs_title = QLabel("Drug products")
        drugs_title.setObjectName("catalogSectionTitle")

        content = QWidget()
        content.setObjectName("catalogsContent")
        content_layout = QVBoxLayout(content)
        content_layout.setContentsMargins(14, 0, 14, 4)
        content_layout.setSpacing(8)
        content_layout.addWidget(pumps_title)
        content_layout.addWidget(self.pumps, 1)
        content_layout.addSpacing(6)
        content_layout.addWidget(drugs_title)
        content_layout.addWidget(self.drugs, 1)
        scroll = QScrollArea()
        scroll.setObjectName("catalogsScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(content)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 12, 0, 12)
        layout.setSpacing(8)
        note_row = QHBoxLayout()
        note_row.setContentsMargins(14, 0, 14, 0)
        note_row.addWidget(self.note)
        layout.addLayout(note_row)
        layout.addWidget(scroll, 1)
        bus.changed.connect(self._on_data_changed)
        self.reload()

    def reload(self) -> None:
        self.pumps.reload()
        self.drugs.reload()

    def _on_data_changed(self, entities: frozenset[str]) -> None:
        if "catalog" in entities:
            self.reload()

    def _saved(self, editor: _CatalogEditor, row_id: str) -> None:
        # The bus reloads both tables (ours included); keep the edited row selected.
        self._bus.notify("catalog")
        editor.select_id(row_id)
        editor.set_status(f"✓ Saved at {self._services.context.now():%H:%M}", "saved")


# --- the page -----------------------------------------------------------------------------


class AdminPage(QWidget):
    """Users, clinic settings and catalogs; anyone else sees only why the page is empty."""

    def __init__(
        self, services: Services, actor: Actor, bus: DataBus, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("adminPage")
        self._services = services
        self._actor = actor
        self._bus = bus
        self.tabs: QTabWidget | None = None
        self.users_tab: UsersTab | None = None
        self.settings_tab: SettingsTab | None = None
        self.catalogs_tab: CatalogsTab | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 16, 20, 16)
        layout.setSpacing(10)
        layout.addWidget(
            page_header("Administration", "User accounts, clinic-wide settings and catalogs.")
        )
        if not can(actor, Permission.MANAGE_USERS):
            self.access_banner = banner("adminAccessBanner", "info")
            self.access_banner.setAccessibleName("Administration access")
            set_banner(self.access_banner, [ACCESS_MESSAGE], prefix="")
            layout.addWidget(self.access_banner)
            layout.addStretch(1)
            return

        self.tabs = QTabWidget()
        _labelled(self.tabs, "Administration sections", "adminTabs")
        self.tabs.setDocumentMode(False)
        self.users_tab = UsersTab(services, actor, bus)
        self.tabs.addTab(self.users_tab, "Users")
        if can(actor, Permission.MANAGE_SETTINGS):
            self.settings_tab = SettingsTab(services, actor, bus)
            self.tabs.addTab(self.settings_tab, "Clinic settings")
        if can(actor, Permission.MANAGE_CATALOGS):
            self.catalogs_tab = CatalogsTab(services, actor, bus)
            self.tabs.addTab(self.catalogs_tab, "Catalogs")
        layout.addWidget(self.tabs, 1)

    def show_tab(self, name: str) -> None:
        """Switch to "users", "settings" or "catalogs"."""
        tabs: dict[str, QWidget | None] = {
            "users": self.users_tab,
            "settings": self.settings_tab,
            "catalogs": self.catalogs_tab,
        }
        target = tabs.get(name)
        if self.tabs is not None and target is not None:
            self.tabs.setCurrentWidget(target)
