"""The patient page as a nurse reads it: pump card, forecast, chart, history, implant."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import QDate, Qt
from PySide6.QtGui import QColor

from pumpclinic.domain.enums import Role
from pumpclinic.domain.patients import PatientInput
from pumpclinic.services.refills import DoubleCheck, RefillInput
from pumpclinic.ui.bus import DataBus
from pumpclinic.ui.patient_page import (
    AppointmentsModel,
    ImplantDialog,
    PatientPage,
    RefillHistoryModel,
)
from pumpclinic.ui.reservoir_chart import LINE, ReservoirChart
from tests.conftest import NOW, PASSWORDS
from tests.services.refill_fixtures import implanted_patient, record_checked


@pytest.fixture
def implanted(services, nurse, clinician) -> tuple[int, int]:
    return implanted_patient(services, nurse, clinician)


def open_page(qtbot, services, actor, patient_id: int, bus: DataBus | None = None) -> PatientPage:
    page = PatientPage(services, actor, bus or DataBus())
    qtbot.addWidget(page)
    page.resize(1280, 800)
    page.show()
    page.show_patient(patient_id)
    return page


def record_refill(services, nurse, pump_id: int, aspirated_ml: float) -> None:
    record_checked(
        services,
        nurse,
        RefillInput(
            pump_id=pump_id,
            performed_at=NOW,
            aspirated_residual_ml=aspirated_ml,
            drug_product_id="baclofen-2000",
            lot_number="LOT-B2",
            volume_added_ml=20.0,
            dose_mcg_per_day=400.0,
        ),
        DoubleCheck("carl", PASSWORDS[Role.CLINICIAN], 2000, 400),
    )


def new_patient(services, nurse, mrn: str = "RIV-000200") -> int:
    return services.patients.create_patient(
        nurse,
        PatientInput(
            mrn=mrn,
            family_name="Lindqvist",
            given_name="Maja",
            date_of_birth=dt.date(1988, 2, 14),
            spasticity_origin="cerebral",
            diagnosis="Cerebral palsy",
        ),
    ).id


def test_pump_card_shows_the_pump_and_the_program_in_both_units(
    qtbot, services, nurse, implanted
) -> None:
    patient_id, _pump_id = implanted
    page = open_page(qtbot, services, nurse, patient_id)
    assert page.objectName() == "patientPage"
    assert page.name_label.text() == "OKAFOR, Ada"
    assert "MRN RIV-000100" in page.meta_label.text()
    assert "51 years (born 3 Apr 1975)" in page.meta_label.text()
    values = {key: label.text() for key, label in page.card_values.items()}
    assert values["model"] == "SynchroMed II 20 mL (Medtronic)"
    assert values["serial"] == "NGP10001"
    assert values["reservoir"] == "20 mL"
    assert values["alarm"] == "2 mL"
    assert values["drug"] == "Baclofen intrathecal 2000 mcg/mL"
    assert values["concentration"] == "2000 mcg/mL"
    assert values["program"] == "400 mcg/day  (16.67 mcg/h)"
    assert values["daily_volume"] == "0.200 mL/day"
    assert values["flex"] == "None (simple continuous)"
    assert values["last_fill"] == "Sun 27 Sep 2026 11:00 — 20 mL"
    assert page.pump_box.isVisible() and not page.no_pump_banner.isVisible()


def test_forecast_strip_shows_the_refill_due_date(qtbot, services, nurse, implanted) -> None:
    patient_id, _pump_id = implanted
    page = open_page(qtbot, services, nurse, patient_id)
    # Stability (77 days) ends Sun 13 Dec: the latest open day before it is Fri 11 Dec.
    assert page.due_value.text() == "Fri 11 Dec 2026"
    assert page.state.state == "ok"
    assert page.due_status.text() == "In 15 days."
    assert page.forecast_strip.property("state") == "ok"
    assert page.forecast_values["volume"].text() == "8.0 of 20 mL\n0.200 mL/day"
    assert page.forecast_values["alarm"].text() == "Sat 26 Dec\n10:00"
    assert page.forecast_values["empty"].text() == "Tue 5 Jan 2027\n10:00"
    assert page.forecast_values["stability"].text() == "Sun 13 Dec\n10:00"
    assert page.forecast_values["next_visit"].text() == "None booked"


def test_overdue_and_past_alarm_are_spelled_out(qtbot, services, nurse, implanted, clock) -> None:
    patient_id, _pump_id = implanted
    clock.advance(days=18)  # Mon 14 Dec: past the refill-due date
    page = open_page(qtbot, services, nurse, patient_id)
    assert page.state.state == "overdue"
    assert page.due_status.text().startswith("OVERDUE since Fri 11 Dec 2026")
    assert "3 days late" in page.due_status.text()
    assert page.forecast_strip.property("state") == "overdue"
    clock.advance(days=13)  # Sun 27 Dec: the pump alarmed the day before
    page.reload()
    assert page.state.state == "alarm"
    assert page.due_status.text().startswith("PAST ALARM since Sat 26 Dec 2026 10:00")
    clock.advance(days=10)  # Wed 6 Jan: empty since Tue 5 Jan
    page.reload()
    assert page.state.state == "empty"
    assert "EMPTY since Tue 5 Jan 2027 10:00" in page.due_status.text()
    assert "withdrawal" in page.due_status.text().lower()


def test_chart_receives_the_series_and_paints_it(qtbot, services, nurse, implanted) -> None:
    patient_id, _pump_id = implanted
    page = open_page(qtbot, services, nurse, patient_id)
    overview = services.refills.overview(nurse, patient_id)
    assert overview.reservoir is not None
    chart = page.chart
    assert chart.series == overview.reservoir.series
    assert chart.series[0][1] == pytest.approx(20.0)
    assert chart.series[-1][1] == pytest.approx(0.0)
    assert chart.reservoir_ml == 20 and chart.alarm_ml == 2
    assert chart.title_text() == "Now 8.0 mL · alarm Sat 26 Dec · empty Tue 5 Jan"
    description = chart.accessibleDescription()
    assert "Now 8.0 mL of 20 mL" in description
    assert "Refill due by Fri 11 Dec 2026" in description
    assert chart.width() >= 520 and chart.height() >= 240
    image = chart.grab().toImage()
    line = QColor(LINE).rgb()
    line_pixels = sum(
        1
        for x in range(0, image.width(), 2)
        for y in range(0, image.height(), 2)
        if image.pixel(x, y) == line
    )
    assert line_pixels > 50  # the volume line is drawn


def test_chart_without_a_fill_says_so(qtbot) -> None:
    chart = ReservoirChart()
    qtbot.addWidget(chart)
    chart.set_data(None, 20.0, 2.0, dt.UTC)
    assert chart.title_text() == "No fill recorded"
    assert chart.series == ()
    assert "no fill recorded" in chart.accessibleDescription()
    chart.resize(600, 260)
    assert not chart.grab().toImage().isNull()


def test_history_shows_a_recorded_refill_with_its_flag(qtbot, services, nurse, implanted) -> None:
    patient_id, pump_id = implanted
    bus = DataBus()
    page = open_page(qtbot, services, nurse, patient_id, bus)
    model = page.history_model
    assert model.rowCount() == 1  # the implant fill
    record_refill(services, nurse, pump_id, aspirated_ml=5.5)
    bus.notify("refill")
    assert model.rowCount() == 2
    cell = {
        name: model.data(model.index(0, column))
        for column, name in enumerate(RefillHistoryModel.COLUMNS)
    }
    assert cell["Date"] == "26 Nov 2026 10:00"
    assert cell["By"] == "nina" and cell["Checked\nby"] == "carl"
    assert cell["Expected\nmL"] == "8.0"
    assert cell["Aspirated\nmL"] == "5.5"
    assert cell["Gap\nmL"] == "⚠ −2.5"
    assert model.data(model.index(0, RefillHistoryModel.GAP), Qt.ItemDataRole.ForegroundRole)
    assert cell["After\nmL"] == "20.0"
    assert cell["Lot"] == "LOT-B2"
    assert model.data(model.index(1, 10)) == "Implant fill"
    assert model.data(model.index(1, RefillHistoryModel.GAP)) == "—"
    assert "mean gap −2.5 mL" in page.trend_label.text()
    # The forecast moved with the new fill.
    assert page.forecast_values["volume"].text().startswith("20.0 of 20 mL")
    assert page.card_values["last_fill"].text() == "Thu 26 Nov 2026 10:00 — 20 mL"


def test_correct_button_follows_the_selection(qtbot, services, nurse, implanted) -> None:
    patient_id, _pump_id = implanted
    page = open_page(qtbot, services, nurse, patient_id)
    assert page.correct_button.isVisible()
    assert not page.correct_button.isEnabled()
    page.history_table.selectRow(0)
    assert page.selected_refill() is not None
    assert page.correct_button.isEnabled()


def test_staff_see_the_page_without_clinical_actions(qtbot, services, staff, implanted) -> None:
    patient_id, _pump_id = implanted
    page = open_page(qtbot, services, staff, patient_id)
    assert page.due_value.text() == "Fri 11 Dec 2026"
    assert page.book_button.isVisible()
    assert page.card_button.isVisible()
    assert not page.record_button.isVisible()
    assert not page.correct_button.isVisible()
    assert not page.implant_button.isVisible()
    assert page.edit_button.text() == "&Details…"
    assert page.record_refill() is None


def test_nurse_sees_appointments_and_the_next_visit(qtbot, services, nurse, implanted) -> None:
    patient_id, _pump_id = implanted
    services.booking.book_refill(nurse, patient_id, dt.datetime(2026, 12, 10, 9, 30, tzinfo=dt.UTC))
    page = open_page(qtbot, services, nurse, patient_id)
    model = page.appointments_model
    assert model.rowCount() == 1
    assert model.data(model.index(0, 0)) == "Thu 10 Dec 2026 09:30"
    assert model.data(model.index(0, 2)) == "Upcoming · Booked"
    assert page.forecast_values["next_visit"].text() == "Thu 10 Dec\n09:30"


def test_patient_without_pump_offers_the_implant(qtbot, services, nurse) -> None:
    patient_id = new_patient(services, nurse)
    page = open_page(qtbot, services, nurse, patient_id)
    assert page.no_pump_banner.isVisible()
    assert "No implanted pump recorded" in page.no_pump_banner.text()
    assert not page.forecast_strip.isVisible()
    assert not page.pump_box.isVisible()
    assert page.implant_button.isVisible()
    assert not page.record_button.isVisible()
    assert not page.book_button.isVisible()


def fill_implant(dialog: ImplantDialog) -> None:
    dialog.pump_model.setCurrentIndex(dialog.pump_model.findData("synchromed-ii-20"))
    dialog.serial.setText("NGP777")
    dialog.implanted_on.setDate(QDate(2026, 11, 20))
    dialog.drug.setCurrentIndex(dialog.drug.findData("baclofen-2000"))
    dialog.lot.setText("LOT-I1")
    dialog.volume.setValue(20.0)
    dialog.dose.setValue(400.0)


def sign_check(qtbot, dialog: ImplantDialog, concentration: str, dose: str) -> None:
    qtbot.keyClicks(dialog.check_username, "carl")
    qtbot.keyClicks(dialog.check_password, PASSWORDS[Role.CLINICIAN])
    qtbot.keyClicks(dialog.check_concentration, concentration)
    qtbot.keyClicks(dialog.check_dose, dose)


def test_implant_through_the_dialog_with_a_double_check(qtbot, services, nurse, clinician) -> None:
    patient_id = new_patient(services, nurse)
    page = open_page(qtbot, services, nurse, patient_id)
    dialog = page.record_implant()
    assert dialog is not None and dialog.objectName() == "implantDialog"
    fill_implant(dialog)
    assert dialog.filled_at.date() == QDate(2026, 11, 20)  # the fill follows the implant day
    assert dialog.volume.maximum() == 20.0  # never above the reservoir
    assert dialog.dose_hint.text().startswith("= 16.67 mcg/h")
    assert not dialog.save_button.isVisible()
    qtbot.mouseClick(dialog.begin_check_button, Qt.MouseButton.LeftButton)
    assert dialog.entries_hidden and dialog.save_button.isVisible()
    # The checker's fields start empty: nothing is copied from the first entry.
    assert dialog.check_concentration.text() == "" and dialog.check_dose.text() == ""
    sign_check(qtbot, dialog, "2000", "400")
    with qtbot.waitSignal(dialog.implanted):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    assert page.card_values["program"].text() == "400 mcg/day  (16.67 mcg/h)"
    assert page.card_values["serial"].text() == "NGP777"
    assert page.record_button.isVisible() and not page.implant_button.isVisible()
    overview = services.refills.overview(nurse, patient_id)
    assert overview.card is not None
    assert overview.card.last_fill_at == dt.datetime(
        2026, 11, 20, NOW.hour, NOW.minute, tzinfo=overview.zone
    )


def test_implant_double_check_mismatch_blocks(qtbot, services, nurse, clinician) -> None:
    patient_id = new_patient(services, nurse)
    dialog = ImplantDialog(services, nurse, patient_id)
    qtbot.addWidget(dialog)
    dialog.show()
    fill_implant(dialog)
    dialog.begin_double_check()
    sign_check(qtbot, dialog, "2000", "40")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible()
    assert "does not match" in dialog.errors.message("check_dose")
    assert dialog.errors.message("check_concentration") == ""
    assert dialog.check_dose.property("invalid") is True
    assert not dialog.entries_hidden  # both people compare the entries again
    assert services.refills.active_pump_id(nurse, patient_id) is None


def test_implant_field_errors_appear_under_their_fields(qtbot, services, nurse, clinician) -> None:
    patient_id = new_patient(services, nurse)
    dialog = ImplantDialog(services, nurse, patient_id)
    qtbot.addWidget(dialog)
    dialog.show()
    fill_implant(dialog)
    dialog.lot.clear()
    dialog.serial.clear()
    dialog.begin_double_check()
    sign_check(qtbot, dialog, "2000", "400")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.errors.message("lot_number") == "Lot number is required."
    assert "Serial number is required" in dialog.errors.message("serial_number")
    assert not dialog.entries_hidden
    assert services.refills.active_pump_id(nurse, patient_id) is None


def test_the_recorder_cannot_be_the_checker(qtbot, services, nurse) -> None:
    patient_id = new_patient(services, nurse)
    dialog = ImplantDialog(services, nurse, patient_id)
    qtbot.addWidget(dialog)
    dialog.show()
    fill_implant(dialog)
    dialog.begin_double_check()
    qtbot.keyClicks(dialog.check_username, "nina")
    qtbot.keyClicks(dialog.check_password, PASSWORDS[Role.NURSE])
    qtbot.keyClicks(dialog.check_concentration, "2000")
    qtbot.keyClicks(dialog.check_dose, "400")
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert "second person" in dialog.errors.message("double_check")
    assert services.refills.active_pump_id(nurse, patient_id) is None


def test_back_button_asks_to_go_back(qtbot, services, nurse, implanted) -> None:
    page = open_page(qtbot, services, nurse, implanted[0])
    with qtbot.waitSignal(page.back_requested):
        qtbot.mouseClick(page.back_button, Qt.MouseButton.LeftButton)


def test_edit_details_opens_the_patient_form(qtbot, services, nurse, implanted) -> None:
    page = open_page(qtbot, services, nurse, implanted[0])
    dialog = page.edit_details()
    assert dialog is not None and dialog.objectName() == "patientDialog"
    assert dialog.isVisible()
    dialog.reject()


def test_patient_card_pdf_is_written(qtbot, services, nurse, implanted, tmp_path) -> None:
    pytest.importorskip("pumpclinic.ui.patient_card")
    page = open_page(qtbot, services, nurse, implanted[0])
    target = tmp_path / "card.pdf"
    assert page.save_patient_card(target) == target
    assert target.read_bytes().startswith(b"%PDF")
    assert "Patient card saved" in page.message_banner.text()


def test_models_pass_the_model_tester(qtmodeltester, services, nurse, implanted) -> None:
    patient_id, pump_id = implanted
    record_refill(services, nurse, pump_id, aspirated_ml=7.6)
    services.booking.book_refill(nurse, patient_id, dt.datetime(2026, 12, 10, 9, 30, tzinfo=dt.UTC))
    overview = services.refills.overview(nurse, patient_id)
    history = RefillHistoryModel()
    history.set_rows(overview.refills, overview.zone)
    assert history.rowCount() == 2
    qtmodeltester.check(history)
    appointments = AppointmentsModel()
    appointments.set_rows(
        services.booking.appointments_for_patient(nurse, patient_id), overview.zone, NOW
    )
    assert appointments.rowCount() == 1
    qtmodeltester.check(appointments)
    qtmodeltester.check(RefillHistoryModel())
    qtmodeltester.check(AppointmentsModel())


def test_action_buttons_open_the_refill_dialogs(qtbot, services, nurse, implanted) -> None:
    refill_record = pytest.importorskip("pumpclinic.ui.refill_record")
    booking = pytest.importorskip("pumpclinic.ui.booking")
    page = open_page(qtbot, services, nurse, implanted[0])
    qtbot.mouseClick(page.record_button, Qt.MouseButton.LeftButton)
    record = page.findChild(refill_record.RecordRefillDialog)
    assert record is not None and record.isVisible()
    record.reject()
    page.history_table.selectRow(0)
    correction = page.correct_selected()
    assert isinstance(correction, refill_record.RecordRefillDialog)
    correction.reject()
    booked = page.book_refill()
    assert isinstance(booked, booking.BookRefillDialog) and booked.isVisible()
    booked.reject()
