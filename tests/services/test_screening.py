"""Screening trials through the services: plan, doses, observations, decision, board.

The clock starts Thu 26 Nov 2026 10:00 (GMT, so London = UTC); the clinic is open Mon–Fri
08:00–18:00 with 2 observation beds.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo

import pytest
from sqlalchemy import select

from pumpclinic.db.models import AuditEntry
from pumpclinic.domain.enums import AppointmentKind, AppointmentStatus, DoseResponse, TrialStatus
from pumpclinic.domain.patients import PatientInput
from pumpclinic.domain.screening import StartCheckKind, StopCause, TrialStage
from pumpclinic.services.errors import PermissionDenied, StaleRecord, ValidationFailed
from pumpclinic.services.screening import ObservationInput
from tests.conftest import NOW
from tests.services.refill_fixtures import implanted_patient

LONDON = zoneinfo.ZoneInfo("Europe/London")
HOUR = dt.timedelta(hours=1)


def at(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=LONDON)


THU = at(11, 26, 10)  # NOW
MON = at(11, 30, 9)
TUE = at(12, 1, 9)
WED = at(12, 2, 9)


def new_patient(services, nurse, mrn: str = "SCR-000001", **changes: object) -> int:
    data: dict[str, object] = {
        "mrn": mrn,
        "family_name": "Mensah",
        "given_name": "Kofi",
        "date_of_birth": dt.date(1988, 6, 14),
        "spasticity_origin": "cerebral",
        "diagnosis": "Cerebral palsy (spastic diplegia)",
    }
    data.update(changes)
    return services.patients.create_patient(nurse, PatientInput(**data)).id  # type: ignore[arg-type]


def plan(services, clinician, patient_id: int, first_dose_at: dt.datetime, protocol="standard"):
    checks = services.screening.start_checks(clinician, patient_id, False)
    return services.screening.plan_trial(
        clinician, patient_id, protocol, first_dose_at, False, checks
    )


def screening_bookings(services, staff, patient_id: int):
    rows = services.booking.appointments_for_patient(staff, patient_id)
    return sorted(
        (r for r in rows if r.kind is AppointmentKind.SCREENING), key=lambda r: (r.starts_at, r.id)
    )


def give(services, clinician, trial, number: int, given_at: dt.datetime):
    return services.screening.give_dose(
        clinician, trial.id, trial.version, number, given_at, f"SCR-LOT-{number}"
    )


def respond(services, clinician, trial, number, response, recorded_at, effect_hours=None):
    return services.screening.record_response(
        clinician, trial.id, trial.version, number, response, recorded_at, effect_hours, ""
    )


@pytest.fixture
def patient_id(services, nurse) -> int:
    return new_patient(services, nurse)


@pytest.fixture
def monday_trial(services, clinician, patient_id):
    """A standard trial planned Mon 30 Nov 09:00; the clock moved to then."""
    trial = plan(services, clinician, patient_id, MON)
    return trial


# --- start checks and planning ----------------------------------------------------------


def test_a_small_child_on_an_interacting_medicine_needs_every_check_acknowledged(
    services, nurse, clinician
) -> None:
    child = new_patient(
        services,
        nurse,
        "SCR-000002",
        date_of_birth=dt.date(2023, 5, 2),
        medicine_codes=frozenset({"codeine"}),
        condition_codes=frozenset({"epilepsy"}),
        communication_difficulties=True,
    )
    checks = services.screening.start_checks(clinician, child, True)
    assert [(c.kind, c.code) for c in checks] == [
        (StartCheckKind.AGE, ""),
        (StartCheckKind.ACTIVE_ILLNESS, ""),
        (StartCheckKind.INTERACTING_MEDICINE, "codeine"),
        (StartCheckKind.PRECAUTION_CONDITION, "communication-difficulties"),
        (StartCheckKind.PRECAUTION_CONDITION, "epilepsy"),
    ]
    assert "3 years old" in checks[0].message

    with pytest.raises(ValidationFailed) as caught:
        services.screening.plan_trial(clinician, child, "small-child", MON, True, checks[:2])
    missing = caught.value.for_field("acknowledged")
    assert len(missing) == 3 and "Codeine" in missing[0]
    assert services.screening.trials_for_patient(clinician, child) == []

    trial = services.screening.plan_trial(clinician, child, "small-child", MON, True, checks)
    assert trial.status is TrialStatus.PLANNED and trial.stage is TrialStage.DOSE_PLANNED
    assert trial.active_illness
    assert trial.acknowledged_checks == tuple(checks)
    assert trial.checks_acknowledged_by == "carl"
    assert [(d.number, d.dose_mcg, d.volume_ml) for d in trial.doses] == [
        (1, 25, 0.5),
        (2, 50, 1.0),
        (3, 75, 1.5),
    ]


def test_planning_books_an_observation_bed_for_each_dose(
    services, clinician, staff, patient_id
) -> None:
    trial = plan(services, clinician, patient_id, THU)
    assert [d.planned_at for d in trial.doses] == [THU, at(11, 27, 10), at(11, 30, 8)]
    assert trial.doses[0].assess_from == THU + 4 * HOUR
    assert trial.doses[0].observe_until == THU + 8 * HOUR
    bookings = screening_bookings(services, staff, patient_id)
    assert [(b.starts_at, b.ends_at, b.status) for b in bookings] == [
        (THU, THU + 8 * HOUR, AppointmentStatus.BOOKED),
        (at(11, 27, 10), at(11, 27, 18), AppointmentStatus.BOOKED),
        (at(11, 30, 8), at(11, 30, 16), AppointmentStatus.BOOKED),
    ]
    assert [d.appointment_id for d in trial.doses] == [b.id for b in bookings]
    assert services.screening.active_trial_id(clinician, patient_id) == trial.id
    with services.context.unit_of_work() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.entity == "screening_trial"))
        assert entry is not None and entry.username == "carl"
        assert len(json.loads(entry.after_json)["doses"]) == 3


def test_a_second_trial_or_an_implanted_patient_is_refused(
    services, nurse, clinician, patient_id
) -> None:
    plan(services, clinician, patient_id, MON)
    with pytest.raises(ValidationFailed) as caught:
        plan(services, clinician, patient_id, TUE)
    assert "already has a screening trial" in caught.value.for_field("patient_id")[0]

    implanted, _pump = implanted_patient(services, nurse, clinician)
    with pytest.raises(ValidationFailed) as caught:
        plan(services, clinician, implanted, MON)
    assert "implanted pump" in caught.value.for_field("patient_id")[0]


def test_a_first_dose_in_the_past_or_after_hours_is_refused(
    services, clinician, patient_id
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        plan(services, clinician, patient_id, THU - HOUR)
    assert "past" in caught.value.for_field("first_dose_at")[0]
    with pytest.raises(ValidationFailed) as caught:
        plan(services, clinician, patient_id, at(11, 26, 11))  # 8 h ends 19:00
    message = caught.value.for_field("first_dose_at")[0]
    assert "after closing (18:00)" in message and "next allowed: Fri 27 Nov 08:00" in message


def test_any_minute_that_fits_is_accepted(services, clinician, patient_id) -> None:
    trial = plan(services, clinician, patient_id, at(11, 30, 9, 7) + dt.timedelta(seconds=42))
    assert trial.doses[0].planned_at == at(11, 30, 9, 7)
    assert trial.doses[1].planned_at == at(12, 1, 9, 7)


# --- schedule proposals -----------------------------------------------------------------


def test_proposal_across_a_weekend(services, staff, patient_id) -> None:
    proposal = services.screening.propose_schedule(staff, patient_id, "standard", THU)
    assert [d.at for d in proposal.doses] == [THU, at(11, 27, 10), at(11, 30, 8)]
    assert proposal.doses[2].preferred_at == at(11, 28, 10)
    assert "closed on Saturdays" in proposal.doses[2].reason
    assert proposal.reasons == (proposal.doses[2].reason,)


def test_proposal_when_the_beds_are_full(services, nurse, clinician, staff, patient_id) -> None:
    for mrn in ("SCR-000011", "SCR-000012"):
        plan(services, clinician, new_patient(services, nurse, mrn), THU)
    proposal = services.screening.propose_schedule(staff, patient_id, "standard", THU)
    # Thu and Fri 10:00–18:00 and Mon 08:00–16:00 hold both beds.
    assert [d.at for d in proposal.doses] == [at(12, 1, 8), at(12, 2, 8), at(12, 3, 8)]
    assert "all 2 observation beds are taken" in proposal.doses[0].reason
    with pytest.raises(ValidationFailed) as caught:
        plan(services, clinician, patient_id, THU)
    assert "observation beds are taken" in caught.value.for_field("first_dose_at")[0]


def test_a_proposal_never_starts_in_the_past(services, staff, patient_id) -> None:
    proposal = services.screening.propose_schedule(staff, patient_id, "standard", THU - 5 * HOUR)
    assert proposal.first_dose_at == THU


# --- doses ------------------------------------------------------------------------------


def test_dose_2_too_early_is_refused_and_a_late_dose_shifts_dose_3(
    services, clock, clinician, staff, patient_id, monday_trial
) -> None:
    clock.current = MON
    trial = give(services, clinician, monday_trial, 1, MON)
    assert trial.status is TrialStatus.IN_PROGRESS and trial.started_at == MON
    assert trial.stage is TrialStage.DOSE_GIVEN
    assert trial.doses[0].given_by == "carl" and trial.doses[0].lot_number == "SCR-LOT-1"
    assert trial.awaiting_response_number == 1
    clock.current = MON + 4 * HOUR
    assert services.screening.trial(clinician, trial.id).stage is TrialStage.OBSERVING
    trial = respond(services, clinician, trial, 1, DoseResponse.INADEQUATE, MON + 4 * HOUR)
    assert trial.next_dose_number == 2 and trial.next_dose_earliest_at == TUE

    clock.current = TUE + HOUR
    with pytest.raises(ValidationFailed) as caught:
        give(services, clinician, trial, 2, TUE - dt.timedelta(minutes=1))
    message = caught.value.for_field("given_at")[0]
    assert "too early" in message and "Earliest allowed: Tue 1 Dec 2026 09:00 GMT" in message

    trial = give(services, clinician, trial, 2, TUE + dt.timedelta(minutes=30))
    assert trial.dose(3).planned_at == WED + dt.timedelta(minutes=30)
    assert trial.dose(3).earliest_at == WED + dt.timedelta(minutes=30)
    bookings = screening_bookings(services, staff, patient_id)
    dose_2 = next(b for b in bookings if b.id == trial.dose(2).appointment_id)
    assert (dose_2.starts_at, dose_2.ends_at) == (at(12, 1, 9, 30), at(12, 1, 17, 30))
    old = next(b for b in bookings if b.starts_at == WED)
    new = next(b for b in bookings if b.id == trial.dose(3).appointment_id)
    assert old.status is AppointmentStatus.CANCELLED and "Rescheduled" in old.cancel_reason
    assert new.status is AppointmentStatus.BOOKED and new.rescheduled_from_id == old.id
    assert (new.starts_at, new.ends_at) == (at(12, 2, 9, 30), at(12, 2, 17, 30))


def test_doses_in_the_wrong_order_or_in_the_future_are_refused(
    services, clock, clinician, monday_trial
) -> None:
    clock.current = MON
    with pytest.raises(ValidationFailed) as caught:
        give(services, clinician, monday_trial, 2, MON)
    assert caught.value.for_field("number") == ["Dose 1 is the next dose, not dose 2."]
    with pytest.raises(ValidationFailed) as caught:
        give(services, clinician, monday_trial, 1, MON + HOUR)
    assert "future" in caught.value.for_field("given_at")[0]
    trial = give(services, clinician, monday_trial, 1, MON)
    clock.current = TUE
    with pytest.raises(ValidationFailed) as caught:
        give(services, clinician, trial, 2, TUE)
    assert "Record the response to dose 1" in caught.value.for_field("number")[0]


def test_a_stale_version_is_refused(services, clock, clinician, monday_trial) -> None:
    clock.current = MON
    trial = give(services, clinician, monday_trial, 1, MON)
    assert trial.version == monday_trial.version + 1
    clock.current = MON + 5 * HOUR
    with pytest.raises(StaleRecord):
        respond(services, clinician, monday_trial, 1, DoseResponse.POSITIVE, clock.current, 6)
    assert services.screening.trial(clinician, trial.id).doses[0].response is None


# --- observations -----------------------------------------------------------------------


def test_baseline_and_repeated_observations_show_the_change(
    services, clock, nurse, clinician, staff, monday_trial
) -> None:
    clock.current = MON - dt.timedelta(minutes=10)
    baseline = services.screening.record_observation(
        nurse,
        monday_trial.id,
        1,
        ObservationInput(
            observed_at=MON - dt.timedelta(minutes=15),
            is_baseline=True,
            penn_spasm_frequency=3,
            heart_rate_bpm=72,
            ashworth={"Hip adductors": "3", "Knee flexors": "2"},
        ),
    )
    assert baseline.recorded_by == "nina" and baseline.minutes_after_dose is None
    with pytest.raises(ValidationFailed) as caught:
        services.screening.record_observation(
            nurse, monday_trial.id, 1, ObservationInput(observed_at=clock.current, spo2_pct=97)
        )
    assert "only a baseline" in caught.value.for_field("is_baseline")[0]

    clock.current = MON
    trial = give(services, clinician, monday_trial, 1, MON)
    clock.current = MON + 4 * HOUR
    for minutes, values in (
        (60, {"heart_rate_bpm": 68, "respiratory_rate_per_min": 14, "spo2_pct": 97}),
        (
            240,
            {"penn_spasm_frequency": 1, "ashworth": {"Hip adductors": "1+", "Knee flexors": "1"}},
        ),
    ):
        services.screening.record_observation(
            nurse,
            trial.id,
            1,
            ObservationInput(observed_at=MON + dt.timedelta(minutes=minutes), **values),
        )
    views = services.screening.observations(staff, trial.id)
    assert [(v.is_baseline, v.minutes_after_dose) for v in views] == [
        (True, -15),
        (False, 60),
        (False, 240),
    ]
    change = services.screening.baseline_change(clinician, trial.id, 1)
    assert [(c.muscle_group, c.baseline, c.latest, c.change_steps) for c in change.ashworth] == [
        ("Hip adductors", "3", "1+", -2),
        ("Knee flexors", "2", "1", -2),
    ]
    assert (change.penn_baseline, change.penn_latest, change.penn_change) == (3, 1, -2)

    with pytest.raises(PermissionDenied):
        services.screening.record_observation(
            staff, trial.id, 1, ObservationInput(observed_at=clock.current, spo2_pct=97)
        )


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"penn_spasm_frequency": 5}, "penn_spasm_frequency", "between 0 and 4"),
        ({"heart_rate_bpm": 300}, "heart_rate_bpm", "between 20 and 250"),
        ({"respiratory_rate_per_min": 1}, "respiratory_rate_per_min", "between 2 and 80"),
        ({"spo2_pct": 40}, "spo2_pct", "between 50 and 100"),
        ({"ashworth": {"Hip adductors": "5"}}, "ashworth", "0, 1, 1+, 2, 3, 4"),
        ({"adverse_effect_codes": ("aspirin",)}, "adverse_effect_codes", "neither"),
        ({}, "observed_at", "at least one"),
    ],
)
def test_impossible_observations_are_refused(
    services, clock, nurse, clinician, monday_trial, values, field: str, words: str
) -> None:
    clock.current = MON
    trial = give(services, clinician, monday_trial, 1, MON)
    clock.current = MON + HOUR
    with pytest.raises(ValidationFailed) as caught:
        services.screening.record_observation(
            nurse, trial.id, 1, ObservationInput(observed_at=clock.current, **values)
        )
    assert words in caught.value.for_field(field)[0]


def test_observation_times_follow_the_dose(services, clock, nurse, clinician, monday_trial):
    clock.current = MON
    trial = give(services, clinician, monday_trial, 1, MON)
    clock.current = MON + HOUR
    for observed_at, baseline, field in (
        (MON + 2 * HOUR, False, "observed_at"),  # future
        (MON - HOUR, False, "observed_at"),  # before the dose, not a baseline
        (MON + HOUR, True, "observed_at"),  # a baseline after the dose
    ):
        with pytest.raises(ValidationFailed) as caught:
            services.screening.record_observation(
                nurse,
                trial.id,
                1,
                ObservationInput(observed_at=observed_at, is_baseline=baseline, spo2_pct=97),
            )
        assert caught.value.for_field(field)


def test_an_overdose_sign_is_detected_and_a_correction_keeps_both(
    services, clock, nurse, clinician, monday_trial
) -> None:
    clock.current = MON
    trial = give(services, clinician, monday_trial, 1, MON)
    clock.current = MON + 2 * HOUR
    choices = services.screening.adverse_effect_choices(nurse)
    assert choices[0].is_overdose_sign and not choices[-1].is_overdose_sign
    assert len({c.code for c in choices}) == len(choices)
    first = services.screening.record_observation(
        nurse,
        trial.id,
        1,
        ObservationInput(
            observed_at=MON + 90 * dt.timedelta(minutes=1),
            respiratory_rate_per_min=9,
            adverse_effect_codes=("drowsiness-or-dizziness", "sleepiness", "seizures"),
        ),
    )
    assert [(e.code, e.is_overdose_sign) for e in first.adverse_effects] == [
        ("drowsiness-or-dizziness", True),
        ("seizures", True),
        ("sleepiness", False),
    ]
    assert services.screening.overdose_signs_present(clinician, trial.id) == (
        "Convulsions (seizures)",
        "Drowsiness, dizziness, or lightheadedness",
    )
    assert "Mental confusion" in services.screening.leaflet_overdose_signs(nurse)

    correction = services.screening.record_observation(
        nurse,
        trial.id,
        1,
        ObservationInput(
            observed_at=first.observed_at,
            respiratory_rate_per_min=19,
            adverse_effect_codes=("sleepiness",),
            notes="RR misread; no seizure: it was the other patient's chart.",
            corrects_id=first.id,
        ),
    )
    views = services.screening.observations(nurse, trial.id)
    assert [(v.id, v.corrects_id, v.corrected) for v in views] == [
        (first.id, None, True),
        (correction.id, first.id, False),
    ]
    assert services.screening.overdose_signs_present(clinician, trial.id) == ()
    with pytest.raises(ValidationFailed) as caught:
        services.screening.record_observation(
            nurse,
            trial.id,
            1,
            ObservationInput(observed_at=first.observed_at, spo2_pct=97, corrects_id=first.id),
        )
    assert (
        f"already corrected by observation {correction.id}"
        in caught.value.for_field("corrects_id")[0]
    )


# --- the decision -----------------------------------------------------------------------


def test_inadequate_three_times_is_not_a_candidate(
    services, clock, clinician, monday_trial
) -> None:
    trial = monday_trial
    for number, given_at in ((1, MON), (2, TUE), (3, WED)):
        clock.current = given_at
        trial = give(services, clinician, trial, number, given_at)
        clock.current = given_at + 5 * HOUR
        trial = respond(services, clinician, trial, number, DoseResponse.INADEQUATE, clock.current)
    assert trial.status is TrialStatus.NOT_CANDIDATE and trial.stage is TrialStage.ENDED
    assert trial.status_text == "No adequate response after 3 doses: not a candidate"
    assert trial.decided_by == "carl" and trial.ended_at == WED + 5 * HOUR
    assert trial.suggested_starting_dose_mcg_per_day is None
    assert services.screening.active_trial_id(clinician, trial.patient_id) is None


@pytest.mark.parametrize(("effect_hours", "starting_dose"), [(10, 75), (6, 150)])
def test_positive_at_dose_2_suggests_the_starting_dose(
    services, clock, clinician, staff, patient_id, monday_trial, effect_hours, starting_dose
) -> None:
    clock.current = MON
    trial = give(services, clinician, monday_trial, 1, MON)
    clock.current = MON + 5 * HOUR
    trial = respond(services, clinician, trial, 1, DoseResponse.INADEQUATE, clock.current)
    clock.current = TUE + HOUR
    trial = give(services, clinician, trial, 2, TUE)
    clock.current = TUE + 3 * HOUR
    with pytest.raises(ValidationFailed) as caught:
        respond(services, clinician, trial, 2, DoseResponse.POSITIVE, clock.current, 6)
    assert "can be recorded from Tue 1 Dec 2026 13:00" in caught.value.for_field("recorded_at")[0]
    clock.current = TUE + 6 * HOUR
    trial = respond(
        services, clinician, trial, 2, DoseResponse.POSITIVE, clock.current, effect_hours
    )
    assert trial.status is TrialStatus.CANDIDATE
    assert trial.effective_dose_mcg == 75 and trial.effect_duration_hours == effect_hours
    assert trial.suggested_starting_dose_mcg_per_day == starting_dose
    assert trial.suggested_starting_dose_mcg_per_hour == pytest.approx(starting_dose / 24)
    assert [d.number for d in trial.doses] == [1, 2]  # dose 3 will not be given
    dose_3 = next(b for b in screening_bookings(services, staff, patient_id) if b.starts_at == WED)
    assert dose_3.status is AppointmentStatus.CANCELLED and "ended" in dose_3.cancel_reason


def test_effect_duration_may_follow_a_positive_decision(
    services, clock, clinician, nurse, monday_trial
) -> None:
    clock.current = MON
    trial = give(services, clinician, monday_trial, 1, MON)
    clock.current = MON + 5 * HOUR
    trial = respond(services, clinician, trial, 1, DoseResponse.POSITIVE, clock.current)
    assert trial.suggested_starting_dose_mcg_per_day is None
    with pytest.raises(ValidationFailed) as caught:
        services.screening.set_effect_duration(clinician, trial.id, trial.version, 0)
    assert caught.value.for_field("effect_hours")
    with pytest.raises(PermissionDenied):
        services.screening.set_effect_duration(nurse, trial.id, trial.version, 9)
    trial = services.screening.set_effect_duration(clinician, trial.id, trial.version, 9)
    assert trial.suggested_starting_dose_mcg_per_day == 50


def test_stopping_for_an_adverse_event_needs_a_reason(
    services, clock, clinician, staff, patient_id, monday_trial
) -> None:
    clock.current = MON + HOUR
    trial = give(services, clinician, monday_trial, 1, MON)
    with pytest.raises(ValidationFailed) as caught:
        services.screening.stop_trial(
            clinician, trial.id, trial.version, StopCause.ADVERSE_EVENT, "  ", clock.current
        )
    assert caught.value.for_field("reason") == ["Reason for stopping is required."]
    trial = services.screening.stop_trial(
        clinician,
        trial.id,
        trial.version,
        StopCause.ADVERSE_EVENT,
        "Respiratory depression, RR 8/min",
        clock.current,
    )
    assert trial.status is TrialStatus.STOPPED and trial.stop_cause is StopCause.ADVERSE_EVENT
    assert trial.status_text == "Stopped for an adverse event: Respiratory depression, RR 8/min"
    bookings = screening_bookings(services, staff, patient_id)
    assert [b.status for b in bookings] == [
        AppointmentStatus.BOOKED,  # dose 1's bed stays taken
        AppointmentStatus.CANCELLED,
        AppointmentStatus.CANCELLED,
    ]
    with pytest.raises(ValidationFailed) as caught:
        give(services, clinician, trial, 2, clock.current)
    assert "trial has ended" in caught.value.for_field("number")[0]


def test_an_adverse_event_stop_needs_a_dose_given(services, clinician, monday_trial) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.screening.stop_trial(
            clinician, monday_trial.id, monday_trial.version, StopCause.ADVERSE_EVENT, "x", NOW
        )
    assert "stop the trial as the clinician's decision" in caught.value.for_field("cause")[0]
    trial = services.screening.stop_trial(
        clinician, monday_trial.id, monday_trial.version, StopCause.CLINICIAN, "Flare", NOW
    )
    assert trial.status is TrialStatus.STOPPED and trial.doses == ()


# --- the board --------------------------------------------------------------------------


def test_board_for_today(services, clock, nurse, clinician, staff, patient_id) -> None:
    trial = plan(services, clinician, patient_id, THU)
    plan(services, clinician, new_patient(services, nurse, "SCR-000021"), at(11, 27, 9))
    [row] = services.screening.board(staff)
    assert (row.trial_id, row.dose_number, row.dose_mcg, row.planned_at) == (trial.id, 1, 50, THU)
    assert row.status_text == "Due since 10:00"

    trial = give(services, clinician, trial, 1, THU)
    [row] = services.screening.board(staff)
    assert row.given_at == THU and row.trial_stage is TrialStage.DOSE_GIVEN
    assert (row.assess_from, row.observe_until) == (THU + 4 * HOUR, THU + 8 * HOUR)
    assert row.status_text == "Given 10:00; assess from 14:00"
    clock.current = THU + 4 * HOUR + dt.timedelta(minutes=30)
    [row] = services.screening.board(staff)
    assert row.trial_stage is TrialStage.OBSERVING
    assert row.status_text == "Assess now; observation ends 18:00"

    tomorrow = services.screening.board(staff, dt.date(2026, 11, 27))
    assert [(r.mrn, r.dose_number, r.planned_at) for r in tomorrow] == [
        ("SCR-000021", 1, at(11, 27, 9)),
        ("SCR-000001", 2, at(11, 27, 10)),
    ]
    assert tomorrow[1].status_text == "Due 10:00; waiting for the response to dose 1"


# --- permissions ------------------------------------------------------------------------


def test_permissions_per_role(services, clock, nurse, clinician, staff, admin, patient_id):
    with pytest.raises(PermissionDenied):
        plan(services, nurse, patient_id, MON)
    trial = plan(services, clinician, patient_id, MON)
    clock.current = MON
    for who in (nurse, staff, admin):
        with pytest.raises(PermissionDenied):
            give(services, who, trial, 1, MON)
    trial = give(services, clinician, trial, 1, MON)
    clock.current = MON + 5 * HOUR
    with pytest.raises(PermissionDenied):
        respond(services, nurse, trial, 1, DoseResponse.POSITIVE, clock.current, 6)
    with pytest.raises(PermissionDenied):
        services.screening.stop_trial(
            nurse, trial.id, trial.version, StopCause.CLINICIAN, "x", clock.current
        )
    assert services.screening.trial(staff, trial.id).id == trial.id
    assert services.screening.board(staff)  # front desk sees the board
    with pytest.raises(PermissionDenied):
        services.screening.trial(admin, trial.id)
    with pytest.raises(PermissionDenied):
        services.screening.board(admin)
    with pytest.raises(PermissionDenied):
        services.screening.record_observation(
            admin, trial.id, 1, ObservationInput(observed_at=clock.current, spo2_pct=97)
        )
