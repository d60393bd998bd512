"""The patient page: pump card, reservoir forecast and chart, refill history, appointments.

A nurse must read the pump, the program and the refill-due date at a glance; an overdue
refill is a patient-safety alarm (baclofen withdrawal), so its state is spelled out in
words as well as colour.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import (
    QDate,
    QDateTime,
    Qt,
    QTime,
    QUrl,
    Signal,
)
from PySide6.QtGui import QColor, QDesktopServices, QDoubleValidator, QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QDateTimeEdit,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from pumpclinic.domain.enums import AppointmentStatus, SpasticityOrigin
from pumpclinic.domain.patients import age_in_years
from pumpclinic.domain.validation import FieldError
from pumpclinic.services.booking import AppointmentRow
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.services.errors import AuthenticationFailed, ServiceError, ValidationFailed
from pumpclinic.services.patients import RISK_FLAG_LABELS, PatientRecord
from pumpclinic.services.permissions import Permission, can
from pumpclinic.services.refills import (
    DoubleCheck,
    ImplantInput,
    PumpCard,
    PumpModelChoice,
    PumpOverview,
    RefillRow,
    ReservoirView,
)
from pumpclinic.ui.bus import DataBus
from pumpclinic.ui.errors import guarded, show_bug, show_known_error
from pumpclinic.ui.models import AnyIndex, RowTableModel
from pumpclinic.ui.reservoir_chart import ReservoirChart
from pumpclinic.ui.widgets import (
    FieldErrorLabels,
    banner,
    button,
    per_hour_text,
    primary_button,
    set_banner,
)

DANGER = QColor("#b3261e")
MUTED = QColor("#7b8794")
ACTIVE_APPOINTMENTS = (AppointmentStatus.BOOKED, AppointmentStatus.ARRIVED)
RELOAD_ON = frozenset({"refill", "appointment", "pump", "patient"})

PAGE_STYLE = """
QLabel#riskChip {
    background: #fdecea; color: #8c1d18; border: 1px solid #f1b0aa; border-radius: 10px;
    padding: 2px 10px; font-weight: 600;
}
QLabel#patientMeta { color: #334e68; font-size: 10.5pt; }
QPushButton#backToPatients {
    border: none; background: transparent; color: #1f5f8b; padding: 2px 0; text-align: left;
}
QPushButton#backToPatients:hover { text-decoration: underline; background: transparent; }
QFrame#forecastStrip {
    background: #e8f1fa; border: 1px solid #9cc3e5; border-radius: 6px;
}
QFrame#forecastStrip[state="soon"], QFrame#forecastStrip[state="due"] {
    background: #fff4e5; border: 2px solid #f0b35b;
}
QFrame#forecastStrip[state="overdue"], QFrame#forecastStrip[state="alarm"],
QFrame#forecastStrip[state="empty"] {
    background: #fdecea; border: 2px solid #b3261e;
}
QFrame#forecastStrip QLabel { background: transparent; }
QLabel#forecastCaption { color: #52606d; font-size: 8.5pt; font-weight: 600; }
QLabel#forecastValue { color: #1d2b3a; font-size: 11pt; font-weight: 600; }
QLabel#refillDueValue { color: #1d2b3a; font-size: 17pt; font-weight: 700; }
QLabel#refillDueStatus { color: #184d72; font-weight: 600; }
QLabel#refillDueStatus[state="soon"], QLabel#refillDueStatus[state="due"] { color: #7a4100; }
QLabel#refillDueStatus[state="overdue"], QLabel#refillDueStatus[state="alarm"],
QLabel#refillDueStatus[state="empty"] { color: #b3261e; font-size: 11pt; font-weight: 700; }
QFrame#forecastDivider { color: #bcccdc; }
QLabel#cardCaption { color: #52606d; }
QLabel#cardValue { color: #1d2b3a; }
QLabel#cardValue[emphasis="true"] { font-size: 11pt; font-weight: 700; }
QLabel#trendLine { color: #334e68; }
QLabel#trendLine[warning="true"] { color: #b3261e; font-weight: 600; }
"""


# --- formatting ---------------------------------------------------------------------------


def day_text(day: dt.date) -> str:
    """'Fri 11 Dec 2026'."""
    return f"{day:%a} {day.day} {day:%b %Y}"


def moment_text(moment: dt.datetime, zone: dt.tzinfo) -> str:
    """'Sat 26 Dec 2026 10:00' in the clinic's zone."""
    local = moment.astimezone(zone)
    return f"{day_text(local.date())} {local:%H:%M}"


def table_moment(moment: dt.datetime, zone: dt.tzinfo) -> str:
    return f"{moment.astimezone(zone):%d %b %Y %H:%M}"


def signed_ml(value: float) -> str:
    return f"{value:+.1f}".replace("-", "−")


def program_text(dose_mcg_per_day: float) -> str:
    """Both units together, as the pump programmer and the prescription use them."""
    return f"{dose_mcg_per_day:g} mcg/day  ({per_hour_text(dose_mcg_per_day)})"


def _days(count: int) -> str:
    return f"{count} day{'s' if count != 1 else ''}"


@dataclass(frozen=True, slots=True)
class ForecastState:
    """Where the patient stands against the refill date, in words: never colour alone."""

    state: str  # "none", "ok", "soon", "due", "overdue", "alarm", "empty"
    due_text: str
    status_text: str


def forecast_state(
    reservoir: ReservoirView | None, zone: dt.tzinfo, due_soon_days: int
) -> ForecastState:
    if reservoir is None:
        return ForecastState("none", "—", "No fill recorded: no forecast.")
    outlook = reservoir.forecast
    now = reservoir.now
    today = now.astimezone(zone).date()
    due = outlook.refill_due
    due_text = day_text(due) if due else "No date (no flow)"
    if outlook.empty_at is not None and now >= outlook.empty_at:
        return ForecastState(
            "empty",
            due_text,
            f"EMPTY since {moment_text(outlook.empty_at, zone)}\n"
            "Withdrawal risk: contact the patient now.",
        )
    if outlook.alarm_at is not None and now >= outlook.alarm_at:
        empty = f"empty {moment_text(outlook.empty_at, zone)}" if outlook.empty_at else ""
        return ForecastState(
            "alarm",
            due_text,
            f"PAST ALARM since {moment_text(outlook.alarm_at, zone)}\nRefill now: {empty}.",
        )
    if due is None:
        return ForecastState("ok", due_text, "No refill needed while the pump does not flow.")
    days = (due - today).days
    if days < 0:
        return ForecastState(
            "overdue",
            due_text,
            f"OVERDUE since {day_text(due)}\n{_days(-days)} late: refill now.",
        )
    if days == 0:
        return ForecastState("due", due_text, "DUE TODAY — refill today.")
    if days <= due_soon_days:
        return ForecastState("soon", due_text, f"Due soon: in {_days(days)}.")
    return ForecastState("ok", due_text, f"In {_days(days)}.")


