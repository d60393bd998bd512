"""The Catalogs tab of the Administration page, driven through real widgets."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from pumpclinic.domain.enums import Role
from pumpclinic.services.catalogs import DrugProductEdit
from pumpclinic.ui.admin import (
    CATALOG_NOTE,
    ROW_ROLE,
    AdminPage,
    DrugProductsTableModel,
    PumpModelsTableModel,
)
from pumpclinic.ui.bus import DataBus
from tests.conftest import PASSWORDS

LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def page(qtbot, services, admin) -> AdminPage:
    widget = AdminPage(services, admin, DataBus())
    qtbot.addWidget(widget)
    widget.resize(1280, 800)
    widget.show()
    qtbot.waitExposed(widget)
    widget.show_tab("catalogs")
    return widget


def _click_row(qtbot, table, row_id: str) -> None:
    model = table.model()
    for row in range(model.rowCount()):
        index = model.index(row, 0)
        if index.data(ROW_ROLE).id == row_id:
            qtbot.mouseClick(table.viewport(), LEFT, pos=table.visualRect(index).center())
            return
    raise AssertionError(f"{row_id} is not in the table")


def test_admin_edits_the_stability_days_through_the_tab(qtbot, page, services, admin) -> None:
    tab = page.catalogs_tab
    assert tab is not None and page.tabs is not None
    assert page.tabs.currentWidget() is tab
    assert tab.note.isVisible() and tab.note.text() == CATALOG_NOTE
    editor = tab.drugs
    assert not editor.save_button.isEnabled()  # nothing selected yet

    _click_row(qtbot, editor.table, "baclofen-2000")
    assert editor.selected_id() == "baclofen-2000"
    assert "2000 mcg/mL" in editor.heading.text()
    editor.stability_spin.selectAll()
    qtbot.keyClicks(editor.stability_spin, "45")
    qtbot.mouseClick(editor.save_button, LEFT)

    saved = {d.id: d for d in services.catalogs.drug_products(admin)}["baclofen-2000"]
    assert saved.stability_days == 45
    assert editor.selected_id() == "baclofen-2000"
    assert editor.status_label.text().startswith("✓ Saved")
    row = next(
        r
        for r in range(editor.model.rowCount())
        if editor.model.index(r, 0).data(ROW_ROLE) == saved
    )
    assert editor.model.index(row, DrugProductsTableModel.STABILITY).data() == "45 days"


def test_a_bad_pump_value_shows_under_its_field(qtbot, page, services, admin) -> None:
    editor = page.catalogs_tab.pumps
    _click_row(qtbot, editor.table, "synchromed-ii-20")
    before = {m.id: m for m in services.catalogs.pump_models(admin)}["synchromed-ii-20"]
    editor.alarm_spin.setValue(25.0)
    qtbot.mouseClick(editor.save_button, LEFT)
    message = editor.errors.message("low_reservoir_alarm_ml")
    assert "below the 20 mL reservoir" in message
    assert editor.alarm_spin.property("invalid") is True
    assert {m.id: m for m in services.catalogs.pump_models(admin)}["synchromed-ii-20"] == before

    # Choosing another row clears the old errors.
    _click_row(qtbot, editor.table, "synchromed-ii-40")
    assert editor.errors.message("low_reservoir_alarm_ml") == ""


def test_inactive_rows_are_greyed(qtbot, page, services, admin) -> None:
    services.catalogs.update_drug_product(admin, "baclofen-500", 1, DrugProductEdit(30, False))
    page.catalogs_tab.reload()
    model = page.catalogs_tab.drugs.model
    colours = {
        model.index(r, 0).data(ROW_ROLE).id: model.index(r, 0).data(Qt.ItemDataRole.ForegroundRole)
        for r in range(model.rowCount())
    }
    assert colours["baclofen-500"] is not None and colours["baclofen-2000"] is None
    status = DrugProductsTableModel.STATUS
    texts = {
        model.index(r, 0).data(ROW_ROLE).id: model.index(r, status).data()
        for r in range(model.rowCount())
    }
    assert texts["baclofen-500"] == "Inactive"


def test_catalog_models_pass_the_model_tester(qtmodeltester, services, admin) -> None:
    pumps = PumpModelsTableModel()
    pumps.set_rows(services.catalogs.pump_models(admin))
    assert pumps.rowCount() > 0
    qtmodeltester.check(pumps)
    drugs = DrugProductsTableModel()
    drugs.set_rows(services.catalogs.drug_products(admin))
    qtmodeltester.check(drugs)
    qtmodeltester.check(PumpModelsTableModel())
    qtmodeltester.check(DrugProductsTableModel())


def test_only_administrators_see_the_catalogs_tab(qtbot, services, nurse) -> None:
    widget = AdminPage(services, nurse, DataBus())
    qtbot.addWidget(widget)
    assert widget.catalogs_tab is None


def test_a_stale_save_keeps_the_form_and_offers_a_reload(qtbot, page, services, admin) -> None:
    editor = page.catalogs_tab.drugs
    _click_row(qtbot, editor.table, "baclofen-2000")
    assert not editor.reload_button.isVisible()
    # Another administrator, at another workstation, saves the same product meanwhile.
    services.users.create_user(admin, "alex", "Alex Admin", Role.ADMIN, PASSWORDS[Role.ADMIN])
    alex = services.users.authenticate("alex", PASSWORDS[Role.ADMIN])
    services.catalogs.update_drug_product(alex, "baclofen-2000", 1, DrugProductEdit(20, True))

    editor.stability_spin.selectAll()
    qtbot.keyClicks(editor.stability_spin, "45")
    editor.active_check.setChecked(False)
    qtbot.mouseClick(editor.save_button, LEFT)

    assert editor.stale_banner.isVisible()
    assert "changed by alex at 2026-11-26 10:00 GMT" in editor.stale_banner.text()
    assert "your edits were not saved" in editor.stale_banner.text()
    assert editor.reload_button.isVisible()
    assert editor.status_label.text() == "Not saved"
    # What was typed is still there; the database has alex's values.
    assert (editor.stability_spin.value(), editor.active_check.isChecked()) == (45, False)
    saved = {d.id: d for d in services.catalogs.drug_products(admin)}["baclofen-2000"]
    assert (saved.stability_days, saved.active) == (20, True)

    qtbot.mouseClick(editor.reload_button, LEFT)
    assert not editor.stale_banner.isVisible() and not editor.reload_button.isVisible()
    assert editor.selected_id() == "baclofen-2000"
    assert (editor.stability_spin.value(), editor.active_check.isChecked()) == (20, True)

    editor.stability_spin.selectAll()
    qtbot.keyClicks(editor.stability_spin, "45")
    qtbot.mouseClick(editor.save_button, LEFT)
    saved = {d.id: d for d in services.catalogs.drug_products(admin)}["baclofen-2000"]
    assert (saved.stability_days, saved.version) == (45, 3)
    assert editor.status_label.text().startswith("✓ Saved")
