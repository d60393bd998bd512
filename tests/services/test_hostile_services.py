"""Random and hostile input to booking, screening, alerts and users: a clean refusal
(ValidationFailed, AuthenticationFailed, PermissionDenied, StaleRecord) or a correct save
that reads back as entered, never a crash and never a corrupt row."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import zoneinfo
from typing import Any

import pytest
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st

from pumpclinic.domain.alerts import ContactMethod, ContactOutcome
from pumpclinic.domain.enums import ASHWORTH_SCORES, AppointmentStatus, DoseResponse, Role
from pumpclinic.domain.patients import PatientInput
from pumpclinic.domain.screening import StopCause
from pumpclinic.services.alerts import ContactInput
from pumpclinic.services.errors import (
    AuthenticationFailed,
    PermissionDenied,
    StaleRecord,
    ValidationFailed,
)
from pumpclinic.services.screening import ObservationInput
from tests.conftest import NOW, PASSWORDS
from tests.services.refill_fixtures import implanted_patient
from tests.services.test_hostile_input import HOSTILE_NUMBER, HOSTILE_TEXT, RELAXED, integrity_ok

CLEAN = (ValidationFailed, AuthenticationFailed, PermissionDenied, StaleRecord)
FEW = settings(RELAXED, max_examples=40, phases=[p for p in Phase if p is not Phase.explain])
LONDON = zoneinfo.ZoneInfo("Europe/London")
ZONES = st.sampled_from(
    [
        dt.UTC,
        LONDON,
        zoneinfo.ZoneInfo("Pacific/Kiritimati"),  # UTC+14
        zoneinfo.ZoneInfo("America/St_Johns"),  # half-hour offset
        dt.timezone(dt.timedelta(hours=-23, minutes=-59)),
        dt.timezone(dt.timedelta(hours=23, minutes=59)),
    ]
)
ANY_MOMENT = st.datetimes(
    min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59), timezones=ZONES
)


def near(base: dt.datetime, days_before: int, days_after: int) -> st.SearchStrategy[dt.datetime]:
    """Aware times around ``base`` on odd and even minutes, in odd time zones."""
    return st.builds(
        lambda days, hour, minute, second, zone: dt.datetime.combine(
            base.astimezone(LONDON).date() + dt.timedelta(days=days),
            dt.time(hour, minute, second),
            tzinfo=LONDON,
        ).astimezone(zone),
        st.integers(-days_before, days_after),
        st.integers(0, 23),
        st.sampled_from([0, 0, 30, 30, 1, 15, 29, 59]),
        st.sampled_from([0, 0, 0, 1, 59]),
        ZONES,
    )


def MOMENT(base: dt.datetime, days_before: int = 3, days_after: int = 3) -> Any:
    return st.one_of(ANY_MOMENT, near(base, days_before, days_after))


def mostly(plausible: Any, hostile: Any) -> Any:
    """Plausible five times in six: a form has many fields, and a save needs all good."""
    return st.one_of(*[plausible] * 5, hostile)


HOSTILE_INT = st.one_of(
    st.none(),
    st.integers(-(10**30), 10**30),
    st.integers(-5, 260),
    st.sampled_from([-1, 0, 2**31, 2**63, -(2**63) - 1, 10**100, True, False]),
    HOSTILE_NUMBER,
)
SQL = st.sampled_from(["'; DROP TABLE observation; --", "1 OR 1=1", "nausea'--", "NULL"])
_unique = itertools.count(1)


def clean_refusal(failure: Exception) -> None:
    """A refusal the user can act on: a message, field errors that name the field."""
    assert str(failure)
    if isinstance(failure, ValidationFailed):
        assert failure.errors and all(e.field and e.message for e in failure.errors)
    event(f"refused: {type(failure).__name__}")


def storable(*texts: str, limit: int = 2000) -> None:
    """Saved text any engine can hold (PostgreSQL has no NUL) and of a bounded length."""
    for text in texts:
        assert "\x00" not in text and len(text) <= limit


def new_patient(services, nurse) -> int:
    n = next(_unique)
    return services.patients.create_patient(
        nurse,
        PatientInput(
            mrn=f"HS-{n:06d}",
            family_name="Mensah",
            given_name="Kofi",
            date_of_birth=dt.date(1988, 6, 14),
            spasticity_origin="cerebral",
            diagnosis="Cerebral palsy (spastic diplegia)",
        ),
    ).id


def plan(services, clinician, patient_id: int, first_dose_at: dt.datetime):
    checks = services.screening.start_checks(clinician, patient_id, False)
    return services.screening.plan_trial(
        clinician, patient_id, "standard", first_dose_at, False, checks
    )


# --- booking ------------------------------------------------------------------------------


@pytest.fixture
def refill_patient(services, nurse, clinician) -> int:
    return implanted_patient(services, nurse, clinician, mrn="HS-000900")[0]


@FEW
@given(
    starts_at=MOMENT(NOW, 2, 40),
    late_reason=st.one_of(HOSTILE_TEXT, st.just("Patient away until then")),
    notes=HOSTILE_TEXT,
    as_staff=st.booleans(),
)
def test_book_refill(
    services, staff, clinician, refill_patient, starts_at, late_reason, notes, as_staff
) -> None:
    actor = staff if as_staff else clinician
    try:
        row = services.booking.book_refill(
            actor, refill_patient, starts_at, late_reason=late_reason, notes=notes
        )
    except CLEAN as failure:
        clean_refusal(failure)
    else:
        event("saved")
        assert row.starts_at == starts_at and row.status is AppointmentStatus.BOOKED
        assert starts_at >= NOW and starts_at.second == 0
        stored = next(
            r
            for r in services.booking.appointments_for_patient(actor, refill_patient)
            if r.id == row.id
        )
        assert stored.starts_at == starts_at
        assert stored.late_reason == late_reason.strip() and stored.notes == notes.strip()
        storable(stored.late_reason, stored.notes)
    assert integrity_ok(services)


@FEW
@given(reason=HOSTILE_TEXT, stale=st.one_of(st.none(), st.integers(-(2**70), 2**70)))
def test_cancel_appointment(services, clinician, refill_patient, reason, stale) -> None:
    proposal = services.booking.propose_slot(clinician, refill_patient)
    assert proposal.starts_at is not None
    booked = services.booking.book_refill(
        clinician, refill_patient, proposal.starts_at, late_reason="late on purpose"
    )
    version = booked.version if stale is None or stale == booked.version else stale
    try:
        row = services.booking.cancel(clinician, booked.id, version, reason)
    except CLEAN as failure:
        clean_refusal(failure)
        stored = services.booking.appointments_for_patient(clinician, refill_patient)
        assert next(r for r in stored if r.id == booked.id) == booked
        # Free the slot for the next example.
        services.booking.cancel(clinician, booked.id, booked.version, "cleanup")
    else:
        event("saved")
        assert row.status is AppointmentStatus.CANCELLED
        assert row.cancel_reason == reason.strip() and row.cancel_reason
        storable(row.cancel_reason)
    assert integrity_ok(services)


# --- screening ----------------------------------------------------------------------------


@FEW
@given(
    first_dose_at=st.one_of(
        MOMENT(NOW, 2, 30),
        near(NOW, 0, 30).map(lambda at: at.astimezone(LONDON).replace(hour=8 + at.hour % 3)),
    )
)
def test_plan_trial(services, nurse, clinician, first_dose_at) -> None:
    patient_id = new_patient(services, nurse)
    try:
        trial = plan(services, clinician, patient_id, first_dose_at)
    except CLEAN as failure:
        clean_refusal(failure)
        assert services.screening.trials_for_patient(clinician, patient_id) == []
    else:
        event("saved")
        assert trial.planned_first_dose_at == first_dose_at.replace(second=0, microsecond=0)
        assert all(d.planned_at is not None for d in trial.doses)
        assert services.screening.trial(clinician, trial.id) == trial
    assert integrity_ok(services)


class TrialFactory:
    """Fresh trials, a week apart so that their doses never compete for a bed; the clock
    is moved to ``hours_after`` the first dose."""

    def __init__(self, services, nurse, clinician, clock) -> None:
        self.services, self.nurse, self.clinician, self.clock = services, nurse, clinician, clock
        self.week = 0

    def __call__(self, hours_after: float, give: bool = True):
        self.week += 1
        monday = dt.datetime(2026, 11, 30, 9, tzinfo=LONDON) + dt.timedelta(weeks=self.week)
        self.clock.current = monday - dt.timedelta(hours=1)
        trial = plan(self.services, self.clinician, new_patient(self.services, self.nurse), monday)
        first = trial.doses[0].planned_at
        assert first is not None
        self.clock.current = first
        if give:
            trial = self.services.screening.give_dose(
                self.clinician, trial.id, trial.version, 1, first, "LOT-1"
            )
        self.clock.current = first + dt.timedelta(hours=hours_after)
        return self.services.screening.trial(self.clinician, trial.id)  # as seen from now


@pytest.fixture
def trials(services, nurse, clinician, clock) -> TrialFactory:
    return TrialFactory(services, nurse, clinician, clock)


@FEW
@given(
    minutes=st.one_of(st.integers(-120, 120), st.integers(-(10**6), 10**6)),
    hostile_time=st.one_of(st.none(), ANY_MOMENT),
    lot=st.one_of(HOSTILE_TEXT, st.just("LOT-42")),
    route=st.one_of(HOSTILE_TEXT, st.just("lumbar puncture")),
    number=st.one_of(st.just(1), st.integers(-(2**70), 2**70)),
)
def test_give_dose(trials, services, clinician, minutes, hostile_time, lot, route, number) -> None:
    trial = trials(hours_after=1, give=False)
    planned = trial.doses[0].planned_at
    given_at = hostile_time or planned + dt.timedelta(minutes=minutes)
    try:
        after = services.screening.give_dose(
            clinician, trial.id, trial.version, number, given_at, lot, route
        )
    except CLEAN as failure:
        clean_refusal(failure)
        assert services.screening.trial(clinician, trial.id) == trial
    else:
        event("saved")
        dose = after.doses[0]
        assert dose.given_at == given_at and number == 1
        assert dose.lot_number == lot.strip() and dose.route == route.strip()
    assert integrity_ok(services)


@pytest.fixture
def given_trial(trials):
    return trials(hours_after=2)


@FEW
@given(
    minutes=mostly(st.integers(-180, 180), st.integers(-(10**7), 10**7)),
    hostile_time=mostly(st.none(), ANY_MOMENT),
    is_baseline=mostly(st.just(False), st.just(True)),
    penn=mostly(st.one_of(st.none(), st.integers(0, 4)), HOSTILE_INT),
    heart=mostly(st.one_of(st.none(), st.integers(20, 250)), HOSTILE_INT),
    breathing=mostly(st.one_of(st.none(), st.integers(2, 80)), HOSTILE_INT),
    spo2=mostly(st.one_of(st.none(), st.integers(50, 100)), HOSTILE_INT),
    ashworth=st.dictionaries(
        mostly(
            st.sampled_from(["Hip adductors", " knee flexors ", "KNEE", "Ankle plantarflexors"]),
            HOSTILE_TEXT,
        ),
        mostly(st.sampled_from(ASHWORTH_SCORES), st.one_of(HOSTILE_TEXT, SQL)),
        max_size=4,
    ),
    effects=st.lists(
        mostly(
            st.sampled_from(["drowsiness-or-dizziness", "nausea-or-vomiting", "seizures"]),
            st.one_of(SQL, HOSTILE_TEXT),
        ),
        max_size=4,
    ),
    notes=mostly(st.just("Comfortable"), HOSTILE_TEXT),
)
def test_record_observation(
    services,
    nurse,
    given_trial,
    clock,
    minutes,
    hostile_time,
    is_baseline,
    penn,
    heart,
    breathing,
    spo2,
    ashworth,
    effects,
    notes,
) -> None:
    data = ObservationInput(
        observed_at=hostile_time or clock() + dt.timedelta(minutes=minutes),
        is_baseline=is_baseline,
        penn_spasm_frequency=penn,
        heart_rate_bpm=heart,
        respiratory_rate_per_min=breathing,
        spo2_pct=spo2,
        ashworth=ashworth,
        adverse_effect_codes=effects,
        notes=notes,
    )
    try:
        view = services.screening.record_observation(nurse, given_trial.id, 1, data)
    except CLEAN as failure:
        clean_refusal(failure)
    else:
        event("saved")
        assert view.observed_at == data.observed_at and view.is_baseline == is_baseline
        assert (view.penn_spasm_frequency, view.heart_rate_bpm) == (penn, heart)
        assert (view.respiratory_rate_per_min, view.spo2_pct) == (breathing, spo2)
        for value in (penn, heart, breathing, spo2):
            assert value is None or (type(value) is int and 0 <= value <= 250)
        assert view.ashworth == {g.strip(): s for g, s in ashworth.items()}
        assert {e.code for e in view.adverse_effects} == set(effects)
        assert view.notes == notes.strip()
        storable(*view.ashworth, view.notes)
        stored = services.screening.observations(nurse, given_trial.id)
        assert next(v for v in stored if v.id == view.id) == view
    assert integrity_ok(services)


@FEW
@given(
    response=st.sampled_from(DoseResponse),
    minutes=st.one_of(st.integers(-300, 10), st.integers(-(10**7), 10**7)),
    hostile_time=st.one_of(st.none(), ANY_MOMENT),
    effect_hours=st.one_of(st.none(), HOSTILE_NUMBER, st.floats(0, 60)),
    notes=HOSTILE_TEXT,
)
def test_record_response(
    trials, services, clinician, clock, response, minutes, hostile_time, effect_hours, notes
) -> None:
    trial = trials(hours_after=5)
    recorded_at = hostile_time or clock() + dt.timedelta(minutes=minutes)
    try:
        after = services.screening.record_response(
            clinician, trial.id, trial.version, 1, response, recorded_at, effect_hours, notes
        )
    except CLEAN as failure:
        clean_refusal(failure)
        assert services.screening.trial(clinician, trial.id) == trial
    else:
        event("saved")
        dose = after.doses[0]
        assert dose.response is response and dose.response_at == recorded_at
        assert dose.notes == notes.strip()
        if response is DoseResponse.POSITIVE:
            assert after.effect_duration_hours == effect_hours
            assert effect_hours is None or (math.isfinite(effect_hours) and effect_hours > 0)
            assert after.suggested_starting_dose_mcg_per_day is None or math.isfinite(
                after.suggested_starting_dose_mcg_per_day
            )
    assert integrity_ok(services)


@FEW
@given(
    cause=st.sampled_from(StopCause),
    reason=st.one_of(HOSTILE_TEXT, st.just("Patient asked to stop")),
    minutes=st.one_of(st.integers(-300, 10), st.integers(-(10**7), 10**7)),
    hostile_time=st.one_of(st.none(), ANY_MOMENT),
    give=st.booleans(),
)
def test_stop_trial(
    trials, services, clinician, clock, cause, reason, minutes, hostile_time, give
) -> None:
    trial = trials(hours_after=2, give=give)
    stopped_at = hostile_time or clock() + dt.timedelta(minutes=minutes)
    try:
        after = services.screening.stop_trial(
            clinician, trial.id, trial.version, cause, reason, stopped_at
        )
    except CLEAN as failure:
        clean_refusal(failure)
        assert services.screening.trial(clinician, trial.id) == trial
    else:
        event("saved")
        assert after.ended and after.stop_cause is cause
        assert after.stop_reason == reason.strip() and after.ended_at == stopped_at
    assert integrity_ok(services)


# --- alerts -------------------------------------------------------------------------------

METHODS = st.one_of(st.sampled_from([m.value for m in ContactMethod]), HOSTILE_TEXT, SQL)
OUTCOMES = st.one_of(st.sampled_from([o.value for o in ContactOutcome]), HOSTILE_TEXT, SQL)


@FEW
@given(
    at=MOMENT(NOW, 30, 1),
    method=METHODS,
    outcome=OUTCOMES,
    promised=st.one_of(
        st.none(),
        st.dates(),
        st.dates(min_value=dt.date(2026, 11, 1), max_value=dt.date(2028, 1, 1)),
    ),
    notes=HOSTILE_TEXT,
)
def test_log_contact(services, staff, refill_patient, at, method, outcome, promised, notes) -> None:
    data = ContactInput(refill_patient, at, method, outcome, promised, notes)
    try:
        row = services.alerts.log_contact(staff, data)
    except CLEAN as failure:
        clean_refusal(failure)
    else:
        event("saved")
        assert (row.at, row.method.value, row.outcome.value) == (at, method, outcome)
        assert row.promised_date == promised and row.notes == notes.strip()
        storable(row.notes)
        stored = services.alerts.contact_attempts(staff, refill_patient)
        assert next(r for r in stored if r.id == row.id) == row
    assert integrity_ok(services)


@FEW
@given(flag=st.booleans(), reason=st.one_of(HOSTILE_TEXT, SQL))
def test_set_do_not_contact(services, staff, refill_patient, flag, reason) -> None:
    before = services.alerts.contact_sheet(staff, refill_patient)
    try:
        sheet = services.alerts.set_do_not_contact(staff, refill_patient, flag, reason)
    except CLEAN as failure:
        clean_refusal(failure)
        assert services.alerts.contact_sheet(staff, refill_patient) == before
    else:
        event("saved")
        assert sheet.do_not_contact is flag
        assert sheet.do_not_contact_reason == (reason.strip() if flag else "")
        storable(sheet.do_not_contact_reason)
    assert integrity_ok(services)


# --- users --------------------------------------------------------------------------------

USERNAMES = st.one_of(
    HOSTILE_TEXT, SQL, st.from_regex(r"[A-Za-z][a-z0-9._-]{0,40}", fullmatch=True)
)
PASSWORD_TEXT = st.one_of(HOSTILE_TEXT, st.from_regex(r"[a-z]{4,12}[0-9!]{1,4}", fullmatch=True))


@FEW
@given(
    username=USERNAMES,
    full_name=st.one_of(HOSTILE_TEXT, st.just("Pat Porter")),
    password=PASSWORD_TEXT,
    role=st.sampled_from(Role),
)
def test_create_user(services, admin, username, full_name, password, role) -> None:
    try:
        row = services.users.create_user(admin, username, full_name, role, password)
    except CLEAN as failure:
        clean_refusal(failure)
    else:
        event("saved")
        assert row.username == username.strip().lower() and row.full_name == full_name.strip()
        assert row.role is role and row.must_change_password
        storable(row.username, row.full_name)
        assert row in services.users.list_users(admin)
        assert services.users.authenticate(username, password).user_id == row.id
    assert integrity_ok(services)


@FEW
@given(username=st.one_of(USERNAMES, st.just("nina"), st.just(" NINA ")), password=PASSWORD_TEXT)
def test_authenticate_refuses_cleanly(services, nurse, username, password) -> None:
    with pytest.raises(AuthenticationFailed) as refused:
        services.users.authenticate(username, password)
    assert str(refused.value)
    assert integrity_ok(services)


# --- regressions: found by the tests above ------------------------------------------------


def test_booking_texts_are_bounded_and_nul_free(services, clinician, refill_patient) -> None:
    start = services.booking.propose_slot(clinician, refill_patient).starts_at
    for late_reason, notes, field in [
        ("late\x00", "", "late_reason"),
        ("a" * 2001, "", "late_reason"),
        ("late", "n\x00", "notes"),
        ("late", "n" * 2001, "notes"),
    ]:
        with pytest.raises(ValidationFailed) as refused:
            services.booking.book_refill(
                clinician, refill_patient, start, late_reason=late_reason, notes=notes
            )
        (message,) = refused.value.for_field(field)
        assert "at most 2000 characters" in message or "NUL" in message
    booked = services.booking.book_refill(clinician, refill_patient, start, late_reason="late")
    for reason in ["why\x00", "r" * 2001]:
        with pytest.raises(ValidationFailed) as refused:
            services.booking.cancel(clinician, booked.id, booked.version, reason)
        assert refused.value.for_field("cancel_reason")
    assert services.booking.appointments_for_patient(clinician, refill_patient) == [booked]


def test_contact_texts_with_a_nul_are_refused_by_field(services, staff, refill_patient) -> None:
    with pytest.raises(ValidationFailed) as refused:
        services.alerts.log_contact(
            staff, ContactInput(refill_patient, NOW, "phone", "reached", notes="ok\x00")
        )
    assert refused.value.for_field("notes")
    with pytest.raises(ValidationFailed) as refused:
        services.alerts.set_do_not_contact(staff, refill_patient, True, "carer\x00")
    assert refused.value.for_field("do_not_contact_reason")
    assert services.alerts.contact_attempts(staff, refill_patient) == []


def test_a_muscle_group_with_a_nul_is_refused(services, nurse, given_trial, clock) -> None:
    data = ObservationInput(observed_at=clock(), ashworth={"Hip\x00adductors": "1"})
    with pytest.raises(ValidationFailed) as refused:
        services.screening.record_observation(nurse, given_trial.id, 1, data)
    assert "NUL" in refused.value.for_field("ashworth")[0]


def test_a_username_with_a_nul_is_refused_before_any_query(services, admin, nurse) -> None:
    # On PostgreSQL the look-up itself failed: a database error, not the username's rule.
    with pytest.raises(ValidationFailed) as refused:
        services.users.create_user(admin, "ni\x00na", "Nina Two", Role.NURSE, "pass-word-1")
    assert "Username must be" in refused.value.for_field("username")[0]
    with pytest.raises(AuthenticationFailed, match="Unknown username"):
        services.users.authenticate("ni\x00na", PASSWORDS[Role.NURSE])
