"""The Today page: the clinic's day at a glance — alert counts, who to reach first, and
today's refill appointments. Re-evaluated every minute while the app is open."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from pumpclinic.domain.alerts import SEVERITIES_MOST_SEVERE_FIRST, Severity
from pumpclinic.domain.enums import AppointmentStatus
from pumpclinic.services.alerts import AlertList, AlertRow
from pumpclinic.services.booking import AppointmentRow, DaySchedule
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.services.permissions import Permission, can
from pumpclinic.ui.alerts import (
    REFRESH_INTERVAL_MS,
    ROW_ROLE,
    SEVERITY_FILL,
    SEVERITY_TEXT,
    WATCHED_ENTITIES,
    AlertTableModel,
    severity_icon,
)
from pumpclinic.ui.bus import DataBus
from pumpclinic.ui.errors import guarded
from pumpclinic.ui.models import AnyIndex, RowTableModel
from pumpclinic.ui.widgets import banner, page_header, set_banner

MOST_DANGEROUS = 8
_INACTIVE = frozenset({AppointmentStatus.CANCELLED, AppointmentStatus.NO_SHOW})


class TodayAppointmentsModel(RowTableModel[AppointmentRow]):
    """The day's refill appointments in time order (cancelled ones greyed, kept)."""

    COLUMNS = ("Time", "Patient", "Status")

    def __init__(self, parent: object = None) -> None:
        super().__init__(parent)
        self._zone: dt.tzinfo = dt.UTC

    def set_schedule(self, schedule: DaySchedule) -> None:
        self.beginResetModel()
        self._rows = sorted(schedule.appointments, key=lambda a: (a.starts_at, a.id))
        self._zone = schedule.zone
        self.endResetModel()

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        if role in (
            Qt.ItemDataRole.DisplayRole,
            Qt.ItemDataRole.ToolTipRole,
            Qt.ItemDataRole.AccessibleTextRole,
        ):
            start = row.starts_at.astimezone(self._zone)
            end = row.ends_at.astimezone(self._zone)
            separator = "\n" if role == Qt.ItemDataRole.DisplayRole else " · "
            return (
                f"{start:%H:%M}–{end:%H:%M}",
                f"{row.patient_name}{separator}{row.mrn}",
                row.status.value.capitalize(),
            )[index.column()]
        if role == Qt.ItemDataRole.ForegroundRole and row.status in _INACTIVE:
            return QBrush(QColor("#8a96a3"))
        if role == ROW_ROLE:
            return row
        return None


