"""The screening trial engine (ITB-FACTS §1): dose plan, state machine, start checks, schedule."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import zoneinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pumpclinic.domain.calendar import ClinicCalendar
from pumpclinic.domain.enums import DoseResponse, TrialStatus
from pumpclinic.domain.reference import Reference
from pumpclinic.domain.screening import (
    MIN_DOSE_INTERVAL,
    ScheduleError,
    ScreeningRuleError,
    StartCheckKind,
    StopCause,
    TrialStage,
    TrialState,
    give_dose,
    plan_doses,
    propose_trial_schedule,
    record_response,
    replan,
    start_trial,
    stop_trial,
    trial_start_checks,
)
from pumpclinic.reference_files import load_reference

LONDON = zoneinfo.ZoneInfo("Europe/London")
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(hours=24)

# Europe/London 2026: clocks go forward Sun 29 Mar 01:00 GMT, back Sun 25 Oct 02:00 BST.
BEFORE_SPRING_CHANGE = dt.datetime(2026, 3, 28, 9, 0, tzinfo=LONDON)  # Sat, GMT
BEFORE_AUTUMN_CHANGE = dt.datetime(2026, 10, 24, 9, 0, tzinfo=LONDON)  # Sat, BST
MONDAY = dt.datetime(2026, 11, 23, 9, 0, tzinfo=LONDON)

_REFERENCE = load_reference()
STANDARD = _REFERENCE.screening_protocol("standard")
SMALL_CHILD = _REFERENCE.screening_protocol("small-child")


def elapsed(earlier: dt.datetime, later: dt.datetime) -> dt.timedelta:
    """Real time between two aware datetimes (Python subtracts same-zone times on the wall)."""
    return later.astimezone(dt.UTC) - earlier.astimezone(dt.UTC)


def wall(at: dt.datetime) -> tuple[int, int]:
    local = at.astimezone(LONDON)
    return local.hour, local.minute


# --- The dose plan -------------------------------------------------------------------------


def test_standard_plan_is_50_75_100_mcg_at_50_mcg_per_ml() -> None:
    doses = plan_doses(STANDARD, MONDAY)
    assert [(d.number, d.dose_mcg, d.volume_ml) for d in doses] == [
        (1, 50, 1.0),
        (2, 75, 1.5),
        (3, 100, 2.0),
    ]
    assert {d.concentration_mcg_per_ml for d in doses} == {50}
    assert [d.earliest_at for d in doses] == [MONDAY, MONDAY + DAY, MONDAY + 2 * DAY]
    first = doses[0]
    assert elapsed(first.earliest_at, first.assess_from) == 4 * HOUR
    assert elapsed(first.earliest_at, first.observe_until) == 8 * HOUR
    assert all(d.given_at is None for d in doses)


def test_small_child_plan_starts_at_25_mcg() -> None:
    doses = plan_doses(SMALL_CHILD, MONDAY)
    assert [(d.dose_mcg, d.volume_ml) for d in doses] == [(25, 0.5), (50, 1.0), (75, 1.5)]


def test_24_hours_across_the_spring_change_is_10_00_on_the_wall_clock() -> None:
    doses = plan_doses(STANDARD, BEFORE_SPRING_CHANGE)
    assert [wall(d.earliest_at) for d in doses] == [(9, 0), (10, 0), (10, 0)]
    assert elapsed(doses[0].earliest_at, doses[1].earliest_at) == DAY
    assert doses[1].earliest_at.utcoffset() == HOUR  # BST
    # The observation spans no change here, but is elapsed time all the same.
    assert wall(doses[1].assess_from) == (14, 0)
    assert wall(doses[1].observe_until) == (18, 0)


def test_24_hours_across_the_autumn_change_is_08_00_on_the_wall_clock() -> None:
    doses = plan_doses(STANDARD, BEFORE_AUTUMN_CHANGE)
    assert [wall(d.earliest_at) for d in doses] == [(9, 0), (8, 0), (8, 0)]
    assert elapsed(doses[0].earliest_at, doses[1].earliest_at) == DAY
    assert doses[1].earliest_at.utcoffset() == dt.timedelta(0)  # GMT


def test_an_observation_across_the_change_night_is_8_elapsed_hours() -> None:
    evening = dt.datetime(2026, 10, 24, 22, 0, tzinfo=LONDON)
    dose = plan_doses(STANDARD, evening)[0]
    assert elapsed(evening, dose.observe_until) == 8 * HOUR
    assert wall(dose.observe_until) == (5, 0)  # 22:00 BST + 8 h = 05:00 GMT


def test_plan_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_doses(STANDARD, dt.datetime(2026, 11, 23, 9, 0))


def test_a_late_dose_shifts_every_dose_after_it() -> None:
    late_second = MONDAY + DAY + 5 * HOUR
    doses = replan(STANDARD, [MONDAY, late_second])
    assert doses[0].given_at == MONDAY
    assert doses[1].given_at == late_second
    assert doses[1].earliest_at == MONDAY + DAY
    assert doses[1].assess_from == late_second + 4 * HOUR
    assert doses[2].given_at is None
    assert doses[2].earliest_at == late_second + DAY


def test_a_late_first_dose_shifts_the_second() -> None:
    doses = replan(STANDARD, [MONDAY + 2 * HOUR])
    assert doses[1].earliest_at == MONDAY + DAY + 2 * HOUR
    assert doses[2].earliest_at == MONDAY + 2 * DAY + 2 * HOUR


def test_replan_across_the_spring_change_keeps_24_elapsed_hours() -> None:
    second = dt.datetime(2026, 3, 30, 9, 0, tzinfo=LONDON)  # BST, 47 elapsed hours later
    doses = replan(STANDARD, [BEFORE_SPRING_CHANGE, second])
    assert doses[1].earliest_at == dt.datetime(2026, 3, 29, 10, 0, tzinfo=LONDON)
    assert elapsed(doses[1].at, doses[2].earliest_at) == DAY


def test_replan_refuses_a_dose_less_than_24_hours_after_the_one_before() -> None:
    second = BEFORE_SPRING_CHANGE + dt.timedelta(hours=23, minutes=30)
    with pytest.raises(ScreeningRuleError) as caught:
        replan(STANDARD, [BEFORE_SPRING_CHANGE, second])
    message = str(caught.value)
    assert "at least 24 hours after dose 1" in message
    # The earliest allowed is 10:00 BST, not the wall clock's 09:00.
    assert "Earliest allowed: Sun 29 Mar 2026 10:00 BST" in message
    assert "2026-03-29T10:00:00+01:00" in message


def test_replan_refuses_more_times_than_doses_and_none() -> None:
    with pytest.raises(ScreeningRuleError, match="has 3 doses; 4 given times"):
        replan(STANDARD, [MONDAY + n * DAY for n in range(4)])
    with pytest.raises(ScreeningRuleError, match="first dose"):
        replan(STANDARD, [])


def test_an_edited_protocol_cannot_shorten_the_24_hours() -> None:
    hasty = dataclasses.replace(STANDARD, min_interval_hours=12)
    doses = plan_doses(hasty, MONDAY)
    assert elapsed(doses[0].earliest_at, doses[1].earliest_at) == MIN_DOSE_INTERVAL
    with pytest.raises(ScreeningRuleError, match="24 hours"):
        give_dose(
            record_response(
                give_dose(start_trial(hasty), MONDAY), DoseResponse.INADEQUATE, MONDAY + 5 * HOUR
            ),
            MONDAY + 13 * HOUR,
        )


gaps = st.lists(
    st.timedeltas(min_value=DAY, max_value=dt.timedelta(days=9)), min_size=0, max_size=2
)
starts = st.datetimes(
    min_value=dt.datetime(2025, 1, 1),
    max_value=dt.datetime(2028, 12, 31),
    timezones=st.just(LONDON),
)


@given(first=starts, gaps=gaps)
def test_no_planned_or_replanned_dose_is_less_than_24_hours_after_the_previous(
    first: dt.datetime, gaps: list[dt.timedelta]
) -> None:
    given_times = [first]
    for gap in gaps:
        given_times.append((given_times[-1].astimezone(dt.UTC) + gap).astimezone(LONDON))
    for doses in (plan_doses(STANDARD, first), replan(STANDARD, given_times)):
        for earlier, later in itertools.pairwise(doses):
            assert elapsed(earlier.at, later.at) >= DAY
            assert elapsed(earlier.at, later.earliest_at) == DAY
            assert elapsed(later.at, later.observe_until) == 8 * HOUR


@given(first=starts, early=st.timedeltas(min_value=dt.timedelta(0), max_value=DAY))
def test_any_dose_earlier_than_24_hours_is_refused(first: dt.datetime, early: dt.timedelta) -> None:
    too_soon = (first.astimezone(dt.UTC) + DAY - early - dt.timedelta(microseconds=1)).astimezone(
        LONDON
    )
    with pytest.raises(ScreeningRuleError):
        replan(STANDARD, [first, too_soon])


# --- The state machine ---------------------------------------------------------------------


def given_first(at: dt.datetime = MONDAY) -> TrialState:
    return give_dose(start_trial(STANDARD), at)


def inadequate_after(state: TrialState) -> TrialState:
    last = state.last_dose
    assert last is not None
    return record_response(state, DoseResponse.INADEQUATE, last.assess_from)


def test_a_new_trial_is_planned_and_waits_for_dose_1() -> None:
    state = start_trial(STANDARD)
    assert state.status is TrialStatus.PLANNED
    assert state.stage(MONDAY) is TrialStage.DOSE_PLANNED
    assert state.next_dose is not None and state.next_dose.number == 1
    assert state.next_dose_earliest_at is None  # any time
    assert state.plan(MONDAY) == plan_doses(STANDARD, MONDAY)
    with pytest.raises(ScreeningRuleError, match="first-dose time"):
        state.plan()


def test_dose_given_then_observing_from_assess_from() -> None:
    state = given_first()
    assert state.status is TrialStatus.IN_PROGRESS
    dose = state.doses[0]
    assert (dose.number, dose.dose_mcg, dose.volume_ml) == (1, 50, 1.0)
    assert dose.assess_from == MONDAY + 4 * HOUR
    assert dose.observe_until == MONDAY + 8 * HOUR
    assert state.stage(MONDAY + HOUR) is TrialStage.DOSE_GIVEN
    assert state.stage(MONDAY + 4 * HOUR - dt.timedelta(seconds=1)) is TrialStage.DOSE_GIVEN
    assert state.stage(MONDAY + 4 * HOUR) is TrialStage.OBSERVING
    assert state.stage(MONDAY + 12 * HOUR) is TrialStage.OBSERVING  # still awaits the decision
    assert state.awaiting_response
    assert state.next_dose is None


def test_positive_response_ends_the_trial_as_a_candidate() -> None:
    state = record_response(given_first(), DoseResponse.POSITIVE, MONDAY + 5 * HOUR)
    assert state.status is TrialStatus.CANDIDATE
    assert state.ended and state.ended_at == MONDAY + 5 * HOUR
    assert state.stage(MONDAY + 6 * HOUR) is TrialStage.ENDED
    assert state.effective_dose_mcg == 50
    assert state.doses[0].response is DoseResponse.POSITIVE


def test_inadequate_response_leads_to_the_next_dose_24_hours_later() -> None:
    state = inadequate_after(given_first())
    assert state.status is TrialStatus.IN_PROGRESS
    assert state.stage(MONDAY + 6 * HOUR) is TrialStage.DOSE_PLANNED
    assert state.next_dose is not None and state.next_dose.dose_mcg == 75
    assert state.next_dose_earliest_at == MONDAY + DAY
    state = give_dose(state, MONDAY + DAY, dose_mcg=75)
    assert state.doses[1].volume_ml == 1.5


def test_positive_at_the_second_dose_makes_75_mcg_the_effective_dose() -> None:
    state = give_dose(inadequate_after(given_first()), MONDAY + DAY)
    state = record_response(state, DoseResponse.POSITIVE, MONDAY + DAY + 6 * HOUR)
    assert state.status is TrialStatus.CANDIDATE
    assert state.effective_dose_mcg == 75


def test_inadequate_at_the_last_dose_means_not_a_candidate() -> None:
    state = given_first()
    for day in (1, 2):
        state = give_dose(inadequate_after(state), MONDAY + day * DAY)
    state = inadequate_after(state)
    assert state.status is TrialStatus.NOT_CANDIDATE
    assert state.ended and state.effective_dose_mcg is None
    assert state.stage(MONDAY + 3 * DAY) is TrialStage.ENDED


def test_dose_4_is_refused() -> None:
    state = given_first()
    for day in (1, 2):
        state = give_dose(inadequate_after(state), MONDAY + day * DAY)
    state = inadequate_after(state)
    with pytest.raises(ScreeningRuleError, match="Dose 4 cannot be given: the trial has ended"):
        give_dose(state, MONDAY + 3 * DAY)


def test_a_dose_less_than_24_hours_after_the_previous_is_refused_with_the_earliest_time() -> None:
    state = inadequate_after(give_dose(start_trial(STANDARD), BEFORE_AUTUMN_CHANGE))
    # 09:00 BST + 24 h = 08:00 GMT: 08:30 is allowed, 07:59 is not.
    allowed = dt.datetime(2026, 10, 25, 8, 30, tzinfo=LONDON)
    assert give_dose(state, allowed).doses[1].given_at == allowed
    too_early = dt.datetime(2026, 10, 25, 7, 59, tzinfo=LONDON)
    with pytest.raises(ScreeningRuleError) as caught:
        give_dose(state, too_early)
    assert "Dose 2 at Sun 25 Oct 2026 07:59 GMT is too early" in str(caught.value)
    assert "Earliest allowed: Sun 25 Oct 2026 08:00 GMT" in str(caught.value)


def test_the_spring_change_refuses_the_wall_clocks_09_00() -> None:
    state = inadequate_after(give_dose(start_trial(STANDARD), BEFORE_SPRING_CHANGE))
    nine_bst = dt.datetime(2026, 3, 29, 9, 0, tzinfo=LONDON)  # only 23 h later
    with pytest.raises(ScreeningRuleError, match="Earliest allowed: Sun 29 Mar 2026 10:00 BST"):
        give_dose(state, nine_bst)
    assert give_dose(state, nine_bst + HOUR).doses[1].given_at == nine_bst + HOUR


def test_exactly_24_hours_is_allowed_in_any_zone() -> None:
    state = inadequate_after(given_first())
    in_utc = (MONDAY + DAY).astimezone(dt.UTC)
    assert give_dose(state, in_utc).doses[1].given_at == in_utc


def test_the_next_dose_waits_for_the_response() -> None:
    with pytest.raises(ScreeningRuleError, match="Record the response to dose 1 before giving"):
        give_dose(given_first(), MONDAY + DAY)


def test_the_next_dose_cannot_come_before_the_response_was_recorded() -> None:
    state = record_response(given_first(), DoseResponse.INADEQUATE, MONDAY + 30 * HOUR)
    with pytest.raises(ScreeningRuleError, match="before the response to dose 1 was recorded"):
        give_dose(state, MONDAY + 25 * HOUR)


def test_a_dose_other_than_the_protocols_is_refused() -> None:
    with pytest.raises(ScreeningRuleError, match="is 50 mcg \\(1 mL\\), not 75 mcg"):
        give_dose(start_trial(STANDARD), MONDAY, dose_mcg=75)


def test_response_before_assess_from_is_refused() -> None:
    state = given_first()
    with pytest.raises(ScreeningRuleError) as caught:
        record_response(
            state, DoseResponse.POSITIVE, MONDAY + 3 * HOUR + 59 * dt.timedelta(minutes=1)
        )
    assert "can be recorded from Mon 23 Nov 2026 13:00 GMT (4 h after the dose)" in str(
        caught.value
    )
    at_assess_from = record_response(state, DoseResponse.POSITIVE, MONDAY + 4 * HOUR)
    assert at_assess_from.status is TrialStatus.CANDIDATE


def test_response_without_a_dose_is_refused() -> None:
    with pytest.raises(ScreeningRuleError, match="No dose has been given yet"):
        record_response(start_trial(STANDARD), DoseResponse.POSITIVE, MONDAY)


def test_recording_a_response_twice_is_refused() -> None:
    state = inadequate_after(given_first())
    with pytest.raises(ScreeningRuleError, match="response to dose 1 is already recorded"):
        record_response(state, DoseResponse.POSITIVE, MONDAY + 6 * HOUR)


def test_nothing_after_a_positive_response() -> None:
    state = record_response(given_first(), DoseResponse.POSITIVE, MONDAY + 5 * HOUR)
    with pytest.raises(ScreeningRuleError, match="trial has ended \\(positive response to 50"):
        give_dose(state, MONDAY + DAY)
    with pytest.raises(ScreeningRuleError, match="trial has ended"):
        record_response(state, DoseResponse.INADEQUATE, MONDAY + 6 * HOUR)
    with pytest.raises(ScreeningRuleError, match="already ended"):
        stop_trial(state, StopCause.CLINICIAN, "changed mind", MONDAY + 6 * HOUR)


def test_stop_for_an_adverse_event_during_observation() -> None:
    state = stop_trial(
        given_first(), StopCause.ADVERSE_EVENT, "  Drowsy, SpO2 89 %  ", MONDAY + 2 * HOUR
    )
    assert state.status is TrialStatus.STOPPED
    assert state.stop_cause is StopCause.ADVERSE_EVENT
    assert state.stop_reason == "Drowsy, SpO2 89 %"
    assert state.ended_at == MONDAY + 2 * HOUR
    assert state.stage(MONDAY + 3 * HOUR) is TrialStage.ENDED
    with pytest.raises(ScreeningRuleError, match="stopped for an adverse event: Drowsy"):
        record_response(state, DoseResponse.POSITIVE, MONDAY + 5 * HOUR)
    with pytest.raises(ScreeningRuleError, match="trial has ended"):
        give_dose(state, MONDAY + DAY)
    with pytest.raises(ScreeningRuleError, match="already ended"):
        stop_trial(state, StopCause.CLINICIAN, "again", MONDAY + 3 * HOUR)


def test_the_clinician_may_stop_a_planned_trial_or_between_doses() -> None:
    planned = stop_trial(start_trial(STANDARD), StopCause.CLINICIAN, "Patient declined", MONDAY)
    assert planned.status is TrialStatus.STOPPED and planned.doses == ()
    between = stop_trial(
        inadequate_after(given_first()), StopCause.CLINICIAN, "Wound not healed", MONDAY + DAY
    )
    assert between.status is TrialStatus.STOPPED


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_stopping_needs_a_reason(reason: str) -> None:
    with pytest.raises(ScreeningRuleError, match="Give a reason"):
        stop_trial(given_first(), StopCause.CLINICIAN, reason, MONDAY + HOUR)


def test_an_adverse_event_stop_needs_a_dose() -> None:
    with pytest.raises(ScreeningRuleError, match="no adverse event"):
        stop_trial(start_trial(STANDARD), StopCause.ADVERSE_EVENT, "fainted", MONDAY)


def test_stop_before_the_dose_was_given_is_refused() -> None:
    with pytest.raises(ScreeningRuleError, match="before dose 1 was given"):
        stop_trial(given_first(), StopCause.CLINICIAN, "x", MONDAY - HOUR)


def test_transitions_refuse_naive_times() -> None:
    naive = dt.datetime(2026, 11, 23, 9, 0)
    with pytest.raises(ValueError, match="given_at must be timezone-aware"):
        give_dose(start_trial(STANDARD), naive)
    with pytest.raises(ValueError, match="recorded_at must be timezone-aware"):
        record_response(given_first(), DoseResponse.POSITIVE, naive)
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        given_first().stage(naive)


def test_the_state_is_immutable_and_transitions_return_new_states() -> None:
    planned = start_trial(STANDARD)
    given_state = give_dose(planned, MONDAY)
    assert planned.doses == () and planned.status is TrialStatus.PLANNED
    assert given_state is not planned
    with pytest.raises(dataclasses.FrozenInstanceError):
        given_state.status = TrialStatus.CANDIDATE  # type: ignore[misc]


def test_the_trial_plan_follows_the_doses_actually_given() -> None:
    late = MONDAY + DAY + 3 * HOUR
    state = give_dose(inadequate_after(given_first()), late)
    plan = state.plan()
    assert plan[2].earliest_at == late + DAY
    assert plan == replan(STANDARD, [MONDAY, late])


def test_rule_errors_are_value_errors() -> None:
    assert issubclass(ScreeningRuleError, ValueError)
    assert issubclass(ScheduleError, ScreeningRuleError)


# --- Checks before the trial starts --------------------------------------------------------


TODAY = dt.date(2026, 11, 26)


def test_no_checks_for_a_well_adult_without_listed_medicines(reference: Reference) -> None:
    assert trial_start_checks(dt.date(1980, 5, 1), TODAY, False, (), (), reference.leaflet) == []


def test_age_under_4_needs_acknowledgement(reference: Reference) -> None:
    checks = trial_start_checks(dt.date(2022, 11, 27), TODAY, False, (), (), reference.leaflet)
    assert [c.kind for c in checks] == [StartCheckKind.AGE]
    assert "3 years old" in checks[0].message and "under 4" in checks[0].message
    # The fourth birthday itself: no check.
    assert trial_start_checks(dt.date(2022, 11, 26), TODAY, False, (), (), reference.leaflet) == []


def test_unknown_date_of_birth_asks_to_confirm_the_age(reference: Reference) -> None:
    for birth in (None, TODAY + dt.timedelta(days=1)):
        checks = trial_start_checks(birth, TODAY, False, (), (), reference.leaflet)
        assert [c.kind for c in checks] == [StartCheckKind.AGE]
        assert "confirm the patient is at least 4" in checks[0].message


def test_active_illness(reference: Reference) -> None:
    checks = trial_start_checks(dt.date(1980, 5, 1), TODAY, True, (), (), reference.leaflet)
    assert [c.kind for c in checks] == [StartCheckKind.ACTIVE_ILLNESS]
    assert "MS flare" in checks[0].message and "urinary infection" in checks[0].message
    assert "unhealed wound" in checks[0].message


def test_medicines_and_conditions_from_the_leaflet(reference: Reference) -> None:
    checks = trial_start_checks(
        dt.date(1980, 5, 1),
        TODAY,
        False,
        {"zolpidem", "morphine", "sedatives", "not-a-leaflet-code"},
        {"epilepsy", "spinal-cord-injury-t6-or-above"},
        reference.leaflet,
    )
    assert [(c.kind, c.code) for c in checks] == [
        (StartCheckKind.INTERACTING_MEDICINE, "morphine"),
        (StartCheckKind.INTERACTING_MEDICINE, "zolpidem"),
        (StartCheckKind.CNS_DEPRESSANT, "sedatives"),
        (StartCheckKind.PRECAUTION_CONDITION, "spinal-cord-injury-t6-or-above"),
        (StartCheckKind.PRECAUTION_CONDITION, "epilepsy"),
    ]
    messages = [c.message for c in checks]
    assert messages[0].startswith("Morphine interacts with intrathecal baclofen")
    assert messages[2].startswith("Sedatives, tranquilizers, or sleeping medication")
    assert messages[4].startswith("Epilepsy:")


def test_every_check_at_once_in_a_fixed_order(reference: Reference) -> None:
    checks = trial_start_checks(
        dt.date(2024, 1, 1), TODAY, True, {"codeine"}, {"kidney-disease"}, reference.leaflet
    )
    assert [c.kind for c in checks] == [
        StartCheckKind.AGE,
        StartCheckKind.ACTIVE_ILLNESS,
        StartCheckKind.INTERACTING_MEDICINE,
        StartCheckKind.PRECAUTION_CONDITION,
    ]


# --- Scheduling within the clinic's hours --------------------------------------------------

CHRISTMAS = dt.date(2026, 12, 25)
WEEKDAYS = ClinicCalendar(zone=LONDON, holidays=frozenset({CHRISTMAS}))  # Mon–Fri 08:00–18:00
EVERY_DAY = ClinicCalendar(zone=LONDON, open_weekdays=frozenset(range(1, 8)))


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=LONDON)


def test_three_weekdays_in_a_row_exactly_24_hours_apart() -> None:
    proposal = propose_trial_schedule(STANDARD, WEEKDAYS, MONDAY, [], beds=2)
    assert [d.at for d in proposal.doses] == [MONDAY, MONDAY + DAY, MONDAY + 2 * DAY]
    assert proposal.first_dose_at == MONDAY
    assert proposal.reasons == ()
    assert proposal.protocol_id == "standard"
    first = proposal.doses[0]
    assert (first.dose_mcg, first.assess_from, first.observe_until) == (
        50,
        MONDAY + 4 * HOUR,
        MONDAY + 8 * HOUR,
    )


def test_a_weekend_moves_the_dose_to_monday_and_says_why() -> None:
    thursday = at(dt.date(2026, 11, 26), 9)
    proposal = propose_trial_schedule(STANDARD, WEEKDAYS, thursday, [], beds=2)
    assert [d.at for d in proposal.doses] == [
        thursday,
        thursday + DAY,
        at(dt.date(2026, 11, 30), 8),
    ]
    third = proposal.doses[2]
    assert third.preferred_at == at(dt.date(2026, 11, 28), 9)
    assert third.reason == (
        "24 h later is Sat 28 Nov 09:00: the clinic is closed on Saturdays;"
        " next allowed: Mon 30 Nov 08:00."
    )
    assert proposal.doses[1].reason == ""


def test_a_holiday_moves_the_dose_and_says_why() -> None:
    wednesday = at(dt.date(2026, 12, 23), 9)
    proposal = propose_trial_schedule(STANDARD, WEEKDAYS, wednesday, [], beds=2)
    assert proposal.doses[2].at == at(dt.date(2026, 12, 28), 8)
    assert proposal.doses[2].reason == (
        "24 h later is Fri 25 Dec 09:00: it is a clinic holiday, the clinic is closed;"
        " next allowed: Mon 28 Dec 08:00."
    )


def test_a_first_dose_asked_for_a_closed_day_moves_to_the_next_open_day() -> None:
    saturday = at(dt.date(2026, 11, 28), 10)
    proposal = propose_trial_schedule(STANDARD, WEEKDAYS, saturday, [], beds=2)
    assert proposal.first_dose_at == at(dt.date(2026, 11, 30), 8)
    assert proposal.doses[0].reason == (
        "Sat 28 Nov 10:00 is not possible: the clinic is closed on Saturdays;"
        " next allowed: Mon 30 Nov 08:00."
    )


def test_a_first_dose_before_opening_waits_for_opening_without_a_reason() -> None:
    proposal = propose_trial_schedule(STANDARD, WEEKDAYS, MONDAY - 2 * HOUR, [], beds=2)
    assert proposal.first_dose_at == at(MONDAY.date(), 8)
    assert proposal.doses[0].reason == ""


def test_a_first_dose_is_put_on_the_step_grid() -> None:
    proposal = propose_trial_schedule(
        STANDARD, WEEKDAYS, MONDAY + 7 * dt.timedelta(minutes=1), [], 2
    )
    assert proposal.first_dose_at == MONDAY + dt.timedelta(minutes=15)
    half_hourly = propose_trial_schedule(
        STANDARD, WEEKDAYS, MONDAY + dt.timedelta(minutes=1), [], 2, step_minutes=30
    )
    assert half_hourly.first_dose_at == MONDAY + dt.timedelta(minutes=30)


def test_the_observation_may_end_exactly_at_closing_but_not_a_minute_later() -> None:
    ten = at(MONDAY.date(), 10)
    fits = propose_trial_schedule(STANDARD, WEEKDAYS, ten, [], beds=2)
    assert fits.first_dose_at == ten
    assert fits.doses[0].observe_until == at(MONDAY.date(), 18)
    one_minute_late = propose_trial_schedule(
        STANDARD, WEEKDAYS, ten + dt.timedelta(minutes=1), [], beds=2, step_minutes=1
    )
    assert one_minute_late.first_dose_at == at(dt.date(2026, 11, 24), 8)
    assert one_minute_late.doses[0].reason == (
        "Mon 23 Nov 10:01 is not possible: the 8 h observation would end at 18:01, after"
        " closing (18:00); next allowed: Tue 24 Nov 08:00."
    )


def test_dose_24_hours_later_ending_exactly_at_closing_is_kept() -> None:
    ten = at(MONDAY.date(), 10)
    proposal = propose_trial_schedule(STANDARD, WEEKDAYS, ten, [], beds=2)
    assert [d.at for d in proposal.doses] == [ten, ten + DAY, ten + 2 * DAY]


def test_spring_change_pushes_the_observation_past_closing() -> None:
    saturday_ten = at(dt.date(2026, 3, 28), 10)  # GMT; ends 18:00 exactly
    proposal = propose_trial_schedule(STANDARD, EVERY_DAY, saturday_ten, [], beds=2)
    assert proposal.first_dose_at == saturday_ten
    second = proposal.doses[1]
    assert second.preferred_at == at(dt.date(2026, 3, 29), 11)  # 24 h later, BST
    assert second.at == at(dt.date(2026, 3, 30), 8)
    assert second.reason.startswith("DST: the clocks change after dose 1")
    assert "24 h later is Sun 29 Mar 11:00 BST local time" in second.reason
    assert "would end at 19:00, after closing (18:00)" in second.reason
    assert second.reason.endswith("next allowed: Mon 30 Mar 08:00.")
    assert elapsed(proposal.doses[0].at, second.at) >= DAY


def test_autumn_change_brings_24_hours_later_before_opening() -> None:
    saturday_eight = at(dt.date(2026, 10, 24), 8)  # BST
    proposal = propose_trial_schedule(STANDARD, EVERY_DAY, saturday_eight, [], beds=2)
    second = proposal.doses[1]
    assert second.preferred_at == at(dt.date(2026, 10, 25), 7)  # GMT
    assert second.at == at(dt.date(2026, 10, 25), 8)
    assert "24 h later is Sun 25 Oct 07:00 GMT local time" in second.reason
    assert "before the clinic opens (08:00); next allowed: Sun 25 Oct 08:00." in second.reason


def test_a_dst_shift_that_still_fits_is_noted() -> None:
    saturday_nine = at(dt.date(2026, 3, 28), 9)
    proposal = propose_trial_schedule(STANDARD, EVERY_DAY, saturday_nine, [], beds=2)
    second = proposal.doses[1]
    assert second.at == at(dt.date(2026, 3, 29), 10)
    assert second.reason == (
        "DST: the clocks change after dose 1 (Sat 28 Mar 09:00 GMT), so 24 h later is"
        " Sun 29 Mar 10:00 BST local time."
    )


def test_full_beds_move_the_dose_to_when_a_bed_is_free() -> None:
    tuesday = MONDAY + DAY
    busy = [
        (tuesday - HOUR, tuesday + 2 * HOUR),
        (tuesday - 30 * dt.timedelta(minutes=1), tuesday + HOUR),
    ]
    proposal = propose_trial_schedule(STANDARD, WEEKDAYS, MONDAY, busy, beds=2)
    second = proposal.doses[1]
    # One bed frees at 10:00: a second observation may start then (a bed is free again).
    assert second.at == tuesday + HOUR
    assert second.reason == (
        "24 h later is Tue 24 Nov 09:00: all 2 observation beds are taken during 09:00–17:00;"
        " next allowed: Tue 24 Nov 10:00."
    )
    # The third dose follows 24 h after the moved second one.
    assert proposal.doses[2].at == tuesday + DAY + HOUR


def test_bed_capacity_counts_overlaps_at_one_moment_not_in_total() -> None:
    # Two observations that do not overlap each other use one bed between them.
    busy = [(MONDAY, MONDAY + 3 * HOUR), (MONDAY + 4 * HOUR, MONDAY + 8 * HOUR)]
    proposal = propose_trial_schedule(STANDARD, WEEKDAYS, MONDAY, busy, beds=2)
    assert proposal.first_dose_at == MONDAY
    one_bed = propose_trial_schedule(STANDARD, WEEKDAYS, MONDAY, busy, beds=1)
    assert one_bed.first_dose_at == at(dt.date(2026, 11, 24), 8)
    assert one_bed.doses[0].reason == (
        "Mon 23 Nov 09:00 is not possible: the only observation bed is taken during"
        " 09:00–17:00; next allowed: Tue 24 Nov 08:00."
    )


def test_a_bed_full_all_day_pushes_to_the_next_day() -> None:
    busy = [(at(MONDAY.date(), 8), at(MONDAY.date(), 18))] * 2
    proposal = propose_trial_schedule(STANDARD, WEEKDAYS, at(MONDAY.date(), 8), busy, beds=2)
    assert proposal.first_dose_at == at(dt.date(2026, 11, 24), 8)


def test_opening_hours_shorter_than_the_observation_can_never_fit() -> None:
    short = ClinicCalendar(zone=LONDON, opens_at=dt.time(9), closes_at=dt.time(16, 30))
    with pytest.raises(ScheduleError, match="open 7 h 30 min a day \\(09:00–16:30\\)") as caught:
        propose_trial_schedule(STANDARD, short, MONDAY, [], beds=2)
    assert "can never fit" in str(caught.value)


def test_exactly_8_opening_hours_fit() -> None:
    eight = ClinicCalendar(zone=LONDON, opens_at=dt.time(9), closes_at=dt.time(17))
    proposal = propose_trial_schedule(STANDARD, eight, MONDAY, [], beds=1)
    assert [d.at for d in proposal.doses] == [MONDAY, MONDAY + DAY, MONDAY + 2 * DAY]


def test_no_beds_is_a_schedule_error() -> None:
    with pytest.raises(ScheduleError, match="no observation beds"):
        propose_trial_schedule(STANDARD, WEEKDAYS, MONDAY, [], beds=0)


def test_the_search_is_bounded() -> None:
    always_busy = [(MONDAY - DAY, MONDAY + 400 * DAY)]
    with pytest.raises(ScheduleError, match="No time for dose 1 within 60 days"):
        propose_trial_schedule(STANDARD, WEEKDAYS, MONDAY, always_busy, beds=1)


def test_scheduling_refuses_naive_times_and_a_zero_step() -> None:
    with pytest.raises(ValueError, match="earliest must be timezone-aware"):
        propose_trial_schedule(STANDARD, WEEKDAYS, dt.datetime(2026, 11, 23, 9), [], 2)
    with pytest.raises(ValueError, match="step_minutes"):
        propose_trial_schedule(STANDARD, WEEKDAYS, MONDAY, [], 2, step_minutes=0)


@given(
    first=st.datetimes(
        min_value=dt.datetime(2026, 1, 1),
        max_value=dt.datetime(2027, 12, 31),
        timezones=st.just(LONDON),
    ),
    beds=st.integers(min_value=1, max_value=3),
    busy_starts=st.lists(st.integers(min_value=0, max_value=14 * 24 * 4), max_size=6),
)
def test_every_proposal_keeps_24_hours_opening_hours_and_beds(
    first: dt.datetime, beds: int, busy_starts: list[int]
) -> None:
    base = first.astimezone(dt.UTC)
    busy = [
        (base + q * dt.timedelta(minutes=15), base + q * dt.timedelta(minutes=15) + 8 * HOUR)
        for q in busy_starts
    ]
    proposal = propose_trial_schedule(STANDARD, WEEKDAYS, first, busy, beds)
    doses = proposal.doses
    assert elapsed(first, doses[0].at) >= dt.timedelta(0)
    for earlier, later in itertools.pairwise(doses):
        assert elapsed(earlier.at, later.at) >= DAY
        if later.at == later.preferred_at:
            assert later.reason == "" or later.reason.startswith("DST")
        else:
            assert "next allowed" in later.reason
    for dose in doses:
        window = WEEKDAYS.opening_window(dose.at.date())
        assert window is not None
        assert window[0] <= dose.at and dose.observe_until <= window[1]
        # Peak use is at the dose's start or at a start inside its observation.
        start, end = dose.at.astimezone(dt.UTC), dose.observe_until.astimezone(dt.UTC)
        moments = [start] + [b for b, _ in busy if start <= b < end]
        for moment in moments:
            assert sum(1 for b, e in busy if b <= moment < e) + 1 <= beds
