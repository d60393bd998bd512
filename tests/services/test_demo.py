"""The demo clinic: realistic, reproducible, and every refill state a user must see."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from pumpclinic.db.models import (
    Appointment,
    Base,
    ClinicSettings,
    DoseProgram,
    DrugProduct,
    Holiday,
    ImplantedPump,
    Patient,
    PumpModel,
    Refill,
    ScreeningTrial,
    TestDose,
    User,
)
from pumpclinic.db.types import UTCDateTime
from pumpclinic.domain.enums import AppointmentStatus, DoseResponse, Role, TrialStatus
from pumpclinic.domain.patients import PatientInput, age_in_years, validate_patient
from pumpclinic.domain.reference import Reference
from pumpclinic.domain.reservoir import constant_rate_forecast, daily_volume_ml
from pumpclinic.services import demo
from pumpclinic.services.clinic import Services, open_clinic
from pumpclinic.services.demo import (
    DEMO_USERS,
    DemoRefused,
    DemoSummary,
    create_demo_clinic,
    is_demo_populated,
)
from tests.conftest import TestDatabases

NOW = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)
LONDON = ZoneInfo("Europe/London")


def fixed_clock() -> dt.datetime:
    return NOW


def _open(databases: TestDatabases, path: Path, reference: Reference) -> Services:
    """A new, empty clinic: the file ``path``, or a fresh schema on the test server."""
    return open_clinic(databases.new(path), reference, clock=fixed_clock, database_label=path.name)


@pytest.fixture(scope="module")
def clinic(
    tmp_path_factory: pytest.TempPathFactory, reference: Reference, test_databases: TestDatabases
) -> Iterator[tuple[Services, DemoSummary]]:
    services = _open(test_databases, tmp_path_factory.mktemp("demo") / "demo.sqlite3", reference)
    summary = create_demo_clinic(services.context)
    yield services, summary
    services.close()


@pytest.fixture
def session(clinic: tuple[Services, DemoSummary]) -> Iterator[Session]:
    with clinic[0].context.session_factory() as session:
        yield session


def _state(pump: ImplantedPump) -> str:
    """The refill state recomputed from the stored rows (ITB-FACTS §4, margin 7, horizon 14)."""
    last = max(pump.refills, key=lambda r: r.performed_at)
    program = max(
        (p for p in pump.programs if p.effective_from <= NOW), key=lambda p: p.effective_from
    )
    forecast = constant_rate_forecast(
        last.performed_at,
        last.volume_after_ml,
        pump.low_reservoir_alarm_ml,
        daily_volume_ml(program.dose_mcg_per_day, program.concentration_mcg_per_ml),
    )
    assert forecast.alarm_at is not None and forecast.empty_at is not None
    due_at = forecast.alarm_at - dt.timedelta(days=7)
    if forecast.empty_at <= NOW:
        return "empty"
    if forecast.alarm_at <= NOW:
        return "past alarm"
    if due_at <= NOW:
        return "overdue"
    if due_at <= NOW + dt.timedelta(days=14):
        return "due soon"
    if last.performed_at > NOW - dt.timedelta(days=14):
        return "recently refilled"
    return "ok"


def _active_pumps(session: Session) -> list[ImplantedPump]:
    return list(session.scalars(select(ImplantedPump).where(ImplantedPump.explanted_on.is_(None))))


def test_counts_match_the_database(clinic: tuple[Services, DemoSummary], session: Session) -> None:
    _, summary = clinic

    def count(model: type[Base]) -> int | None:
        return session.scalar(select(func.count()).select_from(model))

    assert summary.patients == count(Patient) == 36
    assert summary.users == count(User) == 4
    assert summary.implanted_pumps == len(_active_pumps(session))
    assert summary.implanted_pumps + summary.explanted_pumps == count(ImplantedPump)
    assert summary.refills == count(Refill)
    assert summary.programs == count(DoseProgram)
    assert summary.trials == count(ScreeningTrial)
    assert summary.appointments == count(Appointment)
    assert sum(summary.states.values()) == summary.implanted_pumps


def test_every_refill_state_occurs_as_often_as_required(
    clinic: tuple[Services, DemoSummary], session: Session
) -> None:
    states = Counter(_state(pump) for pump in _active_pumps(session))
    assert states["empty"] >= 2
    assert states["past alarm"] >= 3
    assert states["overdue"] >= 3
    assert states["due soon"] >= 3
    assert states["recently refilled"] >= 3
    assert states["ok"] >= 1
    assert dict(states) == {k: v for k, v in clinic[1].states.items() if v}


def test_every_pump_model_and_concentration_is_used(session: Session) -> None:
    used_models = set(session.scalars(select(ImplantedPump.pump_model_id)))
    assert used_models == set(session.scalars(select(PumpModel.id)))
    used = set(session.scalars(select(DoseProgram.concentration_mcg_per_ml)))
    assert {500.0, 1000.0, 2000.0} <= used


def test_refills_reconcile_with_the_programs(session: Session) -> None:
    drugs = {d.id: d.concentration_mcg_per_ml for d in session.scalars(select(DrugProduct))}
    flagged = 0
    for pump in _active_pumps(session):
        refills = sorted(pump.refills, key=lambda r: r.performed_at)
        programs = sorted(pump.programs, key=lambda p: p.effective_from)
        for program in programs:
            if program.flex_steps:
                starts = [s.starts_at_minute for s in program.flex_steps] + [1440]
                total = sum(
                    s.rate_mcg_per_day * (end - s.starts_at_minute)
                    for s, end in zip(program.flex_steps, starts[1:], strict=True)
                )
                assert 2 <= len(program.flex_steps) <= 4
                assert total / 1440 == pytest.approx(program.dose_mcg_per_day)
        for before, refill in itertools.pairwise(refills):
            assert refill.expected_residual_ml is not None
            delivered = 0.0
            for index, program in enumerate(programs):
                start = before.performed_at if index == 0 else program.effective_from
                end = programs[index + 1].effective_from if index + 1 < len(programs) else None
                lo = max(start, before.performed_at)
                hi = refill.performed_at if end is None else min(end, refill.performed_at)
                if hi > lo:
                    rate = program.dose_mcg_per_day / program.concentration_mcg_per_ml
                    delivered += rate * (hi - lo).total_seconds() / 86400
            expected = before.volume_after_ml - delivered
            assert refill.expected_residual_ml == pytest.approx(expected, abs=0.006)
            # Refilled before the alarm every time, never left to run low in the history.
            assert expected > pump.low_reservoir_alarm_ml
        for refill in refills:
            if refill.expected_residual_ml is not None:
                gap = abs(refill.aspirated_residual_ml - refill.expected_residual_ml)
                assert refill.reconciliation_flagged == (gap > 2.0)
                flagged += refill.reconciliation_flagged
            assert refill.volume_after_ml <= pump.reservoir_ml
            assert refill.performed_by_id != refill.double_checked_by_id
            assert refill.drug_product_id is not None
            assert drugs[refill.drug_product_id] == refill.concentration_mcg_per_ml
            in_effect = max(
                (p for p in programs if p.effective_from <= refill.performed_at),
                key=lambda p: p.effective_from,
                default=programs[0],
            )
            assert in_effect.concentration_mcg_per_ml == refill.concentration_mcg_per_ml
    assert flagged >= 2


def test_appointments_fall_in_opening_hours(session: Session) -> None:
    holidays = set(session.scalars(select(Holiday.day)))
    for appointment in session.scalars(select(Appointment)):
        start = appointment.starts_at.astimezone(LONDON)
        end = appointment.ends_at.astimezone(LONDON)
        assert start.date() == end.date()
        assert start.isoweekday() <= 5 and start.date() not in holidays
        assert dt.time(8, 0) <= start.time() and end.time() <= dt.time(18, 0)
        assert appointment.ends_at > appointment.starts_at
        assert appointment.booked_at <= NOW
    statuses = Counter(session.scalars(select(Appointment.status)))
    assert statuses[AppointmentStatus.CANCELLED.value] >= 1
    assert statuses[AppointmentStatus.NO_SHOW.value] >= 1
    assert statuses[AppointmentStatus.BOOKED.value] >= 3
    assert statuses[AppointmentStatus.COMPLETED.value] >= 30


def test_settings_and_upcoming_bank_holidays(session: Session) -> None:
    settings = session.get(ClinicSettings, 1)
    assert settings is not None
    assert settings.clinic_name == "Riverside ITB Clinic"
    assert settings.time_zone == "Europe/London"
    assert (settings.opens_at, settings.closes_at) == (dt.time(8), dt.time(18))
    assert settings.open_weekdays == "1,2,3,4,5"
    assert settings.refill_safety_margin_days == 7
    assert settings.due_soon_horizon_days == 14
    assert settings.observation_beds == 2
    # 26 December 2026 is a Saturday: its substitute day is Monday 28 December.
    assert list(session.scalars(select(Holiday.day).order_by(Holiday.day))) == [
        dt.date(2026, 12, 25),
        dt.date(2026, 12, 28),
        dt.date(2027, 1, 1),
    ]


def test_patients_are_valid_and_old_enough_at_implant(
    clinic: tuple[Services, DemoSummary], session: Session
) -> None:
    leaflet = clinic[0].context.reference.leaflet
    conditions = {i.id for i in leaflet.precaution_conditions}
    medicines = {i.id for i in leaflet.interacting_medicines} | {
        i.id for i in leaflet.cns_depressant_classes
    }
    today = NOW.astimezone(LONDON).date()
    patients = list(session.scalars(select(Patient)))
    assert len({p.mrn for p in patients}) == len(patients)
    for patient in patients:
        contact = next(c for c in patient.contacts if c.is_primary)
        data = PatientInput(
            mrn=patient.mrn,
            family_name=patient.family_name,
            given_name=patient.given_name,
            date_of_birth=patient.date_of_birth,
            spasticity_origin=patient.spasticity_origin,
            diagnosis=patient.diagnosis,
            sex=patient.sex,
            phone=patient.phone,
            email=patient.email,
            address=patient.address,
            notes=patient.notes,
            allergies=patient.allergies,
            other_medicines=patient.other_medicines,
            contact_name=contact.name,
            contact_relationship=contact.relationship_to_patient,
            contact_phone=contact.phone,
            condition_codes=frozenset(c.code for c in patient.conditions),
            medicine_codes=frozenset(m.code for m in patient.medicines),
        )
        assert validate_patient(data, today, conditions, medicines) == []
        assert patient.mrn.startswith("RIV-")
        for pump in patient.pumps:
            assert age_in_years(patient.date_of_birth, pump.implanted_on) >= 4
    ages = [age_in_years(p.date_of_birth, today) for p in patients]
    assert ages.count(3) == 1
    assert sum(4 <= a < 18 for a in ages) >= 1
    assert sum(p.sci_at_or_above_t6 for p in patients) >= 1
    assert sum(p.communication_difficulties for p in patients) >= 1
    assert sum(bool(p.conditions) for p in patients) >= 5
    assert sum(bool(p.medicines) for p in patients) >= 3


def test_screening_trials_tell_their_story(session: Session) -> None:
    trials = {
        t.status: t for t in session.scalars(select(ScreeningTrial).order_by(ScreeningTrial.id))
    }
    in_progress = trials[TrialStatus.IN_PROGRESS.value]
    dose_1, dose_2 = in_progress.doses
    assert dose_1.response == DoseResponse.INADEQUATE.value
    assert dose_1.given_at is not None and dose_2.given_at is not None
    assert NOW - dose_1.given_at >= dt.timedelta(hours=24)
    assert NOW - dose_1.given_at < dt.timedelta(hours=48)
    assert dose_2.given_at == NOW - dt.timedelta(hours=2)
    assert dose_2.given_at - dose_1.given_at >= dt.timedelta(hours=24)
    assert dose_2.response is None
    assert [o.is_baseline for o in dose_2.observations][:1] == [True]
    assert len(dose_1.observations) >= 3
    assert any(
        o.ashworth_scores and o.penn_spasm_frequency is not None for o in dose_1.observations
    )

    not_candidate = trials[TrialStatus.NOT_CANDIDATE.value]
    assert [d.dose_mcg for d in not_candidate.doses] == [50, 75, 100]
    assert {d.response for d in not_candidate.doses} == {DoseResponse.INADEQUATE.value}
    assert not_candidate.decided_by_id is not None
    times = [d.given_at for d in not_candidate.doses]
    assert all(b - a >= dt.timedelta(hours=24) for a, b in itertools.pairwise(times) if a and b)

    # A candidate positive at 75 mcg, still waiting for the implant.
    awaiting = session.scalars(
        select(ScreeningTrial.effective_dose_mcg)
        .where(ScreeningTrial.status == TrialStatus.CANDIDATE.value)
        .where(~ScreeningTrial.patient_id.in_(select(ImplantedPump.patient_id)))
    )
    assert 75 in set(awaiting)
    planned = trials[TrialStatus.PLANNED.value]
    assert planned.planned_first_dose_at is not None
    assert dt.timedelta(days=1) < planned.planned_first_dose_at - NOW < dt.timedelta(days=14)
    assert (
        session.scalar(select(func.count(TestDose.id)).where(TestDose.trial_id == planned.id)) == 0
    )


def test_every_stored_datetime_is_aware(session: Session) -> None:
    checked = 0
    for mapper in Base.registry.mappers:
        columns = [c.key for c in mapper.columns if isinstance(c.type, UTCDateTime)]
        if not columns:
            continue
        for row in session.scalars(select(mapper.class_)):
            for key in columns:
                value = getattr(row, key)
                if value is not None:
                    assert value.tzinfo is not None and value.utcoffset() == dt.timedelta(0)
                    checked += 1
    assert checked > 1000
    # And in the file itself: SQLite holds the UTC wall time, nothing in the future but plans.
    assert inspect(session.get_bind()).has_table("refills")


def test_demo_users_sign_in_with_the_documented_passwords(
    clinic: tuple[Services, DemoSummary],
) -> None:
    services, _ = clinic
    assert {u.username: (u.password, u.role) for u in DEMO_USERS} == {
        "admin": ("demo-admin-1", Role.ADMIN),
        "nurse": ("demo-nurse-1", Role.NURSE),
        "clinician": ("demo-clinician-1", Role.CLINICIAN),
        "frontdesk": ("demo-staff-1", Role.STAFF),
    }
    for user in DEMO_USERS:
        actor = services.users.authenticate(user.username, user.password)
        assert actor.role is user.role
        assert actor.full_name == user.full_name
        assert not actor.must_change_password


def test_refuses_a_database_that_already_has_a_clinic(
    clinic: tuple[Services, DemoSummary], session: Session
) -> None:
    services, _ = clinic
    assert is_demo_populated(services.context)
    before = session.scalar(select(func.count(Patient.id)))
    with pytest.raises(DemoRefused, match="already holds a clinic"):
        create_demo_clinic(services.context)
    assert session.scalar(select(func.count(Patient.id))) == before


def test_a_failure_leaves_nothing_written(
    tmp_path: Path,
    reference: Reference,
    monkeypatch: pytest.MonkeyPatch,
    test_databases: TestDatabases,
) -> None:
    services = _open(test_databases, tmp_path / "broken.sqlite3", reference)

    def broken(self: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(demo._DemoBuilder, "_flag_reconciliations", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        create_demo_clinic(services.context, patients=24, years=1)
    assert not is_demo_populated(services.context)
    with services.context.session_factory() as session:
        assert session.scalar(select(func.count(Holiday.day))) == 0
        settings = session.get(ClinicSettings, 1)
        assert settings is not None and settings.clinic_name != "Riverside ITB Clinic"
    services.close()


def test_same_seed_and_clock_give_the_same_database(
    tmp_path: Path, reference: Reference, test_databases: TestDatabases
) -> None:
    dumps = []
    for name in ("a.sqlite3", "b.sqlite3"):
        services = _open(test_databases, tmp_path / name, reference)
        create_demo_clinic(services.context)
        dumps.append(_dump(services))
        services.close()
    assert dumps[0] == dumps[1]
    assert len(dumps[0]["refills"]) > 100

    services = _open(test_databases, tmp_path / "other-seed.sqlite3", reference)
    create_demo_clinic(services.context, seed=1)
    assert _dump(services)["patients"] != dumps[0]["patients"]
    services.close()


def test_ids_given_by_the_demo_leave_room_for_new_rows(
    tmp_path: Path, reference: Reference, test_databases: TestDatabases
) -> None:
    """On PostgreSQL the demo's own ids must move the id sequences on, or the clinic's
    first new patient would clash with demo patient 1."""
    services = _open(test_databases, tmp_path / "small.sqlite3", reference)
    try:
        summary = create_demo_clinic(services.context, patients=24, years=1)
        nurse = next(u for u in DEMO_USERS if u.role is Role.NURSE)
        actor = services.users.authenticate(nurse.username, nurse.password)
        record = services.patients.create_patient(
            actor,
            PatientInput(
                mrn="NEW-000001",
                family_name="Newcomer",
                given_name="Nia",
                date_of_birth=dt.date(1980, 6, 1),
                spasticity_origin="spinal",
                diagnosis="Spinal cord injury",
            ),
        )
        assert record.id == summary.patients + 1
    finally:
        services.close()


def _dump(services: Services) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows (password hashes left out), in a stable order."""
    engine: Engine = services.context.session_factory.kw["bind"]
    dump: dict[str, list[tuple[object, ...]]] = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if c.name != "password_hash"]
            rows = connection.execute(select(*columns)).all()
            dump[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return dump
