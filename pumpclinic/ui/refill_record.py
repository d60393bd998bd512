"""Recording a refill, one step at a time.

1. Aspiration: the expected residual is shown before the nurse enters what was aspirated;
   the reconciliation follows, with next steps in plain words when it is flagged.
2. Drug and fill: product, lot, volume added (never above the reservoir), pocket-fill check.
3. Program: the new daily dose in mcg/day with mcg/h and mL/day beside it, the titration
   warning, and the old program next to the new one.
4. Independent double check: a second user signs in and types the concentration and the
   daily dose without seeing the first entry; a mismatch saves nothing.
Then the new alarm and refill-by dates, and the patient card as PDF or on paper.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import (
    QAbstractListModel,
    QAbstractTableModel,
    QModelIndex,
    Qt,
    QTime,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QFont, QWheelEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QScrollArea,
    QStackedWidget,
    QTableView,
    QTimeEdit,
    QVBoxLayout,
    QWidget,
)

from pumpclinic.domain.reservoir import Forecast, Reconciliation
from pumpclinic.domain.validation import FieldError
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.services.errors import AuthenticationFailed, ServiceError, ValidationFailed
from pumpclinic.services.permissions import Permission, can
from pumpclinic.services.refills import (
    DoubleCheck,
    ProgramView,
    PumpOverview,
    RecordedRefill,
    RefillInput,
    RefillPreview,
    RefillRow,
)
from pumpclinic.ui.booking import danger_banner, date_edit, from_qdate, to_qdate
from pumpclinic.ui.bus import DataBus
from pumpclinic.ui.errors import guarded, show_bug
from pumpclinic.ui.models import AnyIndex
from pumpclinic.ui.patient_card import print_patient_card, write_patient_card_pdf
from pumpclinic.ui.widgets import (
    FieldErrorLabels,
    banner,
    button,
    per_hour_text,
    primary_button,
    set_banner,
)

ASPIRATION, FILL, PROGRAM, CHECK, DONE = range(5)
STEP_TITLES = ("Aspiration", "Drug and fill", "Program", "Double check", "Saved")
# Which step shows each field the services may name in a ValidationFailed.
FIELD_STEPS = {
    "performed_at": ASPIRATION,
    "aspirated_residual_ml": ASPIRATION,
    "drug_product_id": FILL,
    "lot_number": FILL,
    "volume_added_ml": FILL,
    "measured_after_ml": FILL,
    "notes": FILL,
    "dose_mcg_per_day": PROGRAM,
    "change_reason": PROGRAM,
    "double_check": CHECK,
    "check_password": CHECK,
    "check_concentration": CHECK,
    "check_dose": CHECK,
}
FIELD_WIDTH = 240
BLANK = -1.0  # a NumberField's "nothing entered yet", shown as an empty box
PLACEHOLDER_LOT = "not yet entered"

_LOCAL_STYLE = """
QDoubleSpinBox {
    padding: 3px 5px; border: 1px solid #bcccdc; border-radius: 3px; background: white;
}
QDoubleSpinBox[invalid="true"] { border: 2px solid #b3261e; }
QDoubleSpinBox::up-button, QDoubleSpinBox::down-button { width: 0px; border: none; }
QDoubleSpinBox#doseMcgPerDay, QDoubleSpinBox#checkDose, QDoubleSpinBox#checkConcentration {
    font-size: 15pt; font-weight: 600; min-height: 30px;
}
QLabel#doseMcgPerHour { font-size: 12pt; color: #334e68; }
QLabel#dailyVolume { font-size: 11pt; color: #52606d; }
QLabel#expectedResidual { font-size: 17pt; font-weight: 700; color: #1d2b3a; }
QLabel#drugConcentration { font-size: 13pt; font-weight: 700; color: #1d2b3a; }
QLabel#stepTitle { font-size: 14pt; font-weight: 600; color: #1d2b3a; }
QLabel#stepHelp, QLabel#fieldHelp { color: #52606d; }
QLabel#currentProgram { font-size: 11pt; color: #334e68; }
QLabel#savedTitle { font-size: 17pt; font-weight: 700; color: #1e7d32; }
QLabel[savedValue="true"] { font-size: 13pt; font-weight: 700; color: #1d2b3a; }
QListView#refillSteps {
    background: #eef2f6; border: none; border-right: 1px solid #d9e2ec; font-size: 11pt;
}
QListView#refillSteps::item { padding: 9px 10px; }
QTableView#programComparison QTableCornerButton::section { background: #eef2f6; border: none; }
QFrame#expectedBox { background: #e8f1fa; border: 1px solid #9cc3e5; border-radius: 6px; }
"""


def _plain(value: float) -> str:  # no trailing zeros: 2000, 412.5
    return f"{value:g}"


def dose_text(dose_mcg_per_day: float) -> str:
    return f"{_plain(dose_mcg_per_day)} mcg/day"


def reconciliation_words(rec: Reconciliation, accuracy_pct: float) -> list[str]:
    """The reconciliation as sentences a nurse reads at a glance."""
    gap = rec.discrepancy_ml
    if abs(gap) < 0.05:
        relation = "as expected"
    elif gap < 0:
        relation = f"{-gap:.1f} mL LESS than expected"
    else:
        relation = f"{gap:.1f} mL MORE than expected"
    lines = [
        f"Expected {rec.expected_residual_ml:.1f} mL, aspirated {rec.aspirated_ml:.1f} mL: "
        f"{relation} (gap {gap:+.1f} mL)."
    ]
    pct = rec.delivery_error_pct
    if pct is not None:
        direction = "more" if pct > 0 else "less"
        lines.append(
            f"Since the last fill the pump delivered {rec.delivered_actual_ml:.1f} mL against "
            f"{rec.delivered_expected_ml:.1f} mL programmed: {abs(pct):.1f} % {direction} "
            f"(delivery error {pct:+.1f} %)."
        )
    if not rec.flagged:
        lines.append(
            f"Within limits (gap up to 2 mL, delivery within ±{accuracy_pct:g} %): "
            "continue with the refill."
        )
    return lines


def reconciliation_alarm(rec: Reconciliation, accuracy_pct: float) -> list[str]:
    reasons = []
    if any(flag.startswith("discrepancy") for flag in rec.flags):
        reasons.append("the gap is more than 2 mL")
    if any(flag.startswith("delivery") for flag in rec.flags):
        reasons.append(f"delivery differs from the program by more than {accuracy_pct:g} %")
    return [
        f"Investigate before refilling: {' and '.join(reasons)}.",
        *(f"•  {step}" for step in rec.next_steps),
    ]


class NumberField(QDoubleSpinBox):
    """A number with its unit that starts empty, not at 0: an untouched field is no value.

    No stepping (arrows, keys or mouse wheel): a volume or a dose is typed, never nudged.
    """

    def __init__(
        self,
        object_name: str,
        accessible: str,
        suffix: str,
        decimals: int = 1,
        maximum: float = 999.9,
    ) -> None:
        super().__init__()
        self.setObjectName(object_name)
        self.setAccessibleName(accessible)
        self.setDecimals(decimals)
        self.setRange(BLANK, maximum)
        self.setSuffix(suffix)
        self.setSpecialValueText(" ")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumWidth(150)
        self.lineEdit().setTextMargins(5, 0, 5, 0)
        self.setValue(BLANK)

    def textFromValue(self, value: float) -> str:
        # No trailing zeros on a dose or volume: "400.0" is misread as 4000 (ISMP).
        text = super().textFromValue(value)
        point = self.locale().decimalPoint()
        if point in text:
            text = text.rstrip("0").rstrip(point)
        return text

    def stepEnabled(self) -> QAbstractSpinBox.StepEnabledFlag:
        return QAbstractSpinBox.StepEnabledFlag.StepNone

    def wheelEvent(self, event: QWheelEvent) -> None:
        event.ignore()  # let the page scroll instead

    def number(self) -> float | None:
        return None if self.value() <= BLANK else self.value()

    def set_number(self, value: float | None) -> None:
        self.setValue(BLANK if value is None else value)

    def clear_number(self) -> None:
        self.setValue(BLANK)


class StepListModel(QAbstractListModel):
    """The steps on the left: done ones ticked, the current one bold."""

    def __init__(self, titles: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._titles = list(titles)
        self._current = 0

    def set_current(self, step: int) -> None:
        self._current = step
        if self._titles:
            self.dataChanged.emit(self.index(0), self.index(len(self._titles) - 1))

    def current(self) -> int:
        return self._current

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._titles)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._titles):
            return None
        row = index.row()
        done = row < self._current or self._current == len(self._titles) - 1
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            mark = "✓" if done else ("▶" if row == self._current else " ")
            return f"{mark}  {row + 1}. {self._titles[row]}"
        if role == Qt.ItemDataRole.FontRole and row == self._current:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ForegroundRole:
            if row == self._current:
                return QBrush(QColor("#1f5f8b"))
            return QBrush(QColor("#1e7d32" if done else "#7b8794"))
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled


class ProgramComparisonModel(QAbstractTableModel):
    """The program now and after this refill, row by row; changed rows stand out."""

    ROWS = (
        "Drug",
        "Concentration",
        "Daily dose",
        "Hourly rate",
        "Daily volume",
        "Next alarm",
        "Refill by",
    )
    DAILY_DOSE = 2
    COLUMNS = ("Now", "After this refill")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        blank = ["—"] * len(self.ROWS)
        self._values: tuple[list[str], list[str]] = (list(blank), list(blank))

    def set_values(self, before: Sequence[str], after: Sequence[str]) -> None:
        if len(before) != len(self.ROWS) or len(after) != len(self.ROWS):
            raise ValueError("one value per row")
        self._values = (list(before), list(after))
        self.dataChanged.emit(self.index(0, 0), self.index(len(self.ROWS) - 1, 1))

    def value(self, row: int, column: int) -> str:
        return self._values[column][row]

    def changed(self, row: int) -> bool:
        return self._values[0][row] != self._values[1][row]

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.ROWS)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(self.COLUMNS):
            return self.COLUMNS[section]
        if orientation == Qt.Orientation.Vertical and 0 <= section < len(self.ROWS):
            return self.ROWS[section]
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self.ROWS):
            return None
        row, column = index.row(), index.column()
        if not 0 <= column < len(self.COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._values[column][row]
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"{self.ROWS[row]} {self.COLUMNS[column].lower()}: {self._values[column][row]}"
        if role == Qt.ItemDataRole.FontRole and (
            row == self.DAILY_DOSE or (column == 1 and self.changed(row))
        ):
            font = QFont()
            font.setBold(True)
            if row == self.DAILY_DOSE:
                font.setPointSizeF(font.pointSizeF() * 1.25)
            return font
        if role == Qt.ItemDataRole.BackgroundRole and column == 1 and self.changed(row):
            return QBrush(QColor("#fff4e5"))
        if role == Qt.ItemDataRole.ToolTipRole and self.changed(row):
            return f"Changes from {self._values[0][row]} to {self._values[1][row]}"
        return None


class RecordRefillDialog(QDialog):
    """Record (or correct) one refill of ``pump_id``; emits ``saved(RecordedRefill)``."""

    saved = Signal(object)  # RecordedRefill

    def __init__(
        self,
        services: Services,
        actor: Actor,
        pump_id: int,
        parent: QWidget | None = None,
        appointment_id: int | None = None,
        corrects: RefillRow | None = None,
        *,
        bus: DataBus | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("recordRefillDialog")
        self.setStyleSheet(_LOCAL_STYLE)
        self._services = services
        self._actor = actor
        self._pump_id = pump_id
        self._appointment_id = appointment_id
        self._corrects = corrects
        self._bus = bus
        self._zone = services.settings.get()[0].zone
        self.errors = FieldErrorLabels()
        self.captions: dict[str, QLabel] = {}
        self.preview_result: RefillPreview | None = None
        self.recorded: RecordedRefill | None = None
        self.saved_pdf: Path | None = None
        # Per step, the inputs the nurse has already seen the result for (press Next twice).
        self._seen: dict[int, object] = {}
        self.overview: PumpOverview | None = guarded(
            self, lambda: services.refills.overview_for_pump(actor, pump_id), "Cannot record"
        )
        self.products: list[tuple[str, str, float]] = (
            guarded(self, lambda: services.refills.drug_products(actor, pump_id), "Cannot record")
            or []
        )
        card = self.overview.card if self.overview else None
        if card is not None and card.pump_id != pump_id:
            card = None  # an explanted pump: the service refuses it, nothing to show
        self.pump_card = card
        self.old_program: ProgramView | None = card.program if card else None
        reservoir = self.overview.reservoir if self.overview else None
        self.old_forecast = reservoir.forecast if reservoir else None
        self.reservoir_ml = card.reservoir_ml if card else 0.0
        self.accuracy_pct = card.flow_accuracy_pct if card else 14.5

        who = (
            f"{self.overview.patient_name} · {self.overview.mrn}"
            if self.overview
            else f"pump {pump_id}"
        )
        if corrects is not None:
            when = corrects.performed_at.astimezone(self._zone)
            action = f"Correct refill of {when:%d %b %Y %H:%M}"
        else:
            action = "Record refill"
        self.setWindowTitle(f"{action} — {who}")
        self.setAccessibleName(action)
        self.resize(1000, 720)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        head = QWidget()
        head_layout = QVBoxLayout(head)
        head_layout.setContentsMargins(22, 16, 22, 10)
        head_layout.setSpacing(2)
        self.heading = QLabel(f"{action} — {who}")
        self.heading.setObjectName("pageTitle")
        head_layout.addWidget(self.heading)
        pump_line = QLabel(self._pump_line())
        pump_line.setObjectName("pageSubtitle")
        pump_line.setWordWrap(True)
        head_layout.addWidget(pump_line)
        if corrects is not None:
            note = banner("correctionNote", "info")
            set_banner(
                note,
                [
                    "A saved refill is never edited: this correction is saved as a new entry "
                    "that points at the original, and the original stays in the history."
                ],
                "",
            )
            head_layout.addWidget(note)
        outer.addWidget(head)

        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(0)
        self.step_model = StepListModel(STEP_TITLES, self)
        self.step_view = QListView()
        self.step_view.setObjectName("refillSteps")
        self.step_view.setAccessibleName("Refill steps")
        self.step_view.setModel(self.step_model)
        self.step_view.setFixedWidth(200)
        self.step_view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.step_view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        body.addWidget(self.step_view)
        self.stack = QStackedWidget()
        self.stack.setObjectName("refillStepPages")
        for page in (
            self._aspiration_page(),
            self._fill_page(),
            self._program_page(),
            self._check_page(),
            self._done_page(),
        ):
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setWidget(page)
            self.stack.addWidget(scroll)
        body.addWidget(self.stack, 1)
        outer.addLayout(body, 1)

        foot = QWidget()
        foot.setObjectName("refillFooter")
        foot_layout = QVBoxLayout(foot)
        foot_layout.setContentsMargins(22, 8, 22, 14)
        self.error_banner = banner("refillErrors")
        foot_layout.addWidget(self.error_banner)
        buttons = QHBoxLayout()
        self.cancel_button = button("Cancel", "refillCancel")
        self.cancel_button.clicked.connect(self.reject)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        self.back_button = button("‹ &Back", "refillBack")
        self.back_button.clicked.connect(self.go_back)
        self.next_button = primary_button("&Next ›", "refillNext")
        self.next_button.clicked.connect(self.go_next)
        buttons.addWidget(self.back_button)
        buttons.addWidget(self.next_button)
        foot_layout.addLayout(buttons)
        outer.addWidget(foot)

        self._prefill()
        self._update_expected()
        self._drug_changed()
        self._dose_changed()
        self._go(ASPIRATION)

    # --- building -----------------------------------------------------------------------

    def _pump_line(self) -> str:
        card = self.pump_card
        if card is None:
            return "No implanted pump."
        parts = [
            f"{card.model_name}, serial {card.serial_number}",
            f"reservoir {card.reservoir_ml:g} mL",
            f"alarm at {card.low_reservoir_alarm_ml:g} mL",
            f"times in {self._zone}",
        ]
        return " · ".join(parts)

    def _page(self, step: int, help_text: str) -> tuple[QWidget, QVBoxLayout]:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(24, 16, 24, 12)
        layout.setSpacing(10)
        title = QLabel(f"{step + 1}. {STEP_TITLES[step]}")
        title.setObjectName("stepTitle")
        layout.addWidget(title)
        if help_text:
            help_label = QLabel(help_text)
            help_label.setObjectName("stepHelp")
            help_label.setWordWrap(True)
            layout.addWidget(help_label)
        return page, layout

    def _form(self) -> QFormLayout:
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        form.setHorizontalSpacing(14)
        form.setVerticalSpacing(10)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        return form

    def _field(
        self,
        form: QFormLayout,
        label: str,
        widget: QWidget,
        field: str,
        beside: Sequence[QWidget] = (),
        help_text: str = "",
    ) -> QWidget:
        cell = QWidget()
        column = QVBoxLayout(cell)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        line = QHBoxLayout()
        line.setSpacing(12)
        line.addWidget(widget)
        for extra in beside:
            line.addWidget(extra)
        line.addStretch(1)
        column.addLayout(line)
        if help_text:
            hint = QLabel(help_text)
            hint.setObjectName("fieldHelp")
            hint.setWordWrap(True)
            column.addWidget(hint)
        column.addWidget(self.errors.label_for(field, widget))
        caption = QLabel(label)
        caption.setBuddy(widget)
        self.captions[field] = caption
        form.addRow(caption, cell)
        return cell

    def _aspiration_page(self) -> QWidget:
        page, layout = self._page(
            ASPIRATION,
            "Note the expected residual first. Then aspirate the reservoir completely and "
            "enter the volume you measured.",
        )
        form = self._form()
        self.performed_date = date_edit("performedDate", "Date of the refill")
        self.performed_time = QTimeEdit()
        self.performed_time.setObjectName("performedTime")
        self.performed_time.setAccessibleName("Time of the refill")
        self.performed_time.setDisplayFormat("HH:mm")
        zone_label = QLabel(f"clinic time ({self._zone})")
        zone_label.setObjectName("fieldHelp")
        self._field(
            form,
            "Time of refill",
            self.performed_date,
            "performed_at",
            beside=(self.performed_time, zone_label),
        )

        box = QFrame()
        box.setObjectName("expectedBox")
        box_layout = QVBoxLayout(box)
        box_layout.setContentsMargins(14, 10, 14, 10)
        self.expected_label = QLabel()
        self.expected_label.setObjectName("expectedResidual")
        self.expected_label.setAccessibleName("Expected residual")
        self.expected_detail = QLabel()
        self.expected_detail.setObjectName("stepHelp")
        self.expected_detail.setWordWrap(True)
        box_layout.addWidget(self.expected_label)
        box_layout.addWidget(self.expected_detail)
        form.addRow(box)

        self.aspirated = NumberField("aspiratedMl", "Aspirated volume", " mL")
        self._field(
            form,
            "Aspirated volume (mL)",
            self.aspirated,
            "aspirated_residual_ml",
            help_text="Everything withdrawn from the reservoir; 0 if it was empty.",
        )
        self.reconciliation_label = banner("reconciliationResult", "info")
        self.reconciliation_label.setStyleSheet("font-size: 11pt;")
        form.addRow(self.reconciliation_label)
        self.reconciliation_flag = danger_banner("reconciliationFlag")
        form.addRow(self.reconciliation_flag)
        layout.addLayout(form)
        layout.addStretch(1)

        self.performed_date.dateChanged.connect(lambda _d: self._aspiration_changed())
        self.performed_time.timeChanged.connect(lambda _t: self._aspiration_changed())
        self.aspirated.valueChanged.connect(lambda _v: self._aspiration_changed())
        return page

    def _fill_page(self) -> QWidget:
        page, layout = self._page(
            FILL,
            "Check the vial against the prescription: drug, concentration and lot. Never fill "
            "above the reservoir.",
        )
        form = self._form()
        self.drug_combo = QComboBox()
        self.drug_combo.setObjectName("drugProduct")
        self.drug_combo.setAccessibleName("Drug product")
        self.drug_combo.setMinimumWidth(300)
        for product_id, name, _concentration in self.products:
            self.drug_combo.addItem(name, product_id)
        current = self.old_program.drug_name if self.old_program else ""
        index = self.drug_combo.findText(current)
        if index < 0:
            self.drug_combo.insertItem(0, "Choose the drug product…", "")
            index = 0
        self.drug_combo.setCurrentIndex(index)
        self.concentration_label = QLabel()
        self.concentration_label.setObjectName("drugConcentration")
        self.concentration_label.setAccessibleName("Concentration")
        self._field(
            form, "Drug product", self.drug_combo, "drug_product_id", [self.concentration_label]
        )
        self.concentration_banner = banner("concentrationChange")
        form.addRow(self.concentration_banner)
        self.lot = QLineEdit()
        self.lot.setObjectName("lotNumber")
        self.lot.setAccessibleName("Lot number")
        self.lot.setMaxLength(120)
        self.lot.setMinimumWidth(FIELD_WIDTH)
        self._field(form, "Lot number", self.lot, "lot_number")
        self.volume_added = NumberField("volumeAddedMl", "Volume added", " mL")
        reservoir_label = QLabel(f"Reservoir: {self.reservoir_ml:g} mL")
        reservoir_label.setObjectName("reservoirSize")
        reservoir_label.setStyleSheet("font-weight: 600;")
        self._field(
            form,
            "Volume added (mL)",
            self.volume_added,
            "volume_added_ml",
            [reservoir_label],
            help_text="The volume injected into the emptied reservoir: never above the reservoir.",
        )
        self.measured_after = NumberField("measuredAfterMl", "Measured after filling", " mL")
        self._field(
            form,
            "Measured after filling (mL)",
            self.measured_after,
            "measured_after_ml",
            help_text="Optional pocket-fill check: the volume read back from the reservoir.",
        )
        self.pocket_banner = banner("pocketFillWarning")
        form.addRow(self.pocket_banner)
        self.notes = QLineEdit()
        self.notes.setObjectName("refillNotes")
        self.notes.setAccessibleName("Notes")
        self.notes.setMinimumWidth(2 * FIELD_WIDTH)
        self.notes.setPlaceholderText(
            "What was corrected, and why" if self._corrects else "Optional"
        )
        self._field(form, "Notes", self.notes, "notes")
        layout.addLayout(form)
        layout.addStretch(1)

        self.drug_combo.currentIndexChanged.connect(lambda _i: self._drug_changed())
        self.volume_added.valueChanged.connect(lambda _v: self._forget(FILL))
        self.measured_after.valueChanged.connect(lambda _v: self._forget(FILL))
        return page

    def _program_page(self) -> QWidget:
        page, layout = self._page(
            PROGRAM,
            "Enter the prescribed daily dose in mcg per DAY. The hourly rate is shown beside "
            "it for the pump programmer.",
        )
        form = self._form()
        self.current_program = QLabel(self._current_program_text())
        self.current_program.setObjectName("currentProgram")
        form.addRow("Current program", self.current_program)
        self.dose = NumberField(
            "doseMcgPerDay", "New daily dose in mcg per day", " mcg/day", maximum=9999.9
        )
        self.dose.setMinimumWidth(FIELD_WIDTH)
        self.hourly_label = QLabel()
        self.hourly_label.setObjectName("doseMcgPerHour")
        self.hourly_label.setAccessibleName("Dose per hour")
        self.volume_label = QLabel()
        self.volume_label.setObjectName("dailyVolume")
        self.volume_label.setAccessibleName("Daily volume")
        self._field(
            form,
            "New daily dose (mcg/day)",
            self.dose,
            "dose_mcg_per_day",
            [self.hourly_label, self.volume_label],
        )
        self.titration_banner = banner("titrationWarning")
        form.addRow(self.titration_banner)
        self.change_reason = QLineEdit()
        self.change_reason.setObjectName("changeReason")
        self.change_reason.setAccessibleName("Reason for the change")
        self.change_reason.setMinimumWidth(2 * FIELD_WIDTH)
        self._field(form, "Reason for the change", self.change_reason, "change_reason")
        self.reason_form = form
        self.reason_row = form.rowCount() - 1
        layout.addLayout(form)

        comparison = QGroupBox("Now and after this refill: check every line")
        comparison_layout = QVBoxLayout(comparison)
        self.comparison_model = ProgramComparisonModel(self)
        self.comparison_view = QTableView()
        self.comparison_view.setObjectName("programComparison")
        self.comparison_view.setAccessibleName("Old and new program side by side")
        self.comparison_view.setModel(self.comparison_model)
        self.comparison_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.comparison_view.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.comparison_view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.comparison_view.setCornerButtonEnabled(False)
        self.comparison_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        vertical = self.comparison_view.verticalHeader()
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(30)
        vertical.setMinimumWidth(120)
        self.comparison_view.setFixedHeight(30 * len(ProgramComparisonModel.ROWS) + 34)
        comparison_layout.addWidget(self.comparison_view)
        layout.addWidget(comparison)
        layout.addStretch(1)

        self.dose.valueChanged.connect(lambda _v: self._dose_changed())
        return page

    def _check_page(self) -> QWidget:
        page, layout = self._page(
            CHECK,
            "Independent double check (intrathecal baclofen is a high-alert medicine). A second "
            "nurse or clinician reads the vial label and the prescription, signs in here, and "
            "types the concentration and the daily dose. What was entered before is hidden on "
            "purpose: do not read it out.",
        )
        self.clinician_needed = banner("checkClinicianNeeded")
        layout.addWidget(self.clinician_needed)
        self.mismatch_banner = danger_banner("checkMismatch")
        layout.addWidget(self.mismatch_banner)
        form = self._form()
        self.check_username = QLineEdit()
        self.check_username.setObjectName("checkUsername")
        self.check_username.setAccessibleName("Second checker's username")
        self.check_username.setMinimumWidth(FIELD_WIDTH)
        self._field(form, "Second checker (username)", self.check_username, "double_check")
        self.check_password = QLineEdit()
        self.check_password.setObjectName("checkPassword")
        self.check_password.setAccessibleName("Second checker's password")
        self.check_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.check_password.setMinimumWidth(FIELD_WIDTH)
        self._field(form, "Password", self.check_password, "check_password")
        self.check_concentration = NumberField(
            "checkConcentration", "Concentration read by the checker", " mcg/mL", 0, 99999
        )
        self.check_concentration.setMinimumWidth(FIELD_WIDTH)
        self._field(
            form,
            "Concentration on the vial (mcg/mL)",
            self.check_concentration,
            "check_concentration",
            help_text="As printed on the vial label.",
        )
        self.check_dose = NumberField(
            "checkDose", "Daily dose read by the checker", " mcg/day", maximum=9999.9
        )
        self.check_dose.setMinimumWidth(FIELD_WIDTH)
        self._field(
            form,
            "Daily dose prescribed (mcg/day)",
            self.check_dose,
            "check_dose",
            help_text="Per DAY, from the prescription and the pump programmer.",
        )
        layout.addLayout(form)
        layout.addStretch(1)
        return page

    def _done_page(self) -> QWidget:
        page, layout = self._page(DONE, "")
        self.saved_title = QLabel("✓ Refill saved")
        self.saved_title.setObjectName("savedTitle")
        layout.addWidget(self.saved_title)
        grid = QGridLayout()
        grid.setHorizontalSpacing(18)
        grid.setVerticalSpacing(8)
        self.saved_values: dict[str, QLabel] = {}
        for row, (key, caption) in enumerate(
            (
                ("savedAlarm", "Next low-reservoir alarm"),
                ("savedRefillBy", "Refill by"),
                ("savedEmpty", "Projected empty"),
                ("savedProgram", "Program"),
                ("savedChecker", "Double-checked by"),
            )
        ):
            title = QLabel(caption)
            title.setObjectName("fieldHelp")
            value = QLabel()
            value.setObjectName(key)
            value.setAccessibleName(caption)
            value.setProperty("savedValue", True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            grid.addWidget(title, row, 0, Qt.AlignmentFlag.AlignRight)
            grid.addWidget(value, row, 1)
            self.saved_values[key] = value
        grid.setColumnStretch(1, 1)
        layout.addLayout(grid)
        self.saved_flag = danger_banner("savedFlagged")
        layout.addWidget(self.saved_flag)
        card_box = QGroupBox("Patient card")
        card_layout = QVBoxLayout(card_box)
        card_help = QLabel(
            "Give the patient the card: drug, concentration, dose, alarm and refill-by dates, "
            "the withdrawal warning signs and the clinic's phone."
        )
        card_help.setWordWrap(True)
        card_help.setStyleSheet("font-weight: 400;")
        card_layout.addWidget(card_help)
        card_buttons = QHBoxLayout()
        self.pdf_button = button("Save patient card (&PDF)…", "savePdfButton")
        self.pdf_button.clicked.connect(lambda: self.save_card_pdf())
        self.print_button = button("P&rint…", "printButton")
        self.print_button.clicked.connect(self.print_card)
        card_buttons.addWidget(self.pdf_button)
        card_buttons.addWidget(self.print_button)
        card_buttons.addStretch(1)
        card_layout.addLayout(card_buttons)
        self.pdf_status = QLabel()
        self.pdf_status.setObjectName("pdfStatus")
        self.pdf_status.setStyleSheet("font-weight: 400; color: #1e7d32;")
        self.pdf_status.setWordWrap(True)
        card_layout.addWidget(self.pdf_status)
        layout.addWidget(card_box)
        layout.addStretch(1)
        return page

    def _current_program_text(self) -> str:
        old = self.old_program
        if old is None:
            return "No program recorded yet."
        return (
            f"<b>{dose_text(old.dose_mcg_per_day)}</b> "
            f"({per_hour_text(old.dose_mcg_per_day)}) of {_plain(old.concentration_mcg_per_ml)} "
            f"mcg/mL · {old.daily_volume_ml:.3f} mL/day"
        )

    def _prefill(self) -> None:
        now = self._services.context.now().astimezone(self._zone)
        corrects = self._corrects
        when = corrects.performed_at.astimezone(self._zone) if corrects else now
        self.performed_date.setDate(to_qdate(when.date()))
        self.performed_time.setTime(QTime(when.hour, when.minute))
        if corrects is None:
            return
        self.aspirated.set_number(corrects.aspirated_residual_ml)
        index = self.drug_combo.findText(corrects.drug_name)
        if index < 0:
            index = next(
                (
                    i
                    for i, (_id, _name, concentration) in enumerate(self.products)
                    if concentration == corrects.concentration_mcg_per_ml
                ),
                -1,
            )
            if index >= 0:
                index = self.drug_combo.findData(self.products[index][0])
        if index >= 0:
            self.drug_combo.setCurrentIndex(index)
        self.lot.setText(corrects.lot_number)
        self.volume_added.set_number(corrects.volume_added_ml)
        self.measured_after.set_number(corrects.measured_after_ml)
        self.notes.setText(corrects.notes)
        refills = self.overview.refills if self.overview else ()
        latest = next((r for r in refills if r.corrected_by_id is None), None)
        if latest is not None and latest.id == corrects.id and self.old_program is not None:
            # The program now running is the one the corrected refill set.
            self.dose.set_number(self.old_program.dose_mcg_per_day)

    # --- reading the form ---------------------------------------------------------------

    def performed_at(self) -> dt.datetime:
        day = from_qdate(self.performed_date.date())
        time = self.performed_time.time()
        return dt.datetime(
            day.year, day.month, day.day, time.hour(), time.minute(), tzinfo=self._zone
        )

    def selected_product(self) -> tuple[str, str, float] | None:
        product_id = self.drug_combo.currentData()
        return next((p for p in self.products if p[0] == product_id), None)

    def collect(self, upto: int = CHECK) -> RefillInput:
        """The nurse's entry; steps after ``upto`` get valid stand-ins so that an earlier
        step can be checked by the same service preview."""
        aspirated = self.aspirated.number()
        product = self.selected_product()
        drug_id = product[0] if product else ""
        if upto < FILL and not drug_id and self.products:
            drug_id = self.products[0][0]
        old_dose = self.old_program.dose_mcg_per_day if self.old_program else 0.0
        later_fill = upto < FILL
        later_program = upto < PROGRAM
        volume = self.reservoir_ml if later_fill else self.volume_added.number()
        dose = old_dose if later_program else self.dose.number()
        return RefillInput(
            pump_id=self._pump_id,
            performed_at=self.performed_at(),
            aspirated_residual_ml=aspirated if aspirated is not None else 0.0,
            drug_product_id=drug_id,
            lot_number=PLACEHOLDER_LOT if later_fill else self.lot.text(),
            volume_added_ml=volume if volume is not None else 0.0,
            dose_mcg_per_day=dose if dose is not None else 0.0,
            measured_after_ml=None if later_fill else self.measured_after.number(),
            appointment_id=self._appointment_id,
            change_reason="" if later_program else self.change_reason.text(),
            notes="" if later_fill else self.notes.text(),
            corrects_refill_id=self._corrects.id if self._corrects else None,
        )

    def _missing(self, step: int) -> list[FieldError]:
        """Empty required numbers: never sent to the services as 0."""
        errors: list[FieldError] = []
        if step >= ASPIRATION and self.aspirated.number() is None:
            errors.append(
                FieldError(
                    "aspirated_residual_ml",
                    "Enter the aspirated volume in mL (0 if the reservoir was empty).",
                )
            )
        if step >= FILL:
            if self.selected_product() is None:
                errors.append(FieldError("drug_product_id", "Choose the drug product filled."))
            if self.volume_added.number() is None:
                errors.append(FieldError("volume_added_ml", "Enter the volume added in mL."))
        if step >= PROGRAM and self.dose.number() is None:
            errors.append(
                FieldError("dose_mcg_per_day", "Enter the new daily dose in mcg per day.")
            )
        return errors

    # --- steps --------------------------------------------------------------------------

    def current_step(self) -> int:
        return self.stack.currentIndex()

    def _go(self, step: int) -> None:
        self.stack.setCurrentIndex(step)
        self.step_model.set_current(step)
        set_banner(self.error_banner, [])
        done = step == DONE
        self.back_button.setVisible(step not in (ASPIRATION, DONE))
        self.cancel_button.setVisible(not done)
        self._update_next_text()
        if step == PROGRAM:
            self._refresh_program()
        if step == CHECK:
            self._prepare_check()
        focus = {
            ASPIRATION: self.aspirated,
            FILL: self.lot,
            PROGRAM: self.dose,
            CHECK: self.check_username,
            DONE: self.pdf_button,
        }[step]
        focus.setFocus()

    def _update_next_text(self) -> None:
        step = self.current_step()
        if step == ASPIRATION and self._seen.get(ASPIRATION) != self._aspiration_key():
            text = "&Reconcile ›"
        elif step == CHECK:
            text = "&Save refill"
        elif step == DONE:
            text = "&Close"
        else:
            text = "&Next ›"
        self.next_button.setText(text)
        self.next_button.setAccessibleName(text.replace("&", ""))

    def go_next(self) -> None:
        step = self.current_step()
        if step == DONE:
            self.accept()
            return
        if step == CHECK:
            self.save()
            return
        preview = self._validate(step)
        if preview is None:
            return
        if step == ASPIRATION and not self._show_reconciliation(preview):
            return
        if step == FILL and not self._show_pocket_fill(preview):
            return
        if step == PROGRAM and not self._program_ready(preview):
            return
        self._go(step + 1)

    def go_back(self) -> None:
        step = self.current_step()
        if step in (ASPIRATION, DONE):
            return
        if step == CHECK:
            self._clear_check(password=True)
        self._go(step - 1)

    def _validate(self, step: int) -> RefillPreview | None:
        missing = self._missing(step)
        if missing:
            self._show_errors(missing)
            return None
        try:
            preview = self._services.refills.preview(self._actor, self.collect(step))
        except ValidationFailed as failure:
            relevant = [e for e in failure.errors if FIELD_STEPS.get(e.field, step) <= step]
            self._show_errors(relevant or list(failure.errors))
            return None
        except ServiceError as error:
            set_banner(self.error_banner, [str(error)])
            return None
        except Exception as error:  # a bug: logged with its traceback
            show_bug(self, error)
            return None
        self.errors.clear()
        set_banner(self.error_banner, [])
        self.preview_result = preview
        return preview

    def _show_errors(self, errors: Sequence[FieldError]) -> None:
        leftover = self.errors.show(errors)
        steps = [FIELD_STEPS[e.field] for e in errors if e.field in FIELD_STEPS]
        earliest = min(steps, default=self.current_step())
        if earliest < self.current_step():
            self._go(earliest)
        set_banner(self.error_banner, ["Not saved: correct the fields marked in red.", *leftover])
        first = next((e.field for e in errors if e.field in self.errors.fields()), None)
        if first is not None:
            self.errors.fields()[first].setFocus()

    def _forget(self, step: int) -> None:
        """Inputs of ``step`` changed: its result must be looked at again."""
        self._seen.pop(step, None)
        if step == FILL:
            set_banner(self.pocket_banner, [])
        self._update_next_text()

    # --- step 1: aspiration -------------------------------------------------------------

    def _aspiration_key(self) -> object:
        return (self.performed_at(), self.aspirated.number())

    def _aspiration_changed(self) -> None:
        self._forget(ASPIRATION)
        set_banner(self.reconciliation_label, [], "")
        set_banner(self.reconciliation_flag, [])
        self._update_expected()

    def _update_expected(self) -> None:
        card = self.pump_card
        corrects = self._corrects
        if corrects is not None:
            expected = corrects.expected_residual_ml
            self.expected_label.setText(
                f"Expected residual: {expected:.1f} mL"
                if expected is not None
                else "Expected residual: not recorded"
            )
            self.expected_detail.setText("As recorded with the refill being corrected.")
            return
        if card is None or card.last_fill_at is None:
            self.expected_label.setText("Expected residual: —")
            self.expected_detail.setText("No earlier fill is recorded for this pump.")
            return
        at = self.performed_at()
        last = card.last_fill_at.astimezone(self._zone)
        if at <= card.last_fill_at:
            self.expected_label.setText("Expected residual: —")
            self.expected_detail.setText(
                f"The refill time must be after the last fill ({last:%a %d %b %Y %H:%M})."
            )
            return
        try:
            expected = self._services.refills.expected_residual_ml(self._actor, self._pump_id, at)
        except ServiceError as error:
            self.expected_label.setText("Expected residual: —")
            self.expected_detail.setText(str(error))
            return
        if expected is None:
            self.expected_label.setText("Expected residual: —")
            return
        self.expected_label.setText(f"Expected residual: {expected:.1f} mL")
        volume = f"{card.last_fill_volume_ml:.1f} mL" if card.last_fill_volume_ml else "the fill"
        rate = (
            f", {self.old_program.daily_volume_ml:.3f} mL/day"
            if self.old_program is not None
            else ""
        )
        self.expected_detail.setText(
            f"What the program leaves at the time of refill: {volume} on "
            f"{last:%a %d %b %Y %H:%M}{rate}."
        )

    def _show_reconciliation(self, preview: RefillPreview) -> bool:
        """Show the result; True when the nurse has already seen it for these inputs."""
        rec = preview.reconciliation
        key = self._aspiration_key()
        if rec is None:
            text = (
                "A correction is not reconciled again: the original entry keeps its result."
                if self._corrects
                else "No earlier fill to reconcile against."
            )
            set_banner(self.reconciliation_label, [text], "")
            set_banner(self.reconciliation_flag, [])
            return True
        set_banner(self.reconciliation_label, reconciliation_words(rec, self.accuracy_pct), "")
        set_banner(
            self.reconciliation_flag,
            reconciliation_alarm(rec, self.accuracy_pct) if rec.flagged else [],
            "",
        )
        if self._seen.get(ASPIRATION) == key:
            return True
        self._seen[ASPIRATION] = key
        self._update_next_text()
        return False

    # --- step 2: drug and fill ----------------------------------------------------------

    def _drug_changed(self) -> None:
        product = self.selected_product()
        self.concentration_label.setText(f"{_plain(product[2])} mcg/mL" if product else "")
        old = self.old_program
        messages = []
        if product is not None and old is not None and product[2] != old.concentration_mcg_per_ml:
            messages.append(
                f"Concentration changes from {_plain(old.concentration_mcg_per_ml)} to "
                f"{_plain(product[2])} mcg/mL. The daily volume changes: the pump must be "
                "reprogrammed for the new concentration."
            )
        set_banner(self.concentration_banner, messages)
        self._dose_changed()

    def _show_pocket_fill(self, preview: RefillPreview) -> bool:
        pocket = preview.pocket_fill
        if pocket is None or not pocket.flagged:
            set_banner(self.pocket_banner, [])
            return True
        set_banner(
            self.pocket_banner,
            [
                pocket.warning
                or f"Measured {pocket.measured_after_ml:.1f} mL after filling "
                f"{pocket.injected_ml:.1f} mL (limit {pocket.limit_ml:g} mL).",
                "Press Next again to continue once the clinician knows.",
            ],
        )
        key = (self.volume_added.number(), self.measured_after.number())
        if self._seen.get(FILL) == key:
            return True
        self._seen[FILL] = key
        return False

    # --- step 3: program ----------------------------------------------------------------

    def _dose_changed(self) -> None:
        dose = self.dose.number()
        product = self.selected_product()
        if dose is None:
            self.hourly_label.setText("= — mcg/h")
            self.volume_label.setText("")
        else:
            self.hourly_label.setText(f"= {per_hour_text(dose)}")
            card = self.pump_card
            if product is not None and product[2] > 0 and not (card and card.constant_flow):
                self.volume_label.setText(f"· {dose / product[2]:.3f} mL/day")
            else:
                self.volume_label.setText("")
        if self.current_step() == PROGRAM:
            self._refresh_program()

    def _refresh_program(self) -> RefillPreview | None:
        """Titration warning and the side-by-side, live as the dose is typed."""
        preview: RefillPreview | None = None
        if not self._missing(PROGRAM):
            try:
                preview = self._services.refills.preview(self._actor, self.collect(PROGRAM))
            except ServiceError:
                preview = None
        warning = preview.titration_warning if preview else None
        set_banner(self.titration_banner, [warning] if warning else [])
        needs_reason = bool(preview and preview.needs_clinician)
        changed = bool(
            preview
            and preview.old_program
            and preview.old_program.dose_mcg_per_day != preview.new_program.dose_mcg_per_day
        )
        self.reason_form.setRowVisible(
            self.reason_row, needs_reason or changed or bool(self._corrects)
        )
        self.captions["change_reason"].setText(
            "Reason for the change *" if needs_reason else "Reason for the change"
        )
        self._fill_comparison(preview)
        return preview

    def _fill_comparison(self, preview: RefillPreview | None) -> None:
        old = self.old_program
        before = self._program_values(old, self.old_forecast)
        if preview is None:
            after = ["—"] * len(ProgramComparisonModel.ROWS)
        else:
            after = self._program_values(preview.new_program, preview.new_forecast)
        self.comparison_model.set_values(before, after)

    def _program_values(self, program: ProgramView | None, outlook: Forecast | None) -> list[str]:
        if program is None:
            return ["—"] * len(ProgramComparisonModel.ROWS)
        alarm_at = outlook.alarm_at if outlook else None
        refill_due = outlook.refill_due if outlook else None
        return [
            program.drug_name,
            f"{_plain(program.concentration_mcg_per_ml)} mcg/mL",
            dose_text(program.dose_mcg_per_day),
            per_hour_text(program.dose_mcg_per_day),
            f"{program.daily_volume_ml:.3f} mL/day",
            f"{alarm_at.astimezone(self._zone):%a %d %b %Y %H:%M}" if alarm_at else "—",
            f"{refill_due:%a %d %b %Y}" if refill_due else "—",
        ]

    def _program_ready(self, preview: RefillPreview) -> bool:
        self._refresh_program()
        if preview.needs_clinician and not self.change_reason.text().strip():
            self._show_errors(
                [
                    FieldError(
                        "change_reason",
                        "Reason for the change is required: the change is beyond the "
                        "titration bounds.",
                    )
                ]
            )
            return False
        return True

    # --- step 4: double check and save --------------------------------------------------

    def _prepare_check(self) -> None:
        preview = self.preview_result
        needs = bool(preview and preview.needs_clinician) and not can(
            self._actor, Permission.CHANGE_PROGRAM_BEYOND_BOUNDS
        )
        set_banner(
            self.clinician_needed,
            ["This change is beyond the titration bounds: the second checker must be a clinician."]
            if needs
            else [],
        )

    def _clear_check(self, password: bool = False) -> None:
        if password:  # leaving the step: start the next check afresh
            set_banner(self.mismatch_banner, [])
        self.check_concentration.clear_number()
        self.check_dose.clear_number()
        if password:
            self.check_password.clear()

    def save(self) -> RecordedRefill | None:
        missing = self._missing(PROGRAM)
        if self.check_concentration.number() is None:
            missing.append(
                FieldError(
                    "check_concentration", "Type the concentration read on the vial (mcg/mL)."
                )
            )
        if self.check_dose.number() is None:
            missing.append(FieldError("check_dose", "Type the prescribed daily dose (mcg/day)."))
        if missing:
            self._show_errors(missing)
            return None
        check = DoubleCheck(
            username=self.check_username.text(),
            password=self.check_password.text(),
            concentration_mcg_per_ml=self.check_concentration.number(),
            dose_mcg_per_day=self.check_dose.number(),
        )
        set_banner(self.mismatch_banner, [])
        try:
            data = self.collect()
            # The second person's password is verified at this click, then the refill saved.
            token = self._services.refills.verify_double_check(self._actor, data.pump_id, check)
            recorded = self._services.refills.record_refill(self._actor, data, token)
        except ValidationFailed as failure:
            mismatch = failure.for_field("check_concentration") or failure.for_field("check_dose")
            if mismatch:
                self._clear_check()
                set_banner(
                    self.mismatch_banner,
                    [
                        "The double check does not match: NOTHING WAS SAVED. Together, compare "
                        "the vial, the prescription and the pump programmer; then the checker "
                        "types the concentration and the daily dose again."
                    ],
                )
            self._show_errors(failure.errors)
            return None
        except AuthenticationFailed as failed:
            self.check_password.clear()
            self._show_errors([FieldError("check_password", str(failed))])
            return None
        except ServiceError as error:
            set_banner(self.error_banner, ["Not saved.", str(error)])
            return None
        except Exception as error:  # a bug: logged with its traceback
            show_bug(self, error)
            return None
        self.recorded = recorded
        self._clear_check(password=True)
        self._show_saved(recorded)
        self._go(DONE)
        self.saved.emit(recorded)
        if self._bus is not None:
            entities = ("refill", "appointment") if self._appointment_id else ("refill",)
            self._bus.notify(*entities)
        return recorded

    # --- after saving -------------------------------------------------------------------

    def _show_saved(self, recorded: RecordedRefill) -> None:
        outlook = recorded.forecast
        card = recorded.card
        values = self.saved_values
        values["savedAlarm"].setText(
            f"{outlook.alarm_at.astimezone(self._zone):%a %d %b %Y, %H:%M}"
            if outlook.alarm_at
            else "none (no dose running)"
        )
        values["savedRefillBy"].setText(
            f"{outlook.refill_due:%a %d %b %Y}" if outlook.refill_due else "—"
        )
        values["savedEmpty"].setText(
            f"{outlook.empty_at.astimezone(self._zone):%a %d %b %Y, %H:%M}"
            if outlook.empty_at
            else "—"
        )
        values["savedProgram"].setText(
            f"{dose_text(card.dose_mcg_per_day)}  ({per_hour_text(card.dose_mcg_per_day)}) of "
            f"{_plain(card.concentration_mcg_per_ml)} mcg/mL"
        )
        values["savedChecker"].setText(recorded.refill.double_checked_by)
        rec = recorded.reconciliation
        set_banner(
            self.saved_flag,
            [
                "The residual did not match the program: tell the clinician before the "
                "patient leaves, and book a review."
            ]
            if rec is not None and rec.flagged
            else [],
        )
        self.saved_title.setText(
            "✓ Correction saved" if self._corrects is not None else "✓ Refill saved"
        )

    def save_card_pdf(self, path: Path | None = None) -> Path | None:
        """Write the patient card; asks where when no ``path`` is given."""
        if self.recorded is None:
            return None
        card = self.recorded.card
        if path is None:
            suggested = Path.home() / (
                f"patient-card-{card.mrn}-{card.printed_at.astimezone(self._zone):%Y-%m-%d}.pdf"
            )
            name, _filter = QFileDialog.getSaveFileName(
                self, "Save patient card", str(suggested), "PDF files (*.pdf)"
            )
            if not name:
                return None
            path = Path(name)
            if path.suffix.lower() != ".pdf":
                path = path.with_suffix(".pdf")
        try:
            write_patient_card_pdf(card, path)
        except OSError as error:
            set_banner(self.error_banner, [f"The patient card was not saved: {error}"])
            return None
        self.saved_pdf = path
        self.pdf_status.setText(f"Saved: {path}")
        return path

    def print_card(self) -> bool:
        if self.recorded is None:
            return False
        return print_patient_card(self.recorded.card, self)
