"""The Patients page driven as a nurse would: add, search, sort, edit, see errors."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import QDate, Qt

from pumpclinic.domain.patients import PatientInput
from pumpclinic.ui.bus import DataBus
from pumpclinic.ui.models import CheckListModel, TextFilterProxy
from pumpclinic.ui.patients import PatientDialog, PatientsPage, PatientTableModel


def seed(services, actor, mrn: str, family: str, given: str, diagnosis: str, born: dt.date):
    return services.patients.create_patient(
        actor,
        PatientInput(
            mrn=mrn,
            family_name=family,
            given_name=given,
            date_of_birth=born,
            spasticity_origin="cerebral",
            diagnosis=diagnosis,
        ),
    )


@pytest.fixture
def page(qtbot, services, nurse):
    widget = PatientsPage(services, nurse, DataBus())
    qtbot.addWidget(widget)
    widget.resize(1200, 700)
    widget.show()
    return widget


def fill_required(qtbot, dialog: PatientDialog, mrn: str = "RIV-000042") -> None:
    qtbot.keyClicks(dialog.mrn, mrn)
    qtbot.keyClicks(dialog.family_name, "Lindqvist")
    qtbot.keyClicks(dialog.given_name, "Maja")
    dialog.date_of_birth.setDate(QDate(1988, 2, 14))
    dialog.origin.setCurrentIndex(dialog.origin.findData("spinal"))
    qtbot.keyClicks(dialog.diagnosis, "Traumatic spinal cord injury T4")


def test_nurse_adds_a_patient_through_the_form(qtbot, page, services, nurse) -> None:
    assert page.count_label.text() == "0 patients"
    qtbot.mouseClick(page.new_button, Qt.MouseButton.LeftButton)
    dialog = page.findChild(PatientDialog)
    assert dialog is not None and dialog.isVisible()
    fill_required(qtbot, dialog)
    dialog.sci.setChecked(True)
    dialog.conditions_model.set_checked("epilepsy", True)
    with qtbot.waitSignal(dialog.saved):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    assert page.count_label.text() == "1 patient"
    assert page.model.data(page.model.index(0, 1)) == "LINDQVIST, Maja"
    assert page.model.data(page.model.index(0, 6)) == "SCI ≥ T6"
    stored = services.patients.list_patients(nurse)[0]
    assert stored.mrn == "RIV-000042"
    record = services.patients.get_patient(nurse, stored.id)
    assert record.data.condition_codes == {"epilepsy"}
    assert record.data.sci_at_or_above_t6


def test_validation_messages_appear_under_their_fields(qtbot, page, services, nurse) -> None:
    seed(services, nurse, "RIV-000042", "Existing", "Person", "Stroke", dt.date(1960, 1, 1))
    page.refresh()
    dialog = page.new_patient()
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible()
    assert dialog.errors.message("mrn") == "MRN is required."
    assert dialog.errors.message("date_of_birth") == "Date of birth is required."
    assert dialog.errors.message("spasticity_origin") == "Spasticity origin is required."
    assert dialog.mrn.property("invalid") is True
    assert "correct the fields marked in red" in dialog.error_banner.text()

    fill_required(qtbot, dialog)  # same MRN as the existing patient
    future = dt.date.today() + dt.timedelta(days=3)
    dialog.date_of_birth.setDate(QDate(future.year, future.month, future.day))
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert "already used" in dialog.errors.message("mrn")
    assert "cannot be in the future" in dialog.errors.message("date_of_birth")
    assert dialog.errors.message("diagnosis") == ""
    assert len(services.patients.list_patients(nurse)) == 1


def test_warnings_for_interacting_medicine_and_under_4(qtbot, page, clock) -> None:
    dialog = page.new_patient()
    assert not dialog.warning_banner.isVisible()
    dialog.medicines_model.set_checked("tramadol", True)
    assert dialog.warning_banner.isVisible()
    assert "Tramadol" in dialog.warning_banner.text()
    today = clock().date()
    dialog.date_of_birth.setDate(QDate(today.year - 3, today.month, today.day))
    assert "not established under 4 years" in dialog.warning_banner.text()
    dialog.medicines_model.set_checked("tramadol", False)
    dialog.date_of_birth.setDate(QDate(today.year - 30, 1, 1))
    assert not dialog.warning_banner.isVisible()


def test_search_filters_on_each_keystroke(qtbot, page, services, nurse) -> None:
    seed(services, nurse, "RIV-1", "Abbott", "Lee", "Cerebral palsy", dt.date(2001, 5, 5))
    seed(services, nurse, "RIV-2", "Baker", "Sam", "Multiple sclerosis", dt.date(1970, 5, 5))
    seed(services, nurse, "RIV-3", "Carter", "Lee", "Stroke", dt.date(1950, 5, 5))
    page.refresh()
    qtbot.keyClicks(page.search, "lee")
    assert page.proxy.rowCount() == 2
    assert page.count_label.text() == "2 of 3 patients"
    qtbot.keyClicks(page.search, " carter")
    assert page.proxy.rowCount() == 1
    page.search.clear()
    qtbot.keyClicks(page.search, "sclerosis")
    assert page.proxy.rowCount() == 1
    page.search.clear()
    qtbot.keyClicks(page.search, "riv-3")
    assert page.proxy.data(page.proxy.index(0, 1)) == "CARTER, Lee"


def test_sorting_by_date_of_birth(qtbot, page, services, nurse) -> None:
    seed(services, nurse, "RIV-1", "Abbott", "Lee", "CP", dt.date(2001, 5, 5))
    seed(services, nurse, "RIV-2", "Baker", "Sam", "MS", dt.date(1950, 5, 5))
    page.refresh()
    page.table.sortByColumn(2, Qt.SortOrder.AscendingOrder)
    assert page.proxy.data(page.proxy.index(0, 0)) == "RIV-2"
    page.table.sortByColumn(2, Qt.SortOrder.DescendingOrder)
    assert page.proxy.data(page.proxy.index(0, 0)) == "RIV-1"


def test_nurse_edits_a_patient(qtbot, page, services, nurse) -> None:
    seed(services, nurse, "RIV-1", "Abbott", "Lee", "Cerebral palsy", dt.date(2001, 5, 5))
    page.refresh()
    assert not page.edit_button.isEnabled()
    page.table.selectRow(0)
    assert page.edit_button.isEnabled()
    dialog = page.edit_selected()
    assert dialog is not None
    assert dialog.mrn.text() == "RIV-1"
    dialog.diagnosis.clear()
    qtbot.keyClicks(dialog.diagnosis, "Cerebral palsy (spastic quadriplegia)")
    with qtbot.waitSignal(dialog.saved):
        dialog.save_button.click()
    assert page.model.data(page.model.index(0, 4)) == "Cerebral palsy (spastic quadriplegia)"


def test_staff_open_records_read_only(qtbot, services, nurse, staff) -> None:
    seed(services, nurse, "RIV-1", "Abbott", "Lee", "Cerebral palsy", dt.date(2001, 5, 5))
    page = PatientsPage(services, staff, DataBus())
    qtbot.addWidget(page)
    assert not page.new_button.isVisible()
    page.table.selectRow(0)
    dialog = page.edit_selected()
    assert dialog is not None and dialog.read_only
    assert not dialog.save_button.isVisible()


def test_admin_sees_no_patient_records(qtbot, services, admin) -> None:
    page = PatientsPage(services, admin, DataBus())
    qtbot.addWidget(page)
    assert not page.can_view
    assert page.model.rowCount() == 0


def test_models_pass_the_model_tester(qtmodeltester, services, nurse) -> None:
    seed(services, nurse, "RIV-1", "Abbott", "Lee", "Cerebral palsy", dt.date(2001, 5, 5))
    model = PatientTableModel()
    model.set_rows(services.patients.list_patients(nurse))
    qtmodeltester.check(model)
    proxy = TextFilterProxy()
    proxy.setSourceModel(model)
    proxy.set_search_text("abbott")
    qtmodeltester.check(proxy)
    checks = CheckListModel([("a", "Alpha"), ("b", "Beta")])
    checks.set_checked("b", True)
    qtmodeltester.check(checks)
    assert checks.checked_codes() == {"b"}


def test_enter_opens_the_patient_page_and_back_returns(qtbot, page, services, nurse) -> None:
    seed(services, nurse, "RIV-1", "Abbott", "Lee", "Cerebral palsy", dt.date(2001, 5, 5))
    page.refresh()
    page.table.selectRow(0)
    page.table.setFocus()
    qtbot.keyClick(page.table, Qt.Key.Key_Return)
    assert page.stack.currentWidget() is page.patient_page
    assert page.patient_page.patient_id == page.model.row_at(0).id
    page.patient_page.back_requested.emit()
    assert page.stack.currentWidget() is page.list_view


@pytest.mark.parametrize(
    ("dose", "text"),
    [(400, "16.67 mcg/h"), (75, "3.13 mcg/h"), (60, "2.50 mcg/h"), (0, "0.00 mcg/h")],
)
def test_the_hourly_rate_is_written_one_way_everywhere(dose: float, text: str) -> None:
    from pumpclinic.ui.widgets import per_hour_text

    assert per_hour_text(dose) == text
