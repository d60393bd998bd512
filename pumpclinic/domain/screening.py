"""The screening trial before a pump is implanted (ITB-FACTS §1): the protocol engine.

Up to three intrathecal test doses, each at least 24 hours *elapsed* after the previous dose
was actually given, each followed by an observation from ``assess_from_hours`` (4 h) to
``observe_until_hours`` (8 h). A positive response ends the trial (a candidate for a pump);
an inadequate one leads to the next dose; an inadequate response to the last dose means not
a candidate. A clinician may stop the trial at any time, for an adverse event or otherwise,
with a reason.

Every time here is an aware datetime. "24 hours later" is elapsed time: arithmetic and
comparisons go through UTC, because Python adds a timedelta to, and compares, datetimes that
share a ZoneInfo on the wall clock (09:00 + 24 h would stay 09:00 across a DST change).
Results are shown on the wall clock of the zone they were given in.

Pure: no clock ("now" is an argument), no Qt, no database.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from pumpclinic.domain.calendar import ClinicCalendar
from pumpclinic.domain.enums import DoseResponse, TrialStatus
from pumpclinic.domain.patients import MIN_ESTABLISHED_AGE_YEARS, age_in_years
from pumpclinic.domain.reference import LeafletLists, ScreeningDoseSpec, ScreeningProtocolSpec
from pumpclinic.domain.titration import starting_dose_mcg_per_day as starting_dose_mcg_per_day

# The labels: at least 24 hours between boluses, whatever an edited protocol file says.
MIN_DOSE_INTERVAL = dt.timedelta(hours=24)
SCHEDULE_SEARCH_DAYS = 60

_UTC = dt.UTC


class ScreeningRuleError(ValueError):
    """A move the screening protocol forbids; the message says why and what is allowed."""


class ScheduleError(ScreeningRuleError):
    """No trial schedule fits the clinic's hours, days and beds; the message says why."""


# --- Time helpers --------------------------------------------------------------------------


def _zone(name: str, at: dt.datetime) -> dt.tzinfo:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (got {at.isoformat()})")
    return at.tzinfo


def elapsed_after(at: dt.datetime, elapsed: dt.timedelta) -> dt.datetime:
    """``at`` plus ``elapsed`` real time, on ``at``'s wall clock (09:00 GMT + 24 h = 10:00 BST)."""
    zone = _zone("at", at)
    return (at.astimezone(_UTC) + elapsed).astimezone(zone)


def _utc(at: dt.datetime) -> dt.datetime:
    return at.astimezone(_UTC)


def _before(a: dt.datetime, b: dt.datetime) -> bool:
    """``a`` is earlier than ``b`` in real time (not on the wall clock)."""
    return _utc(a) < _utc(b)


def _when(at: dt.datetime) -> str:
    """'Sun 29 Mar 2026 10:00 BST': how a time reads in a message."""
    return f"{at:%a} {at.day} {at:%b %Y %H:%M} {at.tzname()}"


def _day(at: dt.datetime) -> str:
    return f"{at:%a} {at.day} {at:%b}"


def _short(at: dt.datetime) -> str:
    """'Mon 30 Nov 08:00'."""
    return f"{_day(at)} {at:%H:%M}"


def dose_interval(protocol: ScreeningProtocolSpec) -> dt.timedelta:
    """The protocol's interval between doses, never less than 24 hours."""
    return max(dt.timedelta(hours=protocol.min_interval_hours), MIN_DOSE_INTERVAL)


# --- The dose plan -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedDose:
    """One dose of the plan: when it may be given and its observation window.

    ``earliest_at`` is the earliest time the protocol allows (for the first dose, the
    planned time); ``given_at`` is set for a dose already given, and then the observation
    times follow the time it was actually given.
    """

    number: int
    dose_mcg: float
    volume_ml: float
    concentration_mcg_per_ml: float
    earliest_at: dt.datetime
    assess_from: dt.datetime
    observe_until: dt.datetime
    given_at: dt.datetime | None = None

    @property
    def at(self) -> dt.datetime:
        """When the dose was given, or else the earliest time it may be."""
        return self.given_at if self.given_at is not None else self.earliest_at


