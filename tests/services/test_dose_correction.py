"""Correcting a given test dose: a new entry pointing at the old one; both kept, the new used.

The clock starts Thu 26 Nov 2026 10:00 (London = UTC); the trial's first dose is planned
Mon 30 Nov 09:00.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from pumpclinic.db.models import AuditEntry, TestDose
from pumpclinic.domain.enums import AppointmentStatus, DoseResponse, TrialStatus
from pumpclinic.domain.screening import TrialStage
from pumpclinic.services.errors import PermissionDenied, StaleRecord, ValidationFailed
from pumpclinic.services.screening import DoseCorrection, ObservationInput
from tests.services.test_screening import (
    HOUR,
    MON,
    TUE,
    WED,
    give,
    new_patient,
    plan,
    respond,
    screening_bookings,
)

MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def given_trial(services, clock, clinician, nurse):
    """Dose 1 recorded as given Mon 09:00 (it was really 09:40); now Mon 10:00."""
    patient_id = new_patient(services, nurse)
    trial = plan(services, clinician, patient_id, MON)
    clock.current = MON
    trial = give(services, clinician, trial, 1, MON)
    clock.current = MON + HOUR
    return trial


def correct(services, actor, trial, number=1, **changes):
    dose = trial.dose(number)
    values = {
        "given_at": dose.given_at,
        "lot_number": dose.lot_number,
        "route": dose.route,
        "reason": "Time copied from the wrong line of the chart",
    }
    values.update(changes)
    return services.screening.correct_dose(
        actor, trial.id, trial.version, number, DoseCorrection(**values)
    )


def dose_rows(services, trial_id):
    with services.context.unit_of_work() as session:
        rows = session.scalars(
            select(TestDose)
            .where(TestDose.trial_id == trial_id, TestDose.number == 1)
            .order_by(TestDose.id)
        ).all()
        session.expunge_all()
        return rows


def test_a_clinician_corrects_the_time_and_the_original_is_kept(
    services, clinician, given_trial
) -> None:
    before = dose_rows(services, given_trial.id)
    corrected = correct(services, clinician, given_trial, given_at=MON + 40 * MINUTE)

    dose = corrected.dose(1)
    assert dose.given_at == MON + 40 * MINUTE
    assert dose.assess_from == MON + 40 * MINUTE + 4 * HOUR
    assert dose.observe_until == MON + 40 * MINUTE + 8 * HOUR
    assert dose.correction_reason == "Time copied from the wrong line of the chart"
    (old,) = dose.superseded
    assert old.given_at == MON and old.corrected_by_entry_id == dose.entry_id
    assert corrected.started_at == MON + 40 * MINUTE
    assert corrected.version > given_trial.version

    rows = dose_rows(services, given_trial.id)
    assert len(rows) == 2
    original, new = rows
    assert original.id == before[0].id and original.given_at == MON  # unchanged
    assert original.corrects_id is None and original.lot_number == "SCR-LOT-1"
    assert new.corrects_id == original.id and new.given_at == MON + 40 * MINUTE


def test_lot_and_route_alone_may_be_corrected(services, clinician, given_trial) -> None:
    corrected = correct(
        services, clinician, given_trial, lot_number="LOT-7781", route="lumbar drain"
    )
    dose = corrected.dose(1)
    assert (dose.given_at, dose.lot_number, dose.route) == (MON, "LOT-7781", "lumbar drain")
    assert dose.superseded[0].lot_number == "SCR-LOT-1"


def test_the_correction_is_audited(services, clinician, given_trial) -> None:
    corrected = correct(services, clinician, given_trial, given_at=MON + 40 * MINUTE)
    with services.context.unit_of_work() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.entity == "test_dose"))
        assert entry is not None
        assert entry.username == "carl" and entry.action == "create"
        assert entry.entity_id == str(corrected.dose(1).entry_id)
        assert '"corrects_id": ' in (entry.after_json or "")
        assert "wrong line of the chart" in (entry.after_json or "")


@pytest.mark.parametrize("role", ["nurse", "staff", "admin"])
def test_only_those_who_record_doses_may_correct_them(request, services, given_trial, role) -> None:
    actor = request.getfixturevalue(role)
    with pytest.raises(PermissionDenied):
        correct(services, actor, given_trial, given_at=MON + 40 * MINUTE)
    assert len(dose_rows(services, given_trial.id)) == 1


def test_a_reason_is_required_and_something_must_change(services, clinician, given_trial) -> None:
    with pytest.raises(ValidationFailed) as caught:
        correct(services, clinician, given_trial, given_at=MON + 40 * MINUTE, reason="  ")
    assert caught.value.for_field("reason") == ["Reason for the correction is required."]
    with pytest.raises(ValidationFailed) as caught:
        correct(services, clinician, given_trial)
    assert "Nothing to correct" in caught.value.for_field("given_at")[0]
    with pytest.raises(ValidationFailed) as caught:
        correct(services, clinician, given_trial, lot_number="", route=" ")
    assert caught.value.for_field("lot_number") == ["Lot number is required."]
    assert caught.value.for_field("route") == ["Route is required."]
    assert len(dose_rows(services, given_trial.id)) == 1


def test_a_future_time_or_a_planned_dose_is_refused(services, clinician, given_trial) -> None:
    with pytest.raises(ValidationFailed) as caught:
        correct(services, clinician, given_trial, given_at=MON + 2 * HOUR)
    assert "is in the future" in caught.value.for_field("given_at")[0]
    with pytest.raises(ValidationFailed) as caught:
        services.screening.correct_dose(
            clinician,
            given_trial.id,
            given_trial.version,
            2,
            DoseCorrection(MON, "L", "lumbar puncture", "wrong"),
        )
    assert caught.value.for_field("number") == ["Dose 2 has not been given: nothing to correct."]


def test_a_stale_trial_is_refused(services, clinician, given_trial) -> None:
    correct(services, clinician, given_trial, lot_number="LOT-1")
    with pytest.raises(StaleRecord):
        correct(services, clinician, given_trial, lot_number="LOT-2")


def test_the_24_hour_spacing_holds_both_ways(services, clock, clinician, given_trial) -> None:
    clock.current = MON + 5 * HOUR
    trial = respond(services, clinician, given_trial, 1, DoseResponse.INADEQUATE, clock.current)
    clock.current = TUE + HOUR
    trial = give(services, clinician, trial, 2, TUE)
    # Dose 1 later than Mon 09:00 would leave less than 24 h before dose 2 (Tue 09:00).
    with pytest.raises(ValidationFailed) as caught:
        correct(services, clinician, trial, 1, given_at=MON + 10 * MINUTE)
    message = caught.value.for_field("given_at")[0]
    assert "24 hours must pass between doses" in message
    assert "Latest possible: Mon 30 Nov 2026 09:00 GMT" in message
    # Dose 2 earlier than 24 h after dose 1.
    with pytest.raises(ValidationFailed) as caught:
        correct(services, clinician, trial, 2, given_at=TUE - 30 * MINUTE)
    message = caught.value.for_field("given_at")[0]
    assert "less than 24 hours after dose 1" in message
    assert "Earliest possible: Tue 1 Dec 2026 09:00 GMT" in message


def test_the_response_must_still_follow_the_assessment_time(
    services, clock, clinician, given_trial
) -> None:
    clock.current = MON + 4 * HOUR + 10 * MINUTE
    trial = respond(services, clinician, given_trial, 1, DoseResponse.INADEQUATE, clock.current)
    with pytest.raises(ValidationFailed) as caught:
        correct(services, clinician, trial, given_at=MON + 30 * MINUTE)
    message = caught.value.for_field("given_at")[0]
    assert "its response was recorded Mon 30 Nov 2026 13:10 GMT" in message
    assert "Latest possible: Mon 30 Nov 2026 09:10 GMT" in message
    corrected = correct(services, clinician, trial, given_at=MON + 10 * MINUTE)
    assert corrected.dose(1).response is DoseResponse.INADEQUATE


def test_observations_keep_their_side_of_the_dose(
    services, clock, nurse, clinician, given_trial
) -> None:
    services.screening.record_observation(
        nurse, given_trial.id, 1, ObservationInput(observed_at=MON + 20 * MINUTE, spo2_pct=97)
    )
    with pytest.raises(ValidationFailed) as caught:
        correct(services, clinician, given_trial, given_at=MON + 40 * MINUTE)
    assert "cannot be later than that" in caught.value.for_field("given_at")[0]


def test_consumers_use_the_correction(services, clock, nurse, clinician, staff, given_trial):
    """State machine, spacing, observation windows, board and bookings read the new entry."""
    services.screening.record_observation(
        nurse, given_trial.id, 1, ObservationInput(observed_at=MON + 50 * MINUTE, spo2_pct=97)
    )
    trial = correct(services, clinician, given_trial, given_at=MON + 40 * MINUTE)

    # The observation recorded against the original entry now counts from the corrected time.
    (observation,) = services.screening.observations(nurse, trial.id)
    assert observation.dose_number == 1 and observation.minutes_after_dose == 10
    # State machine: assessment opens 4 h after the corrected time, not the recorded one.
    clock.current = MON + 4 * HOUR + 20 * MINUTE
    assert services.screening.trial(clinician, trial.id).stage is TrialStage.DOSE_GIVEN
    with pytest.raises(ValidationFailed) as caught:
        respond(services, clinician, trial, 1, DoseResponse.INADEQUATE, clock.current)
    assert "13:40" in caught.value.for_field("recorded_at")[0]
    # Board countdowns.
    (row,) = [r for r in services.screening.board(staff) if r.dose_number == 1]
    assert row.given_at == MON + 40 * MINUTE
    assert row.assess_from == MON + 40 * MINUTE + 4 * HOUR
    # The bed booking follows the corrected time.
    booking = screening_bookings(services, staff, trial.patient_id)[0]
    assert booking.starts_at == MON + 40 * MINUTE
    assert booking.status is AppointmentStatus.BOOKED
    # 24 h spacing counts from the corrected time; dose 2 planned later moves with it.
    clock.current = MON + 5 * HOUR
    trial = respond(services, clinician, trial, 1, DoseResponse.INADEQUATE, clock.current)
    assert trial.next_dose_earliest_at == TUE + 40 * MINUTE
    assert trial.dose(2).planned_at >= TUE + 40 * MINUTE
    clock.current = TUE + HOUR
    with pytest.raises(ValidationFailed) as caught:
        give(services, clinician, trial, 2, TUE + 30 * MINUTE)
    assert "Earliest allowed: Tue 1 Dec 2026 09:40 GMT" in caught.value.for_field("given_at")[0]
    trial = give(services, clinician, trial, 2, TUE + 45 * MINUTE)
    assert trial.status is TrialStatus.IN_PROGRESS


def test_a_late_correction_moves_the_planned_next_dose(
    services, clock, clinician, staff, nurse
) -> None:
    patient_id = new_patient(services, nurse)
    trial = plan(services, clinician, patient_id, MON)
    clock.current = MON
    trial = give(services, clinician, trial, 1, MON)
    clock.current = MON + 5 * HOUR
    trial = respond(services, clinician, trial, 1, DoseResponse.INADEQUATE, clock.current)
    assert trial.dose(2).planned_at == TUE
    trial = correct(services, clinician, trial, given_at=MON + 30 * MINUTE)
    assert trial.dose(2).planned_at >= TUE + 30 * MINUTE
    assert trial.dose(3).planned_at >= trial.dose(2).planned_at + 24 * HOUR
    assert trial.dose(3).planned_at >= WED