def _two_lines(moment: dt.datetime | None, now: dt.datetime, zone: dt.tzinfo, missing: str) -> str:
    """'Sun 20 Dec' over '09:30' for the forecast strip; the year only when not this year."""
    if moment is None:
        return missing
    local = moment.astimezone(zone)
    day = local.date()
    text = f"{day:%a} {day.day} {day:%b}"
    if day.year != now.astimezone(zone).year:
        text += f" {day.year}"
    return f"{text}\n{local:%H:%M}"


def _repolish(widget: QWidget) -> None:
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)


# --- table models -------------------------------------------------------------------------


class RefillHistoryModel(RowTableModel[RefillRow]):
    """Every refill on the pump, newest first; corrections stay next to what they correct."""

    COLUMNS = (
        "Date",
        "By",
        "Checked\nby",
        "Conc.\nmcg/mL",
        "Expected\nmL",
        "Aspirated\nmL",
        "Gap\nmL",
        "Added\nmL",
        "After\nmL",
        "Lot",
        "Correction / notes",
    )
    GAP = 6
    NUMERIC = frozenset({3, 4, 5, 6, 7, 8})

    def __init__(self, parent: object = None) -> None:
        super().__init__(parent)
        self._zone: dt.tzinfo = dt.UTC

    def set_rows(self, rows: Sequence[RefillRow], zone: dt.tzinfo) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self._zone = zone
        self.endResetModel()

    def _when(self, refill_id: int | None) -> str:
        row = next((r for r in self._rows if r.id == refill_id), None)
        return table_moment(row.performed_at, self._zone) if row else f"#{refill_id}"

    def _notes(self, r: RefillRow) -> str:
        parts = []
        if r.corrected_by_id is not None:
            parts.append(f"Corrected by the entry of {self._when(r.corrected_by_id)}")
        if r.corrects_refill_id is not None:
            parts.append(f"Correction of {self._when(r.corrects_refill_id)}")
        if r.notes:
            parts.append(r.notes)
        return " · ".join(parts)

    def _gap(self, r: RefillRow) -> str:
        gap = r.discrepancy_ml
        if gap is None:
            return "—"
        return f"⚠ {signed_ml(gap)}" if r.flagged else signed_ml(gap)

    def _cells(self, r: RefillRow) -> tuple[str, ...]:
        return (
            table_moment(r.performed_at, self._zone),
            r.performed_by,
            r.double_checked_by or "—",
            f"{r.concentration_mcg_per_ml:g}",
            "—" if r.expected_residual_ml is None else f"{r.expected_residual_ml:.1f}",
            f"{r.aspirated_residual_ml:.1f}",
            self._gap(r),
            f"{r.volume_added_ml:.1f}",
            f"{r.volume_after_ml:.1f}",
            r.lot_number,
            self._notes(r),
        )

    def _tooltip(self, r: RefillRow) -> str:
        lines = [
            f"{table_moment(r.performed_at, self._zone)} by {r.performed_by}, "
            f"checked by {r.double_checked_by or 'nobody'}",
            f"{r.drug_name or 'Drug not recorded'}, lot {r.lot_number}",
        ]
        if r.discrepancy_ml is not None:
            verdict = "FLAGGED: investigate" if r.flagged else "within limits"
            lines.append(
                f"Expected {r.expected_residual_ml:.1f} mL, aspirated "
                f"{r.aspirated_residual_ml:.1f} mL: gap {signed_ml(r.discrepancy_ml)} mL, {verdict}"
            )
        if r.measured_after_ml is not None:
            lines.append(f"Measured after filling: {r.measured_after_ml:.1f} mL")
        notes = self._notes(r)
        if notes:
            lines.append(notes)
        return "\n".join(lines)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        r = self._rows[index.row()]
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return self._cells(r)[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(r)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in self.NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            if r.flagged and column == self.GAP:
                return DANGER
            if r.corrected_by_id is not None:
                return MUTED
        if role == Qt.ItemDataRole.FontRole:
            if r.flagged and column == self.GAP:
                font = QFont()
                font.setBold(True)
                return font
            if r.corrected_by_id is not None and column != len(self.COLUMNS) - 1:
                font = QFont()
                font.setStrikeOut(True)
                return font
        if role == Qt.ItemDataRole.UserRole:
            return r.id
        return None


class AppointmentsModel(RowTableModel[AppointmentRow]):
    """The patient's appointments: upcoming first (soonest at the top), then the past."""

    COLUMNS = ("When", "Kind", "Status", "Booked by", "Notes")

    def __init__(self, parent: object = None) -> None:
        super().__init__(parent)
        self._zone: dt.tzinfo = dt.UTC
        self._now = dt.datetime.min.replace(tzinfo=dt.UTC)  # set with the rows

    def set_rows(self, rows: Sequence[AppointmentRow], zone: dt.tzinfo, now: dt.datetime) -> None:
        self.beginResetModel()
        upcoming = sorted(
            (r for r in rows if r.ends_at >= now and r.status in ACTIVE_APPOINTMENTS),
            key=lambda r: r.starts_at,
        )
        rest = sorted(
            (r for r in rows if r not in upcoming), key=lambda r: r.starts_at, reverse=True
        )
        self._rows = upcoming + rest
        self._zone = zone
        self._now = now
        self.endResetModel()

    def is_upcoming(self, r: AppointmentRow) -> bool:
        return r.ends_at >= self._now and r.status in ACTIVE_APPOINTMENTS

    def _notes(self, r: AppointmentRow) -> str:
        parts = []
        if r.late_reason:
            parts.append(f"Late: {r.late_reason}")
        if r.override_by:
            parts.append(f"Override by {r.override_by}")
        if r.cancel_reason:
            parts.append(r.cancel_reason)
        if r.notes:
            parts.append(r.notes)
        return " · ".join(parts)

    def _cells(self, r: AppointmentRow) -> tuple[str, ...]:
        local = r.starts_at.astimezone(self._zone)
        status = r.status.value.replace("-", " ").capitalize()
        return (
            f"{day_text(local.date())} {local:%H:%M}",
            r.kind.value.capitalize(),
            f"Upcoming · {status}" if self.is_upcoming(r) else status,
            r.booked_by,
            self._notes(r),
        )

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        r = self._rows[index.row()]
        if role in (
            Qt.ItemDataRole.DisplayRole,
            Qt.ItemDataRole.ToolTipRole,
            Qt.ItemDataRole.AccessibleTextRole,
        ):
            return self._cells(r)[index.column()]
        if role == Qt.ItemDataRole.FontRole and self.is_upcoming(r):
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ForegroundRole and not self.is_upcoming(r):
            return MUTED
        if role == Qt.ItemDataRole.UserRole:
            return r.id
        return None


# --- the page -----------------------------------------------------------------------------


def _caption(text: str, name: str = "forecastCaption") -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    return label


def _value(name: str, object_name: str = "forecastValue") -> QLabel:
    label = QLabel("—")
    label.setObjectName(object_name)
    label.setAccessibleName(name)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _table(name: str, accessible: str) -> QTableView:
    table = QTableView()
    table.setObjectName(name)
    table.setAccessibleName(accessible)
    table.setAlternatingRowColors(True)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.setWordWrap(False)
    return table


PUMP_FIELDS = (
    ("model", "Pump"),
    ("serial", "Serial number"),
    ("implanted", "Implanted"),
    ("reservoir", "Reservoir"),
    ("alarm", "Low-reservoir alarm"),
    ("battery", "Battery replace by"),
    ("drug", "Drug"),
    ("concentration", "Concentration"),
    ("program", "Program"),
    ("daily_volume", "Daily volume"),
    ("flex", "Flex steps"),
    ("boluses", "Boluses"),
    ("last_fill", "Last fill"),
)


class PatientPage(QWidget):
    """One patient: who, which pump and program, when the next refill is due."""

    back_requested = Signal()

    def __init__(
        self, services: Services, actor: Actor, bus: DataBus, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("patientPage")
        self.setStyleSheet(PAGE_STYLE)
        self._services = services
        self._actor = actor
        self._bus = bus
        self._patient_id: int | None = None
        self._overview: PumpOverview | None = None
        self._record: PatientRecord | None = None
        self._appointments: list[AppointmentRow] = []
        self._state = ForecastState("none", "—", "")
        self.can_edit = can(actor, Permission.EDIT_PATIENTS)
        self.can_book = can(actor, Permission.BOOK_APPOINTMENTS)
        self.can_record = can(actor, Permission.RECORD_REFILLS)
        self.can_schedule = can(actor, Permission.VIEW_SCHEDULE)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 12, 24, 12)
        outer.setSpacing(8)
        outer.addLayout(self._build_header())
        self.message_banner = banner("patientPageMessage", "info")
        outer.addWidget(self.message_banner)
        outer.addWidget(self._build_forecast_strip())
        outer.addLayout(self._build_actions())

        scroll = QScrollArea()
        scroll.setObjectName("patientPageScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        body = QWidget()
        body_layout = QVBoxLayout(body)
        body_layout.setContentsMargins(0, 0, 4, 0)
        body_layout.setSpacing(10)
        self.no_pump_banner = banner("noPumpBanner", "info")
        body_layout.addWidget(self.no_pump_banner)
        top = QHBoxLayout()
        top.setSpacing(10)
        top.addWidget(self._build_pump_card())
        top.addWidget(self._build_chart_box(), 1)
        body_layout.addLayout(top)
        body_layout.addWidget(self._build_history())
        body_layout.addWidget(self._build_appointments())
        body_layout.addStretch(1)
        scroll.setWidget(body)
        outer.addWidget(scroll, 1)

        QShortcut(QKeySequence.StandardKey.Back, self, self.back_requested.emit)
        if self.can_record:
            QShortcut(QKeySequence("Ctrl+R"), self, self._shortcut_record)
        if self.can_book:
            QShortcut(QKeySequence("Ctrl+B"), self, self._shortcut_book)
        bus.changed.connect(self._on_changed)
        self._update_actions()

    # --- building -----------------------------------------------------------------------

    def _build_header(self) -> QVBoxLayout:
        header = QVBoxLayout()
        header.setSpacing(2)
        self.back_button = QPushButton("← All patients")
        self.back_button.setObjectName("backToPatients")
        self.back_button.setAccessibleName("Back to all patients")
        self.back_button.setToolTip("Back to the patient list (Alt+Left)")
        self.back_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.back_button.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.back_button.clicked.connect(self.back_requested.emit)
        header.addWidget(self.back_button)

        row = QHBoxLayout()
        row.setSpacing(10)
        self.name_label = QLabel()
        self.name_label.setObjectName("pageTitle")
        self.name_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.name_label)
        self.chips = QHBoxLayout()
        self.chips.setSpacing(6)
        row.addLayout(self.chips)
        row.addStretch(1)
        self.edit_button = button("&Edit details…" if self.can_edit else "&Details…", "editDetails")
        self.edit_button.clicked.connect(self.edit_details)
        row.addWidget(self.edit_button)
        self.history_button = button("&History…", "patientHistory")
        self.history_button.setToolTip("Who changed what in this record, and when")
        self.history_button.clicked.connect(self.show_history)
        self.history_button.setVisible(can(self._actor, Permission.VIEW_AUDIT))
        row.addWidget(self.history_button)
        header.addLayout(row)
        self.meta_label = QLabel()
        self.meta_label.setObjectName("patientMeta")
        self.meta_label.setWordWrap(True)
        self.meta_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        header.addWidget(self.meta_label)
        return header

    def _build_forecast_strip(self) -> QFrame:
        strip = self.forecast_strip = QFrame()
        strip.setObjectName("forecastStrip")
        strip.setAccessibleName("Reservoir forecast")
        strip.setProperty("state", "none")
        row = QHBoxLayout(strip)
        row.setContentsMargins(14, 8, 14, 8)
        row.setSpacing(16)

        due = QVBoxLayout()
        due.setSpacing(0)
        due.addWidget(_caption("REFILL DUE BY"))
        self.due_value = _value("Refill due", "refillDueValue")
        due.addWidget(self.due_value)
        self.due_status = _value("Refill status", "refillDueStatus")
        due.addWidget(self.due_status)
        due.addStretch(1)
        row.addLayout(due, 3)

        self.forecast_values: dict[str, QLabel] = {}
        for key, caption in (
            ("volume", "VOLUME NOW"),
            ("alarm", "LOW-RESERVOIR ALARM"),
            ("empty", "EMPTY"),
            ("stability", "STABILITY LIMIT"),
            ("next_visit", "NEXT REFILL VISIT"),
        ):
            divider = QFrame()
            divider.setObjectName("forecastDivider")
            divider.setFrameShape(QFrame.Shape.VLine)
            row.addWidget(divider)
            column = QVBoxLayout()
            column.setSpacing(2)
            column.addWidget(_caption(caption))
            value = _value(caption.capitalize())
            self.forecast_values[key] = value
            column.addWidget(value)
            column.addStretch(1)
            row.addLayout(column, 2)
        return strip

    def _build_actions(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(8)
        if self.can_record:
            self.record_button = primary_button("&Record refill…", "recordRefill")
            self.book_button = button("&Book refill…", "bookRefill")
        else:
            self.book_button = primary_button("&Book refill…", "bookRefill")
            self.record_button = button("&Record refill…", "recordRefill")
        self.record_button.setToolTip("Record the refill visit with its double check (Ctrl+R)")
        self.book_button.setToolTip("Book a refill appointment (Ctrl+B)")
        self.record_button.clicked.connect(self.record_refill)
        self.book_button.clicked.connect(self.book_refill)
        self.card_button = button("Patient &card (PDF)…", "patientCardPdf")
        self.card_button.setToolTip("Save the printable patient card: drug, dose, refill-by date")
        self.card_button.clicked.connect(lambda: self.save_patient_card())
        self.implant_button = primary_button("Record &implant…", "recordImplant")
        self.implant_button.clicked.connect(self.record_implant)
        self.screening_button = button("&Screening trial…", "screeningTrial")
        self.screening_button.setToolTip("Plan or open the intrathecal test-dose trial")
        self.screening_button.clicked.connect(self.open_screening)
        for widget in (self.record_button, self.book_button, self.card_button):
            row.addWidget(widget)
        row.addWidget(self.implant_button)
        row.addWidget(self.screening_button)
        row.addStretch(1)
        return row

    def _build_pump_card(self) -> QGroupBox:
        box = self.pump_box = QGroupBox("Pump and program")
        box.setObjectName("pumpCard")
        box.setAccessibleName("Pump card")
        box.setMinimumWidth(440)
        box.setMaximumWidth(520)
        layout = QVBoxLayout(box)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        form.setHorizontalSpacing(12)
        form.setVerticalSpacing(5)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.card_values: dict[str, QLabel] = {}
        self._card_form = form
        for key, caption in PUMP_FIELDS:
            value = _value(caption, "cardValue")
            value.setWordWrap(True)
            if key in ("program", "concentration"):
                value.setProperty("emphasis", True)
            self.card_values[key] = value
            form.addRow(_caption(caption, "cardCaption"), value)
        layout.addLayout(form)
        layout.addStretch(1)
        return box

    def _build_chart_box(self) -> QGroupBox:
        box = self.chart_box = QGroupBox("Reservoir: volume over time")
        box.setObjectName("reservoirBox")
        layout = QVBoxLayout(box)
        self.chart = ReservoirChart()
        layout.addWidget(self.chart)
        return box

    def _build_history(self) -> QGroupBox:
        box = self.history_box = QGroupBox("Refill history")
        box.setObjectName("refillHistoryBox")
        layout = QVBoxLayout(box)
        toolbar = QHBoxLayout()
        hint = QLabel(
            "Saved refills are never edited: a correction is a new entry that points at the "
            "old one. ⚠ marks a gap to investigate."
        )
        hint.setObjectName("fieldHelp")
        hint.setWordWrap(True)
        toolbar.addWidget(hint, 1)
        self.correct_button = button("C&orrect selected refill…", "correctRefill")
        self.correct_button.setToolTip("Record a correction of the selected refill")
        self.correct_button.clicked.connect(self.correct_selected)
        toolbar.addWidget(self.correct_button)
        layout.addLayout(toolbar)
        self.history_model = RefillHistoryModel(self)
        self.history_table = _table("refillHistory", "Refill history")
        self.history_table.setModel(self.history_model)
        self.history_table.setMinimumHeight(170)
        header = self.history_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(
            len(RefillHistoryModel.COLUMNS) - 1, QHeaderView.ResizeMode.Stretch
        )
        self.history_table.selectionModel().selectionChanged.connect(self._update_actions)
        layout.addWidget(self.history_table)
        self.trend_label = QLabel()
        self.trend_label.setObjectName("trendLine")
        self.trend_label.setAccessibleName("Reconciliation trend")
        self.trend_label.setWordWrap(True)
        layout.addWidget(self.trend_label)
        return box

    def _build_appointments(self) -> QGroupBox:
        box = self.appointments_box = QGroupBox("Appointments")
        box.setObjectName("appointmentsBox")
        layout = QVBoxLayout(box)
        self.appointments_model = AppointmentsModel(self)
        self.appointments_table = _table("patientAppointments", "Appointments")
        self.appointments_table.setModel(self.appointments_model)
        self.appointments_table.setMinimumHeight(120)
        header = self.appointments_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(
            len(AppointmentsModel.COLUMNS) - 1, QHeaderView.ResizeMode.Stretch
        )
        layout.addWidget(self.appointments_table)
        box.setVisible(self.can_schedule)
        return box

    # --- data ---------------------------------------------------------------------------

    @property
    def patient_id(self) -> int | None:
        return self._patient_id

    @property
    def overview(self) -> PumpOverview | None:
        return self._overview

    @property
    def state(self) -> ForecastState:
        return self._state

    def show_patient(self, patient_id: int) -> None:
        self._patient_id = patient_id
        set_banner(self.message_banner, [], "")
        self.history_table.clearSelection()
        self.reload()

    def reload(self) -> None:
        patient_id = self._patient_id
        if patient_id is None:
            return

        def load() -> tuple[PumpOverview, PatientRecord, list[AppointmentRow], int]:
            overview = self._services.refills.overview(self._actor, patient_id)
            record = self._services.patients.get_patient(self._actor, patient_id)
            appointments = (
                self._services.booking.appointments_for_patient(self._actor, patient_id)
                if self.can_schedule
                else []
            )
            settings, _version = self._services.settings.get()
            return overview, record, appointments, settings.due_soon_horizon_days

        loaded = guarded(self, load, "Could not open the patient")
        if loaded is None:
            return
        overview, record, appointments, due_soon_days = loaded
        self._overview, self._record, self._appointments = overview, record, appointments
        now = overview.reservoir.now if overview.reservoir else self._services.context.now()
        self._show_header(overview, record, now)
        self._show_card(overview, now)
        self._state = forecast_state(overview.reservoir, overview.zone, due_soon_days)
        self._show_forecast(overview, now)
        card = overview.card
        self.chart.set_data(
            overview.reservoir,
            card.reservoir_ml if card else 20.0,
            card.low_reservoir_alarm_ml if card else 2.0,
            overview.zone,
        )
        self.history_model.set_rows(overview.refills, overview.zone)
        self._show_trend(overview)
        self.appointments_model.set_rows(appointments, overview.zone, now)
        self._update_actions()

    def _on_changed(self, entities: frozenset[str]) -> None:
        if entities & RELOAD_ON and self._patient_id is not None:
            self.reload()

    def _show_header(self, overview: PumpOverview, record: PatientRecord, now: dt.datetime) -> None:
        data = record.data
        self.name_label.setText(overview.patient_name)
        today = now.astimezone(overview.zone).date()
        born = overview.date_of_birth
        parts = [
            f"MRN {overview.mrn}",
            f"{age_in_years(born, today)} years (born {born.day} {born:%b %Y})",
        ]
        if data.spasticity_origin:
            parts.append(f"{SpasticityOrigin(data.spasticity_origin).label} spasticity")
        if data.diagnosis:
            parts.append(data.diagnosis)
        if data.allergies.strip():
            parts.append(f"Allergies: {data.allergies.strip()}")
        self.meta_label.setText("  ·  ".join(parts))
        while self.chips.count():
            item = self.chips.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.hide()
                widget.setParent(None)
                widget.deleteLater()
        flags = [label for key, label in RISK_FLAG_LABELS.items() if getattr(data, key)]
        for flag in flags:
            chip = QLabel(f"⚠ {flag}")
            chip.setObjectName("riskChip")
            chip.setAccessibleName(f"Risk flag: {flag}")
            chip.setToolTip("Withdrawal risk: an empty pump is especially dangerous.")
            self.chips.addWidget(chip)

    def risk_flags(self) -> list[str]:
        labels = []
        for index in range(self.chips.count()):
            item = self.chips.itemAt(index)
            widget = item.widget() if item is not None else None
            if isinstance(widget, QLabel):
                labels.append(widget.text())
        return labels

    def _show_card(self, overview: PumpOverview, now: dt.datetime) -> None:
        card = overview.card
        for widget in (self.pump_box, self.chart_box, self.history_box):
            widget.setVisible(card is not None)
        if card is None:
            how = (
                " When the pump has been implanted, record it with its first fill and starting "
                "dose: Record implant…"
                if self.can_edit and self.can_record
                else " A nurse or clinician records the pump when it has been implanted."
            )
            set_banner(self.no_pump_banner, [f"No implanted pump recorded.{how}"], "")
            return
        set_banner(self.no_pump_banner, [], "")
        values = self.card_values
        values["model"].setText(f"{card.model_name} ({card.manufacturer})")
        values["serial"].setText(card.serial_number)
        values["implanted"].setText(day_text(card.implanted_on))
        values["reservoir"].setText(f"{card.reservoir_ml:g} mL")
        values["alarm"].setText(f"{card.low_reservoir_alarm_ml:g} mL")
        values["battery"].setText(self._battery_text(card, now.astimezone(overview.zone).date()))
        program = card.program
        if program is None:
            for key in ("drug", "concentration", "program", "daily_volume", "flex", "boluses"):
                values[key].setText("—")
            values["program"].setText("No program recorded")
        else:
            values["drug"].setText(program.drug_name)
            values["concentration"].setText(f"{program.concentration_mcg_per_ml:g} mcg/mL")
            text = program_text(program.dose_mcg_per_day)
            if card.constant_flow:
                text += "\nconstant-flow pump: the dose follows from the concentration"
            values["program"].setText(text)
            values["daily_volume"].setText(f"{program.daily_volume_ml:.3f} mL/day")
            values["flex"].setText(self._flex_text(program.flex_steps))
            values["boluses"].setText(
                f"{program.bolus_dose_mcg:g} mcg, up to {program.max_boluses_per_day}/day "
                "(counted at the maximum)"
                if program.bolus_dose_mcg and program.max_boluses_per_day
                else "None"
            )
        if card.last_fill_at is not None and card.last_fill_volume_ml is not None:
            values["last_fill"].setText(
                f"{moment_text(card.last_fill_at, overview.zone)} — {card.last_fill_volume_ml:g} mL"
            )
        else:
            values["last_fill"].setText("No fill recorded")

    @staticmethod
    def _battery_text(card: PumpCard, today: dt.date) -> str:
        replace_by = card.battery_replace_by
        if replace_by is None:
            return "Not applicable"
        if replace_by <= today:
            return f"⚠ {day_text(replace_by)} — replacement due"
        if (replace_by - today).days <= 180:
            return f"⚠ {day_text(replace_by)} — within 6 months"
        return day_text(replace_by)

    @staticmethod
    def _flex_text(steps: Sequence[tuple[int, float]]) -> str:
        if not steps:
            return "None (simple continuous)"
        shown = ", ".join(f"{m // 60:02d}:{m % 60:02d} {rate:g}" for m, rate in steps[:4])
        more = f", … (+{len(steps) - 4})" if len(steps) > 4 else ""
        return f"{len(steps)} steps/day: {shown}{more} mcg/day"

    def _show_forecast(self, overview: PumpOverview, now: dt.datetime) -> None:
        state = self._state
        zone = overview.zone
        self.forecast_strip.setVisible(overview.card is not None)
        for widget in (self.forecast_strip, self.due_status):
            widget.setProperty("state", state.state)
            _repolish(widget)
        self.due_value.setText(state.due_text)
        self.due_status.setText(state.status_text)
        reservoir = overview.reservoir
        values = self.forecast_values
        card = overview.card
        if reservoir is None or card is None:
            for value in values.values():
                value.setText("—")
        else:
            outlook = reservoir.forecast
            values["volume"].setText(
                f"{reservoir.volume_now_ml:.1f} of {card.reservoir_ml:g} mL\n"
                f"{outlook.daily_volume_ml:.3f} mL/day"
            )
            values["alarm"].setText(_two_lines(outlook.alarm_at, now, zone, "No flow"))
            values["empty"].setText(_two_lines(outlook.empty_at, now, zone, "No flow"))
            values["stability"].setText(
                _two_lines(outlook.stability_limit_at, now, zone, "Not set")
            )
        values["next_visit"].setText(self._next_visit_text(overview, now))

    def next_visit(self, now: dt.datetime) -> AppointmentRow | None:
        upcoming = [
            a for a in self._appointments if a.status in ACTIVE_APPOINTMENTS and a.ends_at >= now
        ]
        return min(upcoming, key=lambda a: a.starts_at, default=None)

    def _next_visit_text(self, overview: PumpOverview, now: dt.datetime) -> str:
        if not self.can_schedule:
            return "—"
        visit = self.next_visit(now)
        if visit is None:
            return "None booked"
        text = _two_lines(visit.starts_at, now, overview.zone, "")
        due = overview.reservoir.forecast.refill_due if overview.reservoir else None
        if due is not None and visit.starts_at.astimezone(overview.zone).date() > due:
            text += "  ⚠ after due date"
        return text

    def _show_trend(self, overview: PumpOverview) -> None:
        trend = overview.trend
        warning = False
        if overview.card is None:
            text = ""
        elif trend is None or trend.count == 0:
            text = "Reconciliation trend: shown from the second refill on."
        else:
            parts = [
                f"Reconciliation trend over {trend.count} refill{'s' if trend.count > 1 else ''}"
            ]
            if trend.mean_discrepancy_ml is not None:
                parts.append(f"mean gap {signed_ml(trend.mean_discrepancy_ml)} mL")
            if trend.mean_delivery_error_pct is not None:
                parts.append(
                    f"mean delivery error {trend.mean_delivery_error_pct:+.1f} %".replace("-", "−")
                )
            gaps = ", ".join(signed_ml(gap) for _at, gap, _error in trend.last_three)
            parts.append(f"last {len(trend.last_three)}: {gaps} mL")
            text = ": ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if parts[2:] else "") + "."
            if trend.consistent_direction == "less_left_than_expected":
                warning = True
                text += (
                    "  ⚠ The last three refills all found less left than expected: possible "
                    "over-infusion. Check the program and the pump."
                )
            elif trend.consistent_direction == "more_left_than_expected":
                warning = True
                text += (
                    "  ⚠ The last three refills all found more left than expected: possible "
                    "under-delivery (catheter or pump problem)."
                )
        self.trend_label.setText(text)
        self.trend_label.setVisible(bool(text))
        self.trend_label.setProperty("warning", warning)
        _repolish(self.trend_label)

    # --- actions ------------------------------------------------------------------------

    def selected_refill(self) -> RefillRow | None:
        rows = self.history_table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.history_model.row_at(rows[0].row())

    def _update_actions(self) -> None:
        loaded = self._overview is not None
        has_pump = loaded and self._overview is not None and self._overview.card is not None
        self.book_button.setVisible(self.can_book and has_pump)
        self.record_button.setVisible(self.can_record and has_pump)
        self.card_button.setVisible(has_pump)
        self.implant_button.setVisible(
            self.can_edit and self.can_record and loaded and not has_pump
        )
        self.correct_button.setVisible(self.can_record and has_pump)
        # Before an implant: the screening trial (planned by clinicians, seen by all).
        self.screening_button.setVisible(loaded and not has_pump)
        selected = self.selected_refill()
        self.correct_button.setEnabled(selected is not None and selected.corrected_by_id is None)
        self.edit_button.setEnabled(loaded)

    def _pump_id(self) -> int | None:
        card = self._overview.card if self._overview else None
        return card.pump_id if card else None

    def _todays_appointment_id(self) -> int | None:
        """A booked visit today is completed by the refill recorded now."""
        if self._overview is None:
            return None
        now = self._services.context.now()
        today = now.astimezone(self._overview.zone).date()
        for visit in self._appointments:
            if (
                visit.status in ACTIVE_APPOINTMENTS
                and visit.starts_at.astimezone(self._overview.zone).date() == today
            ):
                return visit.id
        return None

    def _shortcut_record(self) -> None:
        if self.record_button.isVisible():
            self.record_refill()

    def _shortcut_book(self) -> None:
        if self.book_button.isVisible():
            self.book_refill()

    def book_refill(self) -> QDialog | None:
        if self._patient_id is None or not self.can_book:
            return None
        from pumpclinic.ui.booking import BookRefillDialog

        dialog = BookRefillDialog(self._services, self._actor, self._patient_id, self)
        dialog.booked.connect(lambda *_args: self._bus.notify("appointment"))
        dialog.open()
        opened: QDialog = dialog
        return opened

    def record_refill(self) -> QDialog | None:
        pump_id = self._pump_id()
        if pump_id is None or not self.can_record:
            return None
        from pumpclinic.ui.refill_record import RecordRefillDialog

        dialog = RecordRefillDialog(
            self._services,
            self._actor,
            pump_id,
            self,
            appointment_id=self._todays_appointment_id(),
        )
        dialog.saved.connect(lambda *_args: self._bus.notify("refill", "appointment"))
        dialog.open()
        opened: QDialog = dialog
        return opened

    def correct_selected(self) -> QDialog | None:
        pump_id = self._pump_id()
        row = self.selected_refill()
        if pump_id is None or row is None or row.corrected_by_id is not None:
            return None
        from pumpclinic.ui.refill_record import RecordRefillDialog

        dialog = RecordRefillDialog(self._services, self._actor, pump_id, self, corrects=row)
        dialog.saved.connect(lambda *_args: self._bus.notify("refill"))
        dialog.open()
        opened: QDialog = dialog
        return opened

    def save_patient_card(self, path: Path | None = None) -> Path | None:
        """Write the printable card; asks where when no path is given, then opens it."""
        pump_id = self._pump_id()
        if pump_id is None or self._overview is None:
            return None
        interactive = path is None
        if path is None:
            suggested = Path.home() / f"patient-card-{self._overview.mrn}.pdf"
            chosen, _filter = QFileDialog.getSaveFileName(
                self, "Save patient card", str(suggested), "PDF (*.pdf)"
            )
            if not chosen:
                return None
            path = Path(chosen)
        from pumpclinic.ui.patient_card import write_patient_card_pdf

        target = path
        card = guarded(self, lambda: self._services.refills.patient_card(self._actor, pump_id))
        if card is None:
            return None
        try:
            write_patient_card_pdf(card, target)
        except OSError as error:
            show_known_error(
                self, ServiceError(f"Could not write {target}: {error.strerror}."), "Not saved"
            )
            return None
        except Exception as error:  # a bug: logged with its traceback
            show_bug(self, error)
            return None
        set_banner(self.message_banner, [f"Patient card saved to {target}."], "")
        if interactive:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(target)))
        return target

    def record_implant(self) -> ImplantDialog | None:
        if self._patient_id is None or not (self.can_edit and self.can_record):
            return None
        dialog = ImplantDialog(self._services, self._actor, self._patient_id, self)
        dialog.implanted.connect(lambda _pump_id: self._bus.notify("pump", "refill"))
        dialog.open()
        return dialog

    def open_screening(self) -> QDialog | None:
        """The patient's screening trial, or a new plan when there is none (clinicians)."""
        from pumpclinic.ui.screening import open_plan_trial, open_trial, patient_trial_id

        patient_id = self._patient_id
        if patient_id is None:
            return None
        trial_id = guarded(self, lambda: patient_trial_id(self._services, self._actor, patient_id))
        if trial_id is not None:
            return open_trial(self._services, self._actor, trial_id, self, bus=self._bus)
        if not can(self._actor, Permission.RECORD_SCREENING_RESPONSE):
            set_banner(self.message_banner, ["No screening trial yet: a clinician plans it."], "")
            return None
        return open_plan_trial(self._services, self._actor, patient_id, self, bus=self._bus)

    def show_history(self) -> QDialog | None:
        """The patient's audit trail, with the values before and after each change."""
        from pumpclinic.ui.audit_view import AuditDialog

        if self.patient_id is None or self.overview is None:
            return None
        dialog = AuditDialog(
            self._services, self._actor, self.patient_id, self.overview.patient_name, self
        )
        dialog.open()
        return dialog

    def edit_details(self) -> QDialog | None:
        if self._patient_id is None:
            return None
        from pumpclinic.ui.patients import PatientDialog

        patient_id = self._patient_id
        record = guarded(
            self,
            lambda: self._services.patients.get_patient(self._actor, patient_id),
            "Could not open the patient",
        )
        if record is None:
            return None
        dialog = PatientDialog(self._services, self._actor, record, self)
        dialog.saved.connect(lambda _record: self._bus.notify("patient"))
        dialog.open()
        return dialog


