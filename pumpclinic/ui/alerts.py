"""The Alerts page: every patient whose pump is heading for empty, most dangerous first.

A table (lazily paged model + filter proxy) with severity shown by icon, word and colour; a
detail panel per alert to log contact attempts, set do-not-contact and book the refill. The
list is re-evaluated every minute while the app is open, not only when data changes: an
alert is computed from the time as well as the events. A new critical alert raises a
notification in the window (and in the system tray where there is one).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Iterable, Sequence

from PySide6.QtCore import (
    QAbstractListModel,
    QAbstractTableModel,
    QDate,
    QDateTime,
    QItemSelectionModel,
    QModelIndex,
    QPointF,
    QRectF,
    QSortFilterProxyModel,
    Qt,
    QTime,
    QTimer,
    Signal,
)
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QIcon,
    QKeySequence,
    QPainter,
    QPixmap,
    QPolygonF,
    QShortcut,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDateTimeEdit,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QSystemTrayIcon,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from pumpclinic.domain.alerts import (
    KIND_PRECEDENCE,
    SEVERITIES_MOST_SEVERE_FIRST,
    AlertKind,
    ContactMethod,
    ContactOutcome,
    Severity,
    outcomes_for,
)
from pumpclinic.services.alerts import (
    AlertList,
    AlertRow,
    ContactAttemptRow,
    ContactInput,
    ContactSheet,
)
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.services.errors import ServiceError, ValidationFailed
from pumpclinic.services.permissions import Permission, can
from pumpclinic.ui.bus import DataBus
from pumpclinic.ui.errors import guarded, show_bug, show_known_error
from pumpclinic.ui.models import AnyIndex
from pumpclinic.ui.widgets import (
    FieldErrorLabels,
    banner,
    button,
    page_header,
    primary_button,
    set_banner,
)

Clock = Callable[[], dt.datetime]

REFRESH_INTERVAL_MS = 60_000
PAGE_SIZE = 200
SORT_ROLE = Qt.ItemDataRole.UserRole
ROW_ROLE = Qt.ItemDataRole.UserRole + 2
# What changes an alert: refresh when any of these is announced on the bus.
WATCHED_ENTITIES = frozenset(
    {"refill", "appointment", "patient", "pump", "contact", "trial", "screening", "settings"}
)

# Severity is never told by colour alone: each has its icon shape and its word too.
SEVERITY_TEXT = {
    Severity.CRITICAL: QColor("#8c1d18"),
    Severity.URGENT: QColor("#9c3500"),
    Severity.WARNING: QColor("#6b3d00"),
    Severity.INFO: QColor("#184d72"),
}
SEVERITY_FILL = {
    Severity.CRITICAL: QColor("#c62828"),
    Severity.URGENT: QColor("#e8590c"),
    Severity.WARNING: QColor("#f0a202"),
    Severity.INFO: QColor("#2f7ab8"),
}
SEVERITY_ROW = {
    Severity.CRITICAL: QColor("#fbe3e1"),
    Severity.URGENT: QColor("#fff0e3"),
}
DANGER_STYLE = (
    "background: #fbe3e1; color: #8c1d18; border: 2px solid #c62828; border-radius: 4px;"
    " padding: 8px 10px; font-weight: 600;"
)

_ICONS: dict[tuple[Severity, int], QIcon] = {}


def severity_icon(severity: Severity, size: int = 18) -> QIcon:
    """A shape per severity: octagon (critical), diamond (urgent), triangle (warning),
    circle (info), each with its mark — readable without colour."""
    key = (severity, size)
    icon = _ICONS.get(key)
    if icon is not None:
        return icon
    scale = 4  # draw large, let Qt scale down smoothly
    side = size * scale
    pixmap = QPixmap(side, side)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(SEVERITY_FILL[severity])
    s = float(side)
    if severity is Severity.CRITICAL:
        a = s * 0.29
        points = [
            (a, 0),
            (s - a, 0),
            (s, a),
            (s, s - a),
            (s - a, s),
            (a, s),
            (0, s - a),
            (0, a),
        ]
        painter.drawPolygon(QPolygonF([QPointF(x, y) for x, y in points]))
        mark = "!"
    elif severity is Severity.URGENT:
        points = [(s / 2, 0), (s, s / 2), (s / 2, s), (0, s / 2)]
        painter.drawPolygon(QPolygonF([QPointF(x, y) for x, y in points]))
        mark = "!"
    elif severity is Severity.WARNING:
        points = [(s / 2, s * 0.04), (s, s * 0.96), (0, s * 0.96)]
        painter.drawPolygon(QPolygonF([QPointF(x, y) for x, y in points]))
        mark = "!"
    else:
        painter.drawEllipse(QRectF(0, 0, s, s))
        mark = "i"
    font = QFont()
    font.setBold(True)
    font.setPixelSize(int(s * (0.62 if severity is not Severity.WARNING else 0.55)))
    painter.setFont(font)
    painter.setPen(QColor("#3a2500") if severity is Severity.WARNING else QColor("white"))
    text_rect = QRectF(0, s * 0.12, s, s) if severity is Severity.WARNING else QRectF(0, 0, s, s)
    painter.drawText(text_rect, Qt.AlignmentFlag.AlignCenter, mark)
    painter.end()
    icon = QIcon(pixmap)
    _ICONS[key] = icon
    return icon


def severity_label(row: AlertRow) -> str:
    text = row.severity.label.upper()
    return f"{text} ↑" if row.alert.raised_by else text


def deadline_text(row: AlertRow, zone: dt.tzinfo, separator: str = "\n") -> str:
    """ "Empty⏎Wed 25 Nov 16:54": what the deadline is, then when."""
    alert = row.alert
    if alert.deadline is None:
        return "—"
    local = alert.deadline.astimezone(zone)
    when = f"{local:%a} {local.day} {local:%b}"
    if not alert.deadline_is_day:
        when += f" {local:%H:%M}"
    return f"{alert.deadline_label.capitalize()}{separator}{when}"


def last_contact_text(row: AlertRow, zone: dt.tzinfo, separator: str = "\n") -> str:
    last = row.last_contact
    lines: list[str] = []
    if row.do_not_contact:
        lines.append("DO NOT CONTACT")
    if last is None:
        lines.append("Not contacted yet")
    else:
        local = last.at.astimezone(zone)
        lines.append(f"{last.outcome.label} ({last.method.label.lower()})")
        when = f"{local:%a} {local.day} {local:%b %H:%M}"
        if last.promised_date is not None:
            promised = last.promised_date
            when += f", promised {promised:%a} {promised.day} {promised:%b}"
        lines.append(when)
    return separator.join(lines[:2]) if row.do_not_contact else separator.join(lines)


# --- the table model ------------------------------------------------------------------------


class AlertTableModel(QAbstractTableModel):
    """The alert list, in danger order, handed to the view a page at a time."""

    COLUMNS = ("Severity", "Patient", "What is wrong", "Deadline", "Last contact")

    def __init__(self, parent: object = None, page_size: int = PAGE_SIZE) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self._all: list[AlertRow] = []
        self._loaded = 0
        self._page_size = page_size
        self._zone: dt.tzinfo = dt.UTC

    # --- data in ----------------------------------------------------------------------

    def set_rows(self, rows: Sequence[AlertRow], zone: dt.tzinfo) -> None:
        """Replace the list; as many rows stay loaded as before (at least a page)."""
        self.beginResetModel()
        keep = max(self._page_size, self._loaded)
        self._all = list(rows)
        self._zone = zone
        self._loaded = min(len(self._all), keep)
        self.endResetModel()

    def all_rows(self) -> list[AlertRow]:
        return list(self._all)

    def row_at(self, row: int) -> AlertRow:
        return self._all[row]

    def source_row_of(self, key: str) -> int | None:
        for index, row in enumerate(self._all):
            if row.key == key:
                return index
        return None

    def ensure_loaded(self, row: int) -> None:
        while self._loaded <= row and self.canFetchMore():
            self.fetchMore()

    def fetch_all(self) -> None:
        while self.canFetchMore():
            self.fetchMore()

    # --- lazy paging ------------------------------------------------------------------

    def canFetchMore(self, parent: AnyIndex = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and self._loaded < len(self._all)

    def fetchMore(self, parent: AnyIndex = QModelIndex()) -> None:  # noqa: B008
        if parent.isValid():
            return
        more = min(self._page_size, len(self._all) - self._loaded)
        if more <= 0:
            return
        self.beginInsertRows(QModelIndex(), self._loaded, self._loaded + more - 1)
        self._loaded += more
        self.endInsertRows()

    # --- the model interface ----------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._loaded

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
        if not index.isValid() or not 0 <= index.row() < self._loaded:
            return None
        row = self._all[index.row()]
        column = index.column()
        severity = row.severity
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, column)
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            return self._tooltip(row, column)
        if role == Qt.ItemDataRole.DecorationRole and column == 0:
            return severity_icon(severity)
        if role == Qt.ItemDataRole.ForegroundRole and column in (0, 2, 3):
            return QBrush(SEVERITY_TEXT[severity])
        if role == Qt.ItemDataRole.BackgroundRole and severity in SEVERITY_ROW:
            return QBrush(SEVERITY_ROW[severity])
        if role == Qt.ItemDataRole.FontRole and (column in (0, 1) or severity is Severity.CRITICAL):
            font = QFont()
            font.setBold(severity in (Severity.CRITICAL, Severity.URGENT) or column == 1)
            return font
        if role == SORT_ROLE:
            return self._sort_key(row, index.row(), column)
        if role == ROW_ROLE:
            return row
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def _text(self, row: AlertRow, column: int) -> str:
        if column == 0:
            return severity_label(row)
        if column == 1:
            return f"{row.patient_name}\n{row.mrn}"
        if column == 2:
            return row.alert.summary or row.alert.description
        if column == 3:
            return deadline_text(row, self._zone)
        return last_contact_text(row, self._zone)

    def _tooltip(self, row: AlertRow, column: int) -> str:
        alert = row.alert
        if column == 0:
            text = f"{alert.severity.label}: {alert.kind.label}"
            if alert.raised_by:
                flags = ", ".join(flag.label for flag in alert.raised_by)
                text += f" — raised one level from {alert.base_severity.label} ({flags})"
            return text
        if column == 1:
            return f"{row.patient_name} · {row.mrn}"
        if column == 2:
            return alert.description
        if column == 4:
            text = last_contact_text(row, self._zone, " · ")
            if row.do_not_contact:
                text += f"\nDo not contact: {row.do_not_contact_reason}"
            return text
        return self._text(row, column).replace("\n", " ")

    def _sort_key(self, row: AlertRow, position: int, column: int) -> object:
        alert = row.alert
        if column == 0:
            return position  # the list's own order: most dangerous first
        if column == 1:
            return row.patient_name.casefold()
        if column == 2:
            return alert.kind.label
        if column == 3:
            return alert.deadline.timestamp() if alert.deadline else float("inf")
        return row.last_contact.at.timestamp() if row.last_contact else 0.0


class AlertFilterProxy(QSortFilterProxyModel):
    """Filters by severity, kind and the staff member who last worked the alert."""

    NOT_CONTACTED = -1

    def __init__(self, parent: object = None) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self.setSortRole(SORT_ROLE)
        self._severities: frozenset[Severity] = frozenset()
        self._kind: AlertKind | None = None
        self._staff: int | None = None

    def accepts(self, row: AlertRow) -> bool:
        if self._severities and row.severity not in self._severities:
            return False
        if self._kind is not None and row.kind is not self._kind:
            return False
        if self._staff is None:
            return True
        last = row.last_contact
        if self._staff == self.NOT_CONTACTED:
            return last is None
        return last is not None and last.by_user_id == self._staff

    def set_filters(
        self,
        severities: Iterable[Severity] | None = None,
        kind: AlertKind | None = None,
        staff: int | None = None,
    ) -> None:
        def apply() -> None:
            self._severities = frozenset(severities or ())
            self._kind = kind
            self._staff = staff

        if hasattr(self, "beginFilterChange"):  # Qt >= 6.9; invalidateFilter is deprecated
            self.beginFilterChange()
            apply()
            self.endFilterChange()
        else:
            apply()
            self.invalidateFilter()

    @property
    def severities(self) -> frozenset[Severity]:
        return self._severities

    @property
    def kind(self) -> AlertKind | None:
        return self._kind

    @property
    def staff(self) -> int | None:
        return self._staff

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:
        model = self.sourceModel()
        row = model.data(model.index(source_row, 0, source_parent), ROW_ROLE)
        return isinstance(row, AlertRow) and self.accepts(row)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        # Column 0 is the list's own order, of which the loaded rows are the head; any other
        # order needs every row first.
        source = self.sourceModel()
        if column > 0 and isinstance(source, AlertTableModel):
            source.fetch_all()
        super().sort(column, order)


class ContactHistoryModel(QAbstractListModel):
    """A patient's contact attempts, newest first."""

    def __init__(self, parent: object = None) -> None:
        super().__init__(parent)  # type: ignore[arg-type]
        self._rows: list[ContactAttemptRow] = []
        self._zone: dt.tzinfo = dt.UTC

    def set_rows(self, rows: Sequence[ContactAttemptRow], zone: dt.tzinfo) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self._zone = zone
        self.endResetModel()

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        attempt = self._rows[index.row()]
        if role in (
            Qt.ItemDataRole.DisplayRole,
            Qt.ItemDataRole.ToolTipRole,
            Qt.ItemDataRole.AccessibleTextRole,
        ):
            local = attempt.at.astimezone(self._zone)
            text = (
                f"{local:%a} {local.day} {local:%b %H:%M} — {attempt.method.label}:"
                f" {attempt.outcome.label} ({attempt.by})"
            )
            if attempt.promised_date is not None:
                promised = attempt.promised_date
                text += f"; promised {promised:%a} {promised.day} {promised:%b}"
            if attempt.notes:
                text += f"\n    {attempt.notes}"
            return text
        if role == ROW_ROLE:
            return attempt
        return None


