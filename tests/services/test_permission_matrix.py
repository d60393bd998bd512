"""The README's permission matrix, cell by cell, at the service level: each role is either
allowed (the call goes through) or refused (PermissionDenied or a refusal naming the rule)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable

import pytest

from pumpclinic.domain.clinic import ClinicSettingsData
from pumpclinic.domain.enums import Role
from pumpclinic.domain.patients import PatientInput
from pumpclinic.services.alerts import ContactInput
from pumpclinic.services.catalogs import DrugProductEdit, PumpModelEdit
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from pumpclinic.services.errors import PermissionDenied, ValidationFailed
from pumpclinic.services.refills import DoubleCheck, RefillInput
from pumpclinic.services.screening import ObservationInput
from tests.conftest import NOW, PASSWORDS
from tests.services.refill_fixtures import implanted_patient, record_checked

LONDON = zoneinfo.ZoneInfo("Europe/London")
ROLES = (Role.NURSE, Role.CLINICIAN, Role.STAFF, Role.ADMIN)


class World:
    def __init__(self, services: Services, actors: dict[Role, Actor]) -> None:
        self.services = services
        self.actors = actors
        self.patient_id, self.pump_id = implanted_patient(
            services, actors[Role.NURSE], actors[Role.CLINICIAN]
        )
        self.trial = plan_trial_for(self, "SCR-BASE", actors[Role.CLINICIAN])

    def checker_for(self, actor: Actor) -> DoubleCheck:
        other = Role.CLINICIAN if actor.role is not Role.CLINICIAN else Role.NURSE
        username = {Role.CLINICIAN: "carl", Role.NURSE: "nina"}[other]
        return DoubleCheck(username, PASSWORDS[other], 2000, 400)


def add_patient(world: World, actor: Actor) -> None:
    world.services.patients.create_patient(
        actor,
        PatientInput(
            mrn=f"NEW-{actor.role.value}",
            family_name="New",
            given_name="Patient",
            date_of_birth=dt.date(1980, 1, 1),
            spasticity_origin="spinal",
            diagnosis="Stroke",
        ),
    )


def view_patients(world: World, actor: Actor) -> None:
    world.services.patients.list_patients(actor)


def book_refill(world: World, actor: Actor) -> None:
    start = dt.datetime(2026, 12, 2, 9, 0, tzinfo=LONDON)
    world.services.booking.book_refill(actor, world.patient_id, start)


def book_after_alarm(world: World, actor: Actor) -> None:
    start = dt.datetime(2026, 12, 29, 9, 0, tzinfo=LONDON)
    world.services.booking.book_refill(
        actor, world.patient_id, start, late_reason="Away over Christmas"
    )


def record_refill(world: World, actor: Actor) -> None:
    data = RefillInput(
        pump_id=world.pump_id,
        performed_at=NOW,
        aspirated_residual_ml=8.0,
        drug_product_id="baclofen-2000",
        lot_number="LOT-M1",
        volume_added_ml=20.0,
        dose_mcg_per_day=400.0,
    )
    record_checked(world.services, actor, data, world.checker_for(actor))


def change_beyond_bounds(world: World, actor: Actor) -> None:
    """+50 % (spinal allows 30 %), checked by a nurse: only a clinician may record it."""
    data = RefillInput(
        pump_id=world.pump_id,
        performed_at=NOW,
        aspirated_residual_ml=8.0,
        drug_product_id="baclofen-2000",
        lot_number="LOT-M2",
        volume_added_ml=20.0,
        dose_mcg_per_day=600.0,
        change_reason="Rebound spasticity",
    )
    nurse_check = DoubleCheck("olga", PASSWORDS[Role.NURSE], 2000, 600)
    record_checked(world.services, actor, data, nurse_check)


def plan_trial_for(world: World, mrn: str, actor: Actor) -> object:
    patient = world.services.patients.create_patient(
        world.actors[Role.NURSE],
        PatientInput(
            mrn=mrn,
            family_name="Mensah",
            given_name="Kofi",
            date_of_birth=dt.date(1988, 6, 14),
            spasticity_origin="cerebral",
            diagnosis="Cerebral palsy",
        ),
    )
    checks = world.services.screening.start_checks(actor, patient.id, False)
    first = dt.datetime(2026, 11, 30, 9, 0, tzinfo=LONDON)
    return world.services.screening.plan_trial(actor, patient.id, "standard", first, False, checks)


def plan_screening_trial(world: World, actor: Actor) -> None:
    plan_trial_for(world, f"SCR-{actor.role.value}", actor)


def record_vitals(world: World, actor: Actor) -> None:
    world.services.screening.record_observation(
        actor,
        world.trial.id,  # type: ignore[attr-defined]
        1,
        ObservationInput(observed_at=NOW, is_baseline=True, heart_rate_bpm=72, spo2_pct=98),
    )


def log_contact(world: World, actor: Actor) -> None:
    world.services.alerts.log_contact(
        actor, ContactInput(world.patient_id, NOW, "phone", "no-answer", notes="Rang twice")
    )


def view_alerts(world: World, actor: Actor) -> None:
    world.services.alerts.alerts(actor)


def manage_users(world: World, actor: Actor) -> None:
    world.services.users.create_user(actor, "newbie", "New Person", Role.STAFF, "newbie-pass-1")


def change_settings(world: World, actor: Actor) -> None:
    _current, version = world.services.settings.get()
    world.services.settings.update(actor, ClinicSettingsData(refill_safety_margin_days=5), version)


def edit_catalog(world: World, actor: Actor) -> None:
    world.services.catalogs.update_drug_product(
        actor, "baclofen-2000", 1, DrugProductEdit(30, True)
    )
    world.services.catalogs.update_pump_model(
        actor, "synchromed-ii-40", 1, PumpModelEdit(3.0, 14.5, 2.0, True)
    )


ALLOWED = {
    add_patient: {Role.NURSE, Role.CLINICIAN},
    view_patients: {Role.NURSE, Role.CLINICIAN, Role.STAFF},
    book_refill: {Role.NURSE, Role.CLINICIAN, Role.STAFF},
    book_after_alarm: {Role.CLINICIAN},
    record_refill: {Role.NURSE, Role.CLINICIAN},
    change_beyond_bounds: {Role.CLINICIAN},
    plan_screening_trial: {Role.CLINICIAN},
    record_vitals: {Role.NURSE, Role.CLINICIAN},
    log_contact: {Role.NURSE, Role.CLINICIAN, Role.STAFF},
    view_alerts: {Role.NURSE, Role.CLINICIAN, Role.STAFF},
    manage_users: {Role.ADMIN},
    change_settings: {Role.ADMIN},
    edit_catalog: {Role.ADMIN},
}


@pytest.fixture
def world(services, admin, nurse, clinician, staff) -> World:
    from tests.conftest import _user

    _user(services, admin, Role.NURSE, "olga", "Olga Other-Nurse")
    return World(
        services,
        {Role.ADMIN: admin, Role.NURSE: nurse, Role.CLINICIAN: clinician, Role.STAFF: staff},
    )


@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value)
@pytest.mark.parametrize("operation", list(ALLOWED), ids=lambda f: f.__name__)
def test_matrix_cell(world: World, operation: Callable[[World, Actor], None], role: Role) -> None:
    actor = world.actors[role]
    if role in ALLOWED[operation]:
        operation(world, actor)
        return
    with pytest.raises((PermissionDenied, ValidationFailed)) as refused:
        operation(world, actor)
    if isinstance(refused.value, ValidationFailed):
        # Not a missing field: the refusal is the rule (a clinician must approve/record).
        assert any("clinician" in e.message for e in refused.value.errors), refused.value.errors
