"""Reports from the Alerts page: the printable overdue list (PDF), the CSV export of the list
and the calendar (.ics) export of booked appointments."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QDate, QMarginsF, QSizeF, Qt
from PySide6.QtGui import (
    QFont,
    QGuiApplication,
    QPagedPaintDevice,
    QPageLayout,
    QPageSize,
    QPdfWriter,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QDateEdit,
    QDialog,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from pumpclinic.domain.alerts import SEVERITIES_MOST_SEVERE_FIRST, Severity
from pumpclinic.services.alert_reports import (
    overdue_rows,
    write_alerts_csv,
    write_appointments_ics,
)
from pumpclinic.services.alerts import AlertList, AlertRow
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.ui.errors import guarded
from pumpclinic.ui.widgets import banner, button, primary_button, set_banner

# On paper the severity is a symbol and a word (a black-and-white print keeps both).
_PRINT_MARK = {
    Severity.CRITICAL: "■",
    Severity.URGENT: "◆",
    Severity.WARNING: "▲",
    Severity.INFO: "○",
}
_PRINT_COLOR = {
    Severity.CRITICAL: "#8c1d18",
    Severity.URGENT: "#9c3500",
    Severity.WARNING: "#6b3d00",
    Severity.INFO: "#184d72",
}
_PRINT_ROW = {Severity.CRITICAL: "#fbe3e1", Severity.URGENT: "#fff0e3"}
DEFAULT_CALENDAR_DAYS = 14


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def overdue_list_html(result: AlertList, rows: Sequence[AlertRow], title: str) -> str:
    """The printed morning list as Qt rich text: most dangerous first, a tick box per line."""
    zone = result.zone
    as_of = result.as_of.astimezone(zone)
    counts = {severity: 0 for severity in SEVERITIES_MOST_SEVERE_FIRST}
    for row in rows:
        counts[row.severity] += 1
    summary = " · ".join(
        f"{counts[s]} {s.value}" for s in SEVERITIES_MOST_SEVERE_FIRST if counts[s]
    )

    def when(at: dt.datetime | None, with_time: bool = True) -> str:
        if at is None:
            return "—"
        local = at.astimezone(zone)
        text = f"{local:%a} {local.day} {local:%b}"
        return f"{text} {local:%H:%M}" if with_time else text

    lines = []
    for row in rows:
        alert = row.alert
        severity = alert.severity
        style = (
            f' style="background-color: {_PRINT_ROW[severity]};"' if severity in _PRINT_ROW else ""
        )
        raised = " ↑" if alert.raised_by else ""
        deadline = "—"
        if alert.deadline is not None:
            deadline = f"{alert.deadline_label} {when(alert.deadline, not alert.deadline_is_day)}"
        what = _e(alert.description)
        if row.do_not_contact:
            what += f"<br><b>DO NOT CONTACT:</b> {_e(row.do_not_contact_reason)}"
        last = row.last_contact
        contact = "—"
        if last is not None:
            contact = f"{_e(last.outcome.label)} ({_e(last.method.label.lower())}) {when(last.at)}"
        lines.append(
            f"<tr{style}>"
            f'<td style="color: {_PRINT_COLOR[severity]};"><b>{_PRINT_MARK[severity]}'
            f" {severity.label.upper()}{raised}</b></td>"
            f"<td><b>{_e(row.patient_name)}</b><br>{_e(row.mrn)}</td>"
            f"<td>{_e(row.phone) or '—'}</td>"
            f"<td>{what}</td>"
            f"<td>{_e(deadline)}</td>"
            f"<td>{when(alert.booked_at)}</td>"
            f"<td>{contact}</td>"
            "<td>☐</td>"
            "</tr>"
        )
    body = "".join(lines) or (
        '<tr><td colspan="8">No alerts: every pump is refilled in time.</td></tr>'
    )
    legend = (
        "■ critical · ◆ urgent · ▲ warning · ○ info. ↑ raised one level: spinal cord injury"
        " at/above T6, communication difficulties or a previous withdrawal."
    )
    return f"""
