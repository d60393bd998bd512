"""Screening trials in the GUI (ITB-FACTS §1–§2): the day's board, a trial's detail, and the
dialogs to plan the trial, give the doses, record observations and decide.

- The Screening page shows the day's test doses with a live countdown to "assess from"
  (dose + 4 h) and "observation ends" (dose + 8 h), from the service clock, and the
  selected trial's detail below it.
- Planning asks the clinician to tick every start check and proposes dose times that fit the
  clinic's hours and beds, saying in words why a dose is not exactly 24 h after the last.
- Observations are append-only: a correction is a new record and the old one stays visible,
  struck through.
- The response is the clinician's decision; the change from baseline is shown to support it,
  and a positive response shows the suggested starting dose in mcg/day and mcg/h.

Times are shown in the clinic's zone; everything handed to the services is timezone-aware.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, QTime, QTimer, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetrics,
    QKeySequence,
    QResizeEvent,
    QShortcut,
    QShowEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTableView,
    QTimeEdit,
    QVBoxLayout,
    QWidget,
)

from pumpclinic.domain.calendar import ClinicCalendar
from pumpclinic.domain.enums import ASHWORTH_SCORES, DoseResponse, TrialStatus
from pumpclinic.domain.screening import StartCheck, StartCheckKind, StopCause, TrialStage
from pumpclinic.domain.titration import LONG_EFFECT_HOURS, starting_dose_mcg_per_day
from pumpclinic.domain.validation import FieldError
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.services.errors import ServiceError, StaleRecord, ValidationFailed
from pumpclinic.services.permissions import Permission, can
from pumpclinic.services.screening import (
    AdverseEffectChoice,
    BaselineChange,
    BoardRow,
    DoseCorrection,
    DoseView,
    ObservationInput,
    ObservationView,
    ProtocolChoice,
    SupersededDose,
    TrialScheduleProposal,
    TrialView,
)
from pumpclinic.ui.booking import OpenDayPaging, date_edit, from_qdate, to_qdate
from pumpclinic.ui.bus import DataBus
from pumpclinic.ui.errors import guarded, show_bug
from pumpclinic.ui.models import AnyIndex, CheckListModel, RowTableModel
from pumpclinic.ui.widgets import (
    FieldErrorLabels,
    banner,
    button,
    page_header,
    per_hour_text,
    primary_button,
    set_banner,
    set_invalid,
)

__all__ = [
    "BaselineChangeModel",
    "BoardPhase",
    "CorrectDoseDialog",
    "DosesModel",
    "EffectChoiceModel",
    "EffectDurationDialog",
    "GiveDoseDialog",
    "MomentField",
    "ObservationDialog",
    "ObservationsModel",
    "PlanTrialDialog",
    "ProposalModel",
    "ResponseDialog",
    "ScreeningBoardModel",
    "ScreeningPage",
    "StopTrialDialog",
    "TrialDialog",
    "TrialPanel",
    "open_plan_trial",
    "open_trial",
    "patient_trial_id",
]

T = TypeVar("T")
ROW_ROLE = Qt.ItemDataRole.UserRole

# The muscle groups the observation form scores, each left and right. A score is stored
# under "<group> (L)" or "<group> (R)"; other names (older records) are shown as they are.
MUSCLE_GROUPS = (
    "Hip adductors",
    "Knee flexors",
    "Knee extensors",
    "Ankle plantar flexors",
    "Elbow flexors",
)
SIDES = (("L", "left"), ("R", "right"))
_SHORT_GROUPS = {
    "Hip adductors": "Hip add",
    "Knee flexors": "Knee flex",
    "Knee extensors": "Knee ext",
    "Ankle plantar flexors": "Ankle PF",
    "Elbow flexors": "Elbow flex",
}
_SIDED_KEY = re.compile(r"^(?P<group>.+) \((?P<side>[LR])\)$")
# Penn Spasm Frequency Scale.
PENN_CHOICES = (
    (0, "0 — no spasms"),
    (1, "1 — mild spasms on stimulation only"),
    (2, "2 — full spasms, less than once an hour"),
    (3, "3 — spasms more than once an hour"),
    (4, "4 — spasms more than 10 times an hour"),
)
ROUTES = ("lumbar puncture", "lumbar puncture (barbotage)", "lumbar drain or catheter")
# How often the board's countdowns are redrawn; they show whole minutes.
TICK_MS = 15_000
# An observation that ends within this is flagged "ending soon".
ENDING_SOON = dt.timedelta(minutes=30)
NOT_SCORED = "—"

_RED = "#b3261e"
_DARK_RED = "#8c1d18"
_GREY = QBrush(QColor("#52606d"))
_FADED = QBrush(QColor("#8a96a3"))
_RED_TEXT = QBrush(QColor(_DARK_RED))
_GREEN_TEXT = QBrush(QColor("#1e5e2b"))
_OBSERVING_ROW = QBrush(QColor("#f0f7fd"))
_VITALS_WATCH = QBrush(QColor("#fff8e1"))
_OVERDOSE_BACKGROUND = QBrush(QColor("#fdecea"))

LOCAL_STYLE = f"""
QPushButton[primary="true"]:disabled {{
    background: #c3d3e2; border-color: #c3d3e2; color: #f4f7fa;
}}
QLabel[urgent="true"] {{
    background: {_RED}; color: white; border: 2px solid #7f1a14; border-radius: 4px;
    padding: 8px 10px; font-size: 10.5pt;
}}
QLabel#trialTitle {{ font-size: 14pt; font-weight: 600; color: #1d2b3a; }}
QLabel#trialSubtitle, QLabel#fieldHelp, QLabel#sectionHelp {{ color: #52606d; }}
QLabel#trialStatus {{ font-size: 12pt; font-weight: 600; color: #184d72; }}
QLabel#trialStatus[ended="true"] {{ color: #1d2b3a; }}
QLabel#sectionTitle {{ font-weight: 600; color: #1d2b3a; }}
QLabel#suggestedDose, QLabel#suggestedStartingDose {{
    font-size: 14pt; font-weight: 700; color: #1d2b3a;
}}
QLabel#boardSummary {{ color: #334e68; font-weight: 600; }}
QLabel#boardDayTitle {{ font-size: 12pt; font-weight: 600; color: #1d2b3a; }}
QLabel#trialPlaceholder {{ color: #52606d; font-size: 11pt; }}
QLabel#checkMessage {{ color: #334e68; font-weight: 400; }}
QLabel#vitalsWatch {{ color: #52606d; font-weight: 400; }}
QLabel#vitalsWatch[active="true"] {{ color: #7a4100; font-weight: 600; }}
QGroupBox#vitalsBox[watch="true"] {{ background: #fff8e1; border: 2px solid #f0b35b; }}
QCheckBox[startCheck="true"] {{ font-weight: 600; }}
QCheckBox[startCheck="true"][invalid="true"] {{ color: {_RED}; }}
QDoubleSpinBox {{
    padding: 3px 5px; border: 1px solid #bcccdc; border-radius: 3px; background: white;
}}
QSpinBox[typed="true"]::up-button, QSpinBox[typed="true"]::down-button,
QDoubleSpinBox[typed="true"]::up-button, QDoubleSpinBox[typed="true"]::down-button {{
    width: 0px; border: none;
}}
QSpinBox[typed="true"]::up-arrow, QSpinBox[typed="true"]::down-arrow,
QDoubleSpinBox[typed="true"]::up-arrow, QDoubleSpinBox[typed="true"]::down-arrow {{
    image: none; width: 0px; height: 0px;
}}
QDoubleSpinBox[invalid="true"] {{ border: 2px solid {_RED}; }}
QFrame#checksFrame {{ background: white; border: 1px solid #d9e2ec; border-radius: 4px; }}
"""


# --- formatting -----------------------------------------------------------------------------


def number_text(value: float) -> str:
    """2, 1.5, 412.5: no trailing zeros."""
    return f"{value:g}"


def both_units(dose_mcg_per_day: float) -> str:
    """A daily dose with the hourly rate beside it, always (ITB-FACTS §2)."""
    return f"{number_text(dose_mcg_per_day)} mcg/day ({per_hour_text(dose_mcg_per_day)})"


def dose_text(dose_mcg: float, volume_ml: float) -> str:
    return f"{number_text(dose_mcg)} mcg ({number_text(volume_ml)} mL)"


def clock_text(at: dt.datetime, zone: dt.tzinfo) -> str:
    return f"{at.astimezone(zone):%H:%M}"


def day_time_text(at: dt.datetime, zone: dt.tzinfo) -> str:
    """'Mon 30 Nov 09:00' in the clinic's zone."""
    local = at.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def short_time_text(at: dt.datetime, zone: dt.tzinfo, day: dt.date) -> str:
    """'14:00' on ``day``, else 'Tue 1 Dec 14:00'."""
    local = at.astimezone(zone)
    return clock_text(at, zone) if local.date() == day else day_time_text(at, zone)


def span_text(minutes: int) -> str:
    """'45 min', '3 h 05 min', '2 d 4 h'."""
    days, rest = divmod(max(0, minutes), 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins:02d} min"
    return f"{mins} min"


def until_text(target: dt.datetime, now: dt.datetime) -> str:
    """'in 3 h 58 min' before ``target``; '12 min ago' after it."""
    seconds = (target - now).total_seconds()
    if seconds > 0:
        return f"in {span_text(math.ceil(seconds / 60))}"
    minutes = math.floor(-seconds / 60)
    return "just now" if minutes < 1 else f"{span_text(minutes)} ago"


def minutes_after_text(minutes: float | None) -> str:
    """'+1 h 30 min' after the dose, '−15 min' before it, '' when the dose is not given."""
    if minutes is None:
        return ""
    whole = round(minutes)
    sign = "−" if whole < 0 else "+"
    return f"{sign}{span_text(abs(whole))}"


def short_measure(key: str) -> str:
    """'Ankle plantar flexors (L)' → 'Ankle PF (L)': the long group names, shortened."""
    group, side = split_ashworth_key(key)
    if group != "Ankle plantar flexors":
        return key
    return f"Ankle PF ({side})" if side else "Ankle PF"


def ashworth_key(group: str, side: str) -> str:
    return f"{group} ({side})"


def split_ashworth_key(key: str) -> tuple[str, str | None]:
    """'Hip adductors (L)' → ('Hip adductors', 'L'); a name without a side → (name, None)."""
    match = _SIDED_KEY.match(key)
    if match is None:
        return key, None
    return match["group"], match["side"]


def ashworth_summary(scores: Mapping[str, str], short: bool = True) -> str:
    """'Hip add L3 R2 · Knee flex L2' (short) or one group per line (long)."""
    groups: dict[str, list[str]] = {}
    for key in sorted(scores, key=str.casefold):
        group, side = split_ashworth_key(key)
        groups.setdefault(group, []).append(
            f"{side}{scores[key]}"
            if short and side
            else f"{side} {scores[key]}"
            if side
            else scores[key]
        )
    if short:
        return " · ".join(
            f"{_SHORT_GROUPS.get(group, group)} {' '.join(parts)}"
            for group, parts in groups.items()
        )
    return "\n".join(f"{group}: {', '.join(parts)}" for group, parts in groups.items())


def _bold() -> QFont:
    font = QFont()
    font.setBold(True)
    return font


def _table(object_name: str, accessible: str) -> QTableView:
    table = QTableView()
    table.setObjectName(object_name)
    table.setAccessibleName(accessible)
    table.setAlternatingRowColors(True)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(26)
    table.setWordWrap(False)
    table.horizontalHeader().setStretchLastSection(True)
    table.horizontalHeader().setHighlightSections(False)
    return table


def fit_columns(table: QTableView, samples: Sequence[str], bold: Sequence[int] = ()) -> None:
    """Each column as wide as its sample text (or its header, if wider), in the table's font,
    with the stylesheet's cell padding."""
    table.ensurePolished()
    plain = table.fontMetrics()
    strong_font = QFont(table.font())
    strong_font.setBold(True)
    strong = QFontMetrics(strong_font)
    model = table.model()
    for column, sample in enumerate(samples):
        metrics = strong if column in bold else plain
        width = metrics.horizontalAdvance(sample)
        if model is not None:
            header = model.headerData(column, Qt.Orientation.Horizontal)
            if isinstance(header, str):
                width = max(width, strong.horizontalAdvance(header))
        table.setColumnWidth(column, width + 24)


def fit_rows(table: QTableView, rows: int) -> None:
    """A fixed height that shows ``rows`` rows and the header, without a vertical scroll bar."""
    table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    header = table.horizontalHeader().sizeHint().height()
    row = table.verticalHeader().defaultSectionSize()
    frame = 2 * table.frameWidth()
    table.setFixedHeight(header + max(rows, 1) * row + frame + 2)


def _label(text: str, object_name: str, wrap: bool = True) -> QLabel:
    label = QLabel(text)
    label.setObjectName(object_name)
    label.setWordWrap(wrap)
    return label


def _repolish(widget: QWidget) -> None:
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)


def urgent_banner(object_name: str) -> QLabel:
    """The red strip for overdose signs: rich text, hidden until it has something to say."""
    label = QLabel()
    label.setObjectName(object_name)
    label.setAccessibleName("Urgent: overdose signs")
    label.setProperty("urgent", True)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setVisible(False)
    return label


def overdose_html(recorded: Sequence[str], leaflet: Sequence[str]) -> str:
    signs = ", ".join(recorded)
    listed = "; ".join(leaflet)
    return (
        f"<b>⚠ URGENT — OVERDOSE SIGNS RECORDED: {signs}.</b> Call the clinician now;"
        " watch breathing and consciousness.<br>"
        f"Overdose signs on the patient leaflet: {listed}."
    )


# --- the board ------------------------------------------------------------------------------


class BoardPhase(StrEnum):
    """Where one dose of the board stands at a moment: what the clinician must do."""

    WAITING = "waiting"  # the previous dose's response comes first
    PLANNED = "planned"
    DUE = "due"
    OBSERVING = "observing"  # given; too early to assess
    ASSESS = "assess"
    ENDING = "ending"  # may be assessed; the observation ends within 30 minutes
    RESPONSE_DUE = "response-due"  # the observation is over and no response is recorded
    RESPONDED = "responded"
    ENDED = "ended"  # the trial ended at this dose


def board_phase(row: BoardRow, now: dt.datetime) -> BoardPhase:
    if row.given_at is None:
        if row.trial_stage is TrialStage.ENDED:
            return BoardPhase.ENDED
        if row.trial_stage in (TrialStage.DOSE_GIVEN, TrialStage.OBSERVING):
            return BoardPhase.WAITING
        return BoardPhase.DUE if row.at <= now else BoardPhase.PLANNED
    if row.trial_stage is TrialStage.ENDED:
        return BoardPhase.ENDED
    if row.response is not None:
        return BoardPhase.RESPONDED
    if now < row.assess_from:
        return BoardPhase.OBSERVING
    if now < row.observe_until:
        return BoardPhase.ENDING if row.observe_until - now <= ENDING_SOON else BoardPhase.ASSESS
    return BoardPhase.RESPONSE_DUE


