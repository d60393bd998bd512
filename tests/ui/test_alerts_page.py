"""The Alerts and Today pages, driven as a user would: work an overdue alert (log a call,
book from the alert), see it close when the refill is recorded, and see a new critical alert
announced as time passes while the app stays open."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import icalendar
import pytest
from PySide6.QtCore import QDate, Qt

from pumpclinic.domain.alerts import (
    Alert,
    AlertKind,
    ContactMethod,
    ContactOutcome,
    Severity,
)
from pumpclinic.domain.enums import Role
from pumpclinic.services.alerts import AlertRow, ContactInput
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.services.refills import DoubleCheck, RefillInput
from pumpclinic.ui.alert_reports import AlertReportsDialog, overdue_list_html
from pumpclinic.ui.alerts import (
    ROW_ROLE,
    AlertFilterProxy,
    AlertsPage,
    AlertTableModel,
    ContactHistoryModel,
)
from pumpclinic.ui.bus import DataBus
from pumpclinic.ui.today import TodayAppointmentsModel, TodayPage
from tests.conftest import NOW, PASSWORDS
from tests.services.refill_fixtures import implanted_patient, record_checked

# The worked example pump (20 mL at 0.2 mL/day, filled NOW − 60 days): due Fri 11 Dec,
# alarm Sat 26 Dec 10:00, empty Tue 5 Jan 10:00 (UTC). On Sat 12 Dec it is overdue.
OVERDUE_AT = NOW + dt.timedelta(days=16)


@pytest.fixture
def patient(services: Services, nurse: Actor, clinician: Actor) -> tuple[int, int]:
    return implanted_patient(services, nurse, clinician)


@pytest.fixture
def bus(qtbot) -> DataBus:
    return DataBus()


def open_page(qtbot, services: Services, actor: Actor, bus: DataBus, clock) -> AlertsPage:
    page = AlertsPage(services, actor, bus, clock=clock)
    qtbot.addWidget(page)
    page.resize(1100, 760)
    page.show()
    return page


def shown_rows(page: AlertsPage) -> list[AlertRow]:
    return [page.proxy.data(page.proxy.index(r, 0), ROW_ROLE) for r in range(page.proxy.rowCount())]


def select_first(page: AlertsPage, qtbot) -> AlertRow:
    index = page.proxy.index(0, 1)
    rect = page.table.visualRect(index)
    qtbot.mouseClick(page.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    row = page.selected_row()
    assert row is not None
    return row


def test_staff_work_an_overdue_alert_until_the_refill_closes_it(
    qtbot, services: Services, staff: Actor, nurse: Actor, patient, clock, bus
) -> None:
    patient_id, pump_id = patient
    clock.advance(days=16)
    page = open_page(qtbot, services, staff, bus, clock)
    (row,) = shown_rows(page)
    assert row.kind is AlertKind.REFILL_OVERDUE and row.severity is Severity.WARNING
    assert page.model.data(page.model.index(0, 0)) == "WARNING"
    assert page.model.data(page.model.index(0, 4)) == "Not contacted yet"
    select_first(page, qtbot)
    assert page.detail_title.text() == "OKAFOR, Ada · RIV-000100"
    assert page.fact_labels["refill_due"].text() == "Fri 11 Dec"

    # A call, no answer.
    page.contact_method.setCurrentIndex(page.contact_method.findData(ContactMethod.PHONE.value))
    page.contact_outcome.setCurrentIndex(
        page.contact_outcome.findData(ContactOutcome.NO_ANSWER.value)
    )
    qtbot.keyClicks(page.contact_notes, "Rang the mobile twice")
    qtbot.mouseClick(page.log_button, Qt.MouseButton.LeftButton)
    (attempt,) = services.alerts.contact_attempts(staff, patient_id)
    assert attempt.outcome is ContactOutcome.NO_ANSWER and attempt.notes == "Rang the mobile twice"
    assert attempt.by == "Stef Frontdesk"
    assert page.model.data(page.model.index(0, 4)).startswith("No answer (phone)")
    assert page.selected_row() is not None  # still on the same alert after the refresh
    assert page.history_model.rowCount() == 1
    assert page.staff_filter.findText("Last contacted by Stef Frontdesk") >= 0

    # Book from the alert: the booking dialog opens on the patient, the slot proposed.
    qtbot.mouseClick(page.book_button, Qt.MouseButton.LeftButton)
    dialog = page.book_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.windowTitle().startswith("Book refill — OKAFOR, Ada")
    assert dialog.selected_slot() is not None  # the earliest free slot (it is overdue)
    assert dialog.late_box.isVisible()
    qtbot.keyClicks(dialog.late_reason, "Patient away until Monday")
    with qtbot.waitSignal(dialog.booked):
        qtbot.mouseClick(dialog.book_button, Qt.MouseButton.LeftButton)
    (row,) = shown_rows(page)
    assert row.kind is AlertKind.REFILL_BOOKED_LATE
    assert row.alert.booked_at == dialog.result_row.starts_at

    # The refill is recorded (by a nurse, double-checked): the alert closes by itself.
    record_checked(
        services,
        nurse,
        RefillInput(
            pump_id=pump_id,
            performed_at=clock(),
            aspirated_residual_ml=4.8,
            drug_product_id="baclofen-2000",
            lot_number="LOT-C3",
            volume_added_ml=20.0,
            dose_mcg_per_day=400.0,
        ),
        DoubleCheck("carl", PASSWORDS[Role.CLINICIAN], 2000, 400),
    )
    bus.notify("refill")
    assert shown_rows(page) == []
    assert page.count_label.text().startswith("0 alerts")


def test_the_list_is_re_evaluated_as_time_passes_and_a_new_critical_alert_is_announced(
    qtbot, services: Services, nurse: Actor, patient, clock, bus
) -> None:
    clock.current = dt.datetime(2027, 1, 5, 9, 0, tzinfo=dt.UTC)  # past the alarm
    page = open_page(qtbot, services, nurse, bus, clock)
    counts: list[dict] = []
    page.counts_changed.connect(counts.append)
    assert [r.kind for r in shown_rows(page)] == [AlertKind.PAST_ALARM]
    assert page.timer.isActive() and page.timer.interval() == 60_000
    assert page.toast is None
    clock.advance(hours=2)  # 11:00: empty since 10:00 — nothing else changed
    with qtbot.waitSignal(page.critical_alert_raised) as raised:
        page.timer.timeout.emit()
    (new,) = raised.args[0]
    assert new.kind is AlertKind.PUMP_EMPTY and new.severity is Severity.CRITICAL
    assert page.toast is not None and page.toast.isVisible()
    assert "New critical alert" in page.toast.message.text()
    assert "OKAFOR, Ada" in page.toast.message.text()
    assert page.critical_banner.isVisible()
    assert counts[-1][Severity.CRITICAL] == 1
    # The same critical alert a minute later is not new.
    page.toast.hide()
    clock.advance(minutes=1)
    page.timer.timeout.emit()
    assert not page.toast.isVisible()
    # "Show" on the notice selects the alert.
    page._notify_critical([new])
    qtbot.mouseClick(page.toast.show_button, Qt.MouseButton.LeftButton)
    assert page.selected_row() is not None and page.selected_row().key == new.key


def test_the_minute_refresh_keeps_the_selection_and_what_is_being_typed(
    qtbot, services: Services, staff: Actor, patient, clock, bus
) -> None:
    clock.advance(days=16)
    page = open_page(qtbot, services, staff, bus, clock)
    row = select_first(page, qtbot)
    qtbot.keyClicks(page.contact_notes, "Half-typed note")
    qtbot.keyClicks(page.dnc_reason, "Carer")
    clock.advance(minutes=1)
    page.timer.timeout.emit()
    assert page.selected_row() is not None and page.selected_row().key == row.key
    assert page.contact_notes.toPlainText() == "Half-typed note"
    assert page.dnc_reason.text() == "Carer"


def test_do_not_contact_needs_a_reason(
    qtbot, services: Services, staff: Actor, patient, clock, bus
) -> None:
    patient_id, _pump_id = patient
    clock.advance(days=16)
    page = open_page(qtbot, services, staff, bus, clock)
    select_first(page, qtbot)
    page.dnc_check.setChecked(True)
    qtbot.mouseClick(page.dnc_save, Qt.MouseButton.LeftButton)
    assert page.errors.message("do_not_contact_reason") == "Give the reason not to contact."
    qtbot.keyClicks(page.dnc_reason, "Deaf: text or email only")
    qtbot.mouseClick(page.dnc_save, Qt.MouseButton.LeftButton)
    assert services.alerts.contact_sheet(staff, patient_id).do_not_contact
    assert page.dnc_banner.isVisible() and "text or email only" in page.dnc_banner.text()
    assert page.model.data(page.model.index(0, 4)).startswith("DO NOT CONTACT")
    assert len(shown_rows(page)) == 1  # never hidden from the list


def test_a_promised_date_before_the_call_is_shown_at_its_field(
    qtbot, services: Services, staff: Actor, patient, clock, bus
) -> None:
    clock.advance(days=16)
    page = open_page(qtbot, services, staff, bus, clock)
    select_first(page, qtbot)
    page.promised.setChecked(True)
    page.promised_date.setMinimumDate(QDate(2026, 1, 1))
    page.promised_date.setDate(QDate(2026, 12, 1))
    qtbot.mouseClick(page.log_button, Qt.MouseButton.LeftButton)
    assert "before the attempt" in page.errors.message("promised_date")
    assert services.alerts.contact_attempts(staff, page.selected_row().patient_id) == []


def test_filters_by_severity_kind_and_staff(
    qtbot, services: Services, staff: Actor, nurse: Actor, clinician: Actor, clock, bus
) -> None:
    implanted_patient(services, nurse, clinician, mrn="RIV-000100")
    implanted_patient(services, nurse, clinician, mrn="RIV-000200", dose_mcg_per_day=800)
    clock.advance(days=5)  # the first due soon (info), the second empty (critical)
    page = open_page(qtbot, services, staff, bus, clock)
    assert [r.severity for r in shown_rows(page)] == [Severity.CRITICAL, Severity.INFO]
    page.severity_buttons[Severity.INFO].setChecked(True)
    assert [r.severity for r in shown_rows(page)] == [Severity.INFO]
    assert page.count_label.text().startswith("1 of 2 alerts")
    page.set_severity_filter(None)
    page.set_kind_filter(AlertKind.PUMP_EMPTY)
    assert [r.kind for r in shown_rows(page)] == [AlertKind.PUMP_EMPTY]
    page.set_kind_filter(None)
    empty = shown_rows(page)[0]
    services.alerts.log_contact(
        staff, ContactInput(empty.patient_id, clock(), "phone", "left-message")
    )
    bus.notify("contact")
    page.set_staff_filter(staff.user_id)
    assert [r.patient_id for r in shown_rows(page)] == [empty.patient_id]
    page.set_staff_filter(AlertFilterProxy.NOT_CONTACTED)
    assert [r.severity for r in shown_rows(page)] == [Severity.INFO]


def test_the_administrator_does_not_see_the_list(qtbot, services: Services, admin: Actor, bus):
    page = AlertsPage(services, admin, bus)
    qtbot.addWidget(page)
    assert page.objectName() == "alertsPage"
    assert page.findChild(object, "alertsNoAccess") is not None
    today = TodayPage(services, admin, bus)
    qtbot.addWidget(today)
    assert today.findChild(object, "todayNoAccess") is not None


# --- the models ------------------------------------------------------------------------------


def _rows(count: int) -> list[AlertRow]:
    severities = list(Severity)
    return [
        AlertRow(
            alert=Alert(
                kind=AlertKind.REFILL_OVERDUE,
                severity=severities[n % 4],
                patient_id=n,
                pump_id=n,
                trial_id=None,
                description=f"Refill due — {n} days overdue",
                deadline=NOW + dt.timedelta(hours=n),
                deadline_label="alarm",
                summary=f"Refill {n} days overdue",
            ),
            patient_name=f"PATIENT, Number {n}",
            mrn=f"MRN-{n:05d}",
            phone="",
            do_not_contact=n % 7 == 0,
            do_not_contact_reason="By letter only" if n % 7 == 0 else "",
            last_contact=None,
        )
        for n in range(count)
    ]


def test_the_table_model_pages_lazily(qtmodeltester) -> None:
    model = AlertTableModel(page_size=200)
    model.set_rows(_rows(450), dt.UTC)
    assert model.rowCount() == 200 and model.canFetchMore()
    model.fetchMore()
    assert model.rowCount() == 400
    model.fetchMore()
    assert model.rowCount() == 450 and not model.canFetchMore()
    qtmodeltester.check(model)
    model.set_rows(_rows(10), dt.UTC)
    assert model.rowCount() == 10


def test_models_pass_the_model_tester(
    qtmodeltester, services: Services, nurse: Actor, patient, clock
) -> None:
    model = AlertTableModel(page_size=3)
    model.set_rows(_rows(7), dt.UTC)
    proxy = AlertFilterProxy()
    proxy.setSourceModel(model)
    proxy.set_filters([Severity.CRITICAL, Severity.URGENT])
    qtmodeltester.check(model)
    qtmodeltester.check(proxy)
    proxy.sort(1)  # any column but the first loads every row
    assert model.rowCount() == 7
    history = ContactHistoryModel()
    services.alerts.log_contact(nurse, ContactInput(patient[0], clock(), "sms", "sent"))
    history.set_rows(services.alerts.contact_attempts(nurse, patient[0]), dt.UTC)
    assert "Text message: Sent" in history.data(history.index(0))
    qtmodeltester.check(history)
    appointments = TodayAppointmentsModel()
    settings, _version = services.settings.get()
    services.booking.book_refill(
        nurse, patient[0], dt.datetime(2026, 11, 26, 15, 0, tzinfo=settings.zone)
    )
    appointments.set_schedule(services.booking.day_schedule(nurse, dt.date(2026, 11, 26)))
    assert appointments.rowCount() == 1
    qtmodeltester.check(appointments)


# --- the Today page --------------------------------------------------------------------------


def test_today_counts_open_the_alerts_and_list_the_days_refills(
    qtbot, services: Services, staff: Actor, patient, clock, bus
) -> None:
    patient_id, _pump_id = patient
    clock.advance(days=16)  # Sat 12 Dec: overdue; book for Monday and look at Monday
    settings, _version = services.settings.get()
    monday = dt.datetime(2026, 12, 14, 9, 0, tzinfo=settings.zone)
    services.booking.book_refill(staff, patient_id, monday, late_reason="Away")
    clock.current = dt.datetime(2026, 12, 14, 8, 0, tzinfo=dt.UTC)
    page = TodayPage(services, staff, bus)
    qtbot.addWidget(page)
    page.show()
    assert page.objectName() == "todayPage"
    assert page.title.text() == "Today — Monday 14 December 2026"
    assert page.count_tiles[Severity.WARNING].text().strip().startswith("1")
    with qtbot.waitSignal(page.show_alerts) as asked:
        qtbot.mouseClick(page.count_tiles[Severity.WARNING], Qt.MouseButton.LeftButton)
    assert asked.args == [Severity.WARNING]
    assert page.alerts_model.rowCount() == 1
    assert page.appointments_model.rowCount() == 1
    assert page.appointments_model.data(page.appointments_model.index(0, 0)) == "09:00–09:30"
    assert page.appointments_note.text() == "1 booked, 0 done."


# --- reports ---------------------------------------------------------------------------------


def test_reports_pdf_csv_and_calendar(
    qtbot, services: Services, staff: Actor, patient, clock, bus, tmp_path: Path
) -> None:
    patient_id, _pump_id = patient
    clock.advance(days=16)
    settings, _version = services.settings.get()
    monday = dt.datetime(2026, 12, 14, 9, 0, tzinfo=settings.zone)
    services.booking.book_refill(staff, patient_id, monday, late_reason="Away")
    page = open_page(qtbot, services, staff, bus, clock)
    dialog = page.open_reports()
    assert isinstance(dialog, AlertReportsDialog)
    assert dialog.save_pdf(tmp_path / "overdue.pdf")
    assert (tmp_path / "overdue.pdf").read_bytes().startswith(b"%PDF")
    html = overdue_list_html(page.result, page.result.rows, "Overdue refills")
    assert "OKAFOR, Ada" in html and "WARNING" in html and "☐" in html

    assert dialog.save_csv(tmp_path / "alerts.csv")
    text = (tmp_path / "alerts.csv").read_text(encoding="utf-8-sig")
    (line,) = list(csv.DictReader(io.StringIO(text)))
    assert line["kind"] == "refill_booked_late" and line["mrn"] == "RIV-000100"
    assert line["booked_at"] == "2026-12-14T09:00:00+00:00"

    dialog.first_day.setDate(QDate(2026, 12, 14))
    dialog.last_day.setDate(QDate(2026, 12, 20))
    assert dialog.save_ics(tmp_path / "appointments.ics")
    calendar = icalendar.Calendar.from_ical((tmp_path / "appointments.ics").read_bytes())
    (event,) = calendar.walk("VEVENT")
    assert str(event["summary"]) == "Refill: OKAFOR, Ada (RIV-000100)"
    assert event.decoded("dtstart") == monday
    assert str(event["uid"]).startswith("appointment-")
    assert calendar.walk("VTIMEZONE")  # the clinic's zone travels with the file
