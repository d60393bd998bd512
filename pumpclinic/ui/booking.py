"""Refill booking: the day's slots (the Refills page) and the booking dialog.

The dialog proposes the latest safe slot; a slot after the refill-due date asks for a
reason, one after the low-reservoir alarm needs a clinician's sign-in. Times are shown in
the clinic's zone; everything handed to the services is timezone-aware.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import (
    QAbstractListModel,
    QDate,
    QItemSelectionModel,
    QModelIndex,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDateEdit,
    QDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from pumpclinic.domain.calendar import ClinicCalendar
from pumpclinic.domain.clinic import ClinicSettingsData
from pumpclinic.domain.enums import APPOINTMENT_TRANSITIONS, AppointmentStatus
from pumpclinic.domain.validation import FieldError
from pumpclinic.services.booking import (
    AppointmentRow,
    BookingCheck,
    DaySchedule,
    Slot,
    SlotProposal,
)
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.services.errors import (
    AuthenticationFailed,
    ServiceError,
    StaleRecord,
    ValidationFailed,
)
from pumpclinic.services.permissions import Permission, can
from pumpclinic.services.refills import PumpOverview
from pumpclinic.ui.bus import DataBus
from pumpclinic.ui.errors import guarded, show_bug
from pumpclinic.ui.models import AnyIndex, RowTableModel
from pumpclinic.ui.widgets import (
    FieldErrorLabels,
    banner,
    button,
    page_header,
    primary_button,
    set_banner,
)

DATE_FORMAT = "ddd dd MMM yyyy"
ROW_ROLE = Qt.ItemDataRole.UserRole
ACTIVE = frozenset({AppointmentStatus.BOOKED, AppointmentStatus.ARRIVED})
INACTIVE = frozenset({AppointmentStatus.CANCELLED, AppointmentStatus.NO_SHOW})

_GREY = QBrush(QColor("#52606d"))
_FADED = QBrush(QColor("#8a96a3"))
_STATUS_BACKGROUND = {
    AppointmentStatus.ARRIVED: QBrush(QColor("#e8f1fa")),
    AppointmentStatus.COMPLETED: QBrush(QColor("#e6f4ea")),
}
_LATE_BACKGROUND = QBrush(QColor("#fff4e5"))
_AFTER_ALARM_BACKGROUND = QBrush(QColor("#fdecea"))
# The stylesheet has warning and info banners; a booking after the alarm is a danger.
DANGER_STYLE = (
    "background: #fdecea; color: #8c1d18; border: 1px solid #e6a09a; border-radius: 4px;"
    " padding: 6px 8px;"
)


# Additions to the application stylesheet for these screens: a disabled primary button
# must look disabled, and the booking slots are chips.
LOCAL_STYLE = """
QPushButton[primary="true"]:disabled {
    background: #c3d3e2; border-color: #c3d3e2; color: #f4f7fa;
}
QListView#slotList { background: white; border: 1px solid #d9e2ec; padding: 4px; }
QListView#slotList::item {
    border: 1px solid #bcccdc; border-radius: 4px; margin: 3px; padding: 2px 8px;
    background: white; color: #1d2b3a;
}
QListView#slotList::item:hover { background: #eef4fa; }
QListView#slotList::item:selected {
    background: #1f5f8b; border-color: #1f5f8b; color: white; font-weight: 600;
}
QListView#slotList::item:disabled { background: #f0f2f4; border-color: #e4e9ef; color: #8a96a3; }
"""
SLOT_SIZE = QSize(170, 30)


class OpenDayPaging:
    """A page that shows one day and steps between the clinic's open days. The page
    provides ``day``, ``date_edit``, ``refresh()`` and the services, settings and calendar."""

    day: dt.date
    date_edit: QDateEdit
    _services: Services
    _settings: ClinicSettingsData
    _calendar: ClinicCalendar

    def refresh(self) -> None:
        raise NotImplementedError

    def now(self) -> dt.datetime:
        return self._services.context.now()

    def today(self) -> dt.date:
        return self.now().astimezone(self._settings.zone).date()

    def show_day(self, day: dt.date) -> None:
        self.day = day
        if self.date_edit.date() != to_qdate(day):
            self.date_edit.blockSignals(True)
            self.date_edit.setDate(to_qdate(day))
            self.date_edit.blockSignals(False)
        self.refresh()

    def previous_day(self) -> None:
        day = self._calendar.latest_open_day_on_or_before(self.day - dt.timedelta(days=1))
        self.show_day(day or self.day - dt.timedelta(days=1))

    def next_day(self) -> None:
        day = self._calendar.next_open_day_on_or_after(self.day + dt.timedelta(days=1))
        self.show_day(day or self.day + dt.timedelta(days=1))


def to_qdate(day: dt.date) -> QDate:
    return QDate(day.year, day.month, day.day)


def from_qdate(value: QDate) -> dt.date:
    return dt.date(value.year(), value.month(), value.day())


def danger_banner(object_name: str) -> QLabel:
    label = banner(object_name)
    label.setStyleSheet(DANGER_STYLE)
    return label


def status_label(status: AppointmentStatus) -> str:
    return status.value.capitalize()


def slot_times(starts_at: dt.datetime, ends_at: dt.datetime, zone: dt.tzinfo) -> str:
    return f"{starts_at.astimezone(zone):%H:%M}–{ends_at.astimezone(zone):%H:%M}"


def appointment_notes(row: AppointmentRow) -> str:
    parts: list[str] = []
    if row.late_reason:
        parts.append(f"Late: {row.late_reason}")
    if row.override_by:
        parts.append(f"Override: {row.override_by}")
    if row.status is AppointmentStatus.CANCELLED and row.cancel_reason:
        parts.append(f"Cancelled: {row.cancel_reason}")
    if row.rescheduled_from_id is not None:
        parts.append("Rescheduled booking")
    return " · ".join(parts)


def date_edit(object_name: str, accessible: str) -> QDateEdit:
    edit = QDateEdit()
    edit.setObjectName(object_name)
    edit.setAccessibleName(accessible)
    edit.setDisplayFormat(DATE_FORMAT)
    edit.setCalendarPopup(True)
    edit.setMinimumWidth(150)
    return edit


# --- the day view ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DayRow:
    """One line of the day view: a slot (free or taken), or a cancelled booking in it."""

    starts_at: dt.datetime
    ends_at: dt.datetime
    appointment: AppointmentRow | None

    @property
    def inactive(self) -> bool:
        return self.appointment is not None and self.appointment.status in INACTIVE


def day_rows(schedule: DaySchedule, include_inactive: bool) -> list[DayRow]:
    rows = [DayRow(s.starts_at, s.ends_at, s.appointment) for s in schedule.slots]
    if include_inactive:
        rows += [
            DayRow(a.starts_at, a.ends_at, a) for a in schedule.appointments if a.status in INACTIVE
        ]
    # Time order; at the same time the live slot first, its cancelled history below.
    return sorted(rows, key=lambda r: (r.starts_at, r.inactive))


class DaySlotsModel(RowTableModel[DayRow]):
    """The day's refill slots; ``ROW_ROLE`` gives the DayRow."""

    COLUMNS = ("Time", "Patient", "MRN", "Status", "Booked by", "Late reason / override")
    TIME, PATIENT, MRN, STATUS, BOOKED_BY, NOTES = range(6)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._zone: dt.tzinfo = zoneinfo.ZoneInfo("UTC")

    def set_rows(self, rows: Sequence[DayRow], zone: dt.tzinfo) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self._zone = zone
        self.endResetModel()

    def rows(self) -> list[DayRow]:
        return list(self._rows)

    def row_of_appointment(self, appointment_id: int) -> int | None:
        for number, row in enumerate(self._rows):
            if row.appointment is not None and row.appointment.id == appointment_id:
                return number
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return self._text(row, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == self.NOTES and row.appointment is not None:
                return appointment_notes(row.appointment) or None
            return None
        if role == ROW_ROLE:
            return row
        appointment = row.appointment
        if role == Qt.ItemDataRole.ForegroundRole:
            if appointment is None:
                return _GREY
            return _FADED if row.inactive else None
        if role == Qt.ItemDataRole.FontRole:
            if appointment is not None and column == self.PATIENT and not row.inactive:
                font = QFont()
                font.setBold(True)
                return font
            if row.inactive:
                font = QFont()
                font.setItalic(True)
                return font
            return None
        if role == Qt.ItemDataRole.BackgroundRole and appointment is not None:
            if column == self.STATUS:
                return _STATUS_BACKGROUND.get(appointment.status)
            if column == self.NOTES and not row.inactive:
                if appointment.override_by:  # booked after the alarm
                    return _AFTER_ALARM_BACKGROUND
                return _LATE_BACKGROUND if appointment.late_reason else None
        return None

    def _text(self, row: DayRow, column: int) -> str:
        if column == self.TIME:
            return slot_times(row.starts_at, row.ends_at, self._zone)
        a = row.appointment
        if a is None:
            return "Free" if column == self.PATIENT else ""
        return (
            "",
            a.patient_name,
            a.mrn,
            status_label(a.status),
            a.booked_by,
            appointment_notes(a),
        )[column]


class RefillsPage(OpenDayPaging, QWidget):
    """The nav page "Refills": one day of refill slots and the actions on a booking."""

    def __init__(
        self, services: Services, actor: Actor, bus: DataBus, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("refillsPage")
        self.setStyleSheet(LOCAL_STYLE)
        self._services = services
        self._actor = actor
        self._bus = bus
        self.can_view = can(actor, Permission.VIEW_SCHEDULE)
        self.can_book = can(actor, Permission.BOOK_APPOINTMENTS)
        self.can_record = can(actor, Permission.RECORD_REFILLS)
        self._settings = services.settings.get()[0]
        self._calendar = ClinicCalendar.from_settings(self._settings)
        self.day = self.today()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 18, 24, 18)
        layout.addWidget(
            page_header(
                "Refills",
                "The day's refill slots in clinic time. Select a booking to mark arrival, "
                "record the refill, reschedule or cancel.",
            )
        )
        self.model = DaySlotsModel(self)
        if not self.can_view:
            info = banner("refillsNoAccess", "info")
            set_banner(info, ["The refill schedule is not part of the administrator role."], "")
            layout.addWidget(info)
            layout.addStretch(1)
            return

        navigation = QHBoxLayout()
        self.previous_button = button("‹ Previous open day", "previousDay")
        self.previous_button.setToolTip("Previous open day (Alt+Left)")
        self.previous_button.clicked.connect(self.previous_day)
        self.date_edit = date_edit("refillsDate", "Day shown")
        self.date_edit.dateChanged.connect(lambda value: self.show_day(from_qdate(value)))
        self.next_button = button("Next open day ›", "nextDay")
        self.next_button.setToolTip("Next open day (Alt+Right)")
        self.next_button.clicked.connect(self.next_day)
        self.today_button = button("&Today", "todayButton")
        self.today_button.clicked.connect(lambda: self.show_day(self.today()))
        for widget in (self.previous_button, self.date_edit, self.next_button, self.today_button):
            navigation.addWidget(widget)
        navigation.addSpacing(16)
        self.show_cancelled = QCheckBox("Show cancelled and no-shows")
        self.show_cancelled.setObjectName("showCancelled")
        self.show_cancelled.setAccessibleName("Show cancelled and no-shows")
        self.show_cancelled.setChecked(True)
        self.show_cancelled.toggled.connect(lambda _on: self.refresh())
        navigation.addWidget(self.show_cancelled)
        navigation.addStretch(1)
        layout.addLayout(navigation)

        title_row = QHBoxLayout()
        self.day_title = QLabel()
        self.day_title.setObjectName("refillsDayTitle")
        self.day_title.setStyleSheet("font-size: 13pt; font-weight: 600; color: #1d2b3a;")
        title_row.addWidget(self.day_title)
        title_row.addStretch(1)
        self.summary = QLabel()
        self.summary.setObjectName("refillsSummary")
        self.summary.setStyleSheet("color: #52606d;")
        title_row.addWidget(self.summary)
        layout.addLayout(title_row)

        self.closed_banner = banner("refillsClosed", "info")
        layout.addWidget(self.closed_banner)

        self.table = QTableView()
        self.table.setObjectName("refillsTable")
        self.table.setAccessibleName("Refill slots of the day")
        self.table.setModel(self.model)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(27)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        for column, width in ((0, 110), (1, 220), (2, 110), (3, 100), (4, 100)):
            self.table.setColumnWidth(column, width)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(lambda _index: self._default_action())
        layout.addWidget(self.table, 1)
        # Holds the room of the table on a closed day, so the page keeps its shape.
        self.closed_filler = QWidget()
        self.closed_filler.setObjectName("refillsClosedFiller")
        layout.addWidget(self.closed_filler, 1)

        actions = QHBoxLayout()
        self.selection_label = QLabel()
        self.selection_label.setObjectName("refillsSelection")
        self.selection_label.setStyleSheet("color: #334e68;")
        actions.addWidget(self.selection_label, 1)
        self.arrived_button = button("&Arrived", "markArrived")
        self.arrived_button.clicked.connect(lambda: self.set_status(AppointmentStatus.ARRIVED))
        self.no_show_button = button("&No-show", "markNoShow")
        self.no_show_button.setToolTip("Once the appointment time has passed")
        self.no_show_button.clicked.connect(lambda: self.set_status(AppointmentStatus.NO_SHOW))
        self.reschedule_button = button("Re&schedule…", "rescheduleAppointment")
        self.reschedule_button.clicked.connect(self.reschedule_selected)
        self.cancel_button = button("&Cancel…", "cancelAppointment")
        self.cancel_button.clicked.connect(self.cancel_selected)
        self.record_button = primary_button("&Record refill…", "recordRefill")
        self.record_button.setDefault(False)
        self.record_button.clicked.connect(self.record_selected)
        for widget in (
            self.arrived_button,
            self.no_show_button,
            self.reschedule_button,
            self.cancel_button,
            self.record_button,
        ):
            actions.addWidget(widget)
        self.record_button.setVisible(self.can_record)
        for widget in (
            self.arrived_button,
            self.no_show_button,
            self.reschedule_button,
            self.cancel_button,
        ):
            widget.setVisible(self.can_book)
        layout.addLayout(actions)

        QShortcut(QKeySequence("Alt+Left"), self, self.previous_day)
        QShortcut(QKeySequence("Alt+Right"), self, self.next_day)
        bus.changed.connect(self._on_changed)
        self.show_day(self.day)

    # --- days ---------------------------------------------------------------------------

    def refresh(self) -> None:
        keep = self.selected_appointment()
        schedule = guarded(
            self, lambda: self._services.booking.day_schedule(self._actor, self.day), "Refills"
        )
        if schedule is None:
            return
        self.model.set_rows(day_rows(schedule, self.show_cancelled.isChecked()), schedule.zone)
        today = " — today" if self.day == self.today() else ""
        self.day_title.setText(f"{self.day:%A %d %B %Y}{today}")
        if schedule.closed_reason:
            set_banner(
                self.closed_banner,
                [f"{schedule.closed_reason}: no refill slots on this day."],
                "",
            )
        else:
            set_banner(self.closed_banner, [])
        taken = sum(1 for s in schedule.slots if not s.free)
        self.summary.setText(
            f"{taken} of {len(schedule.slots)} slots booked" if schedule.slots else ""
        )
        self.table.setVisible(bool(self.model.rowCount()))
        self.closed_filler.setVisible(not self.model.rowCount())
        if keep is not None:
            row = self.model.row_of_appointment(keep.id)
            if row is not None:
                self.table.selectRow(row)
        self._selection_changed()

    def _on_changed(self, entities: frozenset[str]) -> None:
        if "settings" in entities:
            settings = guarded(self, lambda: self._services.settings.get())
            if settings is not None:
                self._settings = settings[0]
                self._calendar = ClinicCalendar.from_settings(self._settings)
        if entities & {"appointment", "refill", "patient", "pump", "settings"}:
            self.refresh()

    # --- selection ----------------------------------------------------------------------

    def select_appointment(self, appointment_id: int) -> bool:
        row = self.model.row_of_appointment(appointment_id)
        if row is None:
            return False
        self.table.selectRow(row)
        return True

    def selected_appointment(self) -> AppointmentRow | None:
        if not self.can_view:
            return None
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.model.row_at(rows[0].row()).appointment

    def _selection_changed(self) -> None:
        row = self.selected_appointment()
        status = row.status if row else None
        allowed = APPOINTMENT_TRANSITIONS[status] if status else frozenset()
        started = row is not None and row.starts_at <= self.now()
        due_today = row is not None and row.starts_at.astimezone(self._settings.zone).date() <= (
            self.today()
        )
        self.arrived_button.setEnabled(AppointmentStatus.ARRIVED in allowed and due_today)
        self.no_show_button.setEnabled(AppointmentStatus.NO_SHOW in allowed and started)
        active = status in ACTIVE
        self.reschedule_button.setEnabled(active)
        self.cancel_button.setEnabled(active)
        self.record_button.setEnabled(active and row is not None and row.pump_id is not None)
        if row is None:
            self.selection_label.setText("Select a booking to act on it.")
        else:
            zone = self._settings.zone
            self.selection_label.setText(
                f"{row.patient_name} ({row.mrn}) · {row.starts_at.astimezone(zone):%a %d %b %H:%M}"
                f" · {status_label(row.status)}"
            )

    def _default_action(self) -> None:
        if self.record_button.isVisible() and self.record_button.isEnabled():
            self.record_selected()

    # --- actions ------------------------------------------------------------------------

    def set_status(self, status: AppointmentStatus) -> AppointmentRow | None:
        row = self.selected_appointment()
        if row is None:
            return None
        changed = guarded(
            self,
            lambda: self._services.booking.set_status(self._actor, row.id, row.version, status),
        )
        if changed is not None:
            self._bus.notify("appointment")
        else:
            self.refresh()
        return changed

    def cancel_selected(self) -> CancelAppointmentDialog | None:
        row = self.selected_appointment()
        if row is None:
            return None
        dialog = CancelAppointmentDialog(self._services, self._actor, row, self, bus=self._bus)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def reschedule_selected(self) -> BookRefillDialog | None:
        row = self.selected_appointment()
        if row is None:
            return None
        dialog = BookRefillDialog(
            self._services, self._actor, row.patient_id, self, reschedule=row, bus=self._bus
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def record_selected(self) -> QDialog | None:
        row = self.selected_appointment()
        if row is None or row.pump_id is None:
            return None
        from pumpclinic.ui.refill_record import RecordRefillDialog

        dialog = RecordRefillDialog(
            self._services, self._actor, row.pump_id, self, appointment_id=row.id, bus=self._bus
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog


class CancelAppointmentDialog(QDialog):
    """Cancelling keeps the appointment in the history with its reason."""

    cancelled = Signal(object)  # AppointmentRow

    def __init__(
        self,
        services: Services,
        actor: Actor,
        appointment: AppointmentRow,
        parent: QWidget | None = None,
        *,
        bus: DataBus | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("cancelAppointmentDialog")
        self.setStyleSheet(LOCAL_STYLE)
        self.setWindowTitle("Cancel refill appointment")
        self.setAccessibleName("Cancel refill appointment")
        self.setMinimumWidth(480)
        self._services = services
        self._actor = actor
        self._appointment = appointment
        self._bus = bus
        self.errors = FieldErrorLabels()
        zone = services.settings.get()[0].zone
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 16, 18, 14)
        intro = QLabel(
            f"Cancel the refill of <b>{appointment.patient_name}</b> ({appointment.mrn}) on "
            f"{appointment.starts_at.astimezone(zone):%a %d %b %Y %H:%M}? It stays in the "
            "history with the reason. Make sure another refill is booked before the pump alarms."
        )
        intro.setObjectName("dialogIntro")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.reason = QLineEdit()
        self.reason.setObjectName("cancelReason")
        self.reason.setAccessibleName("Reason for cancelling")
        self.reason.setPlaceholderText("e.g. Patient admitted to hospital")
        form = QFormLayout()
        cell = QWidget()
        column = QVBoxLayout(cell)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.reason)
        column.addWidget(self.errors.label_for("cancel_reason", self.reason))
        form.addRow("Reason *", cell)
        layout.addLayout(form)
        self.error_banner = banner("cancelErrors")
        layout.addWidget(self.error_banner)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.keep_button = button("Keep appointment", "keepAppointment")
        self.keep_button.clicked.connect(self.reject)
        self.ok_button = primary_button("Cancel appointment", "confirmCancel")
        self.ok_button.clicked.connect(self.submit)
        buttons.addWidget(self.keep_button)
        buttons.addWidget(self.ok_button)
        layout.addLayout(buttons)
        self.reason.setFocus()

    def submit(self) -> None:
        self.errors.clear()
        set_banner(self.error_banner, [])
        row = self._appointment
        try:
            cancelled = self._services.booking.cancel(
                self._actor, row.id, row.version, self.reason.text()
            )
        except ValidationFailed as failure:
            set_banner(self.error_banner, self.errors.show(failure.errors))
            return
        except ServiceError as error:
            set_banner(self.error_banner, [str(error)])
            return
        except Exception as error:  # a bug: logged with its traceback
            show_bug(self, error)
            return
        self.cancelled.emit(cancelled)
        if self._bus is not None:
            self._bus.notify("appointment")
        self.accept()


# --- the booking dialog ---------------------------------------------------------------------


class SlotListModel(QAbstractListModel):
    """A day's slots for booking: free future slots are selectable, the rest shown disabled."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._slots: list[Slot] = []
        self._zone: dt.tzinfo = zoneinfo.ZoneInfo("UTC")
        self._now = dt.datetime.now(dt.UTC)
        self._own_id: int | None = None

    def set_slots(
        self,
        slots: Sequence[Slot],
        zone: dt.tzinfo,
        now: dt.datetime,
        own_appointment_id: int | None = None,
    ) -> None:
        self.beginResetModel()
        self._slots = list(slots)
        self._zone = zone
        self._now = now
        self._own_id = own_appointment_id
        self.endResetModel()

    def slot_at(self, row: int) -> Slot:
        return self._slots[row]

    def row_of(self, starts_at: dt.datetime) -> int | None:
        for row, slot in enumerate(self._slots):
            if slot.starts_at == starts_at:
                return row
        return None

    def bookable(self, row: int) -> bool:
        slot = self._slots[row]
        return slot.free and slot.starts_at > self._now

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._slots)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._slots):
            return None
        slot = self._slots[index.row()]
        start = f"{slot.starts_at.astimezone(self._zone):%H:%M}"
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return f"{start}   {self._state(slot)}"
        if role == Qt.ItemDataRole.ToolTipRole:
            a = slot.appointment
            if a is not None:
                return (
                    f"{slot_times(slot.starts_at, slot.ends_at, self._zone)} taken: "
                    f"{a.patient_name} ({a.mrn}), booked by {a.booked_by}"
                )
            return None
        if role == ROW_ROLE:
            return slot
        if role == Qt.ItemDataRole.SizeHintRole:
            return SLOT_SIZE
        return None

    def _state(self, slot: Slot) -> str:
        a = slot.appointment
        if a is not None:
            return "this booking" if a.id == self._own_id else a.patient_name
        return "Past" if slot.starts_at <= self._now else "Free"

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid() or not 0 <= index.row() < len(self._slots):
            return Qt.ItemFlag.NoItemFlags
        if self.bookable(index.row()):
            return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        return Qt.ItemFlag.NoItemFlags


class BookRefillDialog(QDialog):
    """Book (or move) a refill: the proposal, a day and a free slot, and what it needs."""

    booked = Signal(object)  # AppointmentRow

    def __init__(
        self,
        services: Services,
        actor: Actor,
        patient_id: int,
        parent: QWidget | None = None,
        reschedule: AppointmentRow | None = None,
        *,
        bus: DataBus | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("bookRefillDialog")
        self.setStyleSheet(LOCAL_STYLE)
        self._services = services
        self._actor = actor
        self._patient_id = patient_id
        self._reschedule = reschedule
        self._bus = bus
        self._settings = services.settings.get()[0]
        self._zone = self._settings.zone
        self._calendar = ClinicCalendar.from_settings(self._settings)
        self._check: BookingCheck | None = None
        self.result_row: AppointmentRow | None = None
        self.can_override = can(actor, Permission.OVERRIDE)
        self.errors = FieldErrorLabels()
        self.overview: PumpOverview | None = guarded(
            self, lambda: services.refills.overview(actor, patient_id), "Cannot book"
        )
        self.proposal: SlotProposal | None = guarded(
            self, lambda: services.booking.propose_slot(actor, patient_id), "Cannot book"
        )
        action = "Reschedule refill" if reschedule else "Book refill"
        who = (
            f"{self.overview.patient_name} · {self.overview.mrn}"
            if self.overview
            else f"patient {patient_id}"
        )
        self.setWindowTitle(f"{action} — {who}")
        self.setAccessibleName(action)
        self.resize(820, 700)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(22, 18, 22, 16)
        layout.setSpacing(10)
        heading = QLabel(f"{action} — {who}")
        heading.setObjectName("pageTitle")
        layout.addWidget(heading)
        details = QLabel(self._patient_details())
        details.setObjectName("pageSubtitle")
        details.setWordWrap(True)
        layout.addWidget(details)
        if reschedule is not None:
            moving = banner("reschedulingFrom", "info")
            set_banner(
                moving,
                [
                    "Now booked for "
                    f"{reschedule.starts_at.astimezone(self._zone):%a %d %b %Y %H:%M}. "
                    "The old booking is cancelled and kept in the history."
                ],
                "",
            )
            layout.addWidget(moving)

        layout.addWidget(self._forecast_box())
        self.proposal_banner = banner("proposalBanner", "info")
        layout.addWidget(self.proposal_banner)

        # Day and slot
        choose = QGroupBox("Day and time (clinic time)")
        choose_layout = QVBoxLayout(choose)
        day_row = QHBoxLayout()
        self.previous_button = button("‹", "bookingPreviousDay")
        self.previous_button.setAccessibleName("Previous open day")
        self.previous_button.setToolTip("Previous open day")
        self.previous_button.clicked.connect(self.previous_day)
        self.date_edit = date_edit("bookingDate", "Day of the refill")
        self.date_edit.setMinimumDate(to_qdate(self._today()))
        self.date_edit.dateChanged.connect(lambda _value: self.load_day())
        self.next_button = button("›", "bookingNextDay")
        self.next_button.setAccessibleName("Next open day")
        self.next_button.setToolTip("Next open day")
        self.next_button.clicked.connect(self.next_day)
        self.proposed_button = button("Proposed slot", "useProposedSlot")
        self.proposed_button.setToolTip("Go back to the proposed slot")
        self.proposed_button.clicked.connect(self._show_proposal)
        self.proposed_button.setEnabled(bool(self.proposal and self.proposal.starts_at))
        for widget in (self.previous_button, self.date_edit, self.next_button):
            day_row.addWidget(widget)
        day_row.addWidget(self.proposed_button)
        self.day_note = QLabel()
        self.day_note.setObjectName("bookingDayNote")
        self.day_note.setStyleSheet("color: #52606d;")
        day_row.addWidget(self.day_note, 1)
        choose_layout.addLayout(day_row)
        self.slot_model = SlotListModel(self)
        self.slot_list = QListView()
        self.slot_list.setObjectName("slotList")
        self.slot_list.setAccessibleName("Refill slots")
        self.slot_list.setModel(self.slot_model)
        self.slot_list.setFlow(QListView.Flow.LeftToRight)
        self.slot_list.setWrapping(True)
        self.slot_list.setResizeMode(QListView.ResizeMode.Adjust)
        self.slot_list.setUniformItemSizes(True)
        self.slot_list.setGridSize(QSize(SLOT_SIZE.width() + 8, SLOT_SIZE.height() + 8))
        self.slot_list.setSpacing(0)
        self.slot_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        # Five rows of four: a day of 30-minute slots without scrolling.
        self.slot_list.setFixedHeight(5 * (SLOT_SIZE.height() + 8) + 12)
        self.slot_list.selectionModel().selectionChanged.connect(self._slot_changed)
        choose_layout.addWidget(self.slot_list)
        choose_layout.addWidget(self.errors.label_for("starts_at", self.slot_list))
        self.selected_label = QLabel()
        self.selected_label.setObjectName("selectedSlot")
        self.selected_label.setStyleSheet("font-size: 11pt; font-weight: 600;")
        choose_layout.addWidget(self.selected_label)
        layout.addWidget(choose)

        # What the chosen slot needs
        self.check_banner = banner("bookingCheck")
        layout.addWidget(self.check_banner)
        self.late_box = QWidget()
        late_layout = QFormLayout(self.late_box)
        late_layout.setContentsMargins(0, 0, 0, 0)
        self.late_reason = QLineEdit()
        self.late_reason.setObjectName("lateReason")
        self.late_reason.setAccessibleName("Reason for booking late")
        self.late_reason.setPlaceholderText("e.g. Patient travelling until 13 Dec")
        late_cell = QWidget()
        late_column = QVBoxLayout(late_cell)
        late_column.setContentsMargins(0, 0, 0, 0)
        late_column.setSpacing(1)
        late_column.addWidget(self.late_reason)
        late_column.addWidget(self.errors.label_for("late_reason", self.late_reason))
        late_layout.addRow("Reason for booking late *", late_cell)
        layout.addWidget(self.late_box)

        self.override_box = QGroupBox("Clinician override")
        self.override_box.setObjectName("overrideBox")
        override_layout = QVBoxLayout(self.override_box)
        override_intro = QLabel(
            "After the alarm date a clinician must approve this booking: ask a clinician to "
            "sign in here."
        )
        override_intro.setWordWrap(True)
        override_intro.setStyleSheet("font-weight: 400;")
        override_layout.addWidget(override_intro)
        override_form = QGridLayout()
        self.override_username = QLineEdit()
        self.override_username.setObjectName("overrideUsername")
        self.override_username.setAccessibleName("Clinician username")
        self.override_password = QLineEdit()
        self.override_password.setObjectName("overridePassword")
        self.override_password.setAccessibleName("Clinician password")
        self.override_password.setEchoMode(QLineEdit.EchoMode.Password)
        override_form.addWidget(QLabel("Clinician username"), 0, 0)
        override_form.addWidget(self.override_username, 0, 1)
        override_form.addWidget(QLabel("Password"), 0, 2)
        override_form.addWidget(self.override_password, 0, 3)
        override_layout.addLayout(override_form)
        override_layout.addWidget(self.errors.label_for("override", self.override_username))
        layout.addWidget(self.override_box)

        self.error_banner = banner("bookingErrors")
        layout.addWidget(self.error_banner)
        layout.addStretch(1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.cancel_button = button("Cancel", "cancelBooking")
        self.cancel_button.clicked.connect(self.reject)
        self.book_button: QPushButton = primary_button(
            "&Reschedule" if reschedule else "&Book refill", "bookButton"
        )
        self.book_button.clicked.connect(self.submit)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.book_button)
        layout.addLayout(buttons)

        self._show_proposal()

    # --- building -----------------------------------------------------------------------

    def _today(self) -> dt.date:
        return self._services.context.now().astimezone(self._zone).date()

    def _patient_details(self) -> str:
        if self.overview is None:
            return ""
        parts = [f"Born {self.overview.date_of_birth:%d %b %Y}"]
        card = self.overview.card
        if card is not None:
            parts.append(f"{card.model_name}, serial {card.serial_number}")
            if card.program is not None:
                program = card.program
                parts.append(
                    f"{program.dose_mcg_per_day:g} mcg/day of "
                    f"{program.concentration_mcg_per_ml:g} mcg/mL"
                )
        else:
            parts.append("No implanted pump")
        return " · ".join(parts)

    def _forecast_box(self) -> QGroupBox:
        box = QGroupBox("Pump forecast")
        grid = QGridLayout(box)
        grid.setHorizontalSpacing(28)
        check = self.proposal.check if self.proposal else None
        items = (
            ("Refill due", "forecastDue", self._day_text(check.refill_due if check else None)),
            (
                "Low-reservoir alarm",
                "forecastAlarm",
                self._time_text(check.alarm_at if check else None),
            ),
            (
                "Projected empty",
                "forecastEmpty",
                self._time_text(check.empty_at if check else None),
            ),
        )
        for column, (caption, name, text) in enumerate(items):
            title = QLabel(caption)
            title.setStyleSheet("color: #52606d; font-weight: 400;")
            value = QLabel(text)
            value.setObjectName(name)
            value.setAccessibleName(caption)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            weight = "700" if column == 0 else "600"
            color = "#1d2b3a" if column == 0 else "#8c1d18"
            value.setStyleSheet(f"font-size: 13pt; font-weight: {weight}; color: {color};")
            grid.addWidget(title, 0, column)
            grid.addWidget(value, 1, column)
        grid.setColumnStretch(3, 1)
        return box

    def _day_text(self, day: dt.date | None) -> str:
        return f"{day:%a %d %b %Y}" if day is not None else "—"

    def _time_text(self, at: dt.datetime | None) -> str:
        return f"{at.astimezone(self._zone):%a %d %b %Y %H:%M}" if at is not None else "—"

    def _show_proposal(self) -> None:
        proposal = self.proposal
        start = proposal.starts_at if proposal else None
        if proposal is not None:
            lead = (
                f"Proposed: {start.astimezone(self._zone):%a %d %b %Y, %H:%M}. "
                if start is not None
                else ""
            )
            set_banner(self.proposal_banner, [lead + proposal.message], "")
        day = start.astimezone(self._zone).date() if start is not None else self._today()
        self.set_day(day)
        if start is not None:
            self.select_slot(start)
        self._slot_changed()

    # --- day and slot -------------------------------------------------------------------

    def day(self) -> dt.date:
        return from_qdate(self.date_edit.date())

    def set_day(self, day: dt.date) -> None:
        if self.date_edit.date() == to_qdate(day):
            self.load_day()
        else:
            self.date_edit.setDate(to_qdate(day))  # loads through dateChanged

    def previous_day(self) -> None:
        day = self._calendar.latest_open_day_on_or_before(self.day() - dt.timedelta(days=1))
        if day is not None and day >= self._today():
            self.set_day(day)

    def next_day(self) -> None:
        day = self._calendar.next_open_day_on_or_after(self.day() + dt.timedelta(days=1))
        if day is not None:
            self.set_day(day)

    def load_day(self) -> None:
        day = self.day()
        schedule = guarded(
            self, lambda: self._services.booking.day_schedule(self._actor, day), "Booking"
        )
        own = self._reschedule.id if self._reschedule else None
        now = self._services.context.now()
        if schedule is None:
            self.slot_model.set_slots([], self._zone, now, own)
        else:
            self.slot_model.set_slots(schedule.slots, schedule.zone, now, own)
        if schedule is not None and schedule.closed_reason:
            self.day_note.setText(f"{schedule.closed_reason}: choose another day.")
        else:
            free = sum(
                1 for row in range(self.slot_model.rowCount()) if self.slot_model.bookable(row)
            )
            self.day_note.setText(f"{free} free slot{'s' if free != 1 else ''}")
        self._slot_changed()

    def select_slot(self, starts_at: dt.datetime) -> bool:
        row = self.slot_model.row_of(starts_at)
        if row is None or not self.slot_model.bookable(row):
            return False
        self.slot_list.selectionModel().setCurrentIndex(
            self.slot_model.index(row), QItemSelectionModel.SelectionFlag.ClearAndSelect
        )
        return True

    def selected_slot(self) -> Slot | None:
        rows = self.slot_list.selectionModel().selectedIndexes()
        return self.slot_model.slot_at(rows[0].row()) if rows else None

    def _slot_changed(self) -> None:
        slot = self.selected_slot()
        self._check = None
        if slot is None:
            self.selected_label.setText("Choose a free slot.")
        else:
            self.selected_label.setText(
                f"Selected: {slot.starts_at.astimezone(self._zone):%a %d %b %Y}, "
                f"{slot_times(slot.starts_at, slot.ends_at, self._zone)}"
            )
            self._check = guarded(
                self,
                lambda: self._services.booking.check(self._actor, self._patient_id, slot.starts_at),
                "Booking",
            )
        check = self._check
        after_due = bool(check and check.after_due)
        after_alarm = bool(check and check.after_alarm)
        messages: list[str] = []
        if check is not None and check.message:
            messages.append(check.message)
            if after_alarm and self.can_override:
                messages.append("You approve this booking as a clinician.")
            elif after_alarm:
                messages.append("A clinician must approve it below.")
            elif after_due:
                messages.append("Give the reason for booking late below.")
        set_banner(self.check_banner, messages)
        self.check_banner.setStyleSheet(DANGER_STYLE if after_alarm else "")
        self.late_box.setVisible(after_due)
        self.override_box.setVisible(after_alarm and not self.can_override)
        self.book_button.setEnabled(slot is not None)

    # --- booking ------------------------------------------------------------------------

    def _approver(self) -> Actor | None:
        check = self._check
        if check is None or not check.after_alarm or self.can_override:
            return None
        username = self.override_username.text().strip()
        if not username:
            raise ValidationFailed(
                [FieldError("override", f"{check.message} A clinician must sign in to approve.")]
            )
        try:
            return self._services.booking.authorize_override(
                username, self.override_password.text()
            )
        except AuthenticationFailed as failed:
            self.override_password.clear()
            raise ValidationFailed([FieldError("override", str(failed))]) from failed

    def submit(self) -> AppointmentRow | None:
        self.errors.clear()
        set_banner(self.error_banner, [])
        slot = self.selected_slot()
        if slot is None:
            self.errors.show([FieldError("starts_at", "Choose a free slot.")])
            return None
        late_reason = self.late_reason.text() if self.late_box.isVisible() else ""
        try:
            approver = self._approver()
            if self._reschedule is not None:
                row = self._services.booking.reschedule(
                    self._actor,
                    self._reschedule.id,
                    self._reschedule.version,
                    slot.starts_at,
                    late_reason=late_reason,
                    override_by=approver,
                )
            else:
                row = self._services.booking.book_refill(
                    self._actor,
                    self._patient_id,
                    slot.starts_at,
                    late_reason=late_reason,
                    override_by=approver,
                )
        except ValidationFailed as failure:
            leftover = self.errors.show(failure.errors)
            set_banner(self.error_banner, ["Not booked.", *leftover])
            if failure.for_field("starts_at"):
                self.load_day()  # someone may have taken the slot meanwhile
            return None
        except StaleRecord as stale:
            set_banner(self.error_banner, [str(stale)])
            return None
        except ServiceError as error:
            set_banner(self.error_banner, [str(error)])
            return None
        except Exception as error:  # a bug: logged with its traceback
            show_bug(self, error)
            return None
        self.result_row = row
        self.booked.emit(row)
        if self._bus is not None:
            self._bus.notify("appointment")
        self.accept()
        return row