def _planned(
    protocol: ScreeningProtocolSpec,
    dose: ScreeningDoseSpec,
    earliest_at: dt.datetime,
    given_at: dt.datetime | None,
) -> PlannedDose:
    at = given_at if given_at is not None else earliest_at
    return PlannedDose(
        number=dose.number,
        dose_mcg=dose.dose_mcg,
        volume_ml=dose.volume_ml,
        concentration_mcg_per_ml=protocol.concentration_mcg_per_ml,
        earliest_at=earliest_at,
        assess_from=elapsed_after(at, dt.timedelta(hours=protocol.assess_from_hours)),
        observe_until=elapsed_after(at, dt.timedelta(hours=protocol.observe_until_hours)),
        given_at=given_at,
    )


def plan_doses(
    protocol: ScreeningProtocolSpec, first_dose_at: dt.datetime
) -> tuple[PlannedDose, ...]:
    """Every dose of the protocol, each at the earliest allowed: 24 h after the one before."""
    _zone("first_dose_at", first_dose_at)
    interval = dose_interval(protocol)
    doses: list[PlannedDose] = []
    at = first_dose_at
    for dose in protocol.doses:
        doses.append(_planned(protocol, dose, at, None))
        at = elapsed_after(at, interval)
    return tuple(doses)


def replan(
    protocol: ScreeningProtocolSpec, given_times: Sequence[dt.datetime]
) -> tuple[PlannedDose, ...]:
    """The plan after the doses given at ``given_times``: a late dose shifts all after it.

    Times are shown in the zone of the first given time. Raises ScreeningRuleError for more
    times than the protocol has doses, or a dose less than 24 h after the one before.
    """
    if not given_times:
        raise ScreeningRuleError("Replanning needs the time the first dose was given.")
    if len(given_times) > len(protocol.doses):
        raise ScreeningRuleError(
            f"The protocol {protocol.id!r} has {len(protocol.doses)} doses; "
            f"{len(given_times)} given times were passed."
        )
    zone = _zone("given_times[0]", given_times[0])
    interval = dose_interval(protocol)
    doses: list[PlannedDose] = []
    earliest = given_times[0].astimezone(zone)
    for index, dose in enumerate(protocol.doses):
        if index < len(given_times):
            given = given_times[index]
            _zone(f"given_times[{index}]", given)
            if _before(given, earliest):
                raise _too_early(dose.number, given, doses[-1].at, earliest)
            doses.append(_planned(protocol, dose, earliest, given.astimezone(zone)))
        else:
            doses.append(_planned(protocol, dose, earliest, None))
        earliest = elapsed_after(doses[-1].at, interval)
    return tuple(doses)


def _too_early(
    number: int, given_at: dt.datetime, previous_at: dt.datetime, earliest: dt.datetime
) -> ScreeningRuleError:
    zone = _zone("given_at", given_at)
    return ScreeningRuleError(
        f"Dose {number} at {_when(given_at)} is too early: it must be at least 24 hours after"
        f" dose {number - 1} (given {_when(previous_at.astimezone(zone))}). Earliest allowed:"
        f" {_when(earliest.astimezone(zone))} ({earliest.astimezone(zone).isoformat()})."
    )


# --- The trial's state machine -------------------------------------------------------------


class TrialStage(StrEnum):
    """Where a trial is at a given moment (``TrialStatus`` is what the database stores)."""

    DOSE_PLANNED = "dose-planned"  # waiting for the first or the next dose
    DOSE_GIVEN = "dose-given"  # given; too early to assess the response
    OBSERVING = "observing"  # from assess_from: the clinician may record the response
    ENDED = "ended"


class StopCause(StrEnum):
    ADVERSE_EVENT = "adverse-event"
    CLINICIAN = "clinician"

    @property
    def label(self) -> str:
        return {
            StopCause.ADVERSE_EVENT: "an adverse event",
            StopCause.CLINICIAN: "the clinician's decision",
        }[self]