<h2 style="margin: 0;">{_e(result.clinic_name)} — {_e(title)}</h2>
<p style="margin-top: 2px;">As of {as_of:%A %d %B %Y %H:%M} ({_e(result.zone.key)}).
{len(rows)} alerts{": " + summary if summary else ""}. Most dangerous first.</p>
<table border="1" cellspacing="0" cellpadding="4" width="100%"
       style="border-collapse: collapse; border-color: #9aa5b1;">
<thead><tr style="background-color: #eef2f6;">
<th align="left">Severity</th><th align="left">Patient</th><th align="left">Phone</th>
<th align="left">What is wrong</th><th align="left">Deadline</th><th align="left">Booked</th>
<th align="left">Last contact</th><th align="left">Done</th>
</tr></thead>
{body}
</table>
<p style="font-size: 8pt; color: #52606d;">{legend}</p>
"""


def write_overdue_pdf(
    path: Path, result: AlertList, rows: Sequence[AlertRow], title: str = "Overdue refills"
) -> None:
    """An A4 landscape PDF of ``rows`` (raises OSError if it cannot be written)."""
    writer = QPdfWriter(str(path))
    writer.setTitle(f"{result.clinic_name} — {title}")
    writer.setCreator("PumpClinic")
    writer.setResolution(300)
    writer.setPageLayout(
        QPageLayout(
            QPageSize(QPageSize.PageSizeId.A4),
            QPageLayout.Orientation.Landscape,
            QMarginsF(12, 12, 12, 12),
            QPageLayout.Unit.Millimeter,
        )
    )
    _print(overdue_list_html(result, rows, title), writer)
    if not path.exists() or path.stat().st_size == 0:
        raise OSError(f"Could not write {path}")


def _print(text: str, device: QPagedPaintDevice) -> None:
    document = QTextDocument()
    font = QFont()
    font.setPointSizeF(9)
    font.setFeature(QFont.Tag("liga"), 0)  # searchable, copyable text in the PDF
    document.setDefaultFont(font)
    document.setDocumentMargin(0)
    document.setHtml(text)
    # Paginate at the printable size in screen pixels: print_ scales 1:1 to the device.
    screen = QGuiApplication.primaryScreen()
    dpi = screen.logicalDotsPerInch() if screen is not None else 96.0
    printable = device.pageLayout().paintRect(QPageLayout.Unit.Inch)
    document.setPageSize(QSizeF(printable.width() * dpi, printable.height() * dpi))
    document.print_(device)


class AlertReportsDialog(QDialog):
    """Save the overdue list as PDF, the alerts shown as CSV, the appointments as .ics."""

    def __init__(
        self,
        services: Services,
        actor: Actor,
        result: AlertList,
        shown: Sequence[AlertRow],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("alertReportsDialog")
        self.setWindowTitle("Alert reports")
        self._services = services
        self._actor = actor
        self._result = result
        self._shown = list(shown)
        self.saved_paths: list[Path] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 16, 20, 16)

        pdf = QGroupBox("Printable list (PDF)")
        pdf_layout = QVBoxLayout(pdf)
        overdue = overdue_rows(result.rows)
        self.overdue_choice = QRadioButton(
            f"Overdue and worse — the morning list ({len(overdue)} patients)"
        )
        self.overdue_choice.setObjectName("reportOverdue")
        self.overdue_choice.setChecked(True)
        self.shown_choice = QRadioButton(f"The alerts shown on the page ({len(self._shown)})")
        self.shown_choice.setObjectName("reportShown")
        pdf_layout.addWidget(self.overdue_choice)
        pdf_layout.addWidget(self.shown_choice)
        pdf_button = primary_button("Save &PDF…", "savePdf")
        pdf_button.setDefault(False)
        pdf_button.clicked.connect(lambda: self._ask(self.save_pdf, "PDF (*.pdf)", ".pdf"))
        pdf_layout.addWidget(pdf_button, 0, Qt.AlignmentFlag.AlignRight)
        layout.addWidget(pdf)

        table = QGroupBox("Spreadsheet (CSV)")
        table_layout = QVBoxLayout(table)
        table_layout.addWidget(QLabel(f"The alerts shown on the page ({len(self._shown)})."))
        csv_button = button("Save &CSV…", "saveCsv")
        csv_button.clicked.connect(lambda: self._ask(self.save_csv, "CSV (*.csv)", ".csv"))
        table_layout.addWidget(csv_button, 0, Qt.AlignmentFlag.AlignRight)
        layout.addWidget(table)

        calendar = QGroupBox("Calendar (.ics) of booked appointments")
        calendar_layout = QVBoxLayout(calendar)
        days = QHBoxLayout()
        today = result.as_of.astimezone(result.zone).date()
        self.first_day = self._date("icsFirstDay", "First day", today)
        self.last_day = self._date(
            "icsLastDay", "Last day", today + dt.timedelta(days=DEFAULT_CALENDAR_DAYS)
        )
        days.addWidget(QLabel("From"))
        days.addWidget(self.first_day)
        days.addWidget(QLabel("to"))
        days.addWidget(self.last_day)
        days.addStretch(1)
        calendar_layout.addLayout(days)
        ics_button = button("Save .&ics…", "saveIcs")
        ics_button.clicked.connect(lambda: self._ask(self.save_ics, "iCalendar (*.ics)", ".ics"))
        calendar_layout.addWidget(ics_button, 0, Qt.AlignmentFlag.AlignRight)
        layout.addWidget(calendar)

        self.status = banner("reportStatus", "info")
        layout.addWidget(self.status)
        close = button("Close", "closeReports")
        close.clicked.connect(self.accept)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignRight)

    def _date(self, name: str, accessible: str, day: dt.date) -> QDateEdit:
        edit = QDateEdit(QDate(day.year, day.month, day.day))
        edit.setObjectName(name)
        edit.setAccessibleName(accessible)
        edit.setDisplayFormat("ddd dd MMM yyyy")
        edit.setCalendarPopup(True)
        return edit

    def _ask(self, save: Callable[[Path], bool], file_filter: str, suffix: str) -> None:
        name, _selected = QFileDialog.getSaveFileName(self, "Save as", "", file_filter)
        if not name:
            return
        path = Path(name)
        if path.suffix.lower() != suffix:
            path = path.with_suffix(suffix)
        save(path)

    def _done(self, path: Path) -> None:
        self.saved_paths.append(path)
        set_banner(self.status, [f"Saved {path}"], "")

    def _attempt(self, action: Callable[[], None]) -> bool:
        def run() -> bool:
            action()
            return True

        return bool(guarded(self, run, "Not saved"))

    def save_pdf(self, path: Path) -> bool:
        overdue = self.overdue_choice.isChecked()
        rows = overdue_rows(self._result.rows) if overdue else self._shown
        title = "Overdue refills" if overdue else "Alerts"
        if not self._attempt(lambda: write_overdue_pdf(path, self._result, rows, title)):
            return False
        self._done(path)
        return True

    def save_csv(self, path: Path) -> bool:
        if not self._attempt(lambda: write_alerts_csv(str(path), self._shown, self._result.zone)):
            return False
        self._done(path)
        return True

    def save_ics(self, path: Path) -> bool:
        first = self.first_day.date()
        last = self.last_day.date()
        first_day = dt.date(first.year(), first.month(), first.day())
        last_day = dt.date(last.year(), last.month(), last.day())
        visits = guarded(
            self, lambda: self._services.alerts.booked_visits(self._actor, first_day, last_day)
        )
        if visits is None:
            return False
        if not self._attempt(
            lambda: write_appointments_ics(
                str(path),
                visits,
                clinic_name=self._result.clinic_name,
                zone=self._result.zone,
                now=self._services.context.now(),
            )
        ):
            return False
        self.saved_paths.append(path)
        set_banner(self.status, [f"Saved {path}: {len(visits)} booked appointments"], "")
        return True
