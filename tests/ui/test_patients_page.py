"""The Patients page driven as a nurse would: add, search, sort, edit, see errors."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import QDate, Qt

from pumpclinic.domain.enums import SpasticityOrigin
from pumpclinic.domain.patients import PatientInput
from pumpclinic.services.patients import PatientRow
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


# --- the search over the list: what it matches, and the order it keeps ---------------------


def patient_row(
    row_id: int,
    mrn: str,
    family: str,
    given: str,
    born: dt.date,
    diagnosis: str,
    pump_status: str = "No pump",
) -> PatientRow:
    return PatientRow(
        id=row_id,
        mrn=mrn,
        family_name=family,
        given_name=given,
        date_of_birth=born,
        age_years=dt.date(2026, 11, 26).year - born.year,
        spasticity_origin=SpasticityOrigin.SPINAL,
        diagnosis=diagnosis,
        pump_status=pump_status,
        risk_flags=(),
    )


REGISTRY = [
    patient_row(1, "RIV-0101", "Baker", "Sam", dt.date(1970, 5, 5), "Multiple sclerosis"),
    patient_row(2, "RIV-0102", "Abbott", "Lee", dt.date(2001, 5, 5), "Cerebral palsy"),
    patient_row(3, "RIV-0103", "Carter", "Lee", dt.date(1950, 5, 5), "Stroke", "Prometra II 20 mL"),
    patient_row(4, "GLA-7", "Bakewell", "Ann", dt.date(1988, 2, 14), "Transverse myelitis"),
    patient_row(5, "RIV-0105", "Lindqvist", "Maja", dt.date(1962, 9, 1), "Spinal cord injury T4"),
    patient_row(6, "RIV-106", "baker", "Lee", dt.date(1999, 1, 1), "Stroke", "SynchroMed II 40 mL"),
]


def shown_ids(proxy: TextFilterProxy) -> list[int]:
    model = proxy.sourceModel()
    rows = (proxy.mapToSource(proxy.index(r, 0)).row() for r in range(proxy.rowCount()))
    return [model.row_at(row).id for row in rows]


def expected_ids(text: str, column: int, descending: bool = False) -> list[int]:
    """The rows a user expects for ``text``, worked out afresh from the registry."""
    words = text.casefold().split()

    def searched(p: PatientRow) -> str:
        return f"{p.mrn} {p.family_name} {p.given_name} {p.diagnosis} {p.pump_status}".casefold()

    keys = {
        0: lambda p: p.mrn.casefold(),
        1: lambda p: (p.family_name.casefold(), p.given_name.casefold()),
        2: lambda p: p.date_of_birth,
    }[column]
    ordered = sorted(REGISTRY, key=keys, reverse=descending)
    return [p.id for p in ordered if all(w in searched(p) for w in words)]


@pytest.fixture
def registry(qtmodeltester):
    model = PatientTableModel()
    proxy = TextFilterProxy()
    proxy.setSourceModel(model)
    proxy.sort(1, Qt.SortOrder.AscendingOrder)
    model.set_rows(REGISTRY)
    qtmodeltester.check(proxy)  # and it keeps watching every change below
    return proxy


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("riv-0105", [5]),  # MRN
        ("riv-1", [6]),
        ("gla", [4]),
        ("lindqvist", [5]),  # family name
        ("maja", [5]),  # given name
        ("myelitis", [4]),  # diagnosis
        ("prometra", [3]),  # pump / status
        ("synchromed ii", [6]),
        ("no pump", [1, 2, 4, 5]),
        ("LEE STROKE", [3, 6]),  # every word, any case, any order
        ("stroke lee", [3, 6]),
        ("1970", []),  # the date of birth is not searched
    ],
)
def test_the_search_matches_each_searched_field(registry, text: str, ids: list[int]) -> None:
    registry.set_search_text(text)
    assert sorted(shown_ids(registry)) == sorted(ids)
    assert shown_ids(registry) == expected_ids(text, 1)


def test_typing_deleting_and_replacing_the_search_keeps_the_sort_order(registry) -> None:
    edits = ["b", "ba", "bak", "bake", "baker", "baker ", "baker l", "baker le", "baker lee"]
    edits += [*reversed(edits[:-1]), "", "lee", "le", "l", "sam", "a", "ab", "b", ""]
    for text in edits:
        registry.set_search_text(text)
        assert shown_ids(registry) == expected_ids(text, 1), text
    registry.sort(2, Qt.SortOrder.DescendingOrder)
    for text in ["s", "st", "str", "st", "s", "", "lee", ""]:
        registry.set_search_text(text)
        assert shown_ids(registry) == expected_ids(text, 2, descending=True), text
    registry.sort(0, Qt.SortOrder.AscendingOrder)
    registry.set_search_text("riv")
    assert shown_ids(registry) == expected_ids("riv", 0)


def test_a_reload_keeps_the_search_and_the_order(registry) -> None:
    registry.set_search_text("lee")
    model = registry.sourceModel()
    newcomer = patient_row(7, "RIV-0107", "Aaronson", "Leeroy", dt.date(1980, 1, 1), "Stroke")
    REGISTRY.append(newcomer)
    try:
        model.set_rows(REGISTRY)
        assert shown_ids(registry) == expected_ids("lee", 1)
        assert shown_ids(registry)[0] == 7
    finally:
        REGISTRY.remove(newcomer)


def test_search_keystrokes_keep_the_selection_while_its_row_is_shown(
    qtbot, page, services, nurse
) -> None:
    for mrn, family, given in [
        ("RIV-1", "Abbott", "Lee"),
        ("RIV-2", "Baker", "Sam"),
        ("RIV-3", "Carter", "Lee"),
        ("RIV-4", "Bakewell", "Ann"),
    ]:
        seed(services, nurse, mrn, family, given, "Stroke", dt.date(1970, 5, 5))
    page.refresh()
    assert page.proxy.index(3, 1).data() == "CARTER, Lee"  # in name order
    page.table.selectRow(3)
    carter = page.selected_patient_id()
    assert carter is not None
    qtbot.keyClicks(page.search, "le")
    assert page.count_label.text() == "2 of 4 patients"
    assert page.selected_patient_id() == carter
    assert page.open_button.isEnabled()
    qtbot.keyClick(page.search, Qt.Key.Key_Backspace)
    qtbot.keyClick(page.search, Qt.Key.Key_Backspace)
    assert page.count_label.text() == "4 patients"
    assert page.selected_patient_id() == carter
    qtbot.keyClicks(page.search, "bak")
    assert [page.proxy.index(r, 1).data() for r in range(page.proxy.rowCount())] == [
        "BAKER, Sam",
        "BAKEWELL, Ann",
    ]
    assert page.selected_patient_id() is None  # Carter is no longer on the list
    assert not page.open_button.isEnabled() and not page.edit_button.isEnabled()
    page.search.clear()
    assert page.proxy.rowCount() == 4
    assert [page.proxy.index(r, 1).data() for r in range(4)] == [
        "ABBOTT, Lee",
        "BAKER, Sam",
        "BAKEWELL, Ann",
        "CARTER, Lee",
    ]