@dataclass(frozen=True, slots=True)
class TrialDose:
    number: int
    dose_mcg: float
    volume_ml: float
    concentration_mcg_per_ml: float
    given_at: dt.datetime
    assess_from: dt.datetime
    observe_until: dt.datetime
    response: DoseResponse | None = None
    response_recorded_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class TrialState:
    """A trial as far as it has gone. Change it only through the transition functions."""

    protocol: ScreeningProtocolSpec
    status: TrialStatus = TrialStatus.PLANNED
    doses: tuple[TrialDose, ...] = ()
    stop_cause: StopCause | None = None
    stop_reason: str = ""
    ended_at: dt.datetime | None = None

    @property
    def ended(self) -> bool:
        return self.status in (
            TrialStatus.CANDIDATE,
            TrialStatus.NOT_CANDIDATE,
            TrialStatus.STOPPED,
        )

    @property
    def last_dose(self) -> TrialDose | None:
        return self.doses[-1] if self.doses else None

    @property
    def awaiting_response(self) -> bool:
        last = self.last_dose
        return not self.ended and last is not None and last.response is None

    @property
    def next_dose(self) -> ScreeningDoseSpec | None:
        """The protocol's next dose, or None when the trial ended or awaits a response."""
        if self.ended or self.awaiting_response or len(self.doses) >= len(self.protocol.doses):
            return None
        return self.protocol.doses[len(self.doses)]

    @property
    def next_dose_earliest_at(self) -> dt.datetime | None:
        """The earliest time the next dose may be given (None: no next dose, or any time)."""
        last = self.last_dose
        if self.next_dose is None or last is None:
            return None
        return elapsed_after(last.given_at, dose_interval(self.protocol))

    @property
    def effective_dose_mcg(self) -> float | None:
        """The dose with a positive response: the base of the starting daily dose."""
        for dose in self.doses:
            if dose.response is DoseResponse.POSITIVE:
                return dose.dose_mcg
        return None

    def stage(self, now: dt.datetime) -> TrialStage:
        _zone("now", now)
        if self.ended:
            return TrialStage.ENDED
        last = self.last_dose
        if last is None or last.response is not None:
            return TrialStage.DOSE_PLANNED
        if _before(now, last.assess_from):
            return TrialStage.DOSE_GIVEN
        return TrialStage.OBSERVING

    def plan(self, first_dose_at: dt.datetime | None = None) -> tuple[PlannedDose, ...]:
        """The whole plan from the doses given so far; before any, from ``first_dose_at``."""
        if self.doses:
            return replan(self.protocol, [dose.given_at for dose in self.doses])
        if first_dose_at is None:
            raise ScreeningRuleError("No dose given yet: give the planned first-dose time.")
        return plan_doses(self.protocol, first_dose_at)

    def describe_end(self) -> str:
        if self.status is TrialStatus.CANDIDATE:
            return f"positive response to {_fmt(self.effective_dose_mcg or 0)} mcg: a candidate"
        if self.status is TrialStatus.NOT_CANDIDATE:
            return f"no adequate response after {len(self.doses)} doses: not a candidate"
        if self.status is TrialStatus.STOPPED:
            cause = self.stop_cause.label if self.stop_cause is not None else "the clinician"
            return f"stopped for {cause}: {self.stop_reason}"
        return self.status.value


def start_trial(protocol: ScreeningProtocolSpec) -> TrialState:
    """A planned trial: no dose given yet."""
    return TrialState(protocol=protocol)


