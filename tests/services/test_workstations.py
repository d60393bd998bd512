"""Two workstations on one clinic database edit the same patient: optimistic locking.

Each workstation is its own ``open_clinic`` (its own engine, connections and clock) on the
test database of the run — a SQLite file, or the PostgreSQL schema of
``PUMPCLINIC_TEST_DATABASE_URL``, where this is what several workstations really do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from pumpclinic.db.models import AuditEntry, Patient
from pumpclinic.domain.enums import Role
from pumpclinic.domain.patients import PatientInput
from pumpclinic.domain.reference import Reference
from pumpclinic.services.clinic import Services, open_clinic
from pumpclinic.services.context import Actor
from pumpclinic.services.errors import StaleRecord, ValidationFailed
from tests.conftest import NOW, PASSWORDS, FixedClock, database_label

PATIENT = PatientInput(
    mrn="RIV-000777",
    family_name="Okafor",
    given_name="Ada",
    date_of_birth=dt.date(1975, 4, 3),
    spasticity_origin="spinal",
    diagnosis="Multiple sclerosis",
)


@pytest.fixture
def second_workstation(
    database_url: str, reference: Reference, services: Services
) -> Iterator[tuple[Services, FixedClock]]:
    """Another PumpClinic on the same database (``services`` is the first one)."""
    clock = FixedClock(NOW + dt.timedelta(minutes=7))
    other = open_clinic(
        database_url, reference, clock=clock, database_label=database_label(database_url)
    )
    yield other, clock
    other.close()


def patient_audit(services: Services, patient_id: int) -> list[tuple[str, str]]:
    with services.context.unit_of_work() as session:
        entries = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == "patient", AuditEntry.entity_id == str(patient_id))
            .order_by(AuditEntry.id)
        )
        return [(e.action, e.username) for e in entries]


def test_the_second_save_is_refused_naming_who_and_when_and_loses_nothing(
    services: Services,
    nurse: Actor,
    clinician: Actor,
    second_workstation: tuple[Services, FixedClock],
) -> None:
    other, _clock = second_workstation
    carl_there = other.users.authenticate("carl", PASSWORDS[Role.CLINICIAN])
    created = services.patients.create_patient(nurse, PATIENT)

    # Both workstations open the patient's form.
    nina_sees = services.patients.get_patient(nurse, created.id)
    carl_sees = other.patients.get_patient(carl_there, created.id)
    assert nina_sees.version == carl_sees.version

    # Carl saves first, on the other workstation, at 10:07 (London is on GMT in November).
    saved = other.patients.update_patient(
        carl_there, created.id, carl_sees.version, dataclasses.replace(PATIENT, allergies="Latex")
    )
    assert saved.version == carl_sees.version + 1

    # Nina saves what she typed over the version she opened: refused, with who and when.
    with pytest.raises(StaleRecord) as refused:
        services.patients.update_patient(
            nurse, created.id, nina_sees.version, dataclasses.replace(PATIENT, notes="mine")
        )
    message = str(refused.value)
    assert "carl" in message
    assert "2026-11-26 10:07" in message
    assert "Reload" in message

    # Carl's change is kept whole; nothing of Nina's refused save was written.
    current = services.patients.get_patient(nurse, created.id)
    assert (current.data.allergies, current.data.notes) == ("Latex", "")
    assert current.version == saved.version
    assert patient_audit(services, created.id) == [("create", "nina"), ("update", "carl")]

    # After reloading, her save goes through on top of his.
    again = services.patients.update_patient(
        nurse, created.id, current.version, dataclasses.replace(current.data, notes="mine")
    )
    seen_there = other.patients.get_patient(carl_there, created.id)
    assert (seen_there.data.allergies, seen_there.data.notes) == ("Latex", "mine")
    assert seen_there.version == again.version == saved.version + 1


def test_two_saves_at_the_same_moment_one_wins_the_other_is_refused(
    services: Services,
    nurse: Actor,
    clinician: Actor,
    second_workstation: tuple[Services, FixedClock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both saves pass the version check; the other workstation commits in between. The
    version column in the UPDATE's WHERE catches it: refused, nothing of it written."""
    other, _clock = second_workstation
    carl_there = other.users.authenticate("carl", PASSWORDS[Role.CLINICIAN])
    created = services.patients.create_patient(nurse, PATIENT)
    validate = services.patients._validate

    def carl_saves_meanwhile(*args: object, **kwargs: object) -> None:
        monkeypatch.setattr(services.patients, "_validate", validate)
        other.patients.update_patient(
            carl_there, created.id, created.version, dataclasses.replace(PATIENT, pregnant=True)
        )
        validate(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(services.patients, "_validate", carl_saves_meanwhile)
    with pytest.raises(StaleRecord, match="Reload"):
        services.patients.update_patient(
            nurse, created.id, created.version, dataclasses.replace(PATIENT, notes="mine")
        )
    with services.context.unit_of_work() as session:
        stored = session.scalars(select(Patient)).one()
        assert (stored.pregnant, stored.notes, stored.version) == (True, "", created.version + 1)
    assert patient_audit(services, created.id) == [("create", "nina"), ("update", "carl")]


def test_the_same_mrn_added_at_two_workstations_at_once_is_refused_at_the_mrn_field(
    services: Services,
    nurse: Actor,
    clinician: Actor,
    second_workstation: tuple[Services, FixedClock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both check that the MRN is free; carl's patient is saved in between. The unique
    constraint refuses nina's, and she is told why, at the MRN, not "something went wrong"."""
    other, _clock = second_workstation
    carl_there = other.users.authenticate("carl", PASSWORDS[Role.CLINICIAN])
    validate = services.patients._validate

    def carl_adds_meanwhile(*args: object, **kwargs: object) -> None:
        validate(*args, **kwargs)  # type: ignore[arg-type]
        monkeypatch.setattr(services.patients, "_validate", validate)
        other.patients.create_patient(carl_there, dataclasses.replace(PATIENT, given_name="Ben"))

    monkeypatch.setattr(services.patients, "_validate", carl_adds_meanwhile)
    with pytest.raises(ValidationFailed) as refused:
        services.patients.create_patient(nurse, PATIENT)
    assert refused.value.for_field("mrn") == [
        "Another patient with this MRN was saved at another workstation a moment ago: an MRN"
        " belongs to one patient only. Check the MRN; nothing was saved."
    ]
    with services.context.unit_of_work() as session:
        stored = session.scalars(select(Patient)).one()
        assert (stored.mrn, stored.given_name) == (PATIENT.mrn, "Ben")
    assert patient_audit(services, stored.id) == [("create", "carl")]


def test_the_same_username_created_at_two_workstations_at_once_is_refused_at_its_field(
    services: Services,
    admin: Actor,
    second_workstation: tuple[Services, FixedClock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other, _clock = second_workstation
    admin_there = other.users.authenticate("admin", PASSWORDS[Role.ADMIN])
    new_user = services.users._new_user

    def created_there_meanwhile(*args: object, **kwargs: object) -> object:
        monkeypatch.setattr(services.users, "_new_user", new_user)
        other.users.create_user(admin_there, "sam", "Sam One", Role.NURSE, PASSWORDS[Role.NURSE])
        return new_user(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(services.users, "_new_user", created_there_meanwhile)
    with pytest.raises(ValidationFailed) as refused:
        services.users.create_user(admin, "sam", "Sam Two", Role.STAFF, PASSWORDS[Role.STAFF])
    assert refused.value.for_field("username") == [
        "This username was taken at another workstation a moment ago: choose another."
        " Nothing was saved."
    ]
    assert [(u.username, u.full_name) for u in services.users.list_users(admin)] == [
        ("admin", "Ada Admin"),
        ("sam", "Sam One"),
    ]
