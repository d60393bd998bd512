"""The printed patient card: what the pump holds, when it alarms, and when to call.

The patient carries it home after a refill. Everything is in the clinic's zone; the dose
is in mcg/day (mcg/h in smaller type), the unit on every number.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from pathlib import Path

from PySide6.QtCore import QMarginsF, QSizeF
from PySide6.QtGui import (
    QFont,
    QGuiApplication,
    QPagedPaintDevice,
    QPageLayout,
    QPageSize,
    QPdfWriter,
    QTextDocument,
)
from PySide6.QtWidgets import QWidget

from pumpclinic.services.refills import PatientCardData
from pumpclinic.ui.widgets import per_hour_text

WARNING_LEAD = "If your pump alarms or you notice any of these signs, call the clinic now: "
_DANGER = "#b3261e"


def _when(at: dt.datetime | None, card: PatientCardData) -> str:
    if at is None:
        return "not set (no dose running)"
    return f"{at.astimezone(card.zone):%a %d %b %Y, %H:%M}"


def _day(day: dt.date | None) -> str:
    return f"{day:%a %d %b %Y}" if day is not None else "ask the clinic"


def _number(value: float) -> str:
    return f"{value:g}"


def render_patient_card_html(card: PatientCardData) -> str:
    """The card as Qt rich text (the subset of HTML that QTextDocument lays out)."""
    # No number on file: a line to write it on, rather than a card that says nothing.
    phone_line = escape(card.clinic_phone.strip()) or "_______________________"
    signs = "".join(f"<li>{escape(sign)}</li>" for sign in card.withdrawal_signs)
    printed = card.printed_at.astimezone(card.zone)
    zone_name = escape(str(card.zone))

    def row(label: str, value: str, big: bool = False) -> str:
        size = "15pt" if big else "11pt"
        weight = "700" if big else "400"
        return (
            "<tr><td valign='middle' style='color:#52606d; font-size:10pt' width='38%'>"
            f"{escape(label)}</td><td valign='middle' "
            f"style='font-size:{size}; font-weight:{weight}'>{value}</td></tr>"
        )

    dose = (
        f"{_number(card.dose_mcg_per_day)} mcg/day"
        f" <span style='font-size:10pt; font-weight:400; color:#334e68'>"
        f"(= {per_hour_text(card.dose_mcg_per_day)})</span>"
    )
    return f"""
<html><body style='font-size:11pt; color:#1d2b3a'>
<table width='100%' cellspacing='0' cellpadding='6' bgcolor='#1f5f8b'>
<tr><td style='color:white'>
<span style='font-size:15pt; font-weight:700'>{escape(card.clinic_name)}</span><br/>
<span style='font-size:13pt; font-weight:700'>Clinic phone: {phone_line}</span>
</td></tr></table>
<p style='font-size:12pt; font-weight:700; margin-top:8px; margin-bottom:4px'>
Intrathecal baclofen pump — patient card</p>
<table width='100%' cellspacing='0' cellpadding='3'>
{row("Name", escape(card.patient_name), big=True)}
{row("MRN", escape(card.mrn))}
{row("Date of birth", f"{card.date_of_birth:%d %b %Y}")}
{row("Pump", escape(card.pump))}
{row("Drug", escape(card.drug_name))}
{row("Concentration", f"{_number(card.concentration_mcg_per_ml)} mcg/mL", big=True)}
{row("Daily dose", dose, big=True)}
{row("Pump alarm expected", escape(_when(card.alarm_at, card)))}
{row("Refill by", escape(_day(card.refill_due)), big=True)}
</table>
<p></p>
<table width='100%' border='2' cellspacing='0' cellpadding='8' bgcolor='#fdecea'
 style='border-color:{_DANGER}; border-style:solid'>
<tr><td>
<p style='font-size:12pt; font-weight:700; color:{_DANGER}; margin:0'>
⚠ {escape(WARNING_LEAD)}<span style='color:#1d2b3a'>{phone_line}</span></p>
<ul style='margin-top:4px; margin-bottom:0; font-size:10pt'>{signs}</ul>
<p style='font-size:10pt; margin-top:4px; margin-bottom:0'>
Never let the pump run empty: stopping baclofen suddenly can be life-threatening.</p>
</td></tr></table>
<p style='font-size:8pt; color:#52606d'>Printed {printed:%d %b %Y %H:%M} ({zone_name}).
Times are clinic times.</p>
</body></html>
"""


def card_document(card: PatientCardData) -> QTextDocument:
    document = QTextDocument()
    font = QFont()
    font.setPointSizeF(11)
    # No ligatures: the PDF text stays searchable and copyable as typed ("Refill").
    font.setFeature(QFont.Tag("liga"), 0)
    document.setDefaultFont(font)
    document.setDocumentMargin(0)
    document.setHtml(render_patient_card_html(card))
    return document


def write_patient_card_pdf(card: PatientCardData, path: Path) -> None:
    """Write the card as an A5 PDF at ``path`` (raises OSError if it cannot be written)."""
    writer = QPdfWriter(str(path))
    writer.setTitle(f"Patient card — {card.patient_name}")
    writer.setCreator("PumpClinic")
    writer.setResolution(300)
    writer.setPageLayout(
        QPageLayout(
            QPageSize(QPageSize.PageSizeId.A5),
            QPageLayout.Orientation.Portrait,
            QMarginsF(12, 12, 12, 12),
            QPageLayout.Unit.Millimeter,
        )
    )
    _print(card, writer)
    if not path.exists() or path.stat().st_size == 0:
        raise OSError(f"Could not write {path}")


def print_patient_card(card: PatientCardData, parent: QWidget | None = None) -> bool:
    """Ask for a printer and print the card; False if the user cancelled."""
    from PySide6.QtPrintSupport import QPrintDialog, QPrinter

    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    printer.setPageSize(QPageSize(QPageSize.PageSizeId.A5))
    printer.setDocName(f"Patient card — {card.patient_name}")
    dialog = QPrintDialog(printer, parent)
    dialog.setWindowTitle("Print patient card")
    if dialog.exec() != QPrintDialog.DialogCode.Accepted:
        return False
    _print(card, printer)
    return True


def _print(card: PatientCardData, device: QPagedPaintDevice) -> None:
    document = card_document(card)
    # Paginate at the page's printable size in screen pixels: print_ then scales the page
    # to the device 1:1, so 11 pt type prints as 11 pt on any printer.
    screen = QGuiApplication.primaryScreen()
    dpi = screen.logicalDotsPerInch() if screen is not None else 96.0
    printable = device.pageLayout().paintRect(QPageLayout.Unit.Inch)
    document.setPageSize(QSizeF(printable.width() * dpi, printable.height() * dpi))
    document.print_(device)