def give_dose(
    state: TrialState, given_at: dt.datetime, *, dose_mcg: float | None = None
) -> TrialState:
    """Record the next dose as given at ``given_at``.

    ``dose_mcg``, when passed, must be the protocol's dose for that step. Refused: after the
    trial ended, before the previous response was recorded, beyond the protocol's last dose,
    or less than 24 hours after the previous dose (the message gives the earliest allowed).
    """
    zone = _zone("given_at", given_at)
    number = len(state.doses) + 1
    if state.ended:
        raise ScreeningRuleError(
            f"Dose {number} cannot be given: the trial has ended ({state.describe_end()})."
        )
    last = state.last_dose
    if last is not None and last.response is None:
        raise ScreeningRuleError(
            f"Record the response to dose {last.number} before giving dose {number}."
        )
    if number > len(state.protocol.doses):
        # Unreachable through the transitions (the last inadequate response ends the trial).
        raise ScreeningRuleError(
            f"The protocol {state.protocol.id!r} has {len(state.protocol.doses)} doses;"
            f" there is no dose {number}."
        )
    spec = state.protocol.doses[number - 1]
    if dose_mcg is not None and not math.isclose(dose_mcg, spec.dose_mcg, rel_tol=1e-9):
        raise ScreeningRuleError(
            f"Dose {number} of the protocol {state.protocol.id!r} is {_fmt(spec.dose_mcg)} mcg"
            f" ({_fmt(spec.volume_ml)} mL), not {_fmt(dose_mcg)} mcg."
        )
    if last is not None:
        earliest = elapsed_after(last.given_at, dose_interval(state.protocol))
        if _before(given_at, earliest):
            raise _too_early(number, given_at, last.given_at, earliest)
        recorded = last.response_recorded_at
        if recorded is not None and _before(given_at, recorded):
            raise ScreeningRuleError(
                f"Dose {number} at {_when(given_at)} is before the response to dose"
                f" {last.number} was recorded ({_when(recorded.astimezone(zone))})."
            )
    planned = _planned(state.protocol, spec, given_at, given_at)
    dose = TrialDose(
        number=number,
        dose_mcg=spec.dose_mcg,
        volume_ml=spec.volume_ml,
        concentration_mcg_per_ml=state.protocol.concentration_mcg_per_ml,
        given_at=given_at,
        assess_from=planned.assess_from,
        observe_until=planned.observe_until,
    )
    return replace(state, status=TrialStatus.IN_PROGRESS, doses=(*state.doses, dose))


def record_response(
    state: TrialState, response: DoseResponse, recorded_at: dt.datetime
) -> TrialState:
    """The clinician's decision on the last dose, from its ``assess_from`` onward.

    Positive: the trial ends, a candidate. Inadequate: the next dose may follow 24 h after
    the last one; at the protocol's last dose, the trial ends, not a candidate.
    """
    zone = _zone("recorded_at", recorded_at)
    if state.ended:
        raise ScreeningRuleError(
            f"No response can be recorded: the trial has ended ({state.describe_end()})."
        )
    last = state.last_dose
    if last is None:
        raise ScreeningRuleError("No dose has been given yet: there is no response to record.")
    if last.response is not None:
        when = last.response_recorded_at
        at = f" at {_when(when.astimezone(zone))}" if when is not None else ""
        raise ScreeningRuleError(
            f"The response to dose {last.number} is already recorded ({last.response.value}{at})."
        )
    if _before(recorded_at, last.assess_from):
        assess_from = last.assess_from.astimezone(zone)
        raise ScreeningRuleError(
            f"The response to dose {last.number} can be recorded from {_when(assess_from)}"
            f" ({_hours(state.protocol.assess_from_hours)} after the dose), not at"
            f" {_when(recorded_at)}."
        )
    answered = replace(last, response=DoseResponse(response), response_recorded_at=recorded_at)
    doses = (*state.doses[:-1], answered)
    if answered.response is DoseResponse.POSITIVE:
        return replace(state, status=TrialStatus.CANDIDATE, doses=doses, ended_at=recorded_at)
    if len(doses) >= len(state.protocol.doses):
        return replace(state, status=TrialStatus.NOT_CANDIDATE, doses=doses, ended_at=recorded_at)
    return replace(state, doses=doses)


def stop_trial(
    state: TrialState, cause: StopCause, reason: str, stopped_at: dt.datetime
) -> TrialState:
    """End the trial early, for an adverse event or by the clinician; the reason is required."""
    zone = _zone("stopped_at", stopped_at)
    if state.ended:
        raise ScreeningRuleError(
            f"The trial cannot be stopped: it has already ended ({state.describe_end()})."
        )
    if not reason.strip():
        raise ScreeningRuleError("Give a reason for stopping the trial.")
    last = state.last_dose
    if cause is StopCause.ADVERSE_EVENT and last is None:
        raise ScreeningRuleError(
            "No dose has been given yet, so there is no adverse event to stop for;"
            " stop the trial as the clinician's decision instead."
        )
    if last is not None and _before(stopped_at, last.given_at):
        raise ScreeningRuleError(
            f"The trial cannot be stopped at {_when(stopped_at)}, before dose {last.number}"
            f" was given ({_when(last.given_at.astimezone(zone))})."
        )
    return replace(
        state,
        status=TrialStatus.STOPPED,
        stop_cause=StopCause(cause),
        stop_reason=reason.strip(),
        ended_at=stopped_at,
    )


