from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from pumpclinic.db.models import AuditEntry, Patient
from pumpclinic.domain.patients import PatientInput
from pumpclinic.services.errors import PermissionDenied, StaleRecord, ValidationFailed


def data(**changes: object) -> PatientInput:
    base: dict[str, object] = {
        "mrn": "RIV-000001",
        "family_name": "Okafor",
        "given_name": "Ada",
        "date_of_birth": dt.date(1975, 4, 3),
        "spasticity_origin": "spinal",
        "diagnosis": "Multiple sclerosis",
        "condition_codes": frozenset({"epilepsy"}),
        "medicine_codes": frozenset({"codeine"}),
        "contact_name": "Ben Okafor",
        "contact_phone": "+44 20 7946 0000",
    }
    base.update(changes)
    return PatientInput(**base)  # type: ignore[arg-type]


def test_nurse_adds_a_patient_and_sees_it_listed(services, nurse) -> None:
    record = services.patients.create_patient(nurse, data())
    assert record.data.condition_codes == {"epilepsy"}
    assert record.data.contact_name == "Ben Okafor"
    rows = services.patients.list_patients(nurse)
    assert [(r.mrn, r.age_years, r.pump_status) for r in rows] == [("RIV-000001", 51, "No pump")]


def test_mrn_is_unique_ignoring_case(services, nurse) -> None:
    services.patients.create_patient(nurse, data())
    with pytest.raises(ValidationFailed) as caught:
        services.patients.create_patient(nurse, data(mrn="riv-000001", given_name="Other"))
    assert "already used" in caught.value.for_field("mrn")[0]
    assert len(services.patients.list_patients(nurse)) == 1


def test_unknown_leaflet_codes_are_refused(services, nurse) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.patients.create_patient(nurse, data(medicine_codes=frozenset({"aspirin"})))
    assert caught.value.for_field("medicines")


def test_edit_keeps_history_in_the_audit_log(services, nurse) -> None:
    record = services.patients.create_patient(nurse, data())
    updated = services.patients.update_patient(
        nurse, record.id, record.version, data(diagnosis="Spinal cord injury T4")
    )
    assert updated.version == record.version + 1
    with services.context.unit_of_work() as session:
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.entity == "patient")))
    assert [e.action for e in entries] == ["create", "update"]
    assert json.loads(entries[1].before_json)["diagnosis"] == "Multiple sclerosis"
    assert json.loads(entries[1].after_json)["diagnosis"] == "Spinal cord injury T4"
    assert entries[1].username == "nina"


def test_a_stale_edit_is_refused_and_loses_nothing(services, nurse, clinician) -> None:
    record = services.patients.create_patient(nurse, data())
    services.patients.update_patient(clinician, record.id, record.version, data(allergies="Latex"))
    with pytest.raises(StaleRecord, match="carl"):
        services.patients.update_patient(nurse, record.id, record.version, data(notes="mine"))
    current = services.patients.get_patient(nurse, record.id)
    assert current.data.allergies == "Latex"
    assert current.data.notes == ""


def test_failed_update_writes_nothing(services, nurse) -> None:
    record = services.patients.create_patient(nurse, data())
    with pytest.raises(ValidationFailed):
        services.patients.update_patient(
            nurse, record.id, record.version, data(family_name="", diagnosis="Changed")
        )
    with services.context.unit_of_work() as session:
        patient = session.scalars(select(Patient)).one()
        assert patient.diagnosis == "Multiple sclerosis"
        assert patient.version == record.version


def test_removing_the_contact_and_codes(services, nurse) -> None:
    record = services.patients.create_patient(nurse, data())
    updated = services.patients.update_patient(
        nurse,
        record.id,
        record.version,
        data(
            contact_name="",
            contact_phone="",
            condition_codes=frozenset(),
            medicine_codes=frozenset(),
        ),
    )
    assert updated.data.contact_name == ""
    assert updated.data.condition_codes == frozenset()
    assert updated.data.medicine_codes == frozenset()


def test_staff_view_but_cannot_edit(services, nurse, staff) -> None:
    record = services.patients.create_patient(nurse, data())
    assert services.patients.get_patient(staff, record.id).data.mrn == "RIV-000001"
    with pytest.raises(PermissionDenied, match="Front desk"):
        services.patients.create_patient(staff, data(mrn="RIV-2"))
    with pytest.raises(PermissionDenied):
        services.patients.update_patient(staff, record.id, record.version, data())


def test_admin_has_no_access_to_patient_records(services, admin) -> None:
    with pytest.raises(PermissionDenied):
        services.patients.list_patients(admin)


def test_warnings_for_interacting_medicines(services) -> None:
    warnings = services.patients.warnings(data(medicine_codes=frozenset({"codeine"})))
    assert any("Codeine" in w.message for w in warnings)