# --- recording an implant -----------------------------------------------------------------


class ImplantDialog(QDialog):
    """A newly implanted pump with the fill given in theatre and the starting dose.

    An independent double check: a second nurse or clinician signs in and re-enters the
    concentration and the daily dose from the vial and the prescription. While they do, the
    first person's entries are hidden, so the check is not a copy.
    """

    implanted = Signal(int)  # pump id

    ENTRY_FIELDS = frozenset(
        {
            "pump_model_id",
            "serial_number",
            "implanted_on",
            "filled_at",
            "drug_product_id",
            "lot_number",
            "volume_ml",
            "dose_mcg_per_day",
        }
    )

    def __init__(
        self,
        services: Services,
        actor: Actor,
        patient_id: int,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("implantDialog")
        self._services = services
        self._actor = actor
        self._patient_id = patient_id
        self.errors = FieldErrorLabels()
        settings, _version = services.settings.get()
        self._zone: zoneinfo.ZoneInfo = settings.zone
        self._choices: list[PumpModelChoice] = (
            guarded(self, lambda: services.refills.pump_models(actor), "Could not load pumps") or []
        )
        record = guarded(self, lambda: services.patients.get_patient(actor, patient_id))
        who = (
            f"{record.data.family_name.upper()}, {record.data.given_name} — {record.data.mrn}"
            if record
            else ""
        )
        self.setWindowTitle(f"Record implant — {who}")
        self.setAccessibleName("Record implant")
        self.resize(700, 720)

        outer = QVBoxLayout(self)
        heading = QLabel("Record implanted pump")
        heading.setObjectName("pageTitle")
        outer.addWidget(heading)
        intro = QLabel(
            f"{who}. The pump, its first fill and the starting dose. A second nurse or "
            "clinician then checks the concentration and dose independently."
        )
        intro.setObjectName("dialogIntro")
        intro.setWordWrap(True)
        outer.addWidget(intro)
        self.error_banner = banner("implantErrors")
        outer.addWidget(self.error_banner)

        # Pump
        now_local = services.context.now().astimezone(self._zone)
        today = QDate(now_local.year, now_local.month, now_local.day)
        self.pump_model = QComboBox()
        self.pump_model.setObjectName("pump_model_id")
        self.pump_model.setAccessibleName("Pump model")
        self.pump_model.addItem("Choose…", "")
        for choice in self._choices:
            self.pump_model.addItem(
                f"{choice.name} — {choice.manufacturer}  (reservoir {choice.reservoir_ml:g} mL, "
                f"alarm {choice.low_reservoir_alarm_ml:g} mL)",
                choice.id,
            )
        self.serial = self._line("serial_number", "Serial number")
        self.implanted_on = QDateEdit(today)
        self.implanted_on.setObjectName("implanted_on")
        self.implanted_on.setAccessibleName("Implant date")
        self.implanted_on.setDisplayFormat("dd MMM yyyy")
        self.implanted_on.setCalendarPopup(True)
        self.implanted_on.setMaximumDate(today)
        self.pump_group = QGroupBox("Pump")
        form = self._form(self.pump_group)
        self._row(form, "Pump model *", self.pump_model, "pump_model_id")
        self._row(form, "Serial number *", self.serial, "serial_number")
        self._row(form, "Implant date *", self.implanted_on, "implanted_on")
        outer.addWidget(self.pump_group)

        # Fill and starting program
        self.filled_at = QDateTimeEdit(QDateTime(today, QTime(now_local.hour, now_local.minute)))
        self.filled_at.setObjectName("filled_at")
        self.filled_at.setAccessibleName("Fill time")
        self.filled_at.setDisplayFormat("dd MMM yyyy HH:mm")
        self.filled_at.setCalendarPopup(True)
        self.drug = QComboBox()
        self.drug.setObjectName("drug_product_id")
        self.drug.setAccessibleName("Drug product")
        self.lot = self._line("lot_number", "Lot number")
        self.volume = QDoubleSpinBox()
        self.volume.setObjectName("volume_ml")
        self.volume.setAccessibleName("Fill volume in mL")
        self.volume.setDecimals(1)
        self.volume.setSuffix(" mL")
        self.volume.setRange(0.0, 40.0)
        self.volume.setMinimumWidth(150)
        self.volume_hint = QLabel()
        self.volume_hint.setObjectName("fieldHelp")
        self.dose = QDoubleSpinBox()
        self.dose.setObjectName("dose_mcg_per_day")
        self.dose.setAccessibleName("Starting dose in mcg per day")
        self.dose.setDecimals(1)
        self.dose.setRange(0.0, 3000.0)
        self.dose.setSingleStep(5.0)
        self.dose.setSuffix(" mcg/day")
        self.dose.setMinimumWidth(150)
        self.dose_hint = QLabel()
        self.dose_hint.setObjectName("doseHourly")
        self.dose_hint.setAccessibleName("Dose per hour and daily volume")
        self.notes = self._line("notes", "Notes")
        self.entries = QGroupBox("Fill and starting program")
        self.entries.setObjectName("implantEntries")
        form = self._form(self.entries)
        self._row(form, "Fill time *", self.filled_at, "filled_at")
        self._row(form, "Drug product *", self.drug, "drug_product_id")
        self._row(form, "Lot number *", self.lot, "lot_number")
        self._row(form, "Volume filled *", self.volume, "volume_ml", self.volume_hint)
        self._row(form, "Starting dose *", self.dose, "dose_mcg_per_day", self.dose_hint)
        self._row(form, "Notes", self.notes, "notes")
        outer.addWidget(self.entries)
        self.entries_hidden_label = QLabel(
            "The fill and program entries are hidden while the second person checks. "
            "They reappear if the check does not match."
        )
        self.entries_hidden_label.setObjectName("entriesHidden")
        self.entries_hidden_label.setProperty("banner", "info")
        self.entries_hidden_label.setWordWrap(True)
        self.entries_hidden_label.setVisible(False)
        outer.addWidget(self.entries_hidden_label)

        # Independent double check
        self.check_group = QGroupBox("Independent double check (second nurse or clinician)")
        self.check_group.setObjectName("doubleCheck")
        check_layout = QVBoxLayout(self.check_group)
        self.begin_check_button = primary_button(
            "Begin &double check (hides the entries above)", "beginDoubleCheck"
        )
        self.begin_check_button.setDefault(False)
        self.begin_check_button.clicked.connect(self.begin_double_check)
        check_layout.addWidget(self.begin_check_button)
        self.check_fields = QWidget()
        check_form = QFormLayout(self.check_fields)
        check_form.setContentsMargins(0, 0, 0, 0)
        check_form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        check_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.check_username = self._line("check_username", "Second person's username")
        self.check_password = self._line("check_password", "Second person's password")
        self.check_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.check_concentration = self._line(
            "check_concentration", "Concentration re-entered by the second person"
        )
        self.check_concentration.setPlaceholderText("from the vial, mcg/mL")
        self.check_dose = self._line("check_dose", "Daily dose re-entered by the second person")
        self.check_dose.setPlaceholderText("from the prescription, mcg/day")
        for widget in (self.check_concentration, self.check_dose):
            validator = QDoubleValidator(0.0, 100000.0, 3, widget)
            validator.setNotation(QDoubleValidator.Notation.StandardNotation)
            widget.setValidator(validator)
        self._row(check_form, "Username *", self.check_username, "double_check")
        self._row(check_form, "Password *", self.check_password, "check_password")
        self._row(
            check_form, "Concentration (mcg/mL) *", self.check_concentration, "check_concentration"
        )
        self._row(check_form, "Daily dose (mcg/day) *", self.check_dose, "check_dose")
        self.check_fields.setVisible(False)
        check_layout.addWidget(self.check_fields)
        outer.addWidget(self.check_group)
        outer.addStretch(1)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.cancel_button = button("Cancel", "cancelImplant")
        self.cancel_button.clicked.connect(self.reject)
        buttons.addWidget(self.cancel_button)
        self.save_button = primary_button("&Save implant", "saveImplant")
        self.save_button.clicked.connect(self.save)
        self.save_button.setVisible(False)  # appears when the double check begins
        buttons.addWidget(self.save_button)
        outer.addLayout(buttons)

        self.pump_model.currentIndexChanged.connect(self._model_changed)
        self.drug.currentIndexChanged.connect(self._update_hints)
        self.dose.valueChanged.connect(self._update_hints)
        self.implanted_on.dateChanged.connect(self._implant_date_changed)
        self._model_changed()

    # --- building helpers ---------------------------------------------------------------

    def _line(self, name: str, accessible: str) -> QLineEdit:
        widget = QLineEdit()
        widget.setObjectName(name)
        widget.setAccessibleName(accessible)
        return widget

    def _form(self, box: QGroupBox) -> QFormLayout:
        form = QFormLayout(box)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setVerticalSpacing(4)
        return form

    def _row(
        self,
        form: QFormLayout,
        label: str,
        widget: QWidget,
        field: str,
        hint: QLabel | None = None,
    ) -> None:
        column = QWidget()
        layout = QVBoxLayout(column)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(1)
        if hint is not None:
            line = QHBoxLayout()
            line.addWidget(widget)
            line.addWidget(hint, 1)
            layout.addLayout(line)
        else:
            layout.addWidget(widget)
        layout.addWidget(self.errors.label_for(field, widget))
        caption = QLabel(label)
        caption.setMinimumWidth(190)  # the three groups' fields line up
        caption.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        form.addRow(caption, column)

    # --- behaviour ----------------------------------------------------------------------

    def choice(self) -> PumpModelChoice | None:
        model_id = self.pump_model.currentData()
        return next((c for c in self._choices if c.id == model_id), None)

    def _model_changed(self) -> None:
        choice = self.choice()
        previous = self.drug.currentData()
        self.drug.blockSignals(True)
        self.drug.clear()
        self.drug.addItem("Choose…", "")
        products = choice.drug_products if choice else ()
        for product_id, name, _concentration in products:
            self.drug.addItem(name, product_id)
        self.drug.setCurrentIndex(max(0, self.drug.findData(previous)))
        self.drug.blockSignals(False)
        reservoir = choice.reservoir_ml if choice else 40.0
        self.volume.setMaximum(reservoir)
        self.volume_hint.setText(
            f"at most the reservoir, {reservoir:g} mL" if choice else "choose the pump first"
        )
        self._update_hints()

    def _concentration(self) -> float | None:
        choice = self.choice()
        product_id = self.drug.currentData()
        if choice is None or not product_id:
            return None
        return next((c for pid, _n, c in choice.drug_products if pid == product_id), None)

    def _update_hints(self) -> None:
        dose = self.dose.value()
        text = f"= {per_hour_text(dose)}"
        concentration = self._concentration()
        if concentration:
            text += f"  ·  {dose / concentration:.3f} mL/day at {concentration:g} mcg/mL"
        self.dose_hint.setText(text)

    def _implant_date_changed(self, date: QDate) -> None:
        # The first fill is given in theatre: keep the fill on the implant day.
        self.filled_at.setDate(date)

    def begin_double_check(self) -> None:
        self._set_entries_hidden(True)
        self.begin_check_button.setVisible(False)
        self.check_fields.setVisible(True)
        self.save_button.setVisible(True)
        self.check_username.setFocus()

    def _set_entries_hidden(self, hidden: bool) -> None:
        self.entries.setVisible(not hidden)
        self.entries_hidden_label.setVisible(hidden)

    @property
    def entries_hidden(self) -> bool:
        return self.entries.isHidden()

    def _filled_at(self) -> dt.datetime:
        qdate = self.filled_at.date()
        qtime = self.filled_at.time()
        return dt.datetime(
            qdate.year(),
            qdate.month(),
            qdate.day(),
            qtime.hour(),
            qtime.minute(),
            tzinfo=self._zone,
        )

    def collect(self) -> ImplantInput:
        qdate = self.implanted_on.date()
        return ImplantInput(
            patient_id=self._patient_id,
            pump_model_id=str(self.pump_model.currentData() or ""),
            serial_number=self.serial.text(),
            implanted_on=dt.date(qdate.year(), qdate.month(), qdate.day()),
            filled_at=self._filled_at(),
            drug_product_id=str(self.drug.currentData() or ""),
            lot_number=self.lot.text(),
            volume_ml=self.volume.value(),
            dose_mcg_per_day=self.dose.value(),
            notes=self.notes.text(),
        )

    @staticmethod
    def _number(widget: QLineEdit) -> float | None:
        text = widget.text().strip().replace(",", ".")
        try:
            value = float(text)
        except ValueError:
            return None
        return value if math.isfinite(value) else None

    def collect_check(self) -> DoubleCheck:
        return DoubleCheck(
            username=self.check_username.text(),
            password=self.check_password.text(),
            concentration_mcg_per_ml=self._number(self.check_concentration),
            dose_mcg_per_day=self._number(self.check_dose),
        )

    def _show_errors(self, messages: Sequence[str], leftover: Sequence[str] = ()) -> None:
        set_banner(self.error_banner, [*messages, *leftover])

    def save(self) -> None:
        if self.check_fields.isHidden():
            return  # the double check has not begun
        data = self.collect()
        check = self.collect_check()
        self.errors.clear()
        set_banner(self.error_banner, [])
        if data.volume_ml <= 0:
            # The service accepts an empty first fill; at implant it is a typing slip.
            self.errors.show([FieldError("volume_ml", "Volume filled must be more than 0 mL.")])
            self._set_entries_hidden(False)
            self._show_errors(["Not saved: correct the fields marked in red."])
            return
        try:
            pump_id = self._services.refills.implant_pump(self._actor, data, check)
        except ValidationFailed as failure:
            leftover = self.errors.show(failure.errors)
            fields = {e.field for e in failure.errors}
            if fields & self.ENTRY_FIELDS or fields & {"check_concentration", "check_dose"}:
                # Both people compare the vial, the prescription and the entries now.
                self._set_entries_hidden(False)
            self._show_errors(["Not saved: correct the fields marked in red."], leftover)
            return
        except AuthenticationFailed as refused:
            self.errors.show([FieldError("double_check", f"Double check: {refused}")])
            self._show_errors(["Not saved: the second person could not sign in."])
            return
        except ServiceError as error:
            show_known_error(self, error)
            return
        except Exception as error:  # a bug: logged with its traceback
            show_bug(self, error)
            return
        self.implanted.emit(pump_id)
        self.accept()