def correct_given_time(state: TrialState, number: int, given_at: dt.datetime) -> TrialState:
    """The trial with dose ``number`` given at ``given_at`` instead of the time recorded.

    A correction must leave a trial the protocol allows, so the corrected time is refused
    (the message names the limit) when it is: at most 24 hours elapsed after the previous
    dose, or before the previous response was recorded; less than 24 hours before the next
    dose given; later than ``assess_from_hours`` before this dose's recorded response; or
    after the trial was stopped. The observation times follow the corrected time.
    """
    zone = _zone("given_at", given_at)
    index = number - 1
    if not 0 <= index < len(state.doses):
        raise ScreeningRuleError(f"Dose {number} has not been given: there is nothing to correct.")
    interval = dose_interval(state.protocol)
    assess = dt.timedelta(hours=state.protocol.assess_from_hours)
    dose = state.doses[index]
    if index > 0:
        previous = state.doses[index - 1]
        earliest = elapsed_after(previous.given_at, interval)
        if _before(given_at, earliest):
            raise ScreeningRuleError(
                f"Dose {number} cannot have been given at {_when(given_at)}: that is less than"
                f" 24 hours after dose {previous.number}"
                f" ({_when(previous.given_at.astimezone(zone))})."
                f" Earliest possible: {_when(earliest.astimezone(zone))}."
            )
        recorded = previous.response_recorded_at
        if recorded is not None and _before(given_at, recorded):
            raise ScreeningRuleError(
                f"Dose {number} cannot have been given at {_when(given_at)}: the response to"
                f" dose {previous.number} was recorded later ({_when(recorded.astimezone(zone))})."
            )
    if index + 1 < len(state.doses):
        following = state.doses[index + 1]
        latest = elapsed_after(following.given_at, -interval)
        if _before(latest, given_at):
            raise ScreeningRuleError(
                f"Dose {number} cannot have been given at {_when(given_at)}: dose"
                f" {following.number} was given {_when(following.given_at.astimezone(zone))},"
                f" and 24 hours must pass between doses. Latest possible:"
                f" {_when(latest.astimezone(zone))}."
            )
    if dose.response_recorded_at is not None:
        latest = elapsed_after(dose.response_recorded_at, -assess)
        if _before(latest, given_at):
            raise ScreeningRuleError(
                f"Dose {number} cannot have been given at {_when(given_at)}: its response was"
                f" recorded {_when(dose.response_recorded_at.astimezone(zone))}, which is"
                f" allowed from {_hours(state.protocol.assess_from_hours)} after the dose."
                f" Latest possible: {_when(latest.astimezone(zone))}."
            )
    if (
        state.status is TrialStatus.STOPPED
        and state.ended_at is not None
        and index == len(state.doses) - 1
        and _before(state.ended_at, given_at)
    ):
        raise ScreeningRuleError(
            f"Dose {number} cannot have been given at {_when(given_at)}: the trial was stopped"
            f" {_when(state.ended_at.astimezone(zone))}, before it."
        )
    planned = _planned(state.protocol, state.protocol.doses[index], given_at, given_at)
    corrected = replace(
        dose,
        given_at=given_at,
        assess_from=planned.assess_from,
        observe_until=planned.observe_until,
    )
    return replace(state, doses=(*state.doses[:index], corrected, *state.doses[index + 1 :]))


# --- Checks before the trial starts --------------------------------------------------------


class StartCheckKind(StrEnum):
    AGE = "age"
    ACTIVE_ILLNESS = "active-illness"
    INTERACTING_MEDICINE = "interacting-medicine"
    CNS_DEPRESSANT = "cns-depressant"
    PRECAUTION_CONDITION = "precaution-condition"


