"""The refill visit through the GUI: book, see it in the day view, record with the double
check, print the card — on a real SQLite clinic (ITB-FACTS §4–§5 worked example)."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import zoneinfo
from pathlib import Path

import pytest
from PySide6.QtCore import QDate, Qt
from PySide6.QtWidgets import QAbstractSpinBox, QLabel, QLineEdit, QWidget

from pumpclinic.domain.enums import Role
from pumpclinic.services.refills import DoubleCheck, RefillInput
from pumpclinic.ui.booking import (
    BookRefillDialog,
    CancelAppointmentDialog,
    DaySlotsModel,
    RefillsPage,
    SlotListModel,
    day_rows,
)
from pumpclinic.ui.bus import DataBus
from pumpclinic.ui.patient_card import render_patient_card_html, write_patient_card_pdf
from pumpclinic.ui.refill_record import (
    ASPIRATION,
    CHECK,
    DONE,
    FILL,
    PROGRAM,
    ProgramComparisonModel,
    RecordRefillDialog,
    StepListModel,
)
from tests.conftest import NOW, PASSWORDS
from tests.services.refill_fixtures import implanted_patient, record_checked

LONDON = zoneinfo.ZoneInfo("Europe/London")
LEFT = Qt.MouseButton.LeftButton
DUE = dt.date(2026, 12, 11)  # refill due of the worked example (stability limit first)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=LONDON)


def qdate(day: dt.date) -> QDate:
    return QDate(day.year, day.month, day.day)


@pytest.fixture
def patient(services, nurse, clinician) -> tuple[int, int]:
    return implanted_patient(services, nurse, clinician)


@pytest.fixture
def bus() -> DataBus:
    return DataBus()


def show(qtbot, widget: QWidget, width: int = 1100, height: int = 760) -> None:
    qtbot.addWidget(widget)
    widget.resize(width, height)
    widget.show()
    qtbot.waitExposed(widget)


def type_number(qtbot, field: QAbstractSpinBox, text: str) -> None:
    field.setFocus()
    field.selectAll()
    qtbot.keyClicks(field, text)


def visible_texts(root: QWidget) -> list[str]:
    texts = [w.text() for w in root.findChildren(QLabel) if w.isVisible()]
    texts += [w.text() for w in root.findChildren(QLineEdit) if w.isVisible()]
    texts += [w.text() for w in root.findChildren(QAbstractSpinBox) if w.isVisible()]
    return texts


def count_refills(services, nurse, patient_id: int) -> int:
    return len(services.refills.overview(nurse, patient_id).refills)


def record_dialog(qtbot, services, nurse, pump_id: int, **kwargs) -> RecordRefillDialog:
    dialog = RecordRefillDialog(services, nurse, pump_id, **kwargs)
    show(qtbot, dialog, 1000, 720)
    return dialog


def through_aspiration(qtbot, dialog: RecordRefillDialog, aspirated: str = "7.6") -> None:
    type_number(qtbot, dialog.aspirated, aspirated)
    qtbot.mouseClick(dialog.next_button, LEFT)  # shows the reconciliation
    qtbot.mouseClick(dialog.next_button, LEFT)
    assert dialog.current_step() == FILL


def through_fill(qtbot, dialog: RecordRefillDialog, volume: str = "20") -> None:
    qtbot.keyClicks(dialog.lot, "LOT-B2")
    type_number(qtbot, dialog.volume_added, volume)
    qtbot.mouseClick(dialog.next_button, LEFT)
    assert dialog.current_step() == PROGRAM


# --- the visit end to end ------------------------------------------------------------------


def test_book_record_double_check_and_print_end_to_end(
    qtbot, tmp_path: Path, services, staff, nurse, clinician, patient, bus
) -> None:
    patient_id, _pump_id = patient

    # Front desk books the proposed slot: the latest free one on or before refill-due.
    booking = BookRefillDialog(services, staff, patient_id, bus=bus)
    show(qtbot, booking, 820, 700)
    assert booking.findChild(QLabel, "forecastDue").text() == "Fri 11 Dec 2026"
    assert booking.findChild(QLabel, "forecastAlarm").text() == "Sat 26 Dec 2026 10:00"
    assert "Proposed: Fri 11 Dec 2026, 17:30" in booking.proposal_banner.text()
    proposed = booking.selected_slot()
    assert proposed is not None and proposed.starts_at == at(DUE, 17, 30)
    assert booking.selected_label.text() == "Selected: Fri 11 Dec 2026, 17:30–18:00"
    assert not booking.late_box.isVisible() and not booking.override_box.isVisible()
    with qtbot.waitSignal(bus.changed) as notice, qtbot.waitSignal(booking.booked) as done:
        qtbot.mouseClick(booking.book_button, LEFT)
    assert "appointment" in notice.args[0]
    appointment = done.args[0]
    assert appointment.booked_by == "stef" and appointment.starts_at == at(DUE, 17, 30)

    # The nurse sees it in the day view of the Refills page.
    page = RefillsPage(services, nurse, bus)
    show(qtbot, page)
    page.date_edit.setDate(qdate(DUE))
    assert page.day_title.text() == "Friday 11 December 2026"
    assert page.summary.text() == "1 of 20 slots booked"
    row = page.model.row_of_appointment(appointment.id)
    assert row is not None
    cells = [page.model.index(row, c).data() for c in range(page.model.columnCount())]
    assert cells[:5] == ["17:30–18:00", "OKAFOR, Ada", "RIV-000100", "Booked", "stef"]
    assert page.select_appointment(appointment.id)
    assert page.record_button.isEnabled() and page.cancel_button.isEnabled()
    qtbot.mouseClick(page.record_button, LEFT)
    dialog = page.findChild(RecordRefillDialog)
    assert dialog is not None and dialog.isVisible()
    assert dialog.heading.text() == "Record refill — OKAFOR, Ada · RIV-000100"

    # 1. Aspiration: the expected residual is on screen before anything is typed.
    assert dialog.current_step() == ASPIRATION
    assert dialog.expected_label.text() == "Expected residual: 8.0 mL"
    assert dialog.aspirated.number() is None
    type_number(qtbot, dialog.aspirated, "7.6")
    qtbot.mouseClick(dialog.next_button, LEFT)
    assert dialog.current_step() == ASPIRATION  # the result first
    result = dialog.reconciliation_label.text()
    assert "Expected 8.0 mL, aspirated 7.6 mL: 0.4 mL LESS than expected" in result
    assert "Within limits" in result
    assert not dialog.reconciliation_flag.isVisible()
    qtbot.mouseClick(dialog.next_button, LEFT)

    # 2. Drug and fill.
    assert dialog.current_step() == FILL
    assert dialog.drug_combo.currentText() == "Baclofen intrathecal 2000 mcg/mL"
    assert dialog.concentration_label.text() == "2000 mcg/mL"
    assert dialog.findChild(QLabel, "reservoirSize").text() == "Reservoir: 20 mL"
    qtbot.keyClicks(dialog.lot, "LOT-B2")
    type_number(qtbot, dialog.volume_added, "20")
    qtbot.mouseClick(dialog.next_button, LEFT)

    # 3. Program, mcg/day with mcg/h beside it, and old next to new.
    assert dialog.current_step() == PROGRAM
    type_number(qtbot, dialog.dose, "400")
    assert dialog.dose.text() == "400 mcg/day"
    assert dialog.hourly_label.text() == "= 16.67 mcg/h"
    assert not dialog.titration_banner.isVisible()
    comparison = dialog.comparison_model
    assert comparison.value(ProgramComparisonModel.DAILY_DOSE, 0) == "400 mcg/day"
    assert comparison.value(ProgramComparisonModel.DAILY_DOSE, 1) == "400 mcg/day"
    assert comparison.value(5, 0) == "Sat 26 Dec 2026 10:00"
    assert comparison.value(5, 1) == "Wed 24 Feb 2027 10:00"  # 90 days on 18 mL
    assert dialog.comparison_view.isVisible()
    qtbot.mouseClick(dialog.next_button, LEFT)

    # 4. Double check: the first entry is nowhere on screen, the fields are empty.
    assert dialog.current_step() == CHECK
    assert not dialog.comparison_view.isVisible()
    assert dialog.check_concentration.number() is None and dialog.check_dose.number() is None
    on_screen = " ".join(visible_texts(dialog))
    assert "400" not in on_screen and "2000" not in on_screen
    qtbot.keyClicks(dialog.check_username, "carl")
    qtbot.keyClicks(dialog.check_password, PASSWORDS[Role.CLINICIAN])
    type_number(qtbot, dialog.check_concentration, "2000")
    type_number(qtbot, dialog.check_dose, "40")  # a slip: mcg/day typed wrong
    qtbot.mouseClick(dialog.next_button, LEFT)
    assert dialog.current_step() == CHECK
    assert "does not match" in dialog.errors.message("check_dose")
    assert "NOTHING WAS SAVED" in dialog.mismatch_banner.text()
    assert dialog.check_concentration.number() is None and dialog.check_dose.number() is None
    assert count_refills(services, nurse, patient_id) == 1  # only the implant fill
    assert dialog.recorded is None

    type_number(qtbot, dialog.check_concentration, "2000")
    type_number(qtbot, dialog.check_dose, "400")
    with qtbot.waitSignal(dialog.saved) as saved, qtbot.waitSignal(bus.changed) as notice:
        qtbot.mouseClick(dialog.next_button, LEFT)
    assert "refill" in notice.args[0]
    recorded = saved.args[0]
    assert recorded.refill.double_checked_by == "carl"
    assert recorded.refill.performed_by == "nina"
    assert recorded.refill.aspirated_residual_ml == pytest.approx(7.6)
    assert count_refills(services, nurse, patient_id) == 2

    # Saved: the new dates, and the appointment is completed in the day view.
    assert dialog.current_step() == DONE
    assert dialog.saved_values["savedAlarm"].text() == "Wed 24 Feb 2027, 10:00"
    assert dialog.saved_values["savedRefillBy"].text() == recorded.forecast.refill_due.strftime(
        "%a %d %b %Y"
    )
    row = page.model.row_of_appointment(appointment.id)
    assert row is not None
    assert page.model.index(row, DaySlotsModel.STATUS).data() == "Completed"

    # The patient card as a real PDF.
    card_path = dialog.save_card_pdf(tmp_path / "card.pdf")
    assert card_path == tmp_path / "card.pdf"
    assert card_path.read_bytes().startswith(b"%PDF")
    assert "card.pdf" in dialog.pdf_status.text()
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", str(card_path), "-"], capture_output=True, text=True, check=True
        ).stdout
        assert "Ada Okafor" in text
        assert "400 mcg/day" in text and "16.67 mcg/h" in text
        assert "2000 mcg/mL" in text
        assert "call the clinic now" in text and "Sweating" in text
    qtbot.mouseClick(dialog.next_button, LEFT)  # Close
    assert not dialog.isVisible()


# --- booking -------------------------------------------------------------------------------


def test_booking_after_refill_due_asks_for_a_reason(qtbot, services, staff, patient) -> None:
    patient_id, _pump_id = patient
    dialog = BookRefillDialog(services, staff, patient_id)
    show(qtbot, dialog, 820, 700)
    dialog.date_edit.setDate(qdate(dt.date(2026, 12, 14)))
    assert dialog.select_slot(at(dt.date(2026, 12, 14), 10))
    assert dialog.late_box.isVisible()
    assert "after the refill-due date (Fri 11 Dec 2026)" in dialog.check_banner.text()
    assert not dialog.override_box.isVisible()
    qtbot.mouseClick(dialog.book_button, LEFT)
    assert dialog.isVisible()
    assert "Give the reason" in dialog.errors.message("late_reason")
    assert dialog.late_reason.property("invalid") is True
    assert services.booking.appointments_for_patient(staff, patient_id) == []
    qtbot.keyClicks(dialog.late_reason, "Patient travelling until 13 Dec")
    with qtbot.waitSignal(dialog.booked) as booked:
        qtbot.mouseClick(dialog.book_button, LEFT)
    assert booked.args[0].late_reason == "Patient travelling until 13 Dec"


def test_booking_after_the_alarm_needs_a_clinician_to_sign_in(
    qtbot, services, staff, patient
) -> None:
    patient_id, _pump_id = patient
    dialog = BookRefillDialog(services, staff, patient_id)
    show(qtbot, dialog, 820, 760)
    day = dt.date(2026, 12, 29)  # alarm: Sat 26 Dec 10:00
    dialog.date_edit.setDate(qdate(day))
    assert dialog.select_slot(at(day, 10))
    assert dialog.override_box.isVisible() and dialog.late_box.isVisible()
    assert "after the low-reservoir alarm" in dialog.check_banner.text()
    qtbot.keyClicks(dialog.late_reason, "Holidays")
    qtbot.mouseClick(dialog.book_button, LEFT)
    assert "A clinician must sign in" in dialog.errors.message("override")

    qtbot.keyClicks(dialog.override_username, "stef")
    qtbot.keyClicks(dialog.override_password, PASSWORDS[Role.STAFF])
    qtbot.mouseClick(dialog.book_button, LEFT)
    assert "cannot override" in dialog.errors.message("override")

    dialog.override_username.setText("carl")
    dialog.override_password.setText("wrong-pass-1")
    qtbot.mouseClick(dialog.book_button, LEFT)
    assert "wrong password" in dialog.errors.message("override")
    assert dialog.override_password.text() == ""

    qtbot.keyClicks(dialog.override_password, PASSWORDS[Role.CLINICIAN])
    with qtbot.waitSignal(dialog.booked) as booked:
        qtbot.mouseClick(dialog.book_button, LEFT)
    assert booked.args[0].override_by == "carl"


def test_a_clinician_books_after_the_alarm_without_a_second_sign_in(
    qtbot, services, clinician, patient
) -> None:
    patient_id, _pump_id = patient
    dialog = BookRefillDialog(services, clinician, patient_id)
    show(qtbot, dialog, 820, 700)
    day = dt.date(2026, 12, 29)
    dialog.date_edit.setDate(qdate(day))
    assert dialog.select_slot(at(day, 10))
    assert not dialog.override_box.isVisible()
    assert "You approve this booking as a clinician" in dialog.check_banner.text()
    qtbot.keyClicks(dialog.late_reason, "Admitted elsewhere until 28 Dec")
    with qtbot.waitSignal(dialog.booked) as booked:
        qtbot.mouseClick(dialog.book_button, LEFT)
    assert booked.args[0].override_by == "carl"


def test_taken_and_past_slots_cannot_be_chosen(
    qtbot, services, staff, nurse, clinician, patient
) -> None:
    patient_id, _pump_id = patient
    other_id, _ = implanted_patient(services, nurse, clinician, mrn="RIV-000200")
    services.booking.book_refill(staff, other_id, at(dt.date(2026, 12, 1), 9))
    dialog = BookRefillDialog(services, staff, patient_id)
    show(qtbot, dialog, 820, 700)
    dialog.date_edit.setDate(qdate(dt.date(2026, 12, 1)))
    model = dialog.slot_model
    taken = model.row_of(at(dt.date(2026, 12, 1), 9))
    assert taken is not None
    assert model.index(taken).data() == "09:00   OKAFOR, Ada"
    assert not model.flags(model.index(taken)) & Qt.ItemFlag.ItemIsEnabled
    assert not dialog.select_slot(at(dt.date(2026, 12, 1), 9))
    assert dialog.day_note.text() == "19 free slots"
    dialog.date_edit.setDate(qdate(dt.date(2026, 11, 26)))  # today, 10:00 in London
    assert model.index(0).data() == "08:00   Past"
    assert not dialog.select_slot(at(dt.date(2026, 11, 26), 8))
    assert dialog.select_slot(at(dt.date(2026, 11, 26), 10, 30))
    dialog.date_edit.setDate(qdate(dt.date(2026, 11, 28)))
    assert dialog.day_note.text() == "Closed on Saturdays: choose another day."
    assert model.rowCount() == 0
    assert not dialog.book_button.isEnabled()
    qtbot.mouseClick(dialog.proposed_button, LEFT)
    assert dialog.selected_slot() is not None
    assert dialog.selected_slot().starts_at == at(DUE, 17, 30)


# --- the day view --------------------------------------------------------------------------


def test_day_view_navigates_open_days_and_says_why_a_day_is_closed(qtbot, services, nurse) -> None:
    page = RefillsPage(services, nurse, DataBus())
    show(qtbot, page)
    assert page.day == dt.date(2026, 11, 26)
    assert page.day_title.text() == "Thursday 26 November 2026 — today"
    assert page.model.rowCount() == 20
    assert page.model.index(0, 1).data() == "Free"
    page.show_day(dt.date(2026, 11, 28))
    assert page.closed_banner.text() == "Closed on Saturdays: no refill slots on this day."
    assert not page.table.isVisible()
    qtbot.mouseClick(page.next_button, LEFT)
    assert page.day == dt.date(2026, 11, 30)
    assert not page.closed_banner.isVisible() and page.table.isVisible()
    qtbot.mouseClick(page.previous_button, LEFT)
    assert page.day == dt.date(2026, 11, 27)
    qtbot.mouseClick(page.today_button, LEFT)
    assert page.date_edit.date() == QDate(2026, 11, 26)


def test_arrived_and_no_show(qtbot, services, staff, clock, patient, bus) -> None:
    patient_id, _pump_id = patient
    today = dt.date(2026, 11, 26)
    row = services.booking.book_refill(staff, patient_id, at(today, 10, 30))
    page = RefillsPage(services, staff, bus)
    show(qtbot, page)
    assert not page.record_button.isVisible()  # front desk does not record refills
    assert page.select_appointment(row.id)
    assert page.arrived_button.isEnabled()
    assert not page.no_show_button.isEnabled()  # not before the appointment time
    qtbot.mouseClick(page.arrived_button, LEFT)
    number = page.model.row_of_appointment(row.id)
    assert page.model.index(number, DaySlotsModel.STATUS).data() == "Arrived"
    assert not page.arrived_button.isEnabled()

    services.booking.cancel(staff, row.id, row.version + 1, "Went home unwell")
    late = services.booking.book_refill(staff, patient_id, at(today, 11))
    clock.advance(hours=2)
    page.refresh()
    assert page.select_appointment(late.id)
    assert page.no_show_button.isEnabled()
    qtbot.mouseClick(page.no_show_button, LEFT)
    number = page.model.row_of_appointment(late.id)
    assert page.model.index(number, DaySlotsModel.STATUS).data() == "No-show"
    assert page.model.index(number, DaySlotsModel.PATIENT).data(Qt.ItemDataRole.FontRole).italic()
    page.show_cancelled.setChecked(False)
    assert page.model.row_of_appointment(late.id) is None
    assert page.model.row_of_appointment(row.id) is None


def test_cancel_asks_a_reason_and_reschedule_books_the_same_patient(
    qtbot, services, staff, patient, bus
) -> None:
    patient_id, _pump_id = patient
    first = services.booking.book_refill(staff, patient_id, at(dt.date(2026, 12, 2), 9))
    page = RefillsPage(services, staff, bus)
    show(qtbot, page)
    page.show_day(dt.date(2026, 12, 2))

    assert page.select_appointment(first.id)
    qtbot.mouseClick(page.reschedule_button, LEFT)
    moving = page.findChild(BookRefillDialog)
    assert moving is not None and moving.isVisible()
    assert moving.windowTitle() == "Reschedule refill — OKAFOR, Ada · RIV-000100"
    moving.date_edit.setDate(qdate(dt.date(2026, 12, 3)))
    assert moving.select_slot(at(dt.date(2026, 12, 3), 11))
    with qtbot.waitSignal(moving.booked) as booked:
        qtbot.mouseClick(moving.book_button, LEFT)
    moved = booked.args[0]
    assert moved.rescheduled_from_id == first.id
    number = page.model.row_of_appointment(first.id)
    assert page.model.index(number, DaySlotsModel.STATUS).data() == "Cancelled"
    assert "Rescheduled to Thu 03 Dec 2026 11:00" in page.model.index(number, 5).data()

    page.show_day(dt.date(2026, 12, 3))
    assert page.select_appointment(moved.id)
    qtbot.mouseClick(page.cancel_button, LEFT)
    cancel = page.findChild(CancelAppointmentDialog)
    assert cancel is not None and cancel.isVisible()
    qtbot.mouseClick(cancel.ok_button, LEFT)
    assert "Reason for cancelling is required" in cancel.errors.message("cancel_reason")
    qtbot.keyClicks(cancel.reason, "Admitted to hospital")
    with qtbot.waitSignal(cancel.cancelled):
        qtbot.mouseClick(cancel.ok_button, LEFT)
    number = page.model.row_of_appointment(moved.id)
    assert page.model.index(number, DaySlotsModel.STATUS).data() == "Cancelled"
    assert "Cancelled: Admitted to hospital" in page.model.index(number, 5).data()
    assert page.summary.text() == "0 of 20 slots booked"


def test_administrators_see_no_schedule(qtbot, services, admin) -> None:
    page = RefillsPage(services, admin, DataBus())
    show(qtbot, page)
    assert page.findChild(QLabel, "refillsNoAccess").isVisible()
    assert page.selected_appointment() is None


# --- recording -----------------------------------------------------------------------------


def test_a_flagged_reconciliation_shows_the_next_steps(qtbot, services, nurse, patient) -> None:
    _patient_id, pump_id = patient
    dialog = record_dialog(qtbot, services, nurse, pump_id)
    type_number(qtbot, dialog.aspirated, "5.5")
    qtbot.mouseClick(dialog.next_button, LEFT)
    assert "2.5 mL LESS than expected (gap -2.5 mL)" in dialog.reconciliation_label.text()
    assert "20.8 % more" in dialog.reconciliation_label.text()
    flag = dialog.reconciliation_flag
    assert flag.isVisible()
    assert flag.text().startswith("Investigate before refilling: the gap is more than 2 mL")
    assert "more than 14.5 %" in flag.text()
    assert "over-infusion" in flag.text()
    assert dialog.current_step() == ASPIRATION
    type_number(qtbot, dialog.aspirated, "5.4")  # a new value must be looked at again
    assert not flag.isVisible()
    qtbot.mouseClick(dialog.next_button, LEFT)
    assert dialog.current_step() == ASPIRATION and flag.isVisible()
    qtbot.mouseClick(dialog.next_button, LEFT)
    assert dialog.current_step() == FILL


def test_an_empty_aspiration_is_not_taken_for_zero(qtbot, services, nurse, patient) -> None:
    _patient_id, pump_id = patient
    dialog = record_dialog(qtbot, services, nurse, pump_id)
    qtbot.mouseClick(dialog.next_button, LEFT)
    assert "Enter the aspirated volume" in dialog.errors.message("aspirated_residual_ml")
    assert dialog.current_step() == ASPIRATION


def test_volume_above_the_reservoir_is_refused_at_its_field(
    qtbot, services, nurse, patient
) -> None:
    _patient_id, pump_id = patient
    dialog = record_dialog(qtbot, services, nurse, pump_id)
    through_aspiration(qtbot, dialog)
    qtbot.keyClicks(dialog.lot, "LOT-B2")
    type_number(qtbot, dialog.volume_added, "25")
    qtbot.mouseClick(dialog.next_button, LEFT)
    assert dialog.current_step() == FILL
    assert "cannot exceed the reservoir, 20 mL (25)" in dialog.errors.message("volume_added_ml")
    assert dialog.volume_added.property("invalid") is True
    type_number(qtbot, dialog.volume_added, "20")
    qtbot.mouseClick(dialog.next_button, LEFT)
    assert dialog.current_step() == PROGRAM


def test_pocket_fill_warning(qtbot, services, nurse, patient) -> None:
    _patient_id, pump_id = patient
    dialog = record_dialog(qtbot, services, nurse, pump_id)
    through_aspiration(qtbot, dialog)
    qtbot.keyClicks(dialog.lot, "LOT-B2")
    type_number(qtbot, dialog.volume_added, "20")
    type_number(qtbot, dialog.measured_after, "18.5")
    qtbot.mouseClick(dialog.next_button, LEFT)
    assert dialog.current_step() == FILL
    assert "Possible pocket fill" in dialog.pocket_banner.text()
    qtbot.mouseClick(dialog.next_button, LEFT)
    assert dialog.current_step() == PROGRAM


def test_hourly_rate_and_daily_volume_follow_the_daily_dose(
    qtbot, services, nurse, patient
) -> None:
    _patient_id, pump_id = patient
    dialog = record_dialog(qtbot, services, nurse, pump_id)
    through_aspiration(qtbot, dialog)
    through_fill(qtbot, dialog)
    assert dialog.hourly_label.text() == "= — mcg/h"
    assert "400 mcg/day" in dialog.current_program.text()
    assert "16.67 mcg/h" in dialog.current_program.text()
    type_number(qtbot, dialog.dose, "400")
    assert dialog.hourly_label.text() == "= 16.67 mcg/h"
    assert dialog.volume_label.text() == "· 0.200 mL/day"
    type_number(qtbot, dialog.dose, "360")
    assert dialog.hourly_label.text() == "= 15.00 mcg/h"
    assert dialog.volume_label.text() == "· 0.180 mL/day"
    assert dialog.comparison_model.value(3, 1) == "15.00 mcg/h"
    assert dialog.comparison_model.changed(ProgramComparisonModel.DAILY_DOSE)


def test_a_change_beyond_the_titration_bounds_needs_a_reason(
    qtbot, services, nurse, patient
) -> None:
    _patient_id, pump_id = patient
    dialog = record_dialog(qtbot, services, nurse, pump_id)
    through_aspiration(qtbot, dialog)
    through_fill(qtbot, dialog)
    type_number(qtbot, dialog.dose, "600")  # +50 % for spinal origin: bound is 30 % a day
    assert dialog.titration_banner.isVisible()
    assert "30 %" in dialog.titration_banner.text()
    assert dialog.change_reason.isVisible()
    assert dialog.captions["change_reason"].text() == "Reason for the change *"
    qtbot.mouseClick(dialog.next_button, LEFT)
    assert dialog.current_step() == PROGRAM
    assert "Reason for the change is required" in dialog.errors.message("change_reason")
    qtbot.keyClicks(dialog.change_reason, "Clinician review: spasms uncontrolled")
    qtbot.mouseClick(dialog.next_button, LEFT)
    assert dialog.current_step() == CHECK
    assert "must be a clinician" in dialog.clinician_needed.text()
    qtbot.mouseClick(dialog.back_button, LEFT)
    assert dialog.current_step() == PROGRAM
    type_number(qtbot, dialog.dose, "400")
    assert not dialog.titration_banner.isVisible()
    assert not dialog.change_reason.isVisible()


def test_wrong_checker_password_is_shown_at_the_password(qtbot, services, nurse, patient) -> None:
    patient_id, pump_id = patient
    dialog = record_dialog(qtbot, services, nurse, pump_id)
    through_aspiration(qtbot, dialog)
    through_fill(qtbot, dialog)
    type_number(qtbot, dialog.dose, "400")
    qtbot.mouseClick(dialog.next_button, LEFT)
    qtbot.keyClicks(dialog.check_username, "carl")
    qtbot.keyClicks(dialog.check_password, "wrong-pass-1")
    type_number(qtbot, dialog.check_concentration, "2000")
    type_number(qtbot, dialog.check_dose, "400")
    qtbot.mouseClick(dialog.next_button, LEFT)
    assert "wrong password" in dialog.errors.message("check_password")
    assert dialog.check_password.text() == ""
    assert count_refills(services, nurse, patient_id) == 1
    # The recorder cannot be the checker.
    dialog.check_username.setText("nina")
    qtbot.keyClicks(dialog.check_password, PASSWORDS[Role.NURSE])
    qtbot.mouseClick(dialog.next_button, LEFT)
    assert "a second person must check" in dialog.errors.message("double_check")


def test_an_error_of_an_earlier_step_takes_the_nurse_back_there(
    qtbot, services, nurse, clock, patient
) -> None:
    _patient_id, pump_id = patient
    dialog = record_dialog(qtbot, services, nurse, pump_id)
    through_aspiration(qtbot, dialog)
    through_fill(qtbot, dialog)
    type_number(qtbot, dialog.dose, "400")
    qtbot.mouseClick(dialog.next_button, LEFT)
    clock.current = NOW - dt.timedelta(hours=1)  # the refill time is now in the future
    qtbot.keyClicks(dialog.check_username, "carl")
    qtbot.keyClicks(dialog.check_password, PASSWORDS[Role.CLINICIAN])
    type_number(qtbot, dialog.check_concentration, "2000")
    type_number(qtbot, dialog.check_dose, "400")
    qtbot.mouseClick(dialog.next_button, LEFT)
    assert dialog.current_step() == ASPIRATION
    assert "cannot be in the future" in dialog.errors.message("performed_at")


def test_a_correction_is_a_new_entry_pointing_at_the_old_one(
    qtbot, services, nurse, patient, bus
) -> None:
    patient_id, pump_id = patient
    first = record_checked(
        services,
        nurse,
        RefillInput(
            pump_id=pump_id,
            performed_at=NOW,
            aspirated_residual_ml=7.6,
            drug_product_id="baclofen-2000",
            lot_number="LOT-B2",
            volume_added_ml=20,
            dose_mcg_per_day=400,
        ),
        DoubleCheck("carl", PASSWORDS[Role.CLINICIAN], 2000, 400),
    )
    dialog = record_dialog(qtbot, services, nurse, pump_id, corrects=first.refill, bus=bus)
    assert dialog.windowTitle().startswith("Correct refill of 26 Nov 2026 10:00")
    assert dialog.aspirated.number() == pytest.approx(7.6)
    assert dialog.lot.text() == "LOT-B2"
    assert dialog.volume_added.number() == pytest.approx(20)
    assert dialog.dose.number() == pytest.approx(400)
    assert dialog.expected_label.text() == "Expected residual: 8.0 mL"
    qtbot.mouseClick(dialog.next_button, LEFT)  # a correction is not reconciled again
    assert dialog.current_step() == FILL
    type_number(qtbot, dialog.volume_added, "18")
    dialog.notes.setText("Volume added was 18 mL, not 20")
    qtbot.mouseClick(dialog.next_button, LEFT)
    qtbot.mouseClick(dialog.next_button, LEFT)
    assert dialog.current_step() == CHECK
    qtbot.keyClicks(dialog.check_username, "carl")
    qtbot.keyClicks(dialog.check_password, PASSWORDS[Role.CLINICIAN])
    type_number(qtbot, dialog.check_concentration, "2000")
    type_number(qtbot, dialog.check_dose, "400")
    with qtbot.waitSignal(dialog.saved) as saved:
        qtbot.mouseClick(dialog.next_button, LEFT)
    correction = saved.args[0].refill
    assert correction.corrects_refill_id == first.refill.id
    assert correction.volume_added_ml == pytest.approx(18)
    assert dialog.saved_title.text() == "✓ Correction saved"
    history = services.refills.overview(nurse, patient_id).refills
    assert {r.id for r in history} >= {first.refill.id, correction.id}


# --- the card ------------------------------------------------------------------------------


def test_patient_card_html_and_pdf(tmp_path: Path, qapp, services, nurse, patient) -> None:
    _patient_id, pump_id = patient
    card = services.refills.patient_card(nurse, pump_id)
    html = render_patient_card_html(card)
    assert "Ada Okafor" in html and "RIV-000100" in html and "03 Apr 1975" in html
    assert "400 mcg/day" in html and "(= 16.67 mcg/h)" in html
    assert "2000 mcg/mL" in html
    assert "Sat 26 Dec 2026, 10:00" in html  # alarm, London time
    assert "Fri 11 Dec 2026" in html  # refill by
    assert "call the clinic now" in html and "Sweating" in html
    assert "Clinic phone: ____" in html  # no phone on file: a line to write it on
    path = tmp_path / "card.pdf"
    write_patient_card_pdf(card, path)
    assert path.read_bytes().startswith(b"%PDF")


# --- models --------------------------------------------------------------------------------


def test_day_slots_model_passes_the_model_tester(qtmodeltester, services, staff, patient) -> None:
    patient_id, _pump_id = patient
    day = dt.date(2026, 12, 2)
    row = services.booking.book_refill(staff, patient_id, at(day, 9))
    services.booking.cancel(staff, row.id, row.version, "Moved")
    services.booking.book_refill(staff, patient_id, at(day, 9), late_reason="")
    schedule = services.booking.day_schedule(staff, day)
    model = DaySlotsModel()
    model.set_rows(day_rows(schedule, include_inactive=True), LONDON)
    assert model.rowCount() == 21
    qtmodeltester.check(model)
    empty = DaySlotsModel()
    qtmodeltester.check(empty)


def test_slot_list_model_passes_the_model_tester(qtmodeltester, services, staff, patient) -> None:
    patient_id, _pump_id = patient
    day = dt.date(2026, 11, 26)
    services.booking.book_refill(staff, patient_id, at(day, 15))
    model = SlotListModel()
    model.set_slots(services.booking.day_schedule(staff, day).slots, LONDON, NOW)
    qtmodeltester.check(model)


def test_step_and_comparison_models_pass_the_model_tester(qtmodeltester) -> None:
    steps = StepListModel(("Aspiration", "Drug and fill", "Program"))
    steps.set_current(1)
    assert steps.index(0).data() == "✓  1. Aspiration"
    assert steps.index(1).data() == "▶  2. Drug and fill"
    qtmodeltester.check(steps)
    comparison = ProgramComparisonModel()
    rows = len(ProgramComparisonModel.ROWS)
    comparison.set_values(["a"] * rows, ["a"] * (rows - 1) + ["b"])
    assert comparison.changed(rows - 1) and not comparison.changed(0)
    qtmodeltester.check(comparison)


# --- names for tests and assistive technology ---------------------------------------------


def unnamed_controls(root: QWidget) -> list[str]:
    """Interactive widgets without an objectName or an accessible name (Qt's own parts of a
    spin box, combo box, calendar or item view excluded)."""
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractItemView,
        QCalendarWidget,
        QComboBox,
    )

    def inner(widget: QWidget) -> bool:
        parent = widget.parentWidget()
        while parent is not None:
            if isinstance(
                parent, QAbstractSpinBox | QComboBox | QCalendarWidget | QAbstractItemView
            ):
                return True
            parent = parent.parentWidget()
        return False

    kinds = (QAbstractButton, QLineEdit, QAbstractSpinBox, QComboBox, QAbstractItemView)
    return [
        f"{type(w).__name__} {w.objectName()!r}"
        for w in root.findChildren(QWidget)
        if isinstance(w, kinds) and not inner(w) and not (w.objectName() and w.accessibleName())
    ]


def test_every_control_has_an_object_name_and_an_accessible_name(
    qtbot, services, nurse, staff, patient
) -> None:
    patient_id, pump_id = patient
    row = services.booking.book_refill(staff, patient_id, at(dt.date(2026, 12, 2), 9))
    page = RefillsPage(services, nurse, DataBus())
    booking = BookRefillDialog(services, staff, patient_id)
    record = RecordRefillDialog(services, nurse, pump_id, appointment_id=row.id)
    cancel = CancelAppointmentDialog(services, staff, row)
    assert (page.objectName(), booking.objectName(), record.objectName()) == (
        "refillsPage",
        "bookRefillDialog",
        "recordRefillDialog",
    )
    for widget in (page, booking, record, cancel):
        qtbot.addWidget(widget)
        assert unnamed_controls(widget) == [], widget.objectName()


def test_a_slot_taken_at_another_workstation_meanwhile_keeps_the_dialog_and_its_entries(
    qtbot, database_url, reference, clock, services, staff, nurse, clinician, patient
) -> None:
    from pumpclinic.services.clinic import open_clinic
    from tests.conftest import FixedClock, database_label

    patient_id, _pump_id = patient
    other_id, _ = implanted_patient(services, nurse, clinician, mrn="RIV-000200")
    day = dt.date(2026, 12, 14)  # after the refill-due date: a reason is needed
    dialog = BookRefillDialog(services, staff, patient_id)
    show(qtbot, dialog, 820, 700)
    dialog.date_edit.setDate(qdate(day))
    assert dialog.select_slot(at(day, 10))
    qtbot.keyClicks(dialog.late_reason, "Patient travelling until 13 Dec")

    # Meanwhile nina books the same slot at another workstation.
    other = open_clinic(
        database_url,
        reference,
        clock=FixedClock(clock.current + dt.timedelta(minutes=1)),
        database_label=database_label(database_url),
    )
    try:
        nina_there = other.users.authenticate("nina", PASSWORDS[Role.NURSE])
        other.booking.book_refill(nina_there, other_id, at(day, 10), late_reason="Her choice")
    finally:
        other.close()

    qtbot.mouseClick(dialog.book_button, LEFT)
    assert dialog.isVisible()
    assert dialog.errors.message("starts_at") == (
        "That slot was just taken by another workstation: 10:00 on Mon 14 Dec 2026 is now"
        " booked for OKAFOR, Ada (by nina at 10:01). Choose another slot."
    )
    assert "Not booked." in dialog.error_banner.text()
    assert dialog.late_reason.text() == "Patient travelling until 13 Dec"
    # The day was read again: the slot shows as taken, nothing was booked for the patient.
    assert not dialog.select_slot(at(day, 10))
    assert services.booking.appointments_for_patient(staff, patient_id) == []

    assert dialog.select_slot(at(day, 10, 30))
    with qtbot.waitSignal(dialog.booked) as booked:
        qtbot.mouseClick(dialog.book_button, LEFT)
    assert booked.args[0].starts_at == at(day, 10, 30)
    assert booked.args[0].late_reason == "Patient travelling until 13 Dec"
