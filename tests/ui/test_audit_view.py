"""The patient's history: every change with its values before and after."""

from __future__ import annotations

import datetime as dt

import pytest

from pumpclinic.domain.patients import PatientInput
from pumpclinic.services.errors import PermissionDenied
from pumpclinic.ui.audit_view import AuditDialog, AuditModel
from pumpclinic.ui.bus import DataBus
from pumpclinic.ui.patient_page import PatientPage


def data(diagnosis: str) -> PatientInput:
    return PatientInput(
        mrn="RIV-7",
        family_name="Okafor",
        given_name="Ada",
        date_of_birth=dt.date(1975, 4, 3),
        spasticity_origin="spinal",
        diagnosis=diagnosis,
    )


@pytest.fixture
def patient_id(services, nurse, clinician) -> int:
    record = services.patients.create_patient(nurse, data("Multiple sclerosis"))
    services.patients.update_patient(clinician, record.id, record.version, data("MS, progressive"))
    return record.id


def test_history_shows_who_changed_what(qtbot, qtmodeltester, services, nurse, patient_id):
    page = PatientPage(services, nurse, DataBus())
    qtbot.addWidget(page)
    page.show_patient(patient_id)
    assert page.history_button.isVisibleTo(page)
    dialog = page.show_history()
    assert isinstance(dialog, AuditDialog)
    model = dialog.model
    qtmodeltester.check(model)
    assert model.rowCount() == 2
    assert model.data(model.index(0, 1)) == "carl"
    assert model.data(model.index(0, 2)) == "Changed"
    assert "diagnosis" in model.data(model.index(0, 4))
    assert "diagnosis: Multiple sclerosis  →  MS, progressive" in dialog.detail.toPlainText()


def test_staff_and_admin_cannot_read_the_history(services, staff, admin, patient_id) -> None:
    for actor in (staff, admin):
        with pytest.raises(PermissionDenied):
            services.audit.for_patient(actor, patient_id)


def test_empty_model_passes_the_tester(qtmodeltester, services) -> None:
    qtmodeltester.check(AuditModel(services.settings.get()[0].zone))