@dataclass(frozen=True, slots=True)
class StartCheck:
    """Something a clinician must acknowledge before the first dose; not a refusal."""

    kind: StartCheckKind
    code: str  # the leaflet item's id; "" for age and active illness
    message: str


def trial_start_checks(
    date_of_birth: dt.date | None,
    today: dt.date,
    active_illness: bool,
    medicine_codes: Collection[str],
    condition_codes: Collection[str],
    leaflet: LeafletLists,
) -> list[StartCheck]:
    """The checks to acknowledge, in a fixed order: age, illness, medicines, conditions.

    Medicine codes are ids from the leaflet's interacting medicines or CNS depressant
    classes; condition codes are ids from its precaution list. Other codes are ignored.
    """
    checks: list[StartCheck] = []
    if date_of_birth is None or date_of_birth > today:
        checks.append(
            StartCheck(
                StartCheckKind.AGE,
                "",
                "Date of birth not recorded (or in the future): confirm the patient is at least"
                f" {MIN_ESTABLISHED_AGE_YEARS} years old; safety of intrathecal baclofen is not"
                f" established under {MIN_ESTABLISHED_AGE_YEARS}.",
            )
        )
    else:
        age = age_in_years(date_of_birth, today)
        if age < MIN_ESTABLISHED_AGE_YEARS:
            checks.append(
                StartCheck(
                    StartCheckKind.AGE,
                    "",
                    f"The patient is {age} years old: safety and effectiveness of intrathecal"
                    f" baclofen are not established under {MIN_ESTABLISHED_AGE_YEARS} years.",
                )
            )
    if active_illness:
        checks.append(
            StartCheck(
                StartCheckKind.ACTIVE_ILLNESS,
                "",
                "Active illness (e.g. an MS flare, a urinary infection or an unhealed wound):"
                " do not screen until it has resolved.",
            )
        )
    medicines = set(medicine_codes)
    for item in leaflet.interacting_medicines:
        if item.id in medicines:
            checks.append(
                StartCheck(
                    StartCheckKind.INTERACTING_MEDICINE,
                    item.id,
                    f"{item.label} interacts with intrathecal baclofen (leaflet list): added"
                    " CNS depression; watch breathing and sedation closely.",
                )
            )
    for item in leaflet.cns_depressant_classes:
        if item.id in medicines:
            checks.append(
                StartCheck(
                    StartCheckKind.CNS_DEPRESSANT,
                    item.id,
                    f"{item.label}: a CNS depressant; with intrathecal baclofen it adds to"
                    " drowsiness and slowed breathing.",
                )
            )
    conditions = set(condition_codes)
    for item in leaflet.precaution_conditions:
        if item.id in conditions:
            checks.append(
                StartCheck(
                    StartCheckKind.PRECAUTION_CONDITION,
                    item.id,
                    f"{item.label}: a condition the leaflet lists for extra caution with"
                    " intrathecal baclofen.",
                )
            )
    return checks


# --- Scheduling within the clinic's hours --------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProposedDose:
    """One dose of a proposed schedule.

    ``preferred_at`` is what the protocol would like: the requested earliest time for the
    first dose, exactly 24 h after the previous dose for the others. ``reason`` says in plain
    words why ``at`` differs from it, or notes a daylight-saving shift; "" when neither.
    """

    number: int
    dose_mcg: float
    volume_ml: float
    at: dt.datetime
    assess_from: dt.datetime
    observe_until: dt.datetime
    preferred_at: dt.datetime
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TrialScheduleProposal:
    protocol_id: str
    doses: tuple[ProposedDose, ...]

    @property
    def first_dose_at(self) -> dt.datetime:
        return self.doses[0].at

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(dose.reason for dose in self.doses if dose.reason)