def _caption(text: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet("font-weight: 400;")  # inside a group box, whose title is bold
    return label


# --- the notification -----------------------------------------------------------------------


class CriticalToast(QFrame):
    """A notice over the window: a new critical alert. Stays until dismissed or shown."""

    show_requested = Signal(str)  # the alert's key

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("criticalAlertToast")
        self.setAccessibleName("New critical alert")
        self.setStyleSheet(
            "#criticalAlertToast { background: #8c1d18; border-radius: 6px; }"
            " #criticalAlertToast QLabel { color: white; }"
            " #criticalAlertToast QPushButton { background: white; color: #8c1d18;"
            " border: none; padding: 4px 12px; font-weight: 600; }"
        )
        self._key = ""
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        icon = QLabel()
        icon.setPixmap(severity_icon(Severity.CRITICAL, 28).pixmap(28, 28))
        layout.addWidget(icon)
        self.message = QLabel()
        self.message.setObjectName("criticalAlertToastText")
        self.message.setWordWrap(True)
        self.message.setMinimumWidth(320)
        self.message.setMaximumWidth(440)
        layout.addWidget(self.message, 1)
        self.show_button = button("Show", "criticalAlertShow")
        self.show_button.clicked.connect(self._show_alert)
        layout.addWidget(self.show_button)
        self.dismiss_button = button("Dismiss", "criticalAlertDismiss")
        self.dismiss_button.clicked.connect(self.hide)
        layout.addWidget(self.dismiss_button)
        self.hide()

    def notify(self, rows: Sequence[AlertRow]) -> None:
        first = rows[0]
        more = f" (and {len(rows) - 1} more)" if len(rows) > 1 else ""
        self.message.setText(
            f"<b>New critical alert{more}</b><br>{first.patient_name} · {first.mrn}<br>"
            f"{first.alert.description}"
        )
        self._key = first.key
        self.adjustSize()
        parent = self.parentWidget()
        if parent is not None:
            self.move(max(8, parent.width() - self.width() - 16), 16)
        self.show()
        self.raise_()

    def _show_alert(self) -> None:
        self.hide()
        self.show_requested.emit(self._key)


# --- the page -------------------------------------------------------------------------------


class AlertsPage(QWidget):
    """The worklist. ``counts_changed`` carries {Severity: count} after each evaluation;
    ``critical_alert_raised`` the rows of critical alerts new since the last one;
    ``open_patient`` a patient id."""

    counts_changed = Signal(object)
    critical_alert_raised = Signal(object)
    open_patient = Signal(int)

    def __init__(
        self,
        services: Services,
        actor: Actor,
        bus: DataBus,
        clock: Clock | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("alertsPage")
        self._services = services
        self._actor = actor
        self._bus = bus
        self._clock: Clock = clock or services.context.now
        self.can_view = can(actor, Permission.VIEW_ALERTS)
        self.can_log = can(actor, Permission.LOG_CONTACTS)
        self.can_book = can(actor, Permission.BOOK_APPOINTMENTS)
        self.result: AlertList | None = None
        self._known_critical: set[str] | None = None
        self._zone: zoneinfo.ZoneInfo = services.settings.get()[0].zone
        self._sheet: ContactSheet | None = None
        self._tray: QSystemTrayIcon | None = None
        self.toast: CriticalToast | None = None
        self.book_dialog: QWidget | None = None
        self.errors = FieldErrorLabels()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 18, 24, 18)
        layout.addWidget(
            page_header(
                "Alerts",
                "Every patient whose pump is heading for empty, most dangerous first."
                " Re-checked every minute.",
            )
        )
        self.model = AlertTableModel(self)
        self.proxy = AlertFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        if not self.can_view:
            info = banner("alertsNoAccess", "info")
            set_banner(info, ["The alert list is not part of the administrator role."], "")
            layout.addWidget(info)
            layout.addStretch(1)
            return

        self.critical_banner = banner("criticalBanner")
        self.critical_banner.setStyleSheet(DANGER_STYLE)
        self.critical_banner.setAccessibleName("Critical alerts")
        layout.addWidget(self.critical_banner)
        self.missing_banner = banner("noForecastBanner")
        layout.addWidget(self.missing_banner)
        layout.addLayout(self._filter_bar())

        # The list gets the full width (what is wrong needs the room); the selected alert's
        # detail sits below it.
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setObjectName("alertsSplitter")
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self._table())
        self.detail_panel = self._detail_panel()
        splitter.addWidget(self.detail_panel)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([270, 290])
        layout.addWidget(splitter, 1)
        self.count_label = QLabel()
        self.count_label.setObjectName("alertCount")
        self.count_label.setStyleSheet("color: #52606d;")
        layout.addWidget(self.count_label)

        QShortcut(QKeySequence(Qt.Key.Key_F5), self, self.refresh)
        QShortcut(QKeySequence("Ctrl+B"), self, self.book_refill)
        QShortcut(QKeySequence("Ctrl+L"), self, self._focus_contact_form)
        self.timer = QTimer(self)
        self.timer.setObjectName("alertsTimer")
        self.timer.setInterval(REFRESH_INTERVAL_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        bus.changed.connect(self._on_changed)
        self.refresh()
        self._show_detail(None)

    # --- building -----------------------------------------------------------------------

    def _filter_bar(self) -> QHBoxLayout:
        bar = QHBoxLayout()
        bar.setSpacing(6)
        self.severity_buttons: dict[Severity, QPushButton] = {}
        for severity in SEVERITIES_MOST_SEVERE_FIRST:
            chip = QPushButton(severity_icon(severity), severity.label)
            chip.setObjectName(f"severityFilter_{severity.value}")
            chip.setAccessibleName(f"Show {severity.label.lower()} alerts only")
            chip.setCheckable(True)
            chip.setToolTip(f"Show only {severity.label.lower()} alerts (click again for all)")
            chip.toggled.connect(lambda _on: self._filters_changed())
            bar.addWidget(chip)
            self.severity_buttons[severity] = chip
        bar.addSpacing(10)
        self.kind_filter = QComboBox()
        self.kind_filter.setObjectName("kindFilter")
        self.kind_filter.setAccessibleName("Filter by kind of alert")
        self.kind_filter.addItem("All kinds", None)
        for kind in KIND_PRECEDENCE:
            self.kind_filter.addItem(kind.label, kind.value)
        self.kind_filter.currentIndexChanged.connect(lambda _i: self._filters_changed())
        self.kind_filter.setMaximumWidth(200)
        bar.addWidget(self.kind_filter)
        self.staff_filter = QComboBox()
        self.staff_filter.setObjectName("staffFilter")
        self.staff_filter.setAccessibleName("Filter by who last contacted the patient")
        self.staff_filter.setToolTip("Who last contacted the patient about the alert")
        self.staff_filter.addItem("Anyone", None)
        self.staff_filter.addItem("Not contacted yet", AlertFilterProxy.NOT_CONTACTED)
        self.staff_filter.currentIndexChanged.connect(lambda _i: self._filters_changed())
        self.staff_filter.setMaximumWidth(200)
        self.staff_filter.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.staff_filter.setMinimumContentsLength(14)
        bar.addWidget(self.staff_filter)
        bar.addStretch(1)
        self.export_button = button("Reports…", "alertReports")
        self.export_button.setToolTip("Print the overdue list, export CSV or the calendar")
        self.export_button.clicked.connect(self.open_reports)
        bar.addWidget(self.export_button)
        return bar

    def _table(self) -> QTableView:
        table = self.table = QTableView()
        table.setObjectName("alertTable")
        table.setAccessibleName("Alert list")
        table.setModel(self.proxy)
        table.setSortingEnabled(True)
        table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setDefaultSectionSize(40)
        table.setWordWrap(True)
        table.setIconSize(table.iconSize().expandedTo(table.iconSize()))
        header = table.horizontalHeader()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, width in ((0, 128), (1, 175), (3, 160), (4, 200)):
            table.setColumnWidth(column, width)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        table.selectionModel().selectionChanged.connect(lambda *_a: self._selection_changed())
        table.doubleClicked.connect(lambda _index: self._open_selected_patient())
        return table

    def _detail_panel(self) -> QScrollArea:
        scroll = QScrollArea()
        scroll.setObjectName("alertDetail")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setMinimumHeight(150)
        body = QWidget()
        outer = QVBoxLayout(body)
        outer.setContentsMargins(0, 6, 0, 0)
        scroll.setWidget(body)

        self.detail_empty = QLabel(
            "Choose an alert to see what to do: log a call, book the refill, or flag"
            " the patient not to be contacted."
        )
        self.detail_empty.setObjectName("alertDetailEmpty")
        self.detail_empty.setStyleSheet("color: #52606d; padding: 12px;")
        self.detail_empty.setWordWrap(True)
        outer.addWidget(self.detail_empty)

        self.detail_box = QWidget()
        columns = QHBoxLayout(self.detail_box)
        columns.setContentsMargins(0, 0, 0, 0)
        columns.setSpacing(10)
        outer.addWidget(self.detail_box)
        outer.addStretch(1)

        # What is wrong, and the facts behind it.
        alert_box = QGroupBox("The alert")
        alert_box.setObjectName("alertFacts")
        box = QVBoxLayout(alert_box)
        box.setSpacing(4)
        self.detail_title = QLabel()
        self.detail_title.setObjectName("alertDetailTitle")
        self.detail_title.setStyleSheet("font-size: 12pt; font-weight: 600; color: #1d2b3a;")
        self.detail_title.setWordWrap(True)
        self.detail_title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.addWidget(self.detail_title)
        severity_row = QHBoxLayout()
        self.detail_icon = QLabel()
        severity_row.addWidget(self.detail_icon)
        self.detail_severity = QLabel()
        self.detail_severity.setObjectName("alertDetailSeverity")
        self.detail_severity.setWordWrap(True)
        severity_row.addWidget(self.detail_severity, 1)
        box.addLayout(severity_row)
        self.detail_description = QLabel()
        self.detail_description.setObjectName("alertDetailDescription")
        self.detail_description.setWordWrap(True)
        self.detail_description.setStyleSheet("font-weight: 400;")
        self.detail_description.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        box.addWidget(self.detail_description)
        self.dnc_banner = banner("doNotContactBanner")
        self.dnc_banner.setStyleSheet(DANGER_STYLE)
        box.addWidget(self.dnc_banner)
        facts = QGridLayout()
        facts.setHorizontalSpacing(10)
        facts.setVerticalSpacing(2)
        self.fact_labels: dict[str, QLabel] = {}
        for number, (key, caption) in enumerate(
            (
                ("refill_due", "Refill due"),
                ("alarm_at", "Alarm"),
                ("empty_at", "Empty"),
                ("booked_at", "Booked"),
                ("risk", "Risk"),
                ("phone", "Phone"),
                ("contacts", "Contact"),
            )
        ):
            title = QLabel(caption)
            title.setStyleSheet("color: #52606d; font-weight: 400;")
            value = QLabel()
            value.setObjectName(f"alertFact_{key}")
            value.setAccessibleName(caption)
            value.setWordWrap(True)
            value.setStyleSheet("font-weight: 400;")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            row, column = divmod(number, 2) if number < 4 else (number - 2, 0)
            span = 1 if number < 4 else 3
            facts.addWidget(title, row, column * 2)
            facts.addWidget(value, row, column * 2 + 1, 1, span)
            self.fact_labels[key] = value
        facts.setColumnStretch(1, 1)
        facts.setColumnStretch(3, 1)
        box.addLayout(facts)
        actions = QHBoxLayout()
        self.book_button = primary_button("&Book refill…", "bookRefillFromAlert")
        self.book_button.setToolTip("Open the booking with the latest safe slot (Ctrl+B)")
        self.book_button.setDefault(False)
        self.book_button.clicked.connect(self.book_refill)
        self.book_button.setVisible(self.can_book)
        actions.addWidget(self.book_button)
        self.open_button = button("Open patient", "openPatientFromAlert")
        self.open_button.clicked.connect(self._open_selected_patient)
        actions.addWidget(self.open_button)
        actions.addStretch(1)
        box.addLayout(actions)
        box.addStretch(1)
        columns.addWidget(alert_box, 6)

        columns.addWidget(self._contact_form(), 4)

        # The attempts so far, and whether to contact at all.
        history = QGroupBox("Contact attempts")
        history.setObjectName("contactHistoryBox")
        history_layout = QVBoxLayout(history)
        self.history_model = ContactHistoryModel(self)
        self.history_view = QListView()
        self.history_view.setObjectName("contactHistory")
        self.history_view.setAccessibleName("Contact attempts, newest first")
        self.history_view.setModel(self.history_model)
        self.history_view.setWordWrap(True)
        self.history_view.setMinimumHeight(60)
        history_layout.addWidget(self.history_view, 1)
        history_layout.addWidget(self._do_not_contact_box())
        columns.addWidget(history, 3)
        return scroll

    def _contact_form(self) -> QGroupBox:
        group = QGroupBox("Log a contact attempt")
        group.setObjectName("contactForm")
        grid = QGridLayout(group)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(3)
        self.contact_at = QDateTimeEdit()
        self.contact_at.setObjectName("contactAt")
        self.contact_at.setAccessibleName("Time of the attempt")
        self.contact_at.setDisplayFormat("dd MMM yyyy HH:mm")
        self.contact_at.setCalendarPopup(True)
        self.contact_method = QComboBox()
        self.contact_method.setObjectName("contactMethod")
        self.contact_method.setAccessibleName("How")
        for method in ContactMethod:
            self.contact_method.addItem(method.label, method.value)
        self.contact_method.currentIndexChanged.connect(lambda _i: self._method_changed())
        self.contact_outcome = QComboBox()
        self.contact_outcome.setObjectName("contactOutcome")
        self.contact_outcome.setAccessibleName("Outcome")
        self.promised = QCheckBox("Promised")
        self.promised.setObjectName("contactPromised")
        self.promised.setAccessibleName("The patient promised a date")
        self.promised.setToolTip("The patient promised to come (or call back) on a day")
        self.promised_date = QDateEdit()
        self.promised_date.setObjectName("contactPromisedDate")
        self.promised_date.setAccessibleName("Promised date")
        self.promised_date.setDisplayFormat("ddd dd MMM yyyy")
        self.promised_date.setCalendarPopup(True)
        self.promised_date.setEnabled(False)
        self.promised.toggled.connect(self.promised_date.setEnabled)
        self.contact_notes = QPlainTextEdit()
        self.contact_notes.setObjectName("contactNotes")
        self.contact_notes.setAccessibleName("Notes")
        self.contact_notes.setTabChangesFocus(True)
        self.contact_notes.setFixedHeight(46)
        self.contact_notes.setPlaceholderText(
            "Notes, e.g. spoke to her husband; she will call back"
        )

        def cell(widget: QWidget, field: str) -> QWidget:
            holder = QWidget()
            column = QVBoxLayout(holder)
            column.setContentsMargins(0, 0, 0, 0)
            column.setSpacing(1)
            column.addWidget(widget)
            column.addWidget(self.errors.label_for(field, widget))
            return holder

        grid.addWidget(_caption("When"), 0, 0)
        grid.addWidget(cell(self.contact_at, "at"), 0, 1)
        grid.addWidget(_caption("How"), 1, 0)
        grid.addWidget(cell(self.contact_method, "method"), 1, 1)
        grid.addWidget(_caption("Outcome"), 2, 0)
        grid.addWidget(cell(self.contact_outcome, "outcome"), 2, 1)
        grid.addWidget(self.promised, 3, 0)
        grid.addWidget(cell(self.promised_date, "promised_date"), 3, 1)
        grid.addWidget(cell(self.contact_notes, "notes"), 4, 0, 1, 2)
        self.log_button = button("&Log attempt", "logContactAttempt")
        self.log_button.setToolTip("Record this attempt (Ctrl+L goes to the form)")
        self.log_button.clicked.connect(self.log_contact)
        grid.addWidget(self.log_button, 5, 1, Qt.AlignmentFlag.AlignRight)
        grid.setColumnStretch(1, 1)
        grid.setRowStretch(6, 1)  # spare height below the form, not between its rows
        self._method_changed()
        group.setVisible(self.can_log)
        return group

    def _do_not_contact_box(self) -> QWidget:
        group = QWidget()
        group.setObjectName("doNotContactBox")
        layout = QVBoxLayout(group)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.dnc_check = QCheckBox("Do not contact the patient directly")
        self.dnc_check.setObjectName("doNotContact")
        self.dnc_check.setAccessibleName("Do not contact the patient directly")
        layout.addWidget(self.dnc_check)
        row = QHBoxLayout()
        self.dnc_reason = QLineEdit()
        self.dnc_reason.setObjectName("doNotContactReason")
        self.dnc_reason.setAccessibleName("Reason not to contact")
        self.dnc_reason.setPlaceholderText("Why, and who to contact instead")
        row.addWidget(self.dnc_reason, 1)
        self.dnc_save = button("Save", "saveDoNotContact")
        self.dnc_save.clicked.connect(self.save_do_not_contact)
        row.addWidget(self.dnc_save)
        layout.addLayout(row)
        layout.addWidget(self.errors.label_for("do_not_contact_reason", self.dnc_reason))
        group.setVisible(self.can_log)
        return group

    # --- data ---------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        return self._clock()

    def refresh(self) -> None:
        """Evaluate the list as of now; keep the selection and the rows shown."""
        if not self.can_view:
            return
        result = guarded(
            self, lambda: self._services.alerts.alerts(self._actor, self.now()), "Alerts"
        )
        if result is None:
            return
        selected = self.selected_row()
        self.result = result
        self._zone = result.zone
        self.model.set_rows(result.rows, result.zone)
        self._update_staff_filter(result.rows)
        self._fill_view()
        self._update_counts()
        if selected is not None:
            self.select_alert(selected.key)
        critical = [row for row in result.rows if row.severity is Severity.CRITICAL]
        keys = {row.key for row in critical}
        if self._known_critical is not None:
            new = [row for row in critical if row.key not in self._known_critical]
            if new:
                self._notify_critical(new)
        self._known_critical = keys
        self.counts_changed.emit(dict(result.counts))

    def _on_changed(self, entities: frozenset[str]) -> None:
        if entities & WATCHED_ENTITIES:
            self.refresh()

    def _fill_view(self) -> None:
        """Load pages until the view has a page of rows that pass the filters (or all)."""
        while self.proxy.rowCount() < PAGE_SIZE and self.model.canFetchMore():
            self.model.fetchMore()

    def _update_counts(self) -> None:
        result = self.result
        if result is None:
            return
        counts = result.counts
        for severity, chip in self.severity_buttons.items():
            chip.setText(f"{severity.label} {counts[severity]}")
        critical = counts[Severity.CRITICAL]
        if critical:
            empty = sum(1 for r in result.rows if r.kind is AlertKind.PUMP_EMPTY)
            text = (
                f"{critical} critical alert{'s' if critical != 1 else ''}"
                + (f" — {empty} pump{'s' if empty != 1 else ''} projected EMPTY" if empty else "")
                + ": withdrawal risk. Reach these patients first."
            )
            set_banner(self.critical_banner, [text], "")
        else:
            set_banner(self.critical_banner, [])
        missing = result.unforecastable
        set_banner(
            self.missing_banner,
            [
                f"{len(missing)} implanted pump{'s have' if len(missing) != 1 else ' has'} no"
                " forecast (no fill or no program recorded), so no alert can be worked out: "
                + "; ".join(f"{name} ({mrn})" for _pump, _patient, name, mrn in missing[:5])
                + (" …" if len(missing) > 5 else "")
                + ". Check their pump records."
            ]
            if missing
            else [],
        )
        matching = sum(1 for row in result.rows if self.proxy.accepts(row))
        total = len(result.rows)
        as_of = result.as_of.astimezone(result.zone)
        shown = f"{matching} alerts" if matching == total else f"{matching} of {total} alerts"
        self.count_label.setText(f"{shown} · {result.pumps_checked} pumps checked at {as_of:%H:%M}")

    def _update_staff_filter(self, rows: Sequence[AlertRow]) -> None:
        staff = sorted(
            {(r.last_contact.by, r.last_contact.by_user_id) for r in rows if r.last_contact}
        )
        current = self.staff_filter.currentData()
        self.staff_filter.blockSignals(True)
        while self.staff_filter.count() > 2:
            self.staff_filter.removeItem(2)
        for name, user_id in staff:
            self.staff_filter.addItem(f"Last contacted by {name}", user_id)
        index = self.staff_filter.findData(current)
        self.staff_filter.setCurrentIndex(max(0, index))
        self.staff_filter.blockSignals(False)
        if index < 0 and current is not None:
            self._filters_changed()

    def _filters_changed(self) -> None:
        severities = [s for s, chip in self.severity_buttons.items() if chip.isChecked()]
        kind_value = self.kind_filter.currentData()
        self.proxy.set_filters(
            severities,
            AlertKind(kind_value) if kind_value else None,
            self.staff_filter.currentData(),
        )
        self._fill_view()
        self._update_counts()

    # --- filters from outside (Today page, main window) ---------------------------------

    def set_severity_filter(self, severities: Iterable[Severity] | Severity | None) -> None:
        """Show only these severities (None: all)."""
        chosen = {severities} if isinstance(severities, Severity) else set(severities or ())
        for severity, chip in self.severity_buttons.items():
            chip.blockSignals(True)
            chip.setChecked(severity in chosen)
            chip.blockSignals(False)
        self._filters_changed()

    def set_kind_filter(self, kind: AlertKind | None) -> None:
        self.kind_filter.setCurrentIndex(max(0, self.kind_filter.findData(kind and kind.value)))

    def set_staff_filter(self, user_id: int | None) -> None:
        self.staff_filter.setCurrentIndex(max(0, self.staff_filter.findData(user_id)))

    # --- selection and detail -----------------------------------------------------------

    def selected_row(self) -> AlertRow | None:
        if not self.can_view:
            return None
        selected = self.table.selectionModel().selectedRows()
        if not selected:
            return None
        row = self.proxy.data(self.proxy.index(selected[0].row(), 0), ROW_ROLE)
        return row if isinstance(row, AlertRow) else None

    def select_alert(self, key: str) -> bool:
        source_row = self.model.source_row_of(key)
        if source_row is None:
            return False
        self.model.ensure_loaded(source_row)
        proxy_index = self.proxy.mapFromSource(self.model.index(source_row, 0))
        if not proxy_index.isValid():
            return False
        self.table.selectionModel().setCurrentIndex(
            proxy_index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.table.scrollTo(proxy_index)
        return True

    def _selection_changed(self) -> None:
        self._show_detail(self.selected_row())
        selected = self.table.selectionModel().selectedRows()
        if selected:
            self.table.scrollTo(selected[0])

    def _show_detail(self, row: AlertRow | None) -> None:
        # No alert chosen: the list takes the whole height.
        self.detail_panel.setVisible(row is not None)
        self.detail_empty.setVisible(row is None)
        self.detail_box.setVisible(row is not None)
        # The minute's re-evaluation shows the same alert again: keep what is being typed.
        same_patient = (
            row is not None and self._sheet is not None and self._sheet.patient_id == row.patient_id
        )
        if not same_patient:
            self.errors.clear()
        if row is None:
            self._sheet = None
            return
        zone = self._zone
        alert = row.alert
        self.detail_title.setText(f"{row.patient_name} · {row.mrn}")
        self.detail_icon.setPixmap(severity_icon(row.severity, 22).pixmap(22, 22))
        severity = f"{severity_label(row)} — {alert.kind.label}"
        self.detail_severity.setText(severity)
        self.detail_severity.setToolTip(
            f"Raised one level from {alert.base_severity.label.lower()}:"
            f" {', '.join(flag.label for flag in alert.raised_by)}"
            if alert.raised_by
            else ""
        )
        color = SEVERITY_TEXT[row.severity].name()
        self.detail_severity.setStyleSheet(f"color: {color}; font-weight: 700;")
        description = alert.description
        if alert.also:
            description += "\nAlso: " + "; ".join(k.label.lower() for k in alert.also) + "."
        self.detail_description.setText(description)

        this_year = self.now().astimezone(zone).year

        def day(value: dt.date) -> str:
            text = f"{value:%a} {value.day} {value:%b}"
            return text if value.year == this_year else f"{text} {value.year}"

        def when(at: dt.datetime | None) -> str:
            if at is None:
                return "—"
            local = at.astimezone(zone)
            return f"{day(local.date())} {local:%H:%M}"

        due = alert.refill_due
        self.fact_labels["refill_due"].setText(day(due) if due is not None else "—")
        self.fact_labels["alarm_at"].setText(when(alert.alarm_at))
        self.fact_labels["empty_at"].setText(when(alert.empty_at))
        self.fact_labels["booked_at"].setText(when(alert.booked_at) if alert.booked_at else "None")
        sheet = guarded(
            self, lambda: self._services.alerts.contact_sheet(self._actor, row.patient_id), "Alerts"
        )
        self._sheet = sheet
        if sheet is not None:
            risk = ", ".join(flag.label for flag in sheet.risk_flags) or "No risk flags"
            if alert.raised_by:
                risk += f" — raised from {alert.base_severity.label.lower()}"
            self.fact_labels["risk"].setText(risk)
            phones = " · ".join(p for p in (sheet.phone, sheet.email) if p)
            self.fact_labels["phone"].setText(phones or "—")
            self.fact_labels["contacts"].setText(
                "\n".join(
                    f"{name} ({relation or 'contact'}) {phone}".strip()
                    for name, relation, phone in sheet.emergency_contacts
                )
                or "—"
            )
            self.history_model.set_rows(sheet.attempts, zone)
            set_banner(
                self.dnc_banner,
                [f"Do not contact the patient directly: {sheet.do_not_contact_reason}"]
                if sheet.do_not_contact
                else [],
                "",
            )
            if not same_patient:
                self._show_do_not_contact(sheet)
        self.book_button.setEnabled(self.can_book and alert.pump_id is not None)
        if not same_patient:
            self._reset_contact_form()

    def _show_do_not_contact(self, sheet: ContactSheet) -> None:
        self.dnc_check.setChecked(sheet.do_not_contact)
        self.dnc_reason.setText(sheet.do_not_contact_reason)

    def _reset_contact_form(self) -> None:
        local = self.now().astimezone(self._zone)
        self.contact_at.setDateTime(
            QDateTime(QDate(local.year, local.month, local.day), QTime(local.hour, local.minute))
        )
        self.promised.setChecked(False)
        self.promised_date.setDate(QDate(local.year, local.month, local.day))
        self.promised_date.setMinimumDate(QDate(local.year, local.month, local.day))
        self.contact_notes.clear()

    def _method_changed(self) -> None:
        method = ContactMethod(self.contact_method.currentData())
        current = self.contact_outcome.currentData()
        self.contact_outcome.clear()
        for outcome in outcomes_for(method):
            self.contact_outcome.addItem(outcome.label, outcome.value)
        self.contact_outcome.setCurrentIndex(max(0, self.contact_outcome.findData(current)))

    def _focus_contact_form(self) -> None:
        if self.can_log and self.selected_row() is not None:
            self.contact_method.setFocus()

    # --- actions ------------------------------------------------------------------------

    def contact_input(self) -> ContactInput | None:
        row = self.selected_row()
        if row is None:
            return None
        value = self.contact_at.dateTime()
        date, time = value.date(), value.time()
        at = dt.datetime(
            date.year(), date.month(), date.day(), time.hour(), time.minute(), tzinfo=self._zone
        )
        promised = None
        if self.promised.isChecked():
            chosen = self.promised_date.date()
            promised = dt.date(chosen.year(), chosen.month(), chosen.day())
        return ContactInput(
            patient_id=row.patient_id,
            at=at,
            method=ContactMethod(self.contact_method.currentData()),
            outcome=ContactOutcome(self.contact_outcome.currentData()),
            promised_date=promised,
            notes=self.contact_notes.toPlainText(),
        )

    def log_contact(self) -> ContactAttemptRow | None:
        data = self.contact_input()
        if data is None or not self.can_log:
            return None
        self.errors.clear()
        try:
            attempt = self._services.alerts.log_contact(self._actor, data)
        except ValidationFailed as failure:
            if self.errors.show(failure.errors):
                show_known_error(self, failure)
            return None
        except ServiceError as error:
            show_known_error(self, error)
            return None
        except Exception as error:  # a bug: logged with its traceback
            show_bug(self, error)
            return None
        self._reset_contact_form()
        self._bus.notify("contact")  # the list (and this panel) refresh through the bus
        return attempt

    def save_do_not_contact(self) -> ContactSheet | None:
        row = self.selected_row()
        if row is None or not self.can_log:
            return None
        self.errors.clear()
        flag = self.dnc_check.isChecked()
        try:
            sheet = self._services.alerts.set_do_not_contact(
                self._actor, row.patient_id, flag, self.dnc_reason.text()
            )
        except ValidationFailed as failure:
            self.errors.show(failure.errors)
            return None
        except ServiceError as error:
            show_known_error(self, error)
            return None
        except Exception as error:  # a bug: logged with its traceback
            show_bug(self, error)
            return None
        self._show_do_not_contact(sheet)
        self._bus.notify("patient", "contact")
        return sheet

    def book_refill(self) -> QWidget | None:
        """Open the booking dialog for the selected alert's patient, latest safe slot
        proposed."""
        row = self.selected_row()
        if row is None or not self.can_book or row.alert.pump_id is None:
            return None
        from pumpclinic.ui.booking import BookRefillDialog

        dialog = BookRefillDialog(self._services, self._actor, row.patient_id, self, bus=self._bus)
        dialog.booked.connect(lambda _row: self.refresh())
        self.book_dialog = dialog
        dialog.open()
        return dialog

    def open_reports(self) -> QWidget | None:
        if self.result is None:
            return None
        from pumpclinic.ui.alert_reports import AlertReportsDialog

        rows = [row for row in self.model.all_rows() if self.proxy.accepts(row)]
        dialog = AlertReportsDialog(self._services, self._actor, self.result, rows, self)
        dialog.open()
        return dialog

    def _open_selected_patient(self) -> None:
        row = self.selected_row()
        if row is not None:
            self.open_patient.emit(row.patient_id)

    # --- notification -------------------------------------------------------------------

    def _notify_critical(self, rows: list[AlertRow]) -> None:
        window = self.window()
        if self.toast is None or self.toast.parentWidget() is not window:
            if self.toast is not None:
                self.toast.deleteLater()
            self.toast = CriticalToast(window)
            self.toast.show_requested.connect(self._show_from_toast)
        self.toast.notify(rows)
        QApplication.alert(window)
        if QSystemTrayIcon.isSystemTrayAvailable():
            if self._tray is None:
                self._tray = QSystemTrayIcon(severity_icon(Severity.CRITICAL, 32), self)
                self._tray.setToolTip("PumpClinic alerts")
            self._tray.show()
            first = rows[0]
            self._tray.showMessage(
                "PumpClinic: new critical alert",
                f"{first.patient_name} · {first.mrn}\n{first.alert.description}",
                QSystemTrayIcon.MessageIcon.Critical,
                30_000,
            )
        self.critical_alert_raised.emit(rows)

    def _show_from_toast(self, key: str) -> None:
        self.set_severity_filter(None)
        self.set_kind_filter(None)
        self.set_staff_filter(None)
        self.select_alert(key)
        self.table.setFocus()