_ENDED_LABELS = {
    TrialStatus.CANDIDATE: "Candidate",
    TrialStatus.NOT_CANDIDATE: "Not a candidate",
    TrialStatus.STOPPED: "Stopped",
}
_PHASE_LABELS = {
    BoardPhase.WAITING: "Waiting",
    BoardPhase.PLANNED: "Planned",
    BoardPhase.DUE: "Due now",
    BoardPhase.OBSERVING: "Observing",
    BoardPhase.ASSESS: "Assess now",
    BoardPhase.ENDING: "Ending soon",
    BoardPhase.RESPONSE_DUE: "Response due",
    BoardPhase.RESPONDED: "Responded",
}
# (background, foreground) of the State cell; the words carry the meaning, colour helps.
_PHASE_COLOURS = {
    BoardPhase.DUE: ("#fff4e5", "#7a4100"),
    BoardPhase.OBSERVING: ("#e8f1fa", "#184d72"),
    BoardPhase.ASSESS: ("#e6f4ea", "#1e5e2b"),
    BoardPhase.ENDING: ("#ffe9c2", "#7a4100"),
    BoardPhase.RESPONSE_DUE: ("#ffe9c2", "#7a4100"),
}
_IN_OBSERVATION = frozenset(
    {BoardPhase.OBSERVING, BoardPhase.ASSESS, BoardPhase.ENDING, BoardPhase.RESPONSE_DUE}
)


class ScreeningBoardModel(RowTableModel[BoardRow]):
    """The day's test doses; the countdown columns follow ``set_now``. ``ROW_ROLE`` gives
    the BoardRow."""

    COLUMNS = (
        "Time",
        "Patient",
        "MRN",
        "Dose",
        "State",
        "Assess from",
        "Observation ends",
        "Status",
    )
    TIME, PATIENT, MRN, DOSE, STATE, ASSESS, ENDS, NOTES = range(8)
    _HEADER_TIPS: ClassVar[dict[int, str]] = {
        TIME: "When the dose was given; grey: when it is planned",
        ASSESS: "Dose + 4 h: the response may be assessed from then",
        ENDS: "Dose + 8 h: the end of the observation",
    }

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._zone: dt.tzinfo = zoneinfo.ZoneInfo("UTC")
        self._now = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

    def set_rows(self, rows: Sequence[BoardRow], zone: dt.tzinfo, now: dt.datetime) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self._zone = zone
        self._now = now
        self.endResetModel()

    def set_now(self, now: dt.datetime) -> None:
        """Redraw the countdowns for ``now``."""
        self._now = now
        if self._rows:
            self.dataChanged.emit(
                self.index(0, 0), self.index(len(self._rows) - 1, len(self.COLUMNS) - 1)
            )

    def now(self) -> dt.datetime:
        return self._now

    def phases(self, now: dt.datetime) -> list[BoardPhase]:
        return [board_phase(row, now) for row in self._rows]

    def rows(self) -> list[BoardRow]:
        return list(self._rows)

    def row_of(self, trial_id: int, dose_number: int | None = None) -> int | None:
        for number, row in enumerate(self._rows):
            if row.trial_id == trial_id and dose_number in (None, row.dose_number):
                return number
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._HEADER_TIPS.get(section)
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        column = index.column()
        phase = board_phase(row, self._now)
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return self.text(row, column, phase)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, column)
        if role == ROW_ROLE:
            return row
        if role == Qt.ItemDataRole.BackgroundRole:
            return self._background(row, column, phase)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._foreground(row, column, phase)
        if role == Qt.ItemDataRole.FontRole:
            if column == self.PATIENT or (column == self.NOTES and row.overdose_signs):
                return _bold()
            if column == self.STATE and phase in _PHASE_COLOURS:
                return _bold()
            if column == self.ENDS and phase is BoardPhase.ENDING:
                return _bold()
        return None

    def text(self, row: BoardRow, column: int, phase: BoardPhase | None = None) -> str:
        zone, now = self._zone, self._now
        phase = phase or board_phase(row, now)
        given = row.given_at is not None
        if column == self.TIME:
            return clock_text(row.at, zone)
        if column == self.PATIENT:
            return f"⚠ {row.patient_name}" if row.overdose_signs else row.patient_name
        if column == self.MRN:
            return row.mrn
        if column == self.DOSE:
            return f"{row.dose_number}: {dose_text(row.dose_mcg, row.volume_ml)}"
        if column == self.STATE:
            if phase is BoardPhase.ENDED:
                return _ENDED_LABELS.get(row.trial_status, "Ended")
            return _PHASE_LABELS[phase]
        if column == self.ASSESS:
            at = clock_text(row.assess_from, zone)
            if not given:
                return f"({at} if on time)"
            if phase is BoardPhase.OBSERVING:
                return f"{at} · {until_text(row.assess_from, now)}"
            if phase in (BoardPhase.ASSESS, BoardPhase.ENDING):
                return f"{at} · now"
            return at
        if column == self.ENDS:
            at = clock_text(row.observe_until, zone)
            if not given:
                return f"({at} if on time)"
            if phase in (BoardPhase.OBSERVING, BoardPhase.ASSESS, BoardPhase.ENDING):
                return f"{at} · {until_text(row.observe_until, now)}"
            if phase is BoardPhase.RESPONSE_DUE:
                return f"{at} · {until_text(row.observe_until, now)}"
            return at
        if column == self.NOTES:
            if row.overdose_signs:
                return f"⚠ OVERDOSE: {', '.join(row.overdose_signs)} — {row.status_text}"
            return row.status_text
        return ""

    def _tooltip(self, row: BoardRow, column: int) -> str | None:
        if column == self.TIME:
            if row.given_at is not None:
                return f"Given {clock_text(row.at, self._zone)}"
            return f"Planned {clock_text(row.at, self._zone)}: {until_text(row.at, self._now)}"
        if column == self.NOTES or (column == self.PATIENT and row.overdose_signs):
            lines = [row.status_text]
            if row.overdose_signs:
                lines.insert(0, f"Overdose signs recorded: {', '.join(row.overdose_signs)}")
            return "\n".join(lines)
        if column in (self.ASSESS, self.ENDS) and row.given_at is None:
            return "If the dose is given at the planned time"
        return None

    def _background(self, row: BoardRow, column: int, phase: BoardPhase) -> QBrush | None:
        if row.overdose_signs and column in (self.PATIENT, self.NOTES):
            return _OVERDOSE_BACKGROUND
        if column == self.STATE and phase in _PHASE_COLOURS:
            return QBrush(QColor(_PHASE_COLOURS[phase][0]))
        if column == self.ENDS and phase is BoardPhase.ENDING:
            return QBrush(QColor(_PHASE_COLOURS[BoardPhase.ENDING][0]))
        if phase in _IN_OBSERVATION:
            return _OBSERVING_ROW
        return None

    def _foreground(self, row: BoardRow, column: int, phase: BoardPhase) -> QBrush | None:
        if row.overdose_signs and column in (self.PATIENT, self.NOTES):
            return _RED_TEXT
        if column == self.STATE and phase in _PHASE_COLOURS:
            return QBrush(QColor(_PHASE_COLOURS[phase][1]))
        if column in (self.TIME, self.ASSESS, self.ENDS) and row.given_at is None:
            return _GREY
        if column == self.TIME and phase is not BoardPhase.PLANNED:
            return None
        if phase in (BoardPhase.RESPONDED, BoardPhase.ENDED, BoardPhase.WAITING):
            return _FADED
        return None


# --- a trial's detail -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SupersededLine:
    """A dose's entry that a correction replaced: shown under the dose, struck through."""

    dose: DoseView
    entry: SupersededDose


