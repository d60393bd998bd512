"""Reports from the alert list that need no Qt: the CSV export and the calendar (.ics) export
of booked appointments (made with the ``icalendar`` library)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zoneinfo
from collections.abc import Iterable, Sequence

import icalendar

from pumpclinic.domain.alerts import AlertKind
from pumpclinic.domain.enums import AppointmentKind
from pumpclinic.services.alerts import AlertRow, BookedVisit

# The printed overdue list: the refill alerts from "overdue" up (not "due soon", not the
# battery or screening reminders).
OVERDUE_KINDS = frozenset(
    {
        AlertKind.REFILL_OVERDUE,
        AlertKind.REFILL_BOOKED_LATE,
        AlertKind.REFILL_BOOKED_AFTER_ALARM,
        AlertKind.STABILITY_LIMIT_PASSED,
        AlertKind.PAST_ALARM,
        AlertKind.PUMP_EMPTY,
    }
)
CSV_COLUMNS = (
    "severity",
    "kind",
    "patient",
    "mrn",
    "phone",
    "what_is_wrong",
    "deadline_label",
    "deadline",
    "refill_due",
    "alarm_at",
    "empty_at",
    "booked_at",
    "raised_by",
    "do_not_contact",
    "do_not_contact_reason",
    "last_contact_at",
    "last_contact",
    "last_contact_by",
    "promised_date",
)
PRODUCT_ID = "-//PumpClinic//Alerts and appointments//EN"
_KIND_WORDS = {
    AppointmentKind.REFILL: "Refill",
    AppointmentKind.SCREENING: "Screening",
    AppointmentKind.REVIEW: "Review",
}
# A cell a spreadsheet would run as a formula (CSV injection): kept as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def overdue_rows(rows: Iterable[AlertRow]) -> list[AlertRow]:
    return [row for row in rows if row.kind in OVERDUE_KINDS]


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def _local(at: dt.datetime | None, zone: dt.tzinfo) -> str:
    if at is None:
        return ""
    return at.astimezone(zone).replace(microsecond=0).isoformat()


def alerts_csv(rows: Sequence[AlertRow], zone: zoneinfo.ZoneInfo) -> str:
    """The list as CSV, one alert per line in list order; times ISO 8601 in ``zone``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        alert = row.alert
        last = row.last_contact
        writer.writerow(
            [
                alert.severity.value,
                alert.kind.value,
                _cell(row.patient_name),
                _cell(row.mrn),
                _cell(row.phone),
                _cell(alert.description),
                alert.deadline_label,
                _local(alert.deadline, zone),
                alert.refill_due.isoformat() if alert.refill_due else "",
                _local(alert.alarm_at, zone),
                _local(alert.empty_at, zone),
                _local(alert.booked_at, zone),
                " ".join(flag.value for flag in alert.raised_by),
                "yes" if row.do_not_contact else "no",
                _cell(row.do_not_contact_reason),
                _local(last.at, zone) if last else "",
                f"{last.method.value} {last.outcome.value}" if last else "",
                _cell(last.by) if last else "",
                last.promised_date.isoformat() if last and last.promised_date else "",
            ]
        )
    return out.getvalue()


def write_alerts_csv(path: str, rows: Sequence[AlertRow], zone: zoneinfo.ZoneInfo) -> None:
    # With a byte-order mark: spreadsheet programs then read the file as UTF-8.
    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        handle.write(alerts_csv(rows, zone))


def appointments_ics(
    visits: Sequence[BookedVisit],
    *,
    clinic_name: str,
    zone: zoneinfo.ZoneInfo,
    now: dt.datetime,
) -> bytes:
    """An iCalendar file of the booked appointments, times in the clinic's zone (with its
    VTIMEZONE), one event per appointment with a stable UID."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", f"{clinic_name} — appointments")
    stamp = now.astimezone(dt.UTC).replace(microsecond=0)
    for visit in visits:
        event = icalendar.Event()
        event.add("uid", f"appointment-{visit.id}@pumpclinic")
        event.add("dtstamp", stamp)
        event.add("dtstart", visit.starts_at.astimezone(zone))
        event.add("dtend", visit.ends_at.astimezone(zone))
        what = _KIND_WORDS.get(visit.kind, visit.kind.value.capitalize())
        event.add("summary", f"{what}: {visit.patient_name} ({visit.mrn})")
        details = [f"{what} appointment, {visit.status.value}."]
        if visit.late_reason:
            details.append(f"Booked after the refill-due date: {visit.late_reason}")
        if visit.notes:
            details.append(visit.notes)
        event.add("description", "\n".join(details))
        event.add("location", clinic_name)
        event.add("status", "CONFIRMED")
        event.add("categories", [what])
        calendar.add_component(event)
    calendar.add_missing_timezones()
    document: bytes = calendar.to_ical()
    return document


def write_appointments_ics(
    path: str,
    visits: Sequence[BookedVisit],
    *,
    clinic_name: str,
    zone: zoneinfo.ZoneInfo,
    now: dt.datetime,
) -> None:
    with open(path, "wb") as handle:
        handle.write(appointments_ics(visits, clinic_name=clinic_name, zone=zone, now=now))