@dataclass(slots=True)
class _Slots:
    """The clinic's constraints for one search, everything in UTC."""

    calendar: ClinicCalendar
    observe: dt.timedelta
    step: dt.timedelta
    beds: int
    busy: list[tuple[dt.datetime, dt.datetime]]

    def obstacle(self, start: dt.datetime) -> str | None:
        """Why an observation starting at ``start`` cannot be held; None when it can."""
        zone = self.calendar.zone
        start = _utc(start)
        local = start.astimezone(zone)
        end = (start + self.observe).astimezone(zone)
        day = local.date()
        window = self.calendar.opening_window(day)
        if window is None:
            if day in self.calendar.holidays:
                return "it is a clinic holiday, the clinic is closed"
            return f"the clinic is closed on {local:%A}s"
        opens, closes = window
        if _before(start, opens):
            return f"that is before the clinic opens ({opens:%H:%M})"
        if _before(closes, end):
            return (
                f"the {_hours(self.observe / dt.timedelta(hours=1))} observation would end at"
                f" {end:%H:%M}, after closing ({closes:%H:%M})"
            )
        if self._peak_use(_utc(start), _utc(end)) >= self.beds:
            if self.beds == 1:
                return f"the only observation bed is taken during {local:%H:%M}–{end:%H:%M}"
            return f"all {self.beds} observation beds are taken during {local:%H:%M}–{end:%H:%M}"
        return None

    def _peak_use(self, start: dt.datetime, end: dt.datetime) -> int:
        """Most beds in use at one moment of [start, end); an end frees its bed at once."""
        events: list[tuple[dt.datetime, int]] = []
        for busy_from, busy_until in self.busy:
            if busy_from < end and busy_until > start:
                events.append((max(busy_from, start), 1))
                events.append((min(busy_until, end), -1))
        if len(events) // 2 < self.beds:
            return len(events) // 2
        events.sort(key=lambda event: (event[0], event[1]))
        peak = in_use = 0
        for _moment, change in events:
            in_use += change
            peak = max(peak, in_use)
        return peak

    def grid(self, not_before: dt.datetime, days: int) -> Iterator[dt.datetime]:
        """Start times on the open days' grid (opening + k × step), from ``not_before``."""
        first_day = not_before.astimezone(self.calendar.zone).date()
        for day in self.calendar.open_days(first_day, first_day + dt.timedelta(days=days)):
            window = self.calendar.opening_window(day)
            if window is None:  # pragma: no cover - open_days yields open days only
                continue
            opens, closes = _utc(window[0]), _utc(window[1])
            at = opens
            if at < not_before:
                steps = math.ceil((not_before - opens) / self.step)
                at = opens + steps * self.step
            while at + self.observe <= closes:
                yield at
                at += self.step

    def first_fit(
        self, not_before: dt.datetime, *, exact_first: bool, days: int
    ) -> dt.datetime | None:
        if exact_first and self.obstacle(not_before) is None:
            return not_before
        for at in self.grid(not_before, days):
            if (at > not_before or not exact_first) and self.obstacle(at) is None:
                return at
        return None