class TodayPage(QWidget):
    """``show_alerts`` asks for the Alerts page filtered to a severity (None: all);
    ``open_patient`` carries a patient id."""

    show_alerts = Signal(object)
    open_patient = Signal(int)

    def __init__(
        self, services: Services, actor: Actor, bus: DataBus, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("todayPage")
        self._services = services
        self._actor = actor
        self.can_alerts = can(actor, Permission.VIEW_ALERTS)
        self.can_schedule = can(actor, Permission.VIEW_SCHEDULE)
        self.result: AlertList | None = None
        self.schedule: DaySchedule | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 18, 24, 18)
        layout.setSpacing(12)
        self.header = page_header("Today", "The clinic's day at a glance.")
        layout.addWidget(self.header)
        self.title = self.header.findChild(QLabel, "pageTitle")
        self.alerts_model = AlertTableModel(self, page_size=MOST_DANGEROUS)
        self.appointments_model = TodayAppointmentsModel(self)
        if not (self.can_alerts or self.can_schedule):
            info = banner("todayNoAccess", "info")
            set_banner(info, ["The clinic's day is not part of the administrator role."], "")
            layout.addWidget(info)
            layout.addStretch(1)
            return

        tiles = QHBoxLayout()
        tiles.setSpacing(10)
        self.count_tiles: dict[Severity, QPushButton] = {}
        for severity in SEVERITIES_MOST_SEVERE_FIRST:
            tile = QPushButton()
            tile.setObjectName(f"todayCount_{severity.value}")
            tile.setAccessibleName(f"{severity.label} alerts: show them")
            tile.setToolTip(f"Open the Alerts page at the {severity.label.lower()} alerts")
            tile.setIcon(severity_icon(severity, 28))
            tile.setIconSize(QSize(28, 28))
            tile.setMinimumHeight(64)
            tile.setCursor(Qt.CursorShape.PointingHandCursor)
            tile.clicked.connect(lambda _checked=False, s=severity: self.show_alerts.emit(s))
            tiles.addWidget(tile, 1)
            self.count_tiles[severity] = tile
        tiles_box = QWidget()
        tiles_box.setLayout(tiles)
        tiles_box.setVisible(self.can_alerts)
        layout.addWidget(tiles_box)

        columns = QHBoxLayout()
        columns.setSpacing(14)
        danger = QGroupBox("Reach these patients first")
        danger.setObjectName("mostDangerousBox")
        danger_layout = QVBoxLayout(danger)
        self.danger_table = self._table("mostDangerous", "Most dangerous patients")
        self.danger_table.setModel(self.alerts_model)
        self.danger_table.verticalHeader().setDefaultSectionSize(40)
        self.danger_table.setWordWrap(True)
        self.danger_table.setColumnHidden(4, True)
        header = self.danger_table.horizontalHeader()
        for column, width in ((0, 128), (1, 175), (3, 160)):
            self.danger_table.setColumnWidth(column, width)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.danger_table.doubleClicked.connect(self._open_danger)
        danger_layout.addWidget(self.danger_table)
        self.all_alerts_button = QPushButton("All alerts…")
        self.all_alerts_button.setObjectName("todayAllAlerts")
        self.all_alerts_button.setAccessibleName("Open the Alerts page")
        self.all_alerts_button.clicked.connect(lambda: self.show_alerts.emit(None))
        danger_layout.addWidget(self.all_alerts_button, 0, Qt.AlignmentFlag.AlignRight)
        danger.setVisible(self.can_alerts)
        columns.addWidget(danger, 2)

        appointments = QGroupBox("Today's refill appointments")
        appointments.setObjectName("todayAppointmentsBox")
        appointments_layout = QVBoxLayout(appointments)
        self.appointments_table = self._table("todayAppointments", "Today's refill appointments")
        self.appointments_table.setModel(self.appointments_model)
        self.appointments_table.verticalHeader().setDefaultSectionSize(40)
        a_header = self.appointments_table.horizontalHeader()
        a_header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        a_header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.appointments_table.doubleClicked.connect(self._open_appointment)
        appointments_layout.addWidget(self.appointments_table)
        self.appointments_note = QLabel()
        self.appointments_note.setObjectName("todayAppointmentsNote")
        self.appointments_note.setStyleSheet("color: #52606d;")
        appointments_layout.addWidget(self.appointments_note)
        appointments.setVisible(self.can_schedule)
        columns.addWidget(appointments, 1)
        layout.addLayout(columns, 1)

        self.timer = QTimer(self)
        self.timer.setObjectName("todayTimer")
        self.timer.setInterval(REFRESH_INTERVAL_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        bus.changed.connect(self._on_changed)
        self.refresh()

    def _table(self, name: str, accessible: str) -> QTableView:
        table = QTableView()
        table.setObjectName(name)
        table.setAccessibleName(accessible)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().setVisible(False)
        table.setAlternatingRowColors(False)
        return table

    # --- data ---------------------------------------------------------------------------

    def refresh(self) -> None:
        now = self._services.context.now()
        if self.can_alerts:
            result = guarded(self, lambda: self._services.alerts.alerts(self._actor, now), "Today")
            if result is not None:
                self.result = result
                self._show_alerts(result)
        if self.can_schedule:
            zone = self.result.zone if self.result else self._services.settings.get()[0].zone
            today = now.astimezone(zone).date()
            schedule = guarded(
                self, lambda: self._services.booking.day_schedule(self._actor, today), "Today"
            )
            if schedule is not None:
                self.schedule = schedule
                self.appointments_model.set_schedule(schedule)
                active = [a for a in schedule.appointments if a.status not in _INACTIVE]
                done = sum(1 for a in active if a.status is AppointmentStatus.COMPLETED)
                if schedule.closed_reason:
                    note = f"{schedule.closed_reason}."
                elif not schedule.appointments:
                    note = "No refill appointments today."
                else:
                    note = f"{len(active)} booked, {done} done."
                self.appointments_note.setText(note)
        local = now.astimezone(self.result.zone if self.result else dt.UTC)
        if self.title is not None:
            self.title.setText(f"Today — {local:%A} {local.day} {local:%B %Y}")

    def _show_alerts(self, result: AlertList) -> None:
        counts = result.counts
        for severity, tile in self.count_tiles.items():
            count = counts[severity]
            tile.setText(f"  {count}  {severity.label}")
            fill = SEVERITY_FILL[severity].name() if count else "#d9e2ec"
            text = SEVERITY_TEXT[severity].name() if count else "#52606d"
            tile.setStyleSheet(
                f"QPushButton {{ font-size: 15pt; font-weight: 700; color: {text};"
                f" background: white; border: 1px solid #d9e2ec;"
                f" border-left: 8px solid {fill}; border-radius: 6px; text-align: left;"
                f" padding-left: 14px; }}"
                " QPushButton:hover { background: #eef4fa; }"
            )
        self.alerts_model.set_rows(most_dangerous(result.rows), result.zone)

    def _on_changed(self, entities: frozenset[str]) -> None:
        if entities & WATCHED_ENTITIES:
            self.refresh()

    def _open_danger(self, index: QModelIndex) -> None:
        row = self.alerts_model.data(self.alerts_model.index(index.row(), 0), ROW_ROLE)
        if isinstance(row, AlertRow):
            self.open_patient.emit(row.patient_id)

    def _open_appointment(self, index: QModelIndex) -> None:
        self.open_patient.emit(self.appointments_model.row_at(index.row()).patient_id)


def most_dangerous(rows: Sequence[AlertRow], limit: int = MOST_DANGEROUS) -> list[AlertRow]:
    """The first alerts of the list, one per patient, down to warning (never info)."""
    chosen: list[AlertRow] = []
    seen: set[int] = set()
    for row in rows:
        if row.severity is Severity.INFO:
            break
        if row.patient_id in seen:
            continue
        seen.add(row.patient_id)
        chosen.append(row)
        if len(chosen) == limit:
            break
    return chosen
