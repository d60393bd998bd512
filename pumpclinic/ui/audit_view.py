"""A patient's audit trail: who changed what, when, with the values before and after."""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QPlainTextEdit,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from pumpclinic.services.audit import AuditRow
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.ui.errors import guarded
from pumpclinic.ui.models import AnyIndex, RowTableModel
from pumpclinic.ui.widgets import button, page_header

ACTION_LABELS = {"create": "Created", "update": "Changed", "delete": "Deleted"}


def summary(row: AuditRow) -> str:
    if not row.changes:
        return ""
    names = [field for field, _before, _after in row.changes]
    shown = ", ".join(names[:4])
    return shown + (f" and {len(names) - 4} more" if len(names) > 4 else "")


class AuditModel(RowTableModel[AuditRow]):
    COLUMNS = ("When", "Who", "Action", "Record", "Fields changed")

    def __init__(self, zone: zoneinfo.ZoneInfo, parent: object = None) -> None:
        super().__init__(parent)
        self._zone = zone

    def set_rows(self, rows: Sequence[AuditRow]) -> None:
        self._reset(rows)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return None
        row = self._rows[index.row()]
        return (
            f"{row.at.astimezone(self._zone):%d %b %Y %H:%M}",
            row.username,
            ACTION_LABELS.get(row.action, row.action),
            f"{row.entity.replace('_', ' ')} #{row.entity_id}",
            summary(row),
        )[index.column()]


def describe(row: AuditRow, zone: zoneinfo.ZoneInfo) -> str:
    lines = [
        f"{ACTION_LABELS.get(row.action, row.action)} {row.entity.replace('_', ' ')} "
        f"#{row.entity_id} by {row.username} on {row.at.astimezone(zone):%a %d %b %Y %H:%M}",
        "",
    ]
    for field, before, after in row.changes:
        if row.action == "create":
            lines.append(f"{field}: {after}")
        else:
            lines.append(f"{field}: {before or '(empty)'}  →  {after or '(empty)'}")
    return "\n".join(lines)


class AuditDialog(QDialog):
    def __init__(
        self,
        services: Services,
        actor: Actor,
        patient_id: int,
        patient_name: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("auditDialog")
        self.setWindowTitle(f"History — {patient_name}")
        self.resize(1000, 640)
        self._zone = services.settings.get()[0].zone
        layout = QVBoxLayout(self)
        layout.addWidget(
            page_header(
                f"History of {patient_name}",
                "Every change to this patient's record, refills, bookings and trial, newest "
                "first. Entries are chained, and refills, programs and bookings sealed when "
                "created: a change made outside PumpClinic is detected by "
                "'pumpclinic audit-verify'.",
            )
        )
        self.model = AuditModel(self._zone, self)
        self.table = QTableView()
        self.table.setObjectName("auditTable")
        self.table.setAccessibleName("Audit entries")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.detail = QPlainTextEdit()
        self.detail.setObjectName("auditDetail")
        self.detail.setAccessibleName("Values before and after")
        self.detail.setReadOnly(True)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.detail)
        splitter.setSizes([380, 200])
        layout.addWidget(splitter, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        close = button("Close", "closeAudit")
        close.clicked.connect(self.accept)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        rows = guarded(self, lambda: services.audit.for_patient(actor, patient_id))
        self.model.set_rows(rows or [])
        self.table.selectionModel().currentRowChanged.connect(self._show_detail)
        if rows:
            self.table.selectRow(0)

    def _show_detail(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.detail.setPlainText(describe(self.model.row_at(current.row()), self._zone))