def propose_trial_schedule(
    protocol: ScreeningProtocolSpec,
    calendar: ClinicCalendar,
    earliest: dt.datetime,
    existing_observations: Sequence[tuple[dt.datetime, dt.datetime]],
    beds: int,
    step_minutes: int = 15,
) -> TrialScheduleProposal:
    """Dose times from ``earliest`` on: every dose's whole observation (dose .. dose + 8 h)
    inside opening hours on an open day, doses at least 24 h apart, and never more than
    ``beds`` observations at once (``existing_observations`` included).

    Each dose after the first is preferably exactly 24 h after the one before; otherwise the
    next allowed time on the ``step_minutes`` grid from opening, with the reason. Raises
    ScheduleError when nothing fits: hours shorter than the observation, no beds, or no
    room within ``SCHEDULE_SEARCH_DAYS`` days.
    """
    _zone("earliest", earliest)
    if step_minutes < 1:
        raise ValueError(f"step_minutes must be at least 1 (got {step_minutes})")
    observe = dt.timedelta(hours=protocol.observe_until_hours)
    open_hours = dt.datetime.combine(dt.date(2001, 1, 1), calendar.closes_at) - (
        dt.datetime.combine(dt.date(2001, 1, 1), calendar.opens_at)
    )
    if open_hours < observe:
        raise ScheduleError(
            f"The clinic is open {_hours(open_hours / dt.timedelta(hours=1))} a day"
            f" ({calendar.opens_at:%H:%M}–{calendar.closes_at:%H:%M}): a"
            f" {_hours(protocol.observe_until_hours)} observation after a test dose can never"
            " fit inside opening hours."
        )
    if beds < 1:
        raise ScheduleError("The clinic has no observation beds: a test dose needs one.")
    busy: list[tuple[dt.datetime, dt.datetime]] = []
    for index, (busy_from, busy_until) in enumerate(existing_observations):
        _zone(f"existing_observations[{index}] start", busy_from)
        _zone(f"existing_observations[{index}] end", busy_until)
        busy.append((_utc(busy_from), _utc(busy_until)))
    slots = _Slots(
        calendar=calendar,
        observe=observe,
        step=dt.timedelta(minutes=step_minutes),
        beds=beds,
        busy=busy,
    )
    zone = calendar.zone
    interval = dose_interval(protocol)
    assess = dt.timedelta(hours=protocol.assess_from_hours)
    proposed: list[ProposedDose] = []
    for spec in protocol.doses:
        if not proposed:
            preferred = _utc(earliest)
            found = slots.first_fit(preferred, exact_first=False, days=SCHEDULE_SEARCH_DAYS)
        else:
            preferred = _utc(proposed[-1].at) + interval
            found = slots.first_fit(preferred, exact_first=True, days=SCHEDULE_SEARCH_DAYS)
        if found is None:
            raise ScheduleError(
                f"No time for dose {spec.number} within {SCHEDULE_SEARCH_DAYS} days from"
                f" {_when(preferred.astimezone(zone))}:"
                f" {slots.obstacle(preferred) or 'every opening is taken'}."
            )
        reason = _reason(slots, spec.number, preferred, found, proposed[-1] if proposed else None)
        busy.append((found, found + observe))
        proposed.append(
            ProposedDose(
                number=spec.number,
                dose_mcg=spec.dose_mcg,
                volume_ml=spec.volume_ml,
                at=found.astimezone(zone),
                assess_from=(found + assess).astimezone(zone),
                observe_until=(found + observe).astimezone(zone),
                preferred_at=preferred.astimezone(zone),
                reason=reason,
            )
        )
    return TrialScheduleProposal(protocol_id=protocol.id, doses=tuple(proposed))


def _reason(
    slots: _Slots,
    number: int,
    preferred: dt.datetime,
    found: dt.datetime,
    previous: ProposedDose | None,
) -> str:
    zone = slots.calendar.zone
    local_preferred = preferred.astimezone(zone)
    local_found = found.astimezone(zone)
    if previous is None:
        # Silent when the first dose is on the requested day's first slot from ``earliest``
        # (a requested 07:00 simply becomes the 08:00 opening).
        first_slot = next(slots.grid(preferred, 0), None)
        if found == first_slot:
            return ""
        tried = preferred if first_slot is None else first_slot
        why = slots.obstacle(tried) or "it is taken"
        tried_local = tried.astimezone(zone)
        return f"{_short(tried_local)} is not possible: {why}; next allowed: {_short(local_found)}."
    previous_local = previous.at.astimezone(zone)
    if previous_local.utcoffset() != local_preferred.utcoffset():
        lead = (
            f"DST: the clocks change after dose {number - 1} ({_short(previous_local)}"
            f" {previous_local.tzname()}), so 24 h later is {_short(local_preferred)}"
            f" {local_preferred.tzname()} local time"
        )
    elif found == preferred:
        return ""
    else:
        lead = f"24 h later is {_short(local_preferred)}"
    if found == preferred:
        return f"{lead}."
    why = slots.obstacle(preferred) or "it is taken"
    return f"{lead}: {why}; next allowed: {_short(local_found)}."


# --- Formatting -----------------------------------------------------------------------------


def _fmt(number: float) -> str:
    return f"{number:.2f}".rstrip("0").rstrip(".")


def _hours(hours: float) -> str:
    whole, minutes = divmod(round(hours * 60), 60)
    return f"{whole} h" if minutes == 0 else f"{whole} h {minutes:02d} min"