class DosesModel(RowTableModel[DoseView | SupersededLine]):
    """The trial's doses: given (when, by whom) or planned, the observation window, and the
    response (by whom); the earliest allowed time, lot and route in the tooltips. Under a
    corrected dose, each entry the correction replaced, struck through."""

    COLUMNS = ("Dose", "Given / planned", "Assess from", "Until", "Response")
    DOSE, WHEN, ASSESS, OBSERVE, RESPONSE = range(5)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._trial: TrialView | None = None
        self._zone: dt.tzinfo = zoneinfo.ZoneInfo("UTC")

    def set_trial(self, trial: TrialView | None, zone: dt.tzinfo) -> None:
        self.beginResetModel()
        self._trial = trial
        rows: list[DoseView | SupersededLine] = []
        for dose in trial.doses if trial is not None else ():
            rows.append(dose)
            rows.extend(SupersededLine(dose, entry) for entry in dose.superseded)
        self._rows = rows
        self._zone = zone
        self.endResetModel()

    def dose_at(self, row: int) -> DoseView | None:
        """The dose shown on ``row``; None for a superseded entry."""
        item = self._rows[row] if 0 <= row < len(self._rows) else None
        return item if isinstance(item, DoseView) else None

    def _current(self, dose: DoseView) -> bool:
        trial = self._trial
        if trial is None:
            return False
        return dose.number in (trial.awaiting_response_number, trial.next_dose_number)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        item = self._rows[index.row()]
        column = index.column()
        if isinstance(item, SupersededLine):
            return self._superseded_data(item, column, role)
        dose = item
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return self.text(dose, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(dose, column)
        if role == ROW_ROLE:
            return dose
        if role == Qt.ItemDataRole.BackgroundRole and self._current(dose):
            return _OBSERVING_ROW
        if role == Qt.ItemDataRole.ForegroundRole:
            if column in (self.ASSESS, self.OBSERVE, self.WHEN) and not dose.given:
                return _GREY
            if column == self.RESPONSE and dose.response is DoseResponse.POSITIVE:
                return _GREEN_TEXT
        return None

    def _superseded_data(self, line: SupersededLine, column: int, role: int) -> object:
        if role == Qt.ItemDataRole.DisplayRole:
            return self.superseded_text(line, column)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            text = self.superseded_text(line, column)
            return f"{text} (corrected)" if column == self.DOSE else text
        if role == Qt.ItemDataRole.ToolTipRole:
            entry = line.entry
            given = (
                f"given {day_time_text(entry.given_at, self._zone)}"
                if entry.given_at is not None
                else "not given"
            )
            return (
                f"Entry #{entry.entry_id}, corrected: {given} by {entry.given_by or '—'},"
                f" lot {entry.lot_number or '—'} · {entry.route}\n"
                f"Corrected by entry #{entry.corrected_by_entry_id} on"
                f" {day_time_text(entry.corrected_at, self._zone)}: {entry.reason}"
            )
        if role == ROW_ROLE:
            return line
        if role == Qt.ItemDataRole.FontRole and column in (self.DOSE, self.WHEN):
            font = QFont()
            font.setStrikeOut(True)
            return font
        if role == Qt.ItemDataRole.ForegroundRole:
            return _FADED
        return None

    def superseded_text(self, line: SupersededLine, column: int) -> str:
        entry = line.entry
        if column == self.DOSE:
            return f"  ↳ #{entry.entry_id}"
        if column == self.WHEN:
            at = day_time_text(entry.given_at, self._zone) if entry.given_at else "not given"
            return f"{at} · {entry.lot_number or 'no lot'}"
        if column == self.RESPONSE:
            return f"corrected by #{entry.corrected_by_entry_id}: {entry.reason}"
        return ""

    def text(self, dose: DoseView, column: int) -> str:
        zone = self._zone
        if column == self.DOSE:
            mark = " ✎" if dose.corrected else ""
            return f"{dose.number}: {number_text(dose.dose_mcg)} mcg{mark}"
        if column == self.WHEN:
            if dose.given_at is None:
                at = dose.planned_at or dose.earliest_at
                return f"planned {day_time_text(at, zone)}" if at is not None else "not planned"
            who = f" · {dose.given_by}" if dose.given_by else ""
            return f"{day_time_text(dose.given_at, zone)}{who}"
        day = (dose.at or dt.datetime(2000, 1, 1, tzinfo=dt.UTC)).astimezone(zone).date()
        if column == self.ASSESS:
            return short_time_text(dose.assess_from, zone, day) if dose.assess_from else "—"
        if column == self.OBSERVE:
            return short_time_text(dose.observe_until, zone, day) if dose.observe_until else "—"
        if column == self.RESPONSE:
            if dose.response is None:
                if self._trial is not None and self._trial.awaiting_response_number == dose.number:
                    return "awaiting"
                return ""
            words = "Positive" if dose.response is DoseResponse.POSITIVE else "Inadequate"
            who = f" · {dose.response_by}" if dose.response_by else ""
            return f"{words}{who}"
        return ""

    def _tooltip(self, dose: DoseView, column: int) -> str | None:
        zone = self._zone
        if column == self.WHEN and dose.given_at is None and dose.earliest_at is not None:
            return f"Earliest allowed: {day_time_text(dose.earliest_at, zone)}"
        if column == self.RESPONSE and dose.response is not None:
            when = f" at {day_time_text(dose.response_at, zone)}" if dose.response_at else ""
            notes = f"\n{dose.notes}" if dose.notes else ""
            return f"{dose.response.value.capitalize()}, decided by {dose.response_by}{when}{notes}"
        corrected = (
            f"\nCorrected (entry #{dose.entry_id}): {dose.correction_reason}"
            if dose.corrected
            else ""
        )
        if column == self.WHEN and dose.given_at is not None:
            planned = dose.planned_at or dose.earliest_at
            was = f"\nPlanned {day_time_text(planned, zone)}" if planned is not None else ""
            return (
                f"Given {day_time_text(dose.given_at, zone)} by {dose.given_by or '—'}\n"
                f"Lot {dose.lot_number or '—'} · {dose.route}{was}{corrected}"
            )
        if column == self.DOSE:
            return self._amount(dose) + corrected
        return None

    @staticmethod
    def _amount(dose: DoseView) -> str:
        return (
            f"Dose {dose.number}: {number_text(dose.dose_mcg)} mcg in "
            f"{number_text(dose.volume_ml)} mL of "
            f"{number_text(dose.concentration_mcg_per_ml)} mcg/mL"
        )


class ObservationsModel(RowTableModel[ObservationView]):
    """The trial's observation timeline; corrected records stay, struck through."""

    COLUMNS = (
        "Time",
        "After dose",
        "Dose",
        "Kind",
        "HR",
        "RR",
        "SpO2",
        "Penn",
        "Modified Ashworth",
        "Adverse effects",
        "By",
        "Notes",
    )
    TIME, AFTER, DOSE, KIND, HR, RR, SPO2, PENN, ASHWORTH, EFFECTS, BY, NOTES = range(12)
    VITALS = frozenset({HR, RR, SPO2})

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._zone: dt.tzinfo = zoneinfo.ZoneInfo("UTC")
        self._vitals_watch_minutes = 120.0

    def set_rows(
        self,
        rows: Sequence[ObservationView],
        zone: dt.tzinfo,
        vitals_watch_hours: float = 2.0,
    ) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self._zone = zone
        self._vitals_watch_minutes = vitals_watch_hours * 60
        self.endResetModel()

    def row_of(self, observation_id: int) -> int | None:
        for number, view in enumerate(self._rows):
            if view.id == observation_id:
                return number
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return {
                self.HR: "Heart rate (beats/min)",
                self.RR: "Breathing rate (/min)",
                self.SPO2: "Oxygen saturation (%)",
                self.PENN: "Penn spasm frequency (0–4)",
            }.get(section)
        return None

    def in_vitals_watch(self, view: ObservationView) -> bool:
        minutes = view.minutes_after_dose
        return minutes is not None and 0 <= minutes <= self._vitals_watch_minutes

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        view = self._rows[index.row()]
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            text = self.text(view, column)
            if role == Qt.ItemDataRole.AccessibleTextRole and view.corrected and column == 0:
                return f"{text} (corrected)"
            return text
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(view, column)
        if role == ROW_ROLE:
            return view
        if role == Qt.ItemDataRole.FontRole:
            font = QFont()
            if view.corrected:
                font.setStrikeOut(True)
                return font
            if column == self.EFFECTS and view.overdose_signs:
                font.setBold(True)
                return font
            return None
        if role == Qt.ItemDataRole.ForegroundRole:
            if view.corrected:
                return _FADED
            if column == self.EFFECTS and view.overdose_signs:
                return _RED_TEXT
            return None
        if role == Qt.ItemDataRole.BackgroundRole:
            if view.corrected:
                return None
            if column == self.EFFECTS and view.overdose_signs:
                return _OVERDOSE_BACKGROUND
            if column in self.VITALS and self.in_vitals_watch(view):
                return _VITALS_WATCH
        return None

    def text(self, view: ObservationView, column: int) -> str:
        zone = self._zone

        def value(number: int | None) -> str:
            return "" if number is None else str(number)

        if column == self.TIME:
            return f"{view.observed_at.astimezone(zone):%a %H:%M}"
        if column == self.AFTER:
            return minutes_after_text(view.minutes_after_dose)
        if column == self.DOSE:
            return str(view.dose_number)
        if column == self.KIND:
            parts = []
            if view.is_baseline:
                parts.append("Baseline")
            if view.corrects_id is not None:
                parts.append("Correction")
            if view.corrected:
                parts.append("Corrected")
            return " · ".join(parts)
        if column == self.ASHWORTH:
            return ashworth_summary(view.ashworth)
        if column == self.PENN:
            return value(view.penn_spasm_frequency)
        if column == self.HR:
            return value(view.heart_rate_bpm)
        if column == self.RR:
            return value(view.respiratory_rate_per_min)
        if column == self.SPO2:
            return value(view.spo2_pct)
        if column == self.EFFECTS:
            return ", ".join(
                f"⚠ {e.label}" if e.is_overdose_sign else e.label for e in view.adverse_effects
            )
        if column == self.BY:
            return view.recorded_by
        if column == self.NOTES:
            return view.notes.replace("\n", " ")
        return ""

    def _tooltip(self, view: ObservationView, column: int) -> str | None:
        lines: list[str] = []
        if column == self.TIME:
            lines.append(day_time_text(view.observed_at, self._zone))
        if view.corrected:
            lines.append(f"Corrected by observation {view.corrected_by_id}: kept for the record.")
        if view.corrects_id is not None:
            lines.append(f"Corrects observation {view.corrects_id}.")
        if column == self.ASHWORTH and view.ashworth:
            lines.append(ashworth_summary(view.ashworth, short=False))
        elif column == self.EFFECTS and view.adverse_effects:
            lines += [
                f"{e.label}{' — an overdose sign' if e.is_overdose_sign else ''}"
                for e in view.adverse_effects
            ]
        elif column == self.NOTES and view.notes:
            lines.append(view.notes)
        elif column in self.VITALS and self.in_vitals_watch(view):
            lines.append("In the vitals watch: the first 2 hours after the dose.")
        return "\n".join(lines) or None


class BaselineChangeModel(RowTableModel[tuple[str, str, str, int | None, bool]]):
    """Per muscle group and for Penn: baseline → latest after the dose, with the change."""

    COLUMNS = ("Measure", "Before", "After", "Change")
    MEASURE, BASELINE, LATEST, CHANGE = range(4)
    _HEADER_TIPS: ClassVar[dict[int, str]] = {
        BASELINE: "The baseline before the dose",
        LATEST: "The latest score after the dose",
        CHANGE: "Ashworth: steps on 0, 1, 1+, 2, 3, 4; Penn: points (negative: better)",
    }

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # (measure, baseline, latest, change in steps or points, is_penn)

    def set_change(self, change: BaselineChange | None) -> None:
        self.beginResetModel()
        self._rows = []
        if change is not None:
            for item in change.ashworth:
                self._rows.append(
                    (
                        short_measure(item.muscle_group),
                        item.baseline or NOT_SCORED,
                        item.latest or NOT_SCORED,
                        item.change_steps,
                        False,
                    )
                )
            if change.penn_baseline is not None or change.penn_latest is not None:
                self._rows.append(
                    (
                        "Penn spasms",
                        NOT_SCORED if change.penn_baseline is None else str(change.penn_baseline),
                        NOT_SCORED if change.penn_latest is None else str(change.penn_latest),
                        change.penn_change,
                        True,
                    )
                )
        self.endResetModel()

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._HEADER_TIPS.get(section)
        return None

    @staticmethod
    def change_text(change: int | None, is_penn: bool) -> str:
        if change is None:
            return ""
        unit = "point" if is_penn else "step"
        if change == 0:
            return "no change"
        plural = "s" if abs(change) != 1 else ""
        return f"{change:+d} {unit}{plural}".replace("-", "−")

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        measure, baseline, latest, change, is_penn = self._rows[index.row()]
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            if column == self.MEASURE:
                return measure
            if column == self.BASELINE:
                return baseline
            if column == self.LATEST:
                return latest
            if column == self.CHANGE:
                return self.change_text(change, is_penn)
            return None
        if role == Qt.ItemDataRole.ForegroundRole and column == self.CHANGE and change:
            return _GREEN_TEXT if change < 0 else _RED_TEXT
        if role == Qt.ItemDataRole.FontRole and column == self.CHANGE and change:
            return _bold()
        if role == Qt.ItemDataRole.ToolTipRole:
            if column in (self.MEASURE, self.BASELINE, self.LATEST):
                name = "Penn spasm frequency" if is_penn else measure
                return f"{name}: baseline {baseline} → latest after the dose {latest}"
            if column == self.CHANGE and change is not None:
                return (
                    "Penn spasm frequency points (negative: fewer spasms)"
                    if is_penn
                    else "Steps on 0, 1, 1+, 2, 3, 4 (negative: less tone)"
                )
        return None


class ProposalModel(QAbstractTableModel):
    """A proposed dose schedule: each dose's time and why it is not exactly 24 h later."""

    COLUMNS = ("Dose", "Time", "Assess from", "Observe until", "24 h after the last?")
    DOSE, TIME, ASSESS, OBSERVE, REASON = range(5)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._proposal: TrialScheduleProposal | None = None
        self._zone: dt.tzinfo = zoneinfo.ZoneInfo("UTC")

    def set_proposal(self, proposal: TrialScheduleProposal | None, zone: dt.tzinfo) -> None:
        self.beginResetModel()
        self._proposal = proposal
        self._zone = zone
        self.endResetModel()

    def proposal(self) -> TrialScheduleProposal | None:
        return self._proposal

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        if parent.isValid() or self._proposal is None:
            return 0
        return len(self._proposal.doses)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if (
            role == Qt.ItemDataRole.DisplayRole
            and orientation == Qt.Orientation.Horizontal
            and 0 <= section < len(self.COLUMNS)
        ):
            return self.COLUMNS[section]
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if self._proposal is None or not index.isValid():
            return None
        if not 0 <= index.row() < len(self._proposal.doses):
            return None
        dose = self._proposal.doses[index.row()]
        column = index.column()
        zone = self._zone
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            day = dose.at.astimezone(zone).date()
            if column == self.DOSE:
                return f"{dose.number}: {dose_text(dose.dose_mcg, dose.volume_ml)}"
            if column == self.TIME:
                return day_time_text(dose.at, zone)
            if column == self.ASSESS:
                return short_time_text(dose.assess_from, zone, day)
            if column == self.OBSERVE:
                return short_time_text(dose.observe_until, zone, day)
            if column == self.REASON:
                if dose.number == 1:
                    return "later than asked: see why below" if dose.reason else ""
                return "no: see why below" if dose.reason else "yes, exactly"
            return None
        if role == Qt.ItemDataRole.ToolTipRole and column == self.REASON and dose.reason:
            return dose.reason
        if role == Qt.ItemDataRole.ForegroundRole and column == self.REASON:
            return QBrush(QColor("#7a4100")) if dose.reason else _GREY
        if role == Qt.ItemDataRole.FontRole and column == self.TIME:
            return _bold()
        return None


class EffectChoiceModel(CheckListModel):
    """The leaflet's adverse effects to tick; overdose signs first, marked ⚠ and in red
    (and named so in their accessible text and tooltip)."""

    def __init__(self, choices: Sequence[AdverseEffectChoice], parent: object = None) -> None:
        super().__init__(
            [(c.code, f"⚠ {c.label}" if c.is_overdose_sign else c.label) for c in choices],
            parent,
        )
        self._overdose = {c.code for c in choices if c.is_overdose_sign}
        self._labels = {c.code: c.label for c in choices}

    def is_overdose_sign(self, code: str) -> bool:
        return code in self._overdose

    def checked_overdose_labels(self) -> list[str]:
        return [
            self._labels[code]
            for code in self._labels
            if code in self._overdose and code in self.checked_codes()
        ]

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        code = super().data(index, Qt.ItemDataRole.UserRole)
        overdose = isinstance(code, str) and code in self._overdose
        if role in (Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.FontRole):
            if overdose:
                return _RED_TEXT if role == Qt.ItemDataRole.ForegroundRole else _bold()
            return None
        if role in (Qt.ItemDataRole.AccessibleTextRole, Qt.ItemDataRole.ToolTipRole) and overdose:
            return f"{self._labels[str(code)]} — an overdose sign (patient leaflet)"
        return super().data(index, role)


# --- form pieces ----------------------------------------------------------------------------


class MomentField(QWidget):
    """A date and a time on the clinic's wall clock; ``moment()`` is aware."""

    changed = Signal()

    def __init__(
        self, name: str, accessible: str, zone: dt.tzinfo, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self._zone = zone
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.date = date_edit(f"{name}Date", f"{accessible}: date")
        self.time = QTimeEdit()
        self.time.setObjectName(f"{name}Time")
        self.time.setAccessibleName(f"{accessible}: time")
        self.time.setDisplayFormat("HH:mm")
        self.time.setMinimumWidth(80)
        zone_label = QLabel(f"clinic time ({zone})")
        zone_label.setObjectName("fieldHelp")
        row.addWidget(self.date)
        row.addWidget(self.time)
        row.addWidget(zone_label)
        row.addStretch(1)
        self.date.dateChanged.connect(lambda _value: self.changed.emit())
        self.time.timeChanged.connect(lambda _value: self.changed.emit())

    def moment(self) -> dt.datetime:
        day = from_qdate(self.date.date())
        time = self.time.time()
        return dt.datetime(
            day.year, day.month, day.day, time.hour(), time.minute(), tzinfo=self._zone
        )

    def set_moment(self, at: dt.datetime) -> None:
        local = at.astimezone(self._zone)
        self.blockSignals(True)
        self.date.setDate(to_qdate(local.date()))
        self.time.setTime(QTime(local.hour, local.minute))
        self.blockSignals(False)
        self.changed.emit()


def _typed(box: QAbstractSpinBox) -> None:
    """A number that is typed, never nudged: no arrows, no wheel."""
    box.setProperty("typed", True)
    box.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    box.setFixedWidth(110)
    line = box.lineEdit()
    if line is not None:
        line.setTextMargins(5, 0, 5, 0)


class BlankSpinBox(QSpinBox):
    """A whole number that may be left empty (0 shows as blank): a vital not measured."""

    def __init__(self, object_name: str, accessible: str, maximum: int, suffix: str) -> None:
        super().__init__()
        self.setObjectName(object_name)
        self.setAccessibleName(accessible)
        self.setRange(0, maximum)
        self.setSpecialValueText(" ")
        self.setSuffix(suffix)
        _typed(self)
        self.setValue(0)

    def wheelEvent(self, event: QWheelEvent) -> None:
        event.ignore()  # a vital is typed, never nudged; let the form scroll

    def number(self) -> int | None:
        return None if self.value() == 0 else self.value()

    def set_number(self, value: int | None) -> None:
        self.setValue(value or 0)


class HoursField(QDoubleSpinBox):
    """Hours, to a tenth, empty until typed."""

    def __init__(self, object_name: str, accessible: str) -> None:
        super().__init__()
        self.setObjectName(object_name)
        self.setAccessibleName(accessible)
        self.setDecimals(1)
        self.setRange(0, 48)
        self.setSingleStep(0.5)
        self.setSpecialValueText(" ")
        self.setSuffix(" h")
        _typed(self)
        self.setValue(0)

    def wheelEvent(self, event: QWheelEvent) -> None:
        event.ignore()

    def hours(self) -> float | None:
        return None if self.value() == 0 else self.value()


class _Form(QDialog):
    """What the screening dialogs share: field errors under the fields, a banner for the
    rest, and one way to call a service."""

    def __init__(
        self,
        services: Services,
        actor: Actor,
        parent: QWidget | None,
        bus: DataBus | None,
        object_name: str,
        title: str,
    ) -> None:
        super().__init__(parent)
        self.setObjectName(object_name)
        self.setWindowTitle(title)
        self.setAccessibleName(title)
        self.setStyleSheet(LOCAL_STYLE)
        self._services = services
        self._actor = actor
        self._bus = bus
        self._zone = services.settings.get()[0].zone
        self.errors = FieldErrorLabels()
        self.error_banner = banner(f"{object_name}Errors")
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(20, 16, 20, 14)
        self.layout_.setSpacing(8)

    def now(self) -> dt.datetime:
        return self._services.context.now()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_wrapped()

    def _fit_wrapped(self) -> None:
        """A wrapped label needs the height of its text at its width, which the layout's
        minimum does not know: give it that, so nothing below it is overlapped."""
        for label in self.findChildren(QLabel):
            if label.wordWrap() and label.isVisible() and label.width() > 0:
                label.setMinimumHeight(label.heightForWidth(label.width()))

    def _heading(self, title: str, subtitle: str = "") -> None:
        heading = _label(title, "pageTitle")
        self.layout_.addWidget(heading)
        if subtitle:
            self.layout_.addWidget(_label(subtitle, "pageSubtitle"))

    def _cell(self, field: str, widget: QWidget, *beside: QWidget) -> QWidget:
        """``widget`` (with ``beside`` to its right) above the field's error message."""
        cell = QWidget()
        column = QVBoxLayout(cell)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        if beside:
            row = QHBoxLayout()
            row.addWidget(widget)
            for other in beside:
                row.addWidget(other)
            row.addStretch(1)
            column.addLayout(row)
        else:
            column.addWidget(widget)
        column.addWidget(self.errors.label_for(field, widget))
        return cell

    def _buttons(self, ok_text: str, ok_name: str) -> QPushButton:
        self.layout_.addWidget(self.error_banner)
        row = QHBoxLayout()
        row.addStretch(1)
        self.cancel_button = button("Cancel", f"{self.objectName()}Cancel")
        self.cancel_button.clicked.connect(self.reject)
        ok = primary_button(ok_text, ok_name)
        row.addWidget(self.cancel_button)
        row.addWidget(ok)
        self.layout_.addLayout(row)
        return ok

    def _run(self, action: Callable[[], T], failed: str = "Not saved.") -> T | None:
        self.errors.clear()
        set_banner(self.error_banner, [])
        try:
            return action()
        except ValidationFailed as failure:
            leftover = self.errors.show(failure.errors)
            set_banner(self.error_banner, [failed, *leftover])
        except StaleRecord as stale:
            set_banner(self.error_banner, [str(stale)])
        except ServiceError as error:
            set_banner(self.error_banner, [str(error)])
        except Exception as error:  # a bug: logged with its traceback
            show_bug(self, error)
        finally:
            self._fit_wrapped()
        return None

    def _saved(self, *entities: str) -> None:
        if self._bus is not None:
            self._bus.notify(*entities)
        self.accept()


# --- planning -------------------------------------------------------------------------------


_CHECK_TITLES = {
    StartCheckKind.AGE: "Age",
    StartCheckKind.ACTIVE_ILLNESS: "Active illness",
    StartCheckKind.INTERACTING_MEDICINE: "Interacting medicine",
    StartCheckKind.CNS_DEPRESSANT: "CNS depressant",
    StartCheckKind.PRECAUTION_CONDITION: "Precaution",
}


def _check_key(check: StartCheck) -> str:
    return f"{check.kind.value}:{check.code}"


class PlanTrialDialog(_Form):
    """Plan a screening trial: the protocol, the start checks to acknowledge, and dose times
    within the clinic's hours and beds."""

    planned = Signal(object)  # TrialView

    def __init__(
        self,
        services: Services,
        actor: Actor,
        patient_id: int,
        parent: QWidget | None = None,
        *,
        bus: DataBus | None = None,
    ) -> None:
        super().__init__(services, actor, parent, bus, "planTrialDialog", "Plan screening trial")
        self._patient_id = patient_id
        self.can_plan = can(actor, Permission.RECORD_SCREENING_RESPONSE)
        self.result_trial: TrialView | None = None
        self.checks: list[StartCheck] = []
        self.check_boxes: dict[str, QCheckBox] = {}
        self.protocols: list[ProtocolChoice] = (
            guarded(self, lambda: services.screening.protocols(actor), "Screening") or []
        )
        record = guarded(self, lambda: services.patients.get_patient(actor, patient_id))
        who = (
            f"{record.data.family_name.upper()}, {record.data.given_name} · {record.data.mrn}"
            if record is not None
            else f"patient {patient_id}"
        )
        self.setWindowTitle(f"Plan screening trial — {who}")
        self.resize(900, 780)
        self._heading(
            f"Plan screening trial — {who}",
            "Test doses of intrathecal baclofen 24 hours apart, each observed for 8 hours on an"
            " observation bed. Tick every check below to acknowledge it.",
        )
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.protocol = QComboBox()
        self.protocol.setObjectName("planProtocol")
        self.protocol.setAccessibleName("Screening protocol")
        for choice in self.protocols:
            self.protocol.addItem(choice.name, choice.id)
        self.protocol.currentIndexChanged.connect(lambda _i: self._protocol_changed())
        form.addRow("Protocol", self._cell("protocol_id", self.protocol))
        self.active_illness = QCheckBox(
            "Active illness now (MS flare, urinary infection, unhealed wound…)"
        )
        self.active_illness.setObjectName("planActiveIllness")
        self.active_illness.setAccessibleName("Active illness now")
        self.active_illness.toggled.connect(lambda _on: self.load_checks())
        form.addRow("", self.active_illness)
        self.layout_.addLayout(form)

        checks_box = QGroupBox("Start checks — a clinician must acknowledge each")
        checks_box.setObjectName("startChecksBox")
        checks_layout = QVBoxLayout(checks_box)
        self.checks_area = QWidget()
        self.checks_area.setObjectName("startChecks")
        self.checks_layout = QVBoxLayout(self.checks_area)
        self.checks_layout.setContentsMargins(0, 0, 8, 0)
        self.checks_layout.setSpacing(6)
        # Many checks scroll inside the box; the dose times stay in view.
        self.checks_scroll = QScrollArea()
        self.checks_scroll.setObjectName("startChecksScroll")
        self.checks_scroll.setWidgetResizable(True)
        self.checks_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.checks_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # It takes the room that is left; its content's height is no claim on the dialog.
        self.checks_scroll.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Ignored)
        self.checks_scroll.setWidget(self.checks_area)
        self.checks_area.setStyleSheet("QWidget#startChecks { background: white; }")
        checks_layout.addWidget(self.checks_scroll, 1)
        checks_layout.addWidget(self.errors.label_for("acknowledged", self.checks_area))
        self.layout_.addWidget(checks_box, 1)

        when_box = QGroupBox("Dose times")
        when_box.setObjectName("doseTimesBox")
        when_layout = QVBoxLayout(when_box)
        self.first_dose = MomentField("planFirstDose", "First dose", self._zone)
        self.propose_button = button("&Propose times", "proposeSchedule")
        self.propose_button.setToolTip(
            "Doses from this time on that fit opening hours and free observation beds"
        )
        self.propose_button.clicked.connect(self.propose)
        first_row = QHBoxLayout()
        first_row.addWidget(QLabel("First dose not before"))
        first_row.addWidget(self.first_dose)
        first_row.addWidget(self.propose_button)
        first_row.addStretch(1)
        when_layout.addLayout(first_row)
        when_layout.addWidget(self.errors.label_for("first_dose_at", self.first_dose))
        when_layout.addWidget(self.errors.label_for("earliest", self.propose_button))
        self.proposal_model = ProposalModel(self)
        self.proposal_table = _table("proposalTable", "Proposed dose times")
        self.proposal_table.setModel(self.proposal_model)
        self.proposal_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        fit_columns(
            self.proposal_table, ("3: 100 mcg (1.5 mL)", "Mon 30 Nov 00:00", "00:00", "00:00"), (1,)
        )
        fit_rows(self.proposal_table, 3)
        when_layout.addWidget(self.proposal_table)
        self.reasons = banner("proposalReasons", "info")
        when_layout.addWidget(self.reasons)
        self.stale_note = _label("", "fieldHelp")
        self.stale_note.setVisible(False)
        when_layout.addWidget(self.stale_note)
        self.layout_.addWidget(when_box)
        self.layout_.addWidget(self.errors.label_for("patient_id", self.protocol))
        if not self.can_plan:
            note = banner("planNotAllowed", "info")
            set_banner(note, ["Only a clinician can plan a screening trial."], "")
            self.layout_.addWidget(note)
        self.plan_button = self._buttons("Plan &trial", "planTrialButton")
        self.plan_button.clicked.connect(self.submit)
        self.plan_button.setEnabled(self.can_plan)
        self.first_dose.changed.connect(self._time_changed)

        self.load_checks()
        now = self.now().astimezone(self._zone)
        quarter = (now + dt.timedelta(minutes=14)).replace(second=0, microsecond=0)
        quarter -= dt.timedelta(minutes=quarter.minute % 15)
        self.first_dose.set_moment(quarter)
        self.propose()

    # --- choices --------------------------------------------------------------------------

    def protocol_id(self) -> str:
        return str(self.protocol.currentData() or "standard")

    def _protocol_changed(self) -> None:
        if self.proposal_model.proposal() is not None:
            self.propose()

    def load_checks(self) -> None:
        previously = {key for key, box in self.check_boxes.items() if box.isChecked()}
        while self.checks_layout.count():
            item = self.checks_layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.hide()  # gone at once, not at the next turn of the event loop
                widget.setParent(None)
                widget.deleteLater()
        self.check_boxes = {}
        checks = guarded(
            self,
            lambda: self._services.screening.start_checks(
                self._actor, self._patient_id, self.active_illness.isChecked()
            ),
            "Screening",
        )
        self.checks = list(checks or [])
        if not self.checks:
            none = _label(
                "No start checks for this patient: at least 4 years old, no active illness,"
                " no medicine or condition from the leaflet's lists.",
                "checkMessage",
            )
            self.checks_layout.addWidget(none)
            self.checks_scroll.setMinimumHeight(44)
            return
        for number, check in enumerate(self.checks):
            key = _check_key(check)
            row = QWidget()
            column = QVBoxLayout(row)
            column.setContentsMargins(0, 0, 0, 0)
            column.setSpacing(0)
            title = _CHECK_TITLES.get(check.kind, check.kind.value)
            box = QCheckBox(f"Acknowledged — {title}")
            box.setObjectName(
                f"startCheck-{check.kind.value}{'-' + check.code if check.code else ''}"
            )
            box.setProperty("startCheck", True)
            box.setAccessibleName(f"Acknowledge: {check.message}")
            box.setProperty("checkKey", key)
            box.setChecked(key in previously)
            box.toggled.connect(lambda on, b=box: set_invalid(b, False) if on else None)
            message = _label(check.message, "checkMessage")
            message.setContentsMargins(24, 0, 0, 0)
            message.setBuddy(box)
            column.addWidget(box)
            column.addWidget(message)
            if number:
                line = QFrame()
                line.setFrameShape(QFrame.Shape.HLine)
                line.setStyleSheet("color: #e4e9ef;")
                self.checks_layout.addWidget(line)
            self.checks_layout.addWidget(row)
            self.check_boxes[key] = box
        self.checks_layout.addStretch(1)
        # At least two checks in view; the box takes the room the dialog has.
        self.checks_scroll.setMinimumHeight(min(52 * len(self.checks), 120))

    def acknowledged(self) -> list[StartCheck]:
        return [c for c in self.checks if self.check_boxes[_check_key(c)].isChecked()]

    def tick_all_checks(self) -> None:
        for box in self.check_boxes.values():
            box.setChecked(True)

    # --- times ----------------------------------------------------------------------------

    def _time_changed(self) -> None:
        proposal = self.proposal_model.proposal()
        stale = proposal is not None and proposal.first_dose_at != self.first_dose.moment()
        self.stale_note.setText(
            "The times above were proposed for another first dose: press Propose times to see"
            " the doses for this time."
            if stale
            else ""
        )
        self.stale_note.setVisible(stale)

    def propose(self) -> TrialScheduleProposal | None:
        earliest = self.first_dose.moment()
        proposal = self._run(
            lambda: self._services.screening.propose_schedule(
                self._actor, self._patient_id, self.protocol_id(), earliest
            ),
            "No times to propose.",
        )
        self.proposal_model.set_proposal(proposal, self._zone)
        if proposal is None:
            set_banner(self.reasons, [])
            return None
        self.first_dose.set_moment(proposal.first_dose_at)
        lines = [f"Dose {d.number}: {d.reason}" for d in proposal.doses if d.reason]
        if lines:
            set_banner(self.reasons, ["Not exactly 24 hours apart:", *lines], "")
        else:
            set_banner(self.reasons, ["Each dose exactly 24 hours after the one before."], "")
        self._time_changed()
        self._fit_wrapped()
        return proposal

    # --- planning -------------------------------------------------------------------------

    def submit(self) -> TrialView | None:
        first = self.first_dose.moment()
        acknowledged = self.acknowledged()
        trial = self._run(
            lambda: self._services.screening.plan_trial(
                self._actor,
                self._patient_id,
                self.protocol_id(),
                first,
                self.active_illness.isChecked(),
                acknowledged,
            ),
            "Not planned.",
        )
        refused = bool(self.errors.message("acknowledged"))
        unticked = [box for box in self.check_boxes.values() if not box.isChecked()]
        for box in self.check_boxes.values():
            set_invalid(box, refused and box in unticked)
        if refused and unticked:
            self.checks_scroll.ensureWidgetVisible(unticked[0])
        self._fit_wrapped()
        if trial is None:
            return None
        self.result_trial = trial
        self.planned.emit(trial)
        self._saved("trial", "appointment")
        return trial


# --- doses ----------------------------------------------------------------------------------


class GiveDoseDialog(_Form):
    """Record the next test dose as given: time, lot and route; never within 24 h."""

    given = Signal(object)  # TrialView

    def __init__(
        self,
        services: Services,
        actor: Actor,
        trial: TrialView,
        parent: QWidget | None = None,
        *,
        bus: DataBus | None = None,
    ) -> None:
        number = trial.next_dose_number or 0
        super().__init__(services, actor, parent, bus, "giveDoseDialog", f"Give dose {number}")
        self._trial = trial
        self.number = number
        self.result_trial: TrialView | None = None
        dose = trial.dose(number)
        self.resize(620, 420)
        self._heading(f"Give test dose {number} — {trial.patient_name} · {trial.mrn}")
        summary = (
            f"{number_text(dose.dose_mcg)} mcg = {number_text(dose.volume_ml)} mL of"
            f" {number_text(dose.concentration_mcg_per_ml)} mcg/mL, intrathecal bolus over at"
            " least 1 minute."
            if dose is not None
            else "No dose to give."
        )
        self.summary = _label(summary, "doseSummary")
        self.summary.setStyleSheet("font-size: 12pt; font-weight: 600; color: #1d2b3a;")
        self.layout_.addWidget(self.summary)
        earliest = trial.next_dose_earliest_at
        if earliest is not None:
            text = (
                f"Earliest allowed: {day_time_text(earliest, self._zone)} — 24 hours after dose"
                f" {number - 1} was given. Later is fine; earlier is refused."
            )
        else:
            text = "The first dose: any time in the planned observation window."
        self.earliest = _label(text, "doseEarliest")
        self.layout_.addWidget(self.earliest)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.given_at = MomentField("givenAt", "Time given", self._zone)
        form.addRow("Time given *", self._cell("given_at", self.given_at))
        self.lot = QLineEdit()
        self.lot.setObjectName("doseLot")
        self.lot.setAccessibleName("Lot number")
        self.lot.setPlaceholderText("from the ampoule")
        form.addRow("Lot number *", self._cell("lot_number", self.lot))
        self.route = QComboBox()
        self.route.setObjectName("doseRoute")
        self.route.setAccessibleName("Route")
        self.route.setEditable(True)
        self.route.addItems(ROUTES)
        form.addRow("Route *", self._cell("route", self.route))
        self.layout_.addLayout(form)
        self.layout_.addWidget(self.errors.label_for("number", self.summary))
        self.layout_.addStretch(1)
        self.save_button = self._buttons(f"Record dose {number} given", "confirmGiveDose")
        self.save_button.clicked.connect(self.submit)
        self.given_at.set_moment(self.now())
        self.lot.setFocus()

    def submit(self) -> TrialView | None:
        trial = self._trial
        given_at = self.given_at.moment()
        lot, route = self.lot.text(), self.route.currentText()
        result = self._run(
            lambda: self._services.screening.give_dose(
                self._actor, trial.id, trial.version, self.number, given_at, lot, route
            )
        )
        if result is None:
            return None
        self.result_trial = result
        self.given.emit(result)
        self._saved("trial", "appointment")
        return result


class CorrectDoseDialog(_Form):
    """Correct what was recorded for a given dose: time, lot or route, with a reason. The
    entry as recorded is kept and shown as corrected."""

    corrected = Signal(object)  # TrialView

    def __init__(
        self,
        services: Services,
        actor: Actor,
        trial: TrialView,
        number: int,
        parent: QWidget | None = None,
        *,
        bus: DataBus | None = None,
    ) -> None:
        super().__init__(
            services, actor, parent, bus, "correctDoseDialog", f"Correct dose {number}"
        )
        self._trial = trial
        self.number = number
        self.result_trial: TrialView | None = None
        dose = trial.dose(number)
        assert dose is not None and dose.given_at is not None
        self.resize(640, 460)
        self._heading(
            f"Correct test dose {number} — {trial.patient_name} · {trial.mrn}",
            "The entry as recorded is kept and shown struck through; the trial, the board and"
            " the 24-hour spacing use the correction.",
        )
        entry = f"entry #{dose.entry_id}" if dose.entry_id is not None else "the entry"
        self.recorded = _label(
            f"As recorded ({entry}): given {day_time_text(dose.given_at, self._zone)}"
            f" by {dose.given_by or '—'} · lot {dose.lot_number or '—'} · {dose.route}",
            "doseAsRecorded",
        )
        self.recorded.setAccessibleName("The dose as recorded")
        self.recorded.setStyleSheet("font-weight: 600; color: #1d2b3a;")
        self.layout_.addWidget(self.recorded)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.given_at = MomentField("correctedGivenAt", "Time given", self._zone)
        form.addRow("Time given *", self._cell("given_at", self.given_at))
        self.lot = QLineEdit(dose.lot_number)
        self.lot.setObjectName("correctedLot")
        self.lot.setAccessibleName("Lot number")
        form.addRow("Lot number *", self._cell("lot_number", self.lot))
        self.route = QComboBox()
        self.route.setObjectName("correctedRoute")
        self.route.setAccessibleName("Route")
        self.route.setEditable(True)
        self.route.addItems(ROUTES)
        self.route.setCurrentText(dose.route)
        form.addRow("Route *", self._cell("route", self.route))
        self.reason = QLineEdit()
        self.reason.setObjectName("correctionReason")
        self.reason.setAccessibleName("Reason for the correction")
        self.reason.setPlaceholderText("e.g. Time copied from the wrong line of the chart")
        form.addRow("Reason *", self._cell("reason", self.reason))
        self.layout_.addLayout(form)
        self.rules = _label(
            "The corrected time must be at least 24 hours after the previous dose and before"
            " the next one given, at least 4 hours before this dose's response, and keep its"
            " observations on their side of the dose. The amount is the protocol's: a"
            " different amount given is a protocol deviation — stop the trial instead.",
            "sectionHelp",
        )
        self.layout_.addWidget(self.rules)
        self.layout_.addWidget(self.errors.label_for("number", self.recorded))
        self.layout_.addStretch(1)
        self.save_button = self._buttons("Save correction", "confirmCorrectDose")
        self.save_button.clicked.connect(self.submit)
        self.given_at.set_moment(dose.given_at)
        self.reason.setFocus()

    def submit(self) -> TrialView | None:
        trial = self._trial
        correction = DoseCorrection(
            given_at=self.given_at.moment(),
            lot_number=self.lot.text(),
            route=self.route.currentText(),
            reason=self.reason.text(),
        )
        result = self._run(
            lambda: self._services.screening.correct_dose(
                self._actor, trial.id, trial.version, self.number, correction
            )
        )
        if result is None:
            return None
        self.result_trial = result
        self.corrected.emit(result)
        self._saved("trial", "appointment")
        return result


# --- observations ---------------------------------------------------------------------------


class ObservationDialog(_Form):
    """One observation: scores, vitals, adverse effects and notes; or a correction of one."""

    recorded = Signal(object)  # ObservationView

    def __init__(
        self,
        services: Services,
        actor: Actor,
        trial: TrialView,
        parent: QWidget | None = None,
        *,
        corrects: ObservationView | None = None,
        dose_number: int | None = None,
        bus: DataBus | None = None,
    ) -> None:
        title = "Correct observation" if corrects else "Record observation"
        super().__init__(services, actor, parent, bus, "observationDialog", title)
        self._trial = trial
        self._corrects = corrects
        self.result_observation: ObservationView | None = None
        protocol = next(
            (
                p
                for p in (guarded(self, lambda: services.screening.protocols(actor)) or [])
                if p.id == trial.protocol_id
            ),
            None,
        )
        self._vitals_watch_hours = protocol.vitals_watch_hours if protocol else 2.0
        choices = guarded(self, lambda: services.screening.adverse_effect_choices(actor)) or []
        self.resize(1000, 720)
        self._heading(f"{title} — {trial.patient_name} · {trial.mrn}")
        if corrects is not None:
            note = banner("correctionBanner", "info")
            set_banner(
                note,
                [
                    "Correcting the observation of"
                    f" {day_time_text(corrects.observed_at, self._zone)} by"
                    f" {corrects.recorded_by}. The original stays in the timeline, struck"
                    " through; change what was wrong below."
                ],
                "",
            )
            self.layout_.addWidget(note)
        self.overdose_warning = urgent_banner("overdoseWarning")
        self.layout_.addWidget(self.overdose_warning)

        top = QHBoxLayout()
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.dose = QComboBox()
        self.dose.setObjectName("observationDose")
        self.dose.setAccessibleName("Dose observed")
        for dose in trial.doses:
            if dose.given:
                self.dose.addItem(
                    f"Dose {dose.number}: {number_text(dose.dose_mcg)} mcg, given"
                    f" {day_time_text(dose.given_at or dose.at or self.now(), self._zone)}",
                    dose.number,
                )
            elif dose.number == trial.next_dose_number:
                self.dose.addItem(
                    f"Dose {dose.number}: {number_text(dose.dose_mcg)} mcg, not given yet"
                    " (baseline only)",
                    dose.number,
                )
        form.addRow("Dose", self._cell("dose_number", self.dose))
        self.observed_at = MomentField("observedAt", "Time observed", self._zone)
        form.addRow("Time observed *", self._cell("observed_at", self.observed_at))
        self.baseline = QCheckBox("Baseline (before the dose)")
        self.baseline.setObjectName("observationBaseline")
        self.baseline.setAccessibleName("Baseline before the dose")
        form.addRow("", self._cell("is_baseline", self.baseline))
        top.addLayout(form, 1)
        self.layout_.addLayout(top)

        columns = QHBoxLayout()
        columns.setSpacing(12)
        left = QVBoxLayout()
        scores_box = QGroupBox("Modified Ashworth (0, 1, 1+, 2, 3, 4) — leave blank if not scored")
        scores_box.setObjectName("ashworthBox")
        grid = QGridLayout(scores_box)
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(4)
        for column, text in enumerate(("Muscle group", "Left", "Right")):
            head = QLabel(text)
            head.setStyleSheet("color: #52606d;")
            grid.addWidget(head, 0, column)
        self.ashworth: dict[str, QComboBox] = {}
        extra = {}
        if corrects is not None:
            for key, score in corrects.ashworth.items():
                group, side = split_ashworth_key(key)
                if side is None or group not in MUSCLE_GROUPS:
                    extra[key] = score
        row_number = 1
        for group in MUSCLE_GROUPS:
            grid.addWidget(QLabel(group), row_number, 0)
            for column, (side, word) in enumerate(SIDES, start=1):
                combo = self._score_combo(ashworth_key(group, side), f"{group}, {word}")
                grid.addWidget(combo, row_number, column)
            row_number += 1
        for key in sorted(extra, key=str.casefold):
            grid.addWidget(QLabel(key), row_number, 0)
            combo = self._score_combo(key, key)
            grid.addWidget(combo, row_number, 1, 1, 2)
            row_number += 1
        grid.addWidget(self.errors.label_for("ashworth", scores_box), row_number, 0, 1, 3)
        grid.setColumnStretch(0, 1)
        left.addWidget(scores_box)
        penn_form = QFormLayout()
        self.penn = QComboBox()
        self.penn.setObjectName("pennSpasmFrequency")
        self.penn.setAccessibleName("Penn spasm frequency")
        self.penn.addItem("not scored", None)
        for value, text in PENN_CHOICES:
            self.penn.addItem(text, value)
        penn_form.addRow("Penn spasm frequency", self._cell("penn_spasm_frequency", self.penn))
        left.addLayout(penn_form)

        self.vitals_box = QGroupBox("Vitals")
        self.vitals_box.setObjectName("vitalsBox")
        vitals = QGridLayout(self.vitals_box)
        vitals.setHorizontalSpacing(14)
        vitals.setVerticalSpacing(2)
        self.vitals_watch = _label("", "vitalsWatch")
        vitals.addWidget(self.vitals_watch, 0, 0, 1, 4)
        self.heart_rate = BlankSpinBox("heartRate", "Heart rate", 250, " bpm")
        self.respiratory_rate = BlankSpinBox("respiratoryRate", "Breathing rate", 80, " /min")
        self.spo2 = BlankSpinBox("spo2", "SpO2", 100, " %")
        for column, (caption, field, widget) in enumerate(
            (
                ("Heart rate", "heart_rate_bpm", self.heart_rate),
                ("Breathing rate", "respiratory_rate_per_min", self.respiratory_rate),
                ("SpO2", "spo2_pct", self.spo2),
            )
        ):
            name = QLabel(caption)
            name.setStyleSheet("font-weight: 400;")
            name.setBuddy(widget)
            vitals.addWidget(name, 1, column)
            vitals.addWidget(widget, 2, column)
            vitals.addWidget(self.errors.label_for(field, widget), 3, column)
        vitals.setColumnStretch(3, 1)
        left.addWidget(self.vitals_box)

        notes_form = QFormLayout()
        self.notes = QPlainTextEdit()
        self.notes.setObjectName("observationNotes")
        self.notes.setAccessibleName("Notes")
        self.notes.setFixedHeight(56)
        notes_form.addRow("Notes", self._cell("notes", self.notes))
        left.addLayout(notes_form)
        left.addStretch(1)
        columns.addLayout(left, 11)

        effects_box = QGroupBox("Adverse effects (patient leaflet)")
        effects_box.setObjectName("effectsBox")
        effects_layout = QVBoxLayout(effects_box)
        legend = _label("⚠ in red: an overdose sign — tell the clinician at once.", "fieldHelp")
        legend.setStyleSheet(f"color: {_DARK_RED}; font-weight: 400;")
        effects_layout.addWidget(legend)
        self.effects_model = EffectChoiceModel(choices, self)
        self.effects = QListView()
        self.effects.setObjectName("adverseEffects")
        self.effects.setAccessibleName("Adverse effects")
        self.effects.setModel(self.effects_model)
        self.effects.setWordWrap(True)
        self.effects.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.effects.setMinimumHeight(150)
        effects_layout.addWidget(self.effects, 1)
        effects_layout.addWidget(self.errors.label_for("adverse_effect_codes", self.effects))
        columns.addWidget(effects_box, 8)
        self.layout_.addLayout(columns, 1)
        self.layout_.addWidget(self.errors.label_for("corrects_id", self.notes))
        self.save_button = self._buttons(
            "Save correction" if corrects else "Save observation", "saveObservation"
        )
        self.save_button.clicked.connect(self.submit)

        self.dose.currentIndexChanged.connect(lambda _i: self._update_watch())
        self.observed_at.changed.connect(self._update_watch)
        self.baseline.toggled.connect(lambda _on: self._update_watch())
        self.effects_model.checked_changed.connect(self._update_overdose)
        self._prefill(dose_number)
        self._update_watch()
        self._update_overdose()

    def _score_combo(self, key: str, accessible: str) -> QComboBox:
        combo = QComboBox()
        slug = re.sub(r"[^a-z0-9]+", "_", key.casefold()).strip("_")
        combo.setObjectName(f"ashworth_{slug}")
        combo.setAccessibleName(f"Modified Ashworth, {accessible}")
        combo.addItem("", None)
        for score in ASHWORTH_SCORES:
            combo.addItem(score, score)
        combo.setMinimumWidth(64)
        self.ashworth[key] = combo
        return combo

    def _prefill(self, dose_number: int | None) -> None:
        trial, old = self._trial, self._corrects
        if old is not None:
            self.set_dose(old.dose_number)
            self.dose.setEnabled(False)
            self.observed_at.set_moment(old.observed_at)
            self.baseline.setChecked(old.is_baseline)
            self.set_scores(old.ashworth)
            self.set_penn(old.penn_spasm_frequency)
            self.heart_rate.set_number(old.heart_rate_bpm)
            self.respiratory_rate.set_number(old.respiratory_rate_per_min)
            self.spo2.set_number(old.spo2_pct)
            self.effects_model.set_checked_codes(e.code for e in old.adverse_effects)
            self.notes.setPlainText(old.notes)
            return
        if dose_number is None:
            dose_number = trial.awaiting_response_number or trial.next_dose_number
        if dose_number is None:
            given = [d.number for d in trial.doses if d.given]
            dose_number = given[-1] if given else None
        if dose_number is not None:
            self.set_dose(dose_number)
        chosen = trial.dose(dose_number) if dose_number is not None else None
        self.baseline.setChecked(chosen is not None and not chosen.given)
        self.observed_at.set_moment(self.now())

    def set_dose(self, number: int) -> None:
        index = self.dose.findData(number)
        if index >= 0:
            self.dose.setCurrentIndex(index)

    def dose_number(self) -> int | None:
        data = self.dose.currentData()
        return int(data) if data is not None else None

    def set_scores(self, scores: Mapping[str, str]) -> None:
        for key, combo in self.ashworth.items():
            index = combo.findData(scores.get(key))
            combo.setCurrentIndex(max(index, 0))

    def set_score(self, group: str, side: str | None, score: str | None) -> None:
        key = ashworth_key(group, side) if side else group
        combo = self.ashworth[key]
        combo.setCurrentIndex(max(combo.findData(score), 0))

    def scores(self) -> dict[str, str]:
        return {
            key: str(combo.currentData())
            for key, combo in self.ashworth.items()
            if combo.currentData() is not None
        }

    def set_penn(self, value: int | None) -> None:
        self.penn.setCurrentIndex(max(self.penn.findData(value), 0))

    def _update_watch(self) -> None:
        number = self.dose_number()
        dose = self._trial.dose(number) if number is not None else None
        hours = number_text(self._vitals_watch_hours)
        active = False
        if dose is None or dose.given_at is None:
            text = (
                f"Vitals watch: the first {hours} h after the dose — check heart rate, breathing"
                " and SpO2 often."
            )
        else:
            start = dose.given_at
            end = start + dt.timedelta(hours=self._vitals_watch_hours)
            at = self.observed_at.moment()
            active = not self.baseline.isChecked() and start <= at <= end
            window = f"{clock_text(start, self._zone)}–{clock_text(end, self._zone)}"
            text = (
                f"⚠ In the vitals watch ({window}, the first {hours} h after dose"
                f" {dose.number}): record heart rate, breathing rate and SpO2."
                if active
                else f"Vitals watch for dose {dose.number}: {window} (the first {hours} h)."
            )
        self.vitals_watch.setText(text)
        self.vitals_watch.setProperty("active", active)
        self.vitals_box.setProperty("watch", active)
        _repolish(self.vitals_watch)
        _repolish(self.vitals_box)

    def in_vitals_watch(self) -> bool:
        return bool(self.vitals_box.property("watch"))

    def _update_overdose(self) -> None:
        signs = self.effects_model.checked_overdose_labels()
        if signs:
            self.overdose_warning.setText(
                f"<b>⚠ Overdose sign ticked: {', '.join(signs)}.</b> Tell the clinician now;"
                " watch breathing and consciousness."
            )
        self.overdose_warning.setVisible(bool(signs))

    def collect(self) -> ObservationInput:
        return ObservationInput(
            observed_at=self.observed_at.moment(),
            is_baseline=self.baseline.isChecked(),
            penn_spasm_frequency=self.penn.currentData(),
            heart_rate_bpm=self.heart_rate.number(),
            respiratory_rate_per_min=self.respiratory_rate.number(),
            spo2_pct=self.spo2.number(),
            ashworth=self.scores(),
            adverse_effect_codes=tuple(
                code
                for code in (
                    self.effects_model.data(self.effects_model.index(row), ROW_ROLE)
                    for row in range(self.effects_model.rowCount())
                )
                if isinstance(code, str) and code in self.effects_model.checked_codes()
            ),
            notes=self.notes.toPlainText(),
            corrects_id=self._corrects.id if self._corrects is not None else None,
        )

    def submit(self) -> ObservationView | None:
        number = self.dose_number()
        if number is None:
            self.errors.show([FieldError("dose_number", "There is no dose to observe.")])
            return None
        data = self.collect()
        result = self._run(
            lambda: self._services.screening.record_observation(
                self._actor, self._trial.id, number, data
            )
        )
        if result is None:
            return None
        self.result_observation = result
        self.recorded.emit(result)
        self._saved("trial")
        return result


# --- the decision ---------------------------------------------------------------------------


def suggestion_lines(effective_dose_mcg: float, effect_hours: float | None) -> tuple[str, str]:
    """(the suggested starting daily dose in mcg/day and mcg/h, why) — or ("", what is
    missing)."""
    if effect_hours is None or not 0 < effect_hours <= 48:
        return "", "Enter how long the effect lasted to get the suggested starting daily dose."
    dose = starting_dose_mcg_per_day(effective_dose_mcg, effect_hours)
    long_effect = effect_hours > LONG_EFFECT_HOURS
    factor = "1 ×" if long_effect else "2 ×"
    why = (
        f"{factor} the effective dose of {number_text(effective_dose_mcg)} mcg, infused over"
        f" 24 h: the effect lasted {number_text(effect_hours)} h,"
        f" {'more than' if long_effect else 'not more than'} {number_text(LONG_EFFECT_HOURS)} h."
        " No increase in the first 24 h after implant."
    )
    return both_units(dose), why


class ResponseDialog(_Form):
    """The clinician's decision on a dose: positive or inadequate, with the change from
    baseline beside it and, when positive, the suggested starting dose."""

    decided = Signal(object)  # TrialView

    def __init__(
        self,
        services: Services,
        actor: Actor,
        trial: TrialView,
        parent: QWidget | None = None,
        *,
        bus: DataBus | None = None,
    ) -> None:
        number = trial.awaiting_response_number or 0
        super().__init__(
            services, actor, parent, bus, "responseDialog", f"Response to dose {number}"
        )
        self._trial = trial
        self.number = number
        self.result_trial: TrialView | None = None
        dose = trial.dose(number)
        self.dose_mcg = dose.dose_mcg if dose is not None else 0.0
        self.last_dose = bool(trial.doses) and number == max(d.number for d in trial.doses)
        self.resize(720, 640)
        self._heading(
            f"Response to dose {number} ({number_text(self.dose_mcg)} mcg) — {trial.patient_name}"
            f" · {trial.mrn}",
            "A positive response is a clear decrease in muscle tone and/or in the frequency or"
            " severity of spasms. The decision is the clinician's.",
        )
        change = guarded(self, lambda: services.screening.baseline_change(actor, trial.id, number))
        change_box = QGroupBox("Change from baseline")
        change_box.setObjectName("responseChangeBox")
        change_layout = QVBoxLayout(change_box)
        self.change_model = BaselineChangeModel(self)
        self.change_model.set_change(change)
        self.change_table = _table("responseChangeTable", "Change from baseline")
        self.change_table.setModel(self.change_model)
        self.change_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        fit_columns(self.change_table, ("Knee extensors (R)      ", "Before  ", "After  "))
        fit_rows(self.change_table, min(self.change_model.rowCount(), 8))
        if self.change_model.rowCount() > 8:
            self.change_table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        change_layout.addWidget(self.change_table)
        self.change_table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.change_table.setVisible(bool(self.change_model.rowCount()))
        if not self.change_model.rowCount():
            change_layout.addWidget(_label("No scores recorded for this dose yet.", "sectionHelp"))
        self.layout_.addWidget(change_box)

        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        choice = QWidget()
        choice_row = QHBoxLayout(choice)
        choice_row.setContentsMargins(0, 0, 0, 0)
        self.positive = QRadioButton("&Positive — a candidate for a pump")
        self.positive.setObjectName("responsePositive")
        self.positive.setAccessibleName("Positive response")
        self.inadequate = QRadioButton("&Inadequate")
        self.inadequate.setObjectName("responseInadequate")
        self.inadequate.setAccessibleName("Inadequate response")
        self.choice = QButtonGroup(self)
        self.choice.addButton(self.positive)
        self.choice.addButton(self.inadequate)
        choice_row.addWidget(self.positive)
        choice_row.addWidget(self.inadequate)
        choice_row.addStretch(1)
        form.addRow("Response *", self._cell("response", choice))
        self.effect_hours = HoursField("effectHours", "Effect duration in hours")
        self.effect_help = _label(
            "how long the effect lasted (for a positive response)", "fieldHelp"
        )
        form.addRow(
            "Effect lasted", self._cell("effect_hours", self.effect_hours, self.effect_help)
        )
        self.decided_at = MomentField("decidedAt", "Time of the decision", self._zone)
        form.addRow("Decided at", self._cell("recorded_at", self.decided_at))
        self.notes = QPlainTextEdit()
        self.notes.setObjectName("responseNotes")
        self.notes.setAccessibleName("Notes on the response")
        self.notes.setFixedHeight(56)
        form.addRow("Notes", self._cell("notes", self.notes))
        self.layout_.addLayout(form)
        self.layout_.addWidget(self.errors.label_for("number", self.notes))

        self.suggestion_box = QGroupBox("Suggested starting daily dose after implant")
        self.suggestion_box.setObjectName("suggestionBox")
        suggestion_layout = QVBoxLayout(self.suggestion_box)
        self.suggested = _label("", "suggestedDose", wrap=False)
        self.suggested.setAccessibleName("Suggested starting dose")
        self.suggested_why = _label("", "sectionHelp")
        suggestion_layout.addWidget(self.suggested)
        suggestion_layout.addWidget(self.suggested_why)
        self.layout_.addWidget(self.suggestion_box)
        self.outcome = banner("responseOutcome", "info")
        self.layout_.addWidget(self.outcome)
        self.layout_.addStretch(1)
        self.save_button = self._buttons("Record response", "saveResponse")
        self.save_button.clicked.connect(self.submit)
        self.positive.toggled.connect(lambda _on: self._update())
        self.inadequate.toggled.connect(lambda _on: self._update())
        self.effect_hours.valueChanged.connect(lambda _v: self._update())
        self.decided_at.set_moment(self.now())
        self._update()

    def response(self) -> DoseResponse | None:
        if self.positive.isChecked():
            return DoseResponse.POSITIVE
        if self.inadequate.isChecked():
            return DoseResponse.INADEQUATE
        return None

    def _update(self) -> None:
        response = self.response()
        positive = response is DoseResponse.POSITIVE
        self.effect_hours.setEnabled(positive)
        self.suggestion_box.setVisible(positive)
        if positive:
            text, why = suggestion_lines(self.dose_mcg, self.effect_hours.hours())
            self.suggested.setText(text)
            self.suggested.setVisible(bool(text))
            self.suggested_why.setText(why)
        messages: list[str] = []
        if positive:
            messages.append("The trial ends: the patient is a candidate for a pump.")
        elif response is DoseResponse.INADEQUATE:
            if self.last_dose:
                messages.append(
                    "This is the protocol's last dose: an inadequate response ends the trial —"
                    " not a candidate for a pump."
                )
            else:
                messages.append(
                    f"Dose {self.number + 1} may follow 24 hours after dose {self.number} was"
                    " given."
                )
        set_banner(self.outcome, messages, "")

    def submit(self) -> TrialView | None:
        response = self.response()
        if response is None:
            self.errors.show([FieldError("response", "Choose positive or inadequate.")])
            set_banner(self.error_banner, ["Not saved."])
            return None
        trial = self._trial
        hours = self.effect_hours.hours() if response is DoseResponse.POSITIVE else None
        at = self.decided_at.moment()
        notes = self.notes.toPlainText()
        result = self._run(
            lambda: self._services.screening.record_response(
                self._actor, trial.id, trial.version, self.number, response, at, hours, notes
            )
        )
        if result is None:
            return None
        self.result_trial = result
        self.decided.emit(result)
        self._saved("trial", "appointment")
        return result


class EffectDurationDialog(_Form):
    """How long a positive dose's effect lasted, when it is known after the decision."""

    saved = Signal(object)  # TrialView

    def __init__(
        self,
        services: Services,
        actor: Actor,
        trial: TrialView,
        parent: QWidget | None = None,
        *,
        bus: DataBus | None = None,
    ) -> None:
        super().__init__(
            services, actor, parent, bus, "effectDurationDialog", "Duration of the effect"
        )
        self._trial = trial
        self.result_trial: TrialView | None = None
        self.dose_mcg = trial.effective_dose_mcg or 0.0
        self.resize(560, 300)
        self._heading(
            f"Duration of the effect — {trial.patient_name} · {trial.mrn}",
            f"Positive response to {number_text(self.dose_mcg)} mcg.",
        )
        form = QFormLayout()
        self.effect_hours = HoursField("effectHours", "Effect duration in hours")
        if trial.effect_duration_hours is not None:
            self.effect_hours.setValue(trial.effect_duration_hours)
        form.addRow("Effect lasted *", self._cell("effect_hours", self.effect_hours))
        self.layout_.addLayout(form)
        self.suggested_caption = _label(
            "Suggested starting daily dose after implant", "sectionTitle"
        )
        self.suggested = _label("", "suggestedDose", wrap=False)
        self.suggested.setAccessibleName("Suggested starting dose")
        self.suggested_why = _label("", "sectionHelp")
        self.layout_.addWidget(self.suggested_caption)
        self.layout_.addWidget(self.suggested)
        self.layout_.addWidget(self.suggested_why)
        self.layout_.addStretch(1)
        self.save_button = self._buttons("Save", "saveEffectDuration")
        self.save_button.clicked.connect(self.submit)
        self.effect_hours.valueChanged.connect(lambda _v: self._update())
        self._update()

    def _update(self) -> None:
        text, why = suggestion_lines(self.dose_mcg, self.effect_hours.hours())
        self.suggested.setText(text)
        self.suggested.setVisible(bool(text))
        self.suggested_caption.setVisible(bool(text))
        self.suggested_why.setText(why)

    def submit(self) -> TrialView | None:
        hours = self.effect_hours.hours()
        if hours is None:
            self.errors.show([FieldError("effect_hours", "Enter how long the effect lasted.")])
            return None
        trial = self._trial
        result = self._run(
            lambda: self._services.screening.set_effect_duration(
                self._actor, trial.id, trial.version, hours
            )
        )
        if result is None:
            return None
        self.result_trial = result
        self.saved.emit(result)
        self._saved("trial")
        return result


class StopTrialDialog(_Form):
    """End the trial early, for an adverse event or by the clinician's decision."""

    stopped = Signal(object)  # TrialView

    def __init__(
        self,
        services: Services,
        actor: Actor,
        trial: TrialView,
        parent: QWidget | None = None,
        *,
        bus: DataBus | None = None,
    ) -> None:
        super().__init__(services, actor, parent, bus, "stopTrialDialog", "Stop screening trial")
        self._trial = trial
        self.result_trial: TrialView | None = None
        self.resize(600, 380)
        self._heading(
            f"Stop the screening trial — {trial.patient_name} · {trial.mrn}",
            "The trial ends now; doses not given are not given and their beds are freed.",
        )
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        causes = QWidget()
        row = QHBoxLayout(causes)
        row.setContentsMargins(0, 0, 0, 0)
        self.adverse = QRadioButton("An &adverse event")
        self.adverse.setObjectName("stopCauseAdverse")
        self.adverse.setAccessibleName("Stopped for an adverse event")
        self.clinician = QRadioButton("The &clinician's decision")
        self.clinician.setObjectName("stopCauseClinician")
        self.clinician.setAccessibleName("Stopped by the clinician's decision")
        group = QButtonGroup(self)
        group.addButton(self.adverse)
        group.addButton(self.clinician)
        any_given = any(d.given for d in trial.doses)
        (self.adverse if any_given else self.clinician).setChecked(True)
        row.addWidget(self.adverse)
        row.addWidget(self.clinician)
        row.addStretch(1)
        form.addRow("Cause *", self._cell("cause", causes))
        self.reason = QLineEdit()
        self.reason.setObjectName("stopReason")
        self.reason.setAccessibleName("Reason for stopping")
        self.reason.setPlaceholderText("e.g. Respiratory depression, RR 8/min")
        form.addRow("Reason *", self._cell("reason", self.reason))
        self.stopped_at = MomentField("stoppedAt", "Time stopped", self._zone)
        form.addRow("Stopped at", self._cell("stopped_at", self.stopped_at))
        self.layout_.addLayout(form)
        self.layout_.addWidget(self.errors.label_for("status", self.reason))
        self.layout_.addStretch(1)
        self.save_button = self._buttons("Stop trial", "confirmStopTrial")
        self.save_button.clicked.connect(self.submit)
        self.stopped_at.set_moment(self.now())
        self.reason.setFocus()

    def cause(self) -> StopCause:
        return StopCause.ADVERSE_EVENT if self.adverse.isChecked() else StopCause.CLINICIAN

    def submit(self) -> TrialView | None:
        trial = self._trial
        cause, reason, at = self.cause(), self.reason.text(), self.stopped_at.moment()
        result = self._run(
            lambda: self._services.screening.stop_trial(
                self._actor, trial.id, trial.version, cause, reason, at
            ),
            "Not stopped.",
        )
        if result is None:
            return None
        self.result_trial = result
        self.stopped.emit(result)
        self._saved("trial", "appointment")
        return result


# --- the trial panel ------------------------------------------------------------------------


def _trial_phase(trial: TrialView, now: dt.datetime) -> tuple[object, ...]:
    """What changes the panel's actions as time passes (assess from, next dose allowed)."""
    number = trial.awaiting_response_number
    dose = trial.dose(number) if number is not None else None
    return (
        trial.version,
        dose is not None and dose.assess_from is not None and now >= dose.assess_from,
        dose is not None and dose.observe_until is not None and now >= dose.observe_until,
        trial.next_dose_earliest_at is not None and now >= trial.next_dose_earliest_at,
    )


class TrialPanel(QWidget):
    """One trial: status, doses, observation timeline, change from baseline, decision, and
    the actions the signed-in user may take."""

    trial_loaded = Signal(object)  # TrialView, or None when nothing is shown

    def __init__(
        self, services: Services, actor: Actor, bus: DataBus, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("trialPanel")
        self.setStyleSheet(LOCAL_STYLE)
        self._services = services
        self._actor = actor
        self._bus = bus
        self._zone = services.settings.get()[0].zone
        self.can_decide = can(actor, Permission.RECORD_SCREENING_RESPONSE)
        self.can_observe = can(actor, Permission.RECORD_VITALS)
        self._trial_id: int | None = None
        self._trial: TrialView | None = None
        self._phase: tuple[object, ...] = ()
        self._vitals_watch_hours = 2.0
        self._protocols: list[ProtocolChoice] = []
        self.leaflet_signs: tuple[str, ...] = ()
        self.overdose_signs: tuple[str, ...] = ()
        self.dialog: QDialog | None = None

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.placeholder = _label(
            "Select a dose on the board to see its trial.", "trialPlaceholder"
        )
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        outer.addWidget(self.placeholder)
        self.content = QWidget()
        self.content.setObjectName("trialContent")
        outer.addWidget(self.content, 1)
        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)

        header = QHBoxLayout()
        self.title = _label("", "trialTitle", wrap=False)
        header.addWidget(self.title)
        header.addSpacing(12)
        self.subtitle = _label("", "trialSubtitle")
        header.addWidget(self.subtitle, 3)
        header.addSpacing(12)
        self.status = _label("", "trialStatus")
        self.status.setAccessibleName("Trial status")
        self.status.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        header.addWidget(self.status, 2)
        layout.addLayout(header)
        self.urgent = urgent_banner("trialOverdoseBanner")
        layout.addWidget(self.urgent)

        actions = QHBoxLayout()
        self.give_button = primary_button("&Give dose…", "giveDoseButton")
        self.give_button.setDefault(False)
        self.give_button.clicked.connect(self.give_dose)
        self.observe_button = button("Record &observation…", "recordObservationButton")
        self.observe_button.clicked.connect(self.record_observation)
        self.correct_button = button("Co&rrect observation…", "correctObservationButton")
        self.correct_button.setToolTip("Correct the selected observation; the original is kept")
        self.correct_button.clicked.connect(self.correct_selected)
        self.correct_dose_button = button("Correct dos&e…", "correctDoseButton")
        self.correct_dose_button.setAccessibleName("Correct the selected dose")
        self.correct_dose_button.setToolTip(
            "Correct the selected given dose (time, lot, route); the entry as recorded is kept"
        )
        self.correct_dose_button.clicked.connect(self.correct_dose)
        self.response_button = primary_button("Record &response…", "recordResponseButton")
        self.response_button.setDefault(False)
        self.response_button.clicked.connect(self.record_response)
        self.effect_button = button("Effect &duration…", "effectDurationButton")
        self.effect_button.clicked.connect(self.set_effect_duration)
        self.stop_button = button("&Stop trial…", "stopTrialButton")
        self.stop_button.clicked.connect(self.stop_trial)
        for widget in (
            self.give_button,
            self.correct_dose_button,
            self.observe_button,
            self.correct_button,
            self.response_button,
            self.effect_button,
            self.stop_button,
        ):
            actions.addWidget(widget)
        self.action_hint = _label("", "sectionHelp")
        actions.addWidget(self.action_hint, 1)
        layout.addLayout(actions)
        for widget in (
            self.give_button,
            self.correct_dose_button,
            self.response_button,
            self.effect_button,
        ):
            widget.setVisible(self.can_decide)
        self.stop_button.setVisible(self.can_decide)
        self.observe_button.setVisible(self.can_observe)
        self.correct_button.setVisible(self.can_observe)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("trialSplitter")
        self.splitter.setChildrenCollapsible(False)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.setSpacing(3)
        self.doses_model = DosesModel(self)
        self.doses_table = _table("dosesTable", "Doses of the trial")
        self.doses_table.setModel(self.doses_model)
        self.doses_table.selectionModel().selectionChanged.connect(
            lambda *_args: self._update_actions()
        )
        self.doses_table.doubleClicked.connect(lambda _index: self.correct_dose())
        fit_columns(
            self.doses_table,
            ("3: 100 mcg ✎", "Thu 26 Nov 08:00 · clinician", "00:00", "00:00"),
        )
        self.doses_table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        fit_rows(self.doses_table, 3)
        left_layout.addWidget(self.doses_table)
        left_layout.addSpacing(4)
        caption = QHBoxLayout()
        caption.addWidget(_label("Observations", "sectionTitle", wrap=False))
        legend = _label(
            "corrected records stay, struck through · vitals of the first 2 h shaded",
            "sectionHelp",
        )
        caption.addWidget(legend, 1)
        left_layout.addLayout(caption)
        self.observations_model = ObservationsModel(self)
        self.observations_table = _table("observationsTable", "Observation timeline")
        self.observations_table.setModel(self.observations_model)
        fit_columns(
            self.observations_table,
            (
                "Thu 00:00",
                "+10 h 00 min",
                "0",
                "Correction",
                "000",
                "00",
                "100",
                "0",
                "Hip add L1+ R1+ · Knee flex",
                "⚠ Drowsiness, dizziness",
                "clinician",
            ),
        )
        self.observations_table.selectionModel().selectionChanged.connect(
            lambda *_args: self._update_actions()
        )
        self.observations_table.doubleClicked.connect(lambda _index: self.correct_selected())
        left_layout.addWidget(self.observations_table, 1)
        self.splitter.addWidget(left)

        self.decision_box = QGroupBox("Decision")
        self.decision_box.setObjectName("decisionBox")
        decision_layout = QVBoxLayout(self.decision_box)
        decision_layout.setSpacing(4)
        self.change_caption = _label("", "sectionHelp")
        decision_layout.addWidget(self.change_caption)
        self.change_model = BaselineChangeModel(self)
        self.change_table = _table("baselineChangeTable", "Change from baseline")
        self.change_table.setModel(self.change_model)
        self.change_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.change_table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        fit_columns(self.change_table, ("Knee extensors (R)", "1+", "1+"))
        decision_layout.addWidget(self.change_table, 1)
        self.decision = _label("", "decisionText")
        self.decision.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.suggested_caption = _label(
            "Suggested starting daily dose after implant", "sectionTitle"
        )
        self.suggested = _label("", "suggestedStartingDose", wrap=False)
        self.suggested.setAccessibleName("Suggested starting dose")
        self.suggested.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.suggested_why = _label("", "sectionHelp")
        decision_layout.addWidget(self.decision)
        decision_layout.addWidget(self.suggested_caption)
        decision_layout.addWidget(self.suggested)
        decision_layout.addWidget(self.suggested_why)
        self.decision_stretch = QWidget()
        decision_layout.addWidget(self.decision_stretch, 1)
        self.splitter.addWidget(self.decision_box)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        change_width = sum(self.change_table.columnWidth(c) for c in range(3))
        change_width += QFontMetrics(self.change_table.font()).horizontalAdvance("−2 points") + 24
        change_width += self.change_table.verticalScrollBar().sizeHint().width()
        self.splitter.setSizes([700, change_width + 48])
        layout.addWidget(self.splitter, 1)

        self.timer = QTimer(self)
        self.timer.setObjectName("trialPanelTimer")
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(lambda: self.tick())
        bus.changed.connect(self._on_changed)
        self._show_nothing()

    # --- loading --------------------------------------------------------------------------

    def trial(self) -> TrialView | None:
        return self._trial

    def trial_id(self) -> int | None:
        return self._trial_id

    def now(self) -> dt.datetime:
        return self._services.context.now()

    def show_trial(self, trial_id: int | None) -> None:
        if trial_id != self._trial_id:
            self._trial_id = trial_id
            self.observations_table.clearSelection()
        self.reload()

    def reload(self) -> None:
        if self._trial_id is None:
            self._show_nothing()
            return
        trial_id = self._trial_id
        actor = self._actor
        screening = self._services.screening

        Loaded = tuple[TrialView, list[ObservationView], tuple[str, ...], BaselineChange | None]

        def load() -> Loaded:
            trial = screening.trial(actor, trial_id)
            observations = screening.observations(actor, trial_id)
            signs = screening.overdose_signs_present(actor, trial_id)
            focus = self.focus_dose(trial)
            change = screening.baseline_change(actor, trial_id, focus) if focus else None
            return trial, observations, signs, change

        loaded = guarded(self, load, "Screening")
        if loaded is None:
            self._show_nothing()
            return
        trial, observations, signs, change = loaded
        if not self.leaflet_signs:  # reference lists: read once
            self.leaflet_signs = (
                guarded(self, lambda: screening.leaflet_overdose_signs(actor), "Screening") or ()
            )
            self._protocols = guarded(self, lambda: screening.protocols(actor)) or []
        for protocol in self._protocols:
            if protocol.id == trial.protocol_id:
                self._vitals_watch_hours = protocol.vitals_watch_hours
        self._trial = trial
        self.overdose_signs = signs
        self._phase = _trial_phase(trial, self.now())
        self.placeholder.setVisible(False)
        self.content.setVisible(True)
        self._show_header(trial)
        self._show_urgent(signs)
        keep = self.selected_observation()
        kept_dose = self.selected_dose()
        self.doses_model.set_trial(trial, self._zone)
        fit_rows(self.doses_table, max(3, self.doses_model.rowCount()))
        if kept_dose is not None:
            for index in range(self.doses_model.rowCount()):
                dose = self.doses_model.dose_at(index)
                if dose is not None and dose.number == kept_dose.number:
                    self.doses_table.selectRow(index)
        self.observations_model.set_rows(observations, self._zone, self._vitals_watch_hours)
        if keep is not None:
            row = self.observations_model.row_of(keep.id)
            if row is not None:
                self.observations_table.selectRow(row)
        elif observations:
            self.observations_table.scrollToBottom()
        self._show_change(trial, change)
        self._show_decision(trial)
        self._update_actions()
        if not self.timer.isActive():
            self.timer.start()
        self.trial_loaded.emit(trial)

    @staticmethod
    def focus_dose(trial: TrialView) -> int | None:
        """The dose the decision is about: the one awaiting a response, else the last given."""
        if trial.awaiting_response_number is not None:
            return trial.awaiting_response_number
        given = [d.number for d in trial.doses if d.given]
        return given[-1] if given else None

    def _show_nothing(self) -> None:
        self._trial = None
        self.overdose_signs = ()
        self.placeholder.setVisible(True)
        self.content.setVisible(False)
        self.doses_model.set_trial(None, self._zone)
        self.observations_model.set_rows([], self._zone)
        self.change_model.set_change(None)
        self.timer.stop()
        self.trial_loaded.emit(None)

    def _show_header(self, trial: TrialView) -> None:
        self.title.setText(f"{trial.patient_name} · {trial.mrn}")
        parts = [trial.protocol_name, f"age {trial.patient_age_years}"]
        if trial.checks_acknowledged_by:
            count = len(trial.acknowledged_checks)
            when = (
                f" {day_time_text(trial.checks_acknowledged_at, self._zone)}"
                if trial.checks_acknowledged_at
                else ""
            )
            parts.append(
                f"{count} start check{'s' if count != 1 else ''} acknowledged by"
                f" {trial.checks_acknowledged_by}{when}"
                if count
                else f"planned by {trial.checks_acknowledged_by}{when}, no start checks"
            )
        if trial.active_illness:
            parts.append("active illness acknowledged")
        self.subtitle.setText(" · ".join(parts))
        self.subtitle.setToolTip("\n".join(f"• {c.message}" for c in trial.acknowledged_checks))
        self.status.setText(trial.status_text)
        self.status.setProperty("ended", trial.ended)
        _repolish(self.status)

    def _show_urgent(self, signs: Sequence[str]) -> None:
        if signs:
            self.urgent.setText(overdose_html(signs, self.leaflet_signs))
        self.urgent.setVisible(bool(signs))

    def _show_change(self, trial: TrialView, change: BaselineChange | None) -> None:
        self.change_model.set_change(change)
        has_rows = bool(self.change_model.rowCount())
        self.change_table.setVisible(has_rows)
        self.decision_stretch.setVisible(not has_rows)
        if change is None:
            self.decision_box.setTitle("Decision")
            self.change_caption.setText("No dose given yet: nothing to compare with the baseline.")
            return
        dose = trial.dose(change.dose_number)
        amount = f" ({number_text(dose.dose_mcg)} mcg)" if dose is not None else ""
        self.decision_box.setTitle(f"Decision — dose {change.dose_number}{amount}")
        zone = self._zone
        baseline = (
            f"baseline {change.baseline_observed_at.astimezone(zone):%a %H:%M}"
            if change.baseline_observed_at is not None
            else "no baseline recorded"
        )
        latest = (
            f"latest {change.latest_observed_at.astimezone(zone):%a %H:%M}"
            if change.latest_observed_at is not None
            else "nothing recorded after the dose yet"
        )
        if has_rows:
            self.change_caption.setText(f"Change from baseline: {baseline} → {latest}")
        else:
            self.change_caption.setText(
                f"No Ashworth or Penn scores for dose {change.dose_number} yet: score a"
                " baseline before the dose and again from 4 h after it."
            )

    def _show_decision(self, trial: TrialView) -> None:
        self.suggested.setText("")
        self.suggested_why.setText("")
        self.suggested.setVisible(False)
        self.suggested_caption.setVisible(False)
        if trial.status is TrialStatus.CANDIDATE:
            effective = trial.effective_dose_mcg or 0.0
            positive = next((d for d in trial.doses if d.response is DoseResponse.POSITIVE), None)
            who = f" Decided by {trial.decided_by}." if trial.decided_by else ""
            dose_words = f" (dose {positive.number})" if positive is not None else ""
            self.decision.setText(
                f"Positive response to {number_text(effective)} mcg{dose_words}: a candidate"
                f" for a pump.{who}"
            )
            text, why = suggestion_lines(effective, trial.effect_duration_hours)
            if trial.suggested_starting_dose_mcg_per_day is not None:
                text = both_units(trial.suggested_starting_dose_mcg_per_day)
            self.suggested.setText(text)
            self.suggested.setVisible(bool(text))
            self.suggested_caption.setVisible(bool(text))
            self.suggested_why.setText(why)
        elif trial.ended:
            who = f" Decided by {trial.decided_by}." if trial.decided_by else ""
            self.decision.setText(f"{trial.status_text}.{who}")
        elif trial.awaiting_response_number is not None:
            dose = trial.dose(trial.awaiting_response_number)
            today = self.now().astimezone(self._zone).date()
            when = (
                f" from {short_time_text(dose.assess_from, self._zone, today)}"
                if dose is not None and dose.assess_from is not None
                else ""
            )
            self.decision.setText(
                f"Awaiting the clinician's decision on dose {trial.awaiting_response_number}"
                f"{when} (dose + 4 h)."
            )
        else:
            self.decision.setText("No dose awaiting a decision.")

    # --- actions --------------------------------------------------------------------------

    def selected_dose(self) -> DoseView | None:
        """The selected dose row (None for none, or for a superseded entry)."""
        rows = self.doses_table.selectionModel().selectedRows()
        if not rows or self._trial is None:
            return None
        return self.doses_model.dose_at(rows[0].row())

    def selected_observation(self) -> ObservationView | None:
        rows = self.observations_table.selectionModel().selectedRows()
        if not rows or self._trial is None:
            return None
        return self.observations_model.row_at(rows[0].row())

    def _update_actions(self) -> None:
        trial = self._trial
        now = self.now()
        hints: list[str] = []
        if trial is None:
            for widget in (
                self.give_button,
                self.correct_dose_button,
                self.observe_button,
                self.correct_button,
                self.response_button,
                self.effect_button,
                self.stop_button,
            ):
                widget.setEnabled(False)
            return
        next_number = trial.next_dose_number
        self.give_button.setText(f"&Give dose {next_number}…" if next_number else "&Give dose…")
        self.give_button.setEnabled(next_number is not None)
        earliest = trial.next_dose_earliest_at
        if next_number is not None and earliest is not None and now < earliest:
            hints.append(f"Dose {next_number} from {day_time_text(earliest, self._zone)}")
        awaiting = trial.awaiting_response_number
        dose = trial.dose(awaiting) if awaiting is not None else None
        assessable = dose is not None and dose.assess_from is not None and now >= dose.assess_from
        self.response_button.setText(
            f"Record &response to dose {awaiting}…" if awaiting else "Record &response…"
        )
        self.response_button.setEnabled(assessable)
        if dose is not None and dose.assess_from is not None and not assessable:
            hints.append(
                f"Response from {clock_text(dose.assess_from, self._zone)} (dose {awaiting} + 4 h)"
            )
        any_given = any(d.given for d in trial.doses)
        self.observe_button.setEnabled(not trial.ended or any_given)
        selected = self.selected_observation()
        self.correct_button.setEnabled(selected is not None and not selected.corrected)
        dose_selected = self.selected_dose()
        self.correct_dose_button.setEnabled(dose_selected is not None and dose_selected.given)
        if dose_selected is not None and dose_selected.given:
            number = dose_selected.number
            self.correct_dose_button.setText(f"Correct dos&e {number}…")
        else:
            self.correct_dose_button.setText("Correct dos&e…")
        self.effect_button.setVisible(self.can_decide and trial.status is TrialStatus.CANDIDATE)
        self.effect_button.setEnabled(trial.status is TrialStatus.CANDIDATE)
        self.stop_button.setEnabled(not trial.ended)
        if not (self.can_decide or self.can_observe):
            hints = ["View only: recording is for nurses and clinicians."]
        self.action_hint.setText(" · ".join(hints))

    def _open(self, dialog: QDialog) -> QDialog:
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _result: self._dialog_closed(dialog))
        self.dialog = dialog
        dialog.open()
        return dialog

    def _dialog_closed(self, dialog: QDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None

    def give_dose(self) -> GiveDoseDialog | None:
        trial = self._trial
        if trial is None or trial.next_dose_number is None or not self.can_decide:
            return None
        dialog = GiveDoseDialog(self._services, self._actor, trial, self, bus=self._bus)
        self._open(dialog)
        return dialog

    def correct_dose(self) -> CorrectDoseDialog | None:
        trial, dose = self._trial, self.selected_dose()
        if trial is None or dose is None or not dose.given or not self.can_decide:
            return None
        dialog = CorrectDoseDialog(
            self._services, self._actor, trial, dose.number, self, bus=self._bus
        )
        self._open(dialog)
        return dialog

    def record_observation(self) -> ObservationDialog | None:
        trial = self._trial
        if trial is None or not self.can_observe:
            return None
        dialog = ObservationDialog(self._services, self._actor, trial, self, bus=self._bus)
        self._open(dialog)
        return dialog

    def correct_selected(self) -> ObservationDialog | None:
        trial, selected = self._trial, self.selected_observation()
        if trial is None or selected is None or selected.corrected or not self.can_observe:
            return None
        dialog = ObservationDialog(
            self._services, self._actor, trial, self, corrects=selected, bus=self._bus
        )
        self._open(dialog)
        return dialog

    def record_response(self) -> ResponseDialog | None:
        trial = self._trial
        if trial is None or trial.awaiting_response_number is None or not self.can_decide:
            return None
        dialog = ResponseDialog(self._services, self._actor, trial, self, bus=self._bus)
        self._open(dialog)
        return dialog

    def set_effect_duration(self) -> EffectDurationDialog | None:
        trial = self._trial
        if trial is None or trial.status is not TrialStatus.CANDIDATE or not self.can_decide:
            return None
        dialog = EffectDurationDialog(self._services, self._actor, trial, self, bus=self._bus)
        self._open(dialog)
        return dialog

    def stop_trial(self) -> StopTrialDialog | None:
        trial = self._trial
        if trial is None or trial.ended or not self.can_decide:
            return None
        dialog = StopTrialDialog(self._services, self._actor, trial, self, bus=self._bus)
        self._open(dialog)
        return dialog

    # --- time and changes -----------------------------------------------------------------

    def tick(self, now: dt.datetime | None = None) -> None:
        """Reload when time has moved the trial on (assessment open, next dose allowed)."""
        trial = self._trial
        if trial is None:
            return
        now = now or self.now()
        if _trial_phase(trial, now) != self._phase:
            self.reload()
        else:
            self._update_actions()

    def _on_changed(self, entities: frozenset[str]) -> None:
        if "settings" in entities:
            settings = guarded(self, lambda: self._services.settings.get())
            if settings is not None:
                self._zone = settings[0].zone
        if entities & {"trial", "patient", "settings"} and self._trial_id is not None:
            self.reload()


class TrialDialog(QDialog):
    """A trial in its own window, for the patient page."""

    def __init__(
        self,
        services: Services,
        actor: Actor,
        trial_id: int,
        parent: QWidget | None = None,
        *,
        bus: DataBus | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("trialDialog")
        self.setAccessibleName("Screening trial")
        self.setWindowTitle("Screening trial")
        self.setStyleSheet(LOCAL_STYLE)
        self.resize(1180, 760)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 14, 18, 12)
        self.panel = TrialPanel(services, actor, bus or DataBus(self), self)
        layout.addWidget(self.panel, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        close = button("Close", "closeTrial")
        close.clicked.connect(self.accept)
        row.addWidget(close)
        layout.addLayout(row)
        self.panel.trial_loaded.connect(self._loaded)
        self.panel.show_trial(trial_id)

    def _loaded(self, trial: TrialView | None) -> None:
        if trial is not None:
            self.setWindowTitle(f"Screening trial — {trial.patient_name} · {trial.mrn}")


# --- the page -------------------------------------------------------------------------------


class ScreeningPage(OpenDayPaging, QWidget):
    """The nav page "Screening": the day's test doses with live countdowns, and below them
    the selected trial."""

    def __init__(
        self, services: Services, actor: Actor, bus: DataBus, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("screeningPage")
        self.setStyleSheet(LOCAL_STYLE)
        self._services = services
        self._actor = actor
        self._bus = bus
        self.can_view = can(actor, Permission.VIEW_SCHEDULE) and can(
            actor, Permission.VIEW_PATIENTS
        )
        self._settings = services.settings.get()[0]
        self._calendar = ClinicCalendar.from_settings(self._settings)
        self._phases: list[BoardPhase] = []
        self.board_model = ScreeningBoardModel(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 12)
        if not self.can_view:
            layout.addWidget(
                page_header("Screening", "Intrathecal baclofen test doses and their trials.")
            )
            info = banner("screeningNoAccess", "info")
            set_banner(info, ["Screening trials are not part of the administrator role."], "")
            layout.addWidget(info)
            layout.addStretch(1)
            self.day = self.today()
            return

        title_row = QHBoxLayout()
        title = _label("Screening", "pageTitle", wrap=False)
        title.setToolTip(
            "Intrathecal baclofen test doses in clinic time: who is due, who can be assessed"
            " (dose + 4 h) and whose observation is ending (dose + 8 h)."
        )
        title_row.addWidget(title)
        title_row.addSpacing(16)
        self.summary = _label("", "boardSummary")
        self.summary.setAccessibleName("Board summary")
        self.summary.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        title_row.addWidget(self.summary, 1)
        layout.addLayout(title_row)

        navigation = QHBoxLayout()
        self.previous_button = button("‹", "screeningPreviousDay")
        self.previous_button.setAccessibleName("Previous open day")
        self.previous_button.setToolTip("Previous open day (Alt+Left)")
        self.previous_button.clicked.connect(self.previous_day)
        self.date_edit = date_edit("screeningDate", "Day shown")
        self.date_edit.dateChanged.connect(lambda value: self.show_day(from_qdate(value)))
        self.next_button = button("›", "screeningNextDay")
        self.next_button.setAccessibleName("Next open day")
        self.next_button.setToolTip("Next open day (Alt+Right)")
        self.next_button.clicked.connect(self.next_day)
        self.today_button = button("&Today", "screeningToday")
        self.today_button.clicked.connect(lambda: self.show_day(self.today()))
        for widget in (self.previous_button, self.date_edit, self.next_button, self.today_button):
            navigation.addWidget(widget)
        navigation.addSpacing(12)
        self.day_title = _label("", "boardDayTitle", wrap=False)
        navigation.addWidget(self.day_title)
        navigation.addStretch(1)
        layout.addLayout(navigation)

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("screeningSplitter")
        self.splitter.setChildrenCollapsible(False)
        board = QWidget()
        board_layout = QVBoxLayout(board)
        board_layout.setContentsMargins(0, 0, 0, 0)
        board_layout.setSpacing(2)
        self.table = _table("screeningBoard", "Screening board")
        self.table.setModel(self.board_model)
        fit_columns(
            self.table,
            (
                "00:00",
                "⚠ CASTELLANO, Lucía",
                "RIV-000000",
                "3: 100 mcg (1.5 mL)",
                "Not a candidate",
                "00:00 · in 3 h 50 min",
                "00:00 · in 3 h 50 min",
            ),
            (1, 4),
        )
        self.table.selectionModel().selectionChanged.connect(lambda *_a: self._selected())
        board_layout.addWidget(self.table, 1)
        self.empty = _label("", "trialPlaceholder")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        board_layout.addWidget(self.empty)
        self.splitter.addWidget(board)
        panel_frame = QFrame()
        panel_frame.setObjectName("trialFrame")
        panel_layout = QVBoxLayout(panel_frame)
        panel_layout.setContentsMargins(0, 8, 0, 0)
        self.panel = TrialPanel(services, actor, bus)
        panel_layout.addWidget(self.panel)
        self.splitter.addWidget(panel_frame)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self._board_rows = -1
        layout.addWidget(self.splitter, 1)

        self.timer = QTimer(self)
        self.timer.setObjectName("screeningTimer")
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(lambda: self.tick())
        self.timer.start()
        QShortcut(QKeySequence("Alt+Left"), self, self.previous_day)
        QShortcut(QKeySequence("Alt+Right"), self, self.next_day)
        bus.changed.connect(self._on_changed)
        self.day = self.today()
        self.show_day(self.day)

    # --- days -----------------------------------------------------------------------------

    def refresh(self) -> None:
        if not self.can_view:
            return
        keep = self.selected_row()
        day = self.day
        rows = guarded(self, lambda: self._services.screening.board(self._actor, day), "Screening")
        now = self.now()
        self.board_model.set_rows(rows or [], self._settings.zone, now)
        self._phases = self.board_model.phases(now)
        today = " — today" if day == self.today() else ""
        self.day_title.setText(f"{day:%A} {day.day} {day:%B %Y}{today}")
        self._show_summary(now)
        has_rows = bool(self.board_model.rowCount())
        self._fit_board(self.board_model.rowCount())
        self.table.setVisible(has_rows)
        self.empty.setVisible(not has_rows)
        closed = "" if self._calendar.is_open_day(day) else " The clinic is closed on this day."
        self.empty.setText(f"No test doses on this day.{closed}")
        # The trial shown below stays, on the board of this day or not.
        if keep is not None:
            row = self.board_model.row_of(keep.trial_id, keep.dose_number)
            if row is None:
                row = self.board_model.row_of(keep.trial_id)
            if row is not None:
                self.table.selectRow(row)

    def _fit_board(self, rows: int) -> None:
        """Give the board the room of its rows (up to 7) when their number changes; the
        user's own splitter position stays otherwise."""
        if rows == self._board_rows:
            return
        self._board_rows = rows
        header = self.table.horizontalHeader().sizeHint().height()
        row = self.table.verticalHeader().defaultSectionSize()
        wanted = header + min(max(rows, 1), 7) * row + 2 * self.table.frameWidth() + 4
        if not rows:
            wanted = 60
        total = sum(self.splitter.sizes()) or 600
        self.splitter.setSizes([wanted, max(total - wanted, 200)])

    def _show_summary(self, now: dt.datetime) -> None:
        phases = self.board_model.phases(now)
        counts = {
            "due": sum(p is BoardPhase.DUE for p in phases),
            "observing": sum(p in _IN_OBSERVATION for p in phases),
            "assess": sum(p in (BoardPhase.ASSESS, BoardPhase.ENDING) for p in phases),
            "response": sum(p is BoardPhase.RESPONSE_DUE for p in phases),
        }
        overdose = sum(bool(r.overdose_signs) for r in self.board_model.rows())
        parts = [f"{len(phases)} dose{'s' if len(phases) != 1 else ''}"]
        if counts["due"]:
            parts.append(f"{counts['due']} due now")
        if counts["observing"]:
            parts.append(f"{counts['observing']} in observation")
        if counts["assess"]:
            parts.append(f"{counts['assess']} to assess now")
        if counts["response"]:
            parts.append(f"{counts['response']} awaiting the response")
        if overdose:
            parts.append(
                f'<span style="color: {_DARK_RED};">⚠ {overdose} with overdose signs</span>'
            )
        self.summary.setText(" · ".join(parts) if phases else "")

    def selected_row(self) -> BoardRow | None:
        if not self.can_view:
            return None
        rows = self.table.selectionModel().selectedRows()
        return self.board_model.row_at(rows[0].row()) if rows else None

    def select_trial(self, trial_id: int) -> bool:
        row = self.board_model.row_of(trial_id)
        if row is None:
            return False
        self.table.selectRow(row)
        return True

    def _selected(self) -> None:
        row = self.selected_row()
        if row is not None and row.trial_id != self.panel.trial_id():
            self.panel.show_trial(row.trial_id)

    # --- time and changes -----------------------------------------------------------------

    def tick(self) -> None:
        """Redraw the countdowns; fetch the board again when a dose changed phase."""
        if not self.can_view:
            return
        now = self.now()
        if self.board_model.phases(now) != self._phases:
            self.refresh()
        else:
            self.board_model.set_now(now)
            self._show_summary(now)
        self.panel.tick(now)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self.can_view:
            self.tick()

    def _on_changed(self, entities: frozenset[str]) -> None:
        if "settings" in entities:
            settings = guarded(self, lambda: self._services.settings.get())
            if settings is not None:
                self._settings = settings[0]
                self._calendar = ClinicCalendar.from_settings(self._settings)
        if entities & {"trial", "patient", "appointment", "settings"}:
            self.refresh()


# --- ways in from elsewhere -----------------------------------------------------------------


def patient_trial_id(services: Services, actor: Actor, patient_id: int) -> int | None:
    """The patient's planned or running trial, else the newest; None without any."""
    active = services.screening.active_trial_id(actor, patient_id)
    if active is not None:
        return active
    trials = services.screening.trials_for_patient(actor, patient_id)
    return trials[0].id if trials else None


def open_plan_trial(
    services: Services,
    actor: Actor,
    patient_id: int,
    parent: QWidget | None = None,
    *,
    bus: DataBus | None = None,
) -> PlanTrialDialog:
    """Open the plan dialog (window-modal, deleted on close); its ``planned`` signal carries
    the TrialView."""
    dialog = PlanTrialDialog(services, actor, patient_id, parent, bus=bus)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog


def open_trial(
    services: Services,
    actor: Actor,
    trial_id: int,
    parent: QWidget | None = None,
    *,
    bus: DataBus | None = None,
) -> TrialDialog:
    """Open a trial's detail in its own window (deleted on close)."""
    dialog = TrialDialog(services, actor, trial_id, parent, bus=bus)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
    return dialog
