"""Screening trials: plan the test doses, record them, the observations and the decision.

The protocol's rules live in ``pumpclinic.domain.screening``. Every write here rebuilds the
trial's ``TrialState`` from its rows, calls the domain transition (``give_dose``,
``record_response``, ``stop_trial``) and stores what it returns; a ``ScreeningRuleError``
becomes a ``ValidationFailed`` naming the field, with the domain's message.

Each dose has its observation bed booked as a screening appointment (dose .. dose + 8 h).
A late dose shifts the planned doses after it, and their bookings; the end of a trial
cancels the bookings of doses that will not be given. Observations are append-only: a
correction is a new row pointing at the one it corrects, and both are kept.

Times in the read models are aware UTC; the GUI shows them in the clinic's zone.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import flag_modified

from pumpclinic.db.models import (
    Appointment,
    AshworthScore,
    ImplantedPump,
    Observation,
    ObservationAdverseEffect,
    Patient,
    ScreeningTrial,
    TestDose,
    User,
)
from pumpclinic.domain.calendar import ClinicCalendar
from pumpclinic.domain.clinic import ClinicSettingsData
from pumpclinic.domain.enums import (
    ASHWORTH_SCORES,
    AppointmentKind,
    AppointmentStatus,
    AuditAction,
    DoseResponse,
    TrialStatus,
)
from pumpclinic.domain.patients import age_in_years
from pumpclinic.domain.reference import LeafletItem, ScreeningDoseSpec, ScreeningProtocolSpec
from pumpclinic.domain.reservoir import mcg_per_hour
from pumpclinic.domain.screening import (
    PlannedDose,
    ProposedDose,
    ScheduleError,
    ScreeningRuleError,
    StartCheck,
    StartCheckKind,
    StopCause,
    TrialDose,
    TrialScheduleProposal,
    TrialStage,
    TrialState,
    correct_given_time,
    dose_interval,
    elapsed_after,
    give_dose,
    propose_trial_schedule,
    record_response,
    stop_trial,
    trial_start_checks,
)
from pumpclinic.domain.titration import MAX_EFFECT_HOURS, starting_dose_mcg_per_day
from pumpclinic.domain.validation import FieldError, limit_text, require_int_range, require_text
from pumpclinic.services import audit, schedule_locks
from pumpclinic.services.context import Actor, ServiceContext
from pumpclinic.services.errors import NotFound, StaleRecord, ValidationFailed
from pumpclinic.services.permissions import Permission, require
from pumpclinic.services.settings import read_settings

__all__ = [
    "AdverseEffectChoice",
    "AdverseEffectView",
    "AshworthChange",
    "BaselineChange",
    "BoardRow",
    "DoseCorrection",
    "DoseResponse",
    "DoseView",
    "ObservationInput",
    "ObservationView",
    "ProposedDose",
    "ProtocolChoice",
    "ScreeningService",
    "StartCheck",
    "StartCheckKind",
    "StopCause",
    "SupersededDose",
    "TrialScheduleProposal",
    "TrialStage",
    "TrialStatus",
    "TrialView",
]

# A time this far ahead of the clock is a typing error, not clock skew.
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
MAX_NOTES_LENGTH = 2000
# A bed booked this recently by someone else was most likely taken while the dialog that
# proposed the time was open.
BED_JUST_TAKEN = dt.timedelta(minutes=15)
MAX_LOT_LENGTH = 64
MAX_ROUTE_LENGTH = 64
MAX_MUSCLE_GROUP_LENGTH = 64
DEFAULT_ROUTE = "lumbar puncture"

# (low, high), as the database's CHECK constraints on observations.
PENN_RANGE = (0, 4)
HEART_RATE_RANGE = (20, 250)
RESPIRATORY_RATE_RANGE = (2, 80)
SPO2_RANGE = (50, 100)

ACTIVE_TRIAL_STATUSES = (TrialStatus.PLANNED.value, TrialStatus.IN_PROGRESS.value)
_OPEN_APPOINTMENT_STATUSES = (AppointmentStatus.BOOKED.value, AppointmentStatus.ARRIVED.value)

# The patient record's risk flags are items of the leaflet's precaution list too.
_FLAG_CONDITIONS = {
    "sci_at_or_above_t6": "spinal-cord-injury-t6-or-above",
    "communication_difficulties": "communication-difficulties",
    "previous_withdrawal": "history-of-withdrawal",
}


# --- read models ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProtocolChoice:
    """A screening protocol of the reference files, for the plan dialog."""

    id: str
    name: str
    concentration_mcg_per_ml: float
    doses: tuple[tuple[int, float, float], ...]  # (number, dose mcg, volume mL)
    assess_from_hours: float
    observe_until_hours: float
    vitals_watch_hours: float


@dataclass(frozen=True, slots=True)
class AdverseEffectChoice:
    """An adverse effect the observation form offers (overdose signs first)."""

    code: str
    label: str
    is_overdose_sign: bool


@dataclass(frozen=True, slots=True)
class SupersededDose:
    """A given dose's entry that a later entry corrects: what it said, and what replaced it."""

    entry_id: int
    given_at: dt.datetime | None
    given_by: str
    lot_number: str
    route: str
    corrected_by_entry_id: int
    corrected_at: dt.datetime  # when the correction was entered
    reason: str  # the correcting entry's reason


@dataclass(frozen=True, slots=True)
class DoseCorrection:
    """What the correction dialog submits: the dose's details as they really were.

    The dose amount and volume are the protocol's and are not corrected here: a different
    amount given is a protocol deviation (stop the trial, with the reason).
    """

    given_at: dt.datetime
    lot_number: str
    route: str
    reason: str


@dataclass(frozen=True, slots=True)
class DoseView:
    """One test dose of the trial: planned, or given, with the response when decided.

    ``planned_at`` is the booked time; ``earliest_at`` the earliest the protocol allows
    (24 h elapsed after the previous dose was given). The observation times follow the
    time given, else the planned time.
    """

    number: int
    dose_mcg: float
    volume_ml: float
    concentration_mcg_per_ml: float
    planned_at: dt.datetime | None
    earliest_at: dt.datetime | None
    given_at: dt.datetime | None
    given_by: str
    lot_number: str
    route: str
    assess_from: dt.datetime | None
    observe_until: dt.datetime | None
    response: DoseResponse | None
    response_by: str
    response_at: dt.datetime | None
    notes: str
    appointment_id: int | None
    entry_id: int | None = None  # the dose row shown (the latest correction, if any)
    correction_reason: str = ""  # why this entry corrects the one before it
    # The entries this one replaced, newest first: kept and shown, never used.
    superseded: tuple[SupersededDose, ...] = ()

    @property
    def corrected(self) -> bool:
        """The details shown come from a correction of the first entry."""
        return bool(self.superseded)

    @property
    def at(self) -> dt.datetime | None:
        """When it was given, else when it is planned."""
        if self.given_at is not None:
            return self.given_at
        return self.planned_at if self.planned_at is not None else self.earliest_at

    @property
    def given(self) -> bool:
        return self.given_at is not None


@dataclass(frozen=True, slots=True)
class TrialView:
    id: int
    patient_id: int
    patient_name: str
    mrn: str
    patient_age_years: int
    protocol_id: str
    protocol_name: str
    status: TrialStatus
    stage: TrialStage  # at the service clock's "now"
    status_text: str
    planned_first_dose_at: dt.datetime | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    doses: tuple[DoseView, ...]
    next_dose_number: int | None
    next_dose_earliest_at: dt.datetime | None
    awaiting_response_number: int | None
    stop_cause: StopCause | None
    stop_reason: str
    active_illness: bool
    acknowledged_checks: tuple[StartCheck, ...]
    checks_acknowledged_by: str
    checks_acknowledged_at: dt.datetime | None
    decided_by: str
    effective_dose_mcg: float | None
    effect_duration_hours: float | None
    suggested_starting_dose_mcg_per_day: float | None  # positive response only
    version: int

    @property
    def ended(self) -> bool:
        return self.stage is TrialStage.ENDED

    @property
    def suggested_starting_dose_mcg_per_hour(self) -> float | None:
        """The same dose per hour: always show both units (ITB-FACTS §2)."""
        dose = self.suggested_starting_dose_mcg_per_day
        return mcg_per_hour(dose) if dose is not None else None

    def dose(self, number: int) -> DoseView | None:
        return next((d for d in self.doses if d.number == number), None)


@dataclass(frozen=True, slots=True)
class AdverseEffectView:
    code: str
    label: str
    is_overdose_sign: bool


@dataclass(frozen=True, slots=True)
class ObservationView:
    id: int
    trial_id: int
    dose_number: int
    observed_at: dt.datetime
    minutes_after_dose: float | None  # None while the dose is not given; negative before it
    is_baseline: bool
    recorded_by: str
    penn_spasm_frequency: int | None
    heart_rate_bpm: int | None
    respiratory_rate_per_min: int | None
    spo2_pct: int | None
    ashworth: Mapping[str, str]  # muscle group → Modified Ashworth score
    adverse_effects: tuple[AdverseEffectView, ...]
    notes: str
    corrects_id: int | None
    corrected_by_id: int | None
    created_at: dt.datetime

    @property
    def corrected(self) -> bool:
        return self.corrected_by_id is not None

    @property
    def overdose_signs(self) -> tuple[str, ...]:
        return tuple(e.label for e in self.adverse_effects if e.is_overdose_sign)


@dataclass(frozen=True, slots=True)
class ObservationInput:
    """What the observation form submits; None or empty for what was not measured."""

    observed_at: dt.datetime
    is_baseline: bool = False
    penn_spasm_frequency: int | None = None
    heart_rate_bpm: int | None = None
    respiratory_rate_per_min: int | None = None
    spo2_pct: int | None = None
    ashworth: Mapping[str, str] = field(default_factory=dict)
    adverse_effect_codes: Sequence[str] = ()
    notes: str = ""
    corrects_id: int | None = None


@dataclass(frozen=True, slots=True)
class AshworthChange:
    """One muscle group: the baseline score and the latest after the dose.

    ``change_steps`` counts steps on the scale 0, 1, 1+, 2, 3, 4 (negative: less tone).
    """

    muscle_group: str
    baseline: str | None
    latest: str | None
    change_steps: int | None


@dataclass(frozen=True, slots=True)
class BaselineChange:
    """What supports the clinician's decision on a dose: baseline → latest."""

    trial_id: int
    dose_number: int
    baseline_observed_at: dt.datetime | None
    latest_observed_at: dt.datetime | None
    ashworth: tuple[AshworthChange, ...]
    penn_baseline: int | None
    penn_latest: int | None

    @property
    def penn_change(self) -> int | None:
        if self.penn_baseline is None or self.penn_latest is None:
            return None
        return self.penn_latest - self.penn_baseline


@dataclass(frozen=True, slots=True)
class BoardRow:
    """One dose on the screening board: due, given, or still in observation."""

    trial_id: int
    trial_version: int
    patient_id: int
    patient_name: str
    mrn: str
    dose_number: int
    dose_mcg: float
    volume_ml: float
    planned_at: dt.datetime | None
    given_at: dt.datetime | None
    assess_from: dt.datetime
    observe_until: dt.datetime
    response: DoseResponse | None
    trial_status: TrialStatus
    trial_stage: TrialStage
    status_text: str
    overdose_signs: tuple[str, ...]

    @property
    def at(self) -> dt.datetime:
        if self.given_at is not None:
            return self.given_at
        assert self.planned_at is not None
        return self.planned_at


# --- internal ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Trial:
    """A trial's row, protocol, current dose rows and domain state (times in the zone)."""

    row: ScreeningTrial
    protocol: ScreeningProtocolSpec
    doses: dict[int, TestDose]
    state: TrialState


def _hours(hours: float) -> dt.timedelta:
    return dt.timedelta(hours=hours)


def _local(at: dt.datetime, settings: ClinicSettingsData) -> str:
    return f"{at.astimezone(settings.zone):%a %d %b %H:%M}"


def _clock(at: dt.datetime, settings: ClinicSettingsData) -> str:
    return f"{at.astimezone(settings.zone):%H:%M}"


def _utc(at: dt.datetime | None) -> dt.datetime | None:
    return at.astimezone(dt.UTC) if at is not None else None


def _name(patient: Patient) -> str:
    return f"{patient.family_name.upper()}, {patient.given_name}"


def _aware(errors: list[FieldError], name: str, label: str, at: dt.datetime) -> bool:
    if at.tzinfo is None or at.utcoffset() is None:
        errors.append(FieldError(name, f"{label} needs a time zone."))
        return False
    return True


def _current_doses(rows: Iterable[TestDose]) -> dict[int, TestDose]:
    """The dose rows not corrected by a later row, by number."""
    rows = list(rows)
    corrected = {r.corrects_id for r in rows if r.corrects_id is not None}
    current: dict[int, TestDose] = {}
    for row in sorted(rows, key=lambda r: (r.number, r.id or 0)):
        if row.id not in corrected:
            current[row.number] = row
    return current


def _trial_state(
    row: ScreeningTrial,
    protocol: ScreeningProtocolSpec,
    doses: Mapping[int, TestDose],
    settings: ClinicSettingsData,
) -> TrialState:
    """The domain state from the stored rows, times on the clinic's wall clock."""
    zone = settings.zone
    given: list[TrialDose] = []
    for number in sorted(doses):
        dose = doses[number]
        if dose.given_at is None:
            break
        given_at = dose.given_at.astimezone(zone)
        given.append(
            TrialDose(
                number=dose.number,
                dose_mcg=dose.dose_mcg,
                volume_ml=dose.volume_ml,
                concentration_mcg_per_ml=dose.concentration_mcg_per_ml,
                given_at=given_at,
                assess_from=elapsed_after(given_at, _hours(protocol.assess_from_hours)),
                observe_until=elapsed_after(given_at, _hours(protocol.observe_until_hours)),
                response=DoseResponse(dose.response) if dose.response else None,
                response_recorded_at=(
                    dose.response_recorded_at.astimezone(zone)
                    if dose.response_recorded_at is not None
                    else None
                ),
            )
        )
    return TrialState(
        protocol=protocol,
        status=TrialStatus(row.status),
        doses=tuple(given),
        stop_cause=StopCause(row.stop_cause) if row.stop_cause else None,
        stop_reason=row.stop_reason,
        ended_at=row.ended_at.astimezone(zone) if row.ended_at is not None else None,
    )


def _plan(t: _Trial, settings: ClinicSettingsData) -> dict[int, PlannedDose]:
    """The protocol's earliest times per dose (empty before any dose, without a plan)."""
    first = t.row.planned_first_dose_at
    if not t.state.doses and first is None:
        return {}
    try:
        plan = t.state.plan(first.astimezone(settings.zone) if first is not None else None)
    except ScreeningRuleError:  # stored doses the rules refuse: show what was recorded
        return {}
    return {dose.number: dose for dose in plan}


def _checks_json(checks: Sequence[StartCheck]) -> str:
    return json.dumps(
        [{"kind": c.kind.value, "code": c.code, "message": c.message} for c in checks]
    )


def _checks_from_json(text: str | None) -> tuple[StartCheck, ...]:
    if not text:
        return ()
    checks: list[StartCheck] = []
    for item in json.loads(text):
        checks.append(
            StartCheck(StartCheckKind(item["kind"]), str(item["code"]), str(item["message"]))
        )
    return tuple(checks)


def _ashworth_step(score: str | None) -> int | None:
    return ASHWORTH_SCORES.index(score) if score in ASHWORTH_SCORES else None


class ScreeningService:
    def __init__(self, context: ServiceContext) -> None:
        self._ctx = context

    # --- reference lists ----------------------------------------------------------------

    def protocols(self, actor: Actor) -> list[ProtocolChoice]:
        require(actor, Permission.VIEW_PATIENTS)
        return [
            ProtocolChoice(
                id=p.id,
                name=p.name,
                concentration_mcg_per_ml=p.concentration_mcg_per_ml,
                doses=tuple((d.number, d.dose_mcg, d.volume_ml) for d in p.doses),
                assess_from_hours=p.assess_from_hours,
                observe_until_hours=p.observe_until_hours,
                vitals_watch_hours=p.vitals_watch_hours,
            )
            for p in self._ctx.reference.screening_protocols
        ]

    def adverse_effect_choices(self, actor: Actor) -> list[AdverseEffectChoice]:
        """The leaflet's overdose signs, then its side effects that are not also on that list."""
        require(actor, Permission.VIEW_PATIENTS)
        leaflet = self._ctx.reference.leaflet
        choices = [AdverseEffectChoice(i.id, i.label, True) for i in leaflet.overdose_signs]
        for item in leaflet.side_effects:
            if self._overdose_item(item.id) is None:
                choices.append(AdverseEffectChoice(item.id, item.label, False))
        return choices

    def leaflet_overdose_signs(self, actor: Actor) -> tuple[str, ...]:
        """Every overdose sign of the leaflet: what the urgent banner lists."""
        require(actor, Permission.VIEW_PATIENTS)
        return tuple(item.label for item in self._ctx.reference.leaflet.overdose_signs)

    # --- reading ------------------------------------------------------------------------

    def start_checks(self, actor: Actor, patient_id: int, active_illness: bool) -> list[StartCheck]:
        """What the clinician must acknowledge before the trial (age, illness, medicines,
        conditions from the leaflet's lists)."""
        require(actor, Permission.VIEW_PATIENTS)
        with self._ctx.unit_of_work() as session:
            settings = read_settings(session)
            return self._start_checks(session, settings, patient_id, active_illness)

    def propose_schedule(
        self, actor: Actor, patient_id: int, protocol_id: str, earliest: dt.datetime
    ) -> TrialScheduleProposal:
        """Dose times from ``earliest`` that fit opening hours, days and observation beds."""
        require(actor, Permission.VIEW_SCHEDULE)
        protocol = self._protocol(protocol_id)
        errors: list[FieldError] = []
        if not _aware(errors, "earliest", "Earliest time", earliest):
            raise ValidationFailed(errors)
        # Never propose a time already past.
        earliest = max(earliest, self._ctx.now())
        with self._ctx.unit_of_work() as session:
            if session.get(Patient, patient_id) is None:
                raise NotFound(f"Patient {patient_id} does not exist.")
            settings = read_settings(session)
            busy = self._busy(session, settings, earliest, exclude_trial_id=None)
            try:
                return propose_trial_schedule(
                    protocol,
                    ClinicCalendar.from_settings(settings),
                    earliest.astimezone(settings.zone),
                    busy,
                    settings.observation_beds,
                )
            except ScheduleError as exc:
                raise ValidationFailed([FieldError("earliest", str(exc))]) from exc

    def trial(self, actor: Actor, trial_id: int) -> TrialView:
        require(actor, Permission.VIEW_PATIENTS)
        with self._ctx.unit_of_work() as session:
            settings = read_settings(session)
            return self._view(session, settings, self._load(session, trial_id, settings))

    def trials_for_patient(self, actor: Actor, patient_id: int) -> list[TrialView]:
        """The patient's trials, newest first."""
        require(actor, Permission.VIEW_PATIENTS)
        with self._ctx.unit_of_work() as session:
            settings = read_settings(session)
            ids = session.scalars(
                select(ScreeningTrial.id)
                .where(ScreeningTrial.patient_id == patient_id)
                .order_by(ScreeningTrial.id.desc())
            ).all()
            return [self._view(session, settings, self._load(session, i, settings)) for i in ids]

    def active_trial_id(self, actor: Actor, patient_id: int) -> int | None:
        """The patient's planned or running trial, if any."""
        require(actor, Permission.VIEW_PATIENTS)
        with self._ctx.unit_of_work() as session:
            return self._active_trial_id(session, patient_id)

    def observations(self, actor: Actor, trial_id: int) -> list[ObservationView]:
        """Every observation of the trial in time order, corrected ones included (flagged)."""
        require(actor, Permission.VIEW_PATIENTS)
        with self._ctx.unit_of_work() as session:
            settings = read_settings(session)
            t = self._load(session, trial_id, settings)
            return self._observation_views(session, t)

    def overdose_signs_present(self, actor: Actor, trial_id: int) -> tuple[str, ...]:
        """Labels of overdose signs recorded in the trial, less those corrected away."""
        require(actor, Permission.VIEW_PATIENTS)
        with self._ctx.unit_of_work() as session:
            settings = read_settings(session)
            t = self._load(session, trial_id, settings)
            return self._overdose_signs(self._observation_views(session, t))

    def baseline_change(self, actor: Actor, trial_id: int, dose_number: int) -> BaselineChange:
        """Per muscle group and for Penn: the baseline before the dose → the latest after it.

        The baseline is the dose's own, else the latest baseline of an earlier dose.
        Corrected observations are left out.
        """
        require(actor, Permission.VIEW_PATIENTS)
        with self._ctx.unit_of_work() as session:
            settings = read_settings(session)
            t = self._load(session, trial_id, settings)
            if not 1 <= dose_number <= len(t.protocol.doses):
                raise ValidationFailed(
                    [FieldError("dose_number", self._no_such_dose(t.protocol, dose_number))]
                )
            views = [v for v in self._observation_views(session, t) if not v.corrected]
            return _baseline_change(trial_id, dose_number, views)

    def board(self, actor: Actor, day: dt.date | None = None) -> list[BoardRow]:
        """The screening board: every dose planned or given on ``day`` (the clinic's today by
        default) and every dose still in observation, in time order."""
        require(actor, Permission.VIEW_SCHEDULE)
        with self._ctx.unit_of_work() as session:
            settings = read_settings(session)
            return self._board(session, settings, day)

    # --- writing ------------------------------------------------------------------------

    def plan_trial(
        self,
        actor: Actor,
        patient_id: int,
        protocol_id: str,
        first_dose_at: dt.datetime,
        active_illness: bool,
        acknowledged: Sequence[StartCheck],
    ) -> TrialView:
        """Plan a trial: every start check acknowledged, each dose's observation booked."""
        require(actor, Permission.RECORD_SCREENING_RESPONSE)
        errors: list[FieldError] = []
        protocol = self._protocol(protocol_id)
        if not _aware(errors, "first_dose_at", "First dose time", first_dose_at):
            raise ValidationFailed(errors)
        # Planned to the minute: a form's "now" carries seconds the schedule cannot use.
        first_dose_at = first_dose_at.replace(second=0, microsecond=0)
        with self._ctx.unit_of_work() as session:
            # First: another workstation booking beds waits here until this one commits.
            schedule_locks.take(session, schedule_locks.OBSERVATION_BEDS)
            settings = read_settings(session)
            now = self._ctx.now()
            patient = session.get(Patient, patient_id)
            if patient is None:
                raise NotFound(f"Patient {patient_id} does not exist.")
            checks = self._start_checks(session, settings, patient_id, active_illness)
            confirmed = {(c.kind, c.code) for c in acknowledged}
            for check in checks:
                if (check.kind, check.code) not in confirmed:
                    errors.append(FieldError("acknowledged", f"Acknowledge: {check.message}"))
            active = self._active_trial_id(session, patient_id)
            if active is not None:
                errors.append(
                    FieldError(
                        "patient_id",
                        f"{_name(patient)} already has a screening trial in progress or"
                        f" planned (trial {active}): end or stop it first.",
                    )
                )
            pump = session.scalar(
                select(ImplantedPump.serial_number).where(
                    ImplantedPump.patient_id == patient_id, ImplantedPump.explanted_on.is_(None)
                )
            )
            if pump is not None:
                errors.append(
                    FieldError(
                        "patient_id",
                        f"{_name(patient)} has an implanted pump (serial {pump}): a screening"
                        " trial is done before an implant.",
                    )
                )
            if first_dose_at < now - FUTURE_TOLERANCE:
                errors.append(
                    FieldError(
                        "first_dose_at",
                        f"The first dose cannot be planned in the past"
                        f" ({_local(first_dose_at, settings)}).",
                    )
                )
            if errors:
                raise ValidationFailed(errors)
            busy = self._busy(session, settings, first_dose_at, exclude_trial_id=None)
            try:
                schedule = self._fit_first_dose(protocol, settings, first_dose_at, busy)
            except ValidationFailed as refused:
                taken = self._bed_just_taken(
                    session, settings, protocol, first_dose_at, busy, actor
                )
                if taken is None:
                    raise
                raise ValidationFailed([FieldError("first_dose_at", taken)]) from refused
            trial = ScreeningTrial(
                patient_id=patient_id,
                protocol_id=protocol.id,
                status=TrialStatus.PLANNED.value,
                planned_first_dose_at=first_dose_at,
                stop_reason="",
                active_illness=active_illness,
                start_checks_json=_checks_json(checks),
                checks_acknowledged_by_id=actor.user_id,
                checks_acknowledged_at=now,
                created_by_id=actor.user_id,
                created_at=now,
            )
            session.add(trial)
            session.flush()
            observe = _hours(protocol.observe_until_hours)
            for proposed in schedule.doses:
                spec = protocol.doses[proposed.number - 1]
                dose = self._add_dose(trial, protocol, spec, proposed.at, now)
                dose.appointment_id = self._book_bed(
                    session, actor, trial, spec, proposed.at, proposed.at + observe, now
                ).id
            session.flush()
            self._audit(
                session,
                actor,
                AuditAction.CREATE,
                trial,
                after={**audit.snapshot(trial), "doses": [audit.snapshot(d) for d in trial.doses]},
            )
            return self._view(session, settings, self._load(session, trial.id, settings))

    def give_dose(
        self,
        actor: Actor,
        trial_id: int,
        expected_version: int,
        number: int,
        given_at: dt.datetime,
        lot_number: str,
        route: str = DEFAULT_ROUTE,
    ) -> TrialView:
        """Record dose ``number`` as given; later planned doses shift when it is late."""
        require(actor, Permission.RECORD_SCREENING_RESPONSE)
        errors: list[FieldError] = []
        if not _aware(errors, "given_at", "Time given", given_at):
            raise ValidationFailed(errors)
        require_text(errors, "lot_number", "Lot number", lot_number, MAX_LOT_LENGTH)
        require_text(errors, "route", "Route", route, MAX_ROUTE_LENGTH)
        with self._ctx.unit_of_work() as session:
            # A late dose moves the planned doses after it into free beds: first the lock.
            schedule_locks.take(session, schedule_locks.OBSERVATION_BEDS)
            settings = read_settings(session)
            now = self._ctx.now()
            t = self._load(session, trial_id, settings, expected_version)
            expected_number = len(t.state.doses) + 1
            if number != expected_number:
                errors.append(FieldError("number", self._wrong_dose(t, number, expected_number)))
            if given_at > now + FUTURE_TOLERANCE:
                errors.append(
                    FieldError(
                        "given_at",
                        f"The time given ({_local(given_at, settings)}) is in the future.",
                    )
                )
            if errors:
                raise ValidationFailed(errors)
            self._ensure_dose_rows(session, actor, t, settings)
            planned_row = t.doses.get(number)
            try:
                state = give_dose(
                    t.state,
                    given_at.astimezone(settings.zone),
                    dose_mcg=planned_row.dose_mcg if planned_row is not None else None,
                )
            except ScreeningRuleError as exc:
                field_name = "given_at" if t.state.next_dose is not None else "number"
                raise ValidationFailed([FieldError(field_name, str(exc))]) from exc
            row = t.doses[number]
            before = self._trial_audit_view(t)
            given = state.doses[-1]
            row.given_at = given.given_at
            row.given_by_id = actor.user_id
            row.lot_number = lot_number.strip()
            row.route = route.strip()
            if t.row.started_at is None:
                t.row.started_at = given.given_at
            t.row.status = state.status.value
            flag_modified(t.row, "status")  # every change to the trial bumps its version
            self._move_own_booking(session, actor, t, row, given.given_at, now)
            self._shift_later_doses(session, actor, t, settings, number, given.given_at, now)
            session.flush()
            self._audit(
                session,
                actor,
                AuditAction.UPDATE,
                t.row,
                before=before,
                after=self._trial_audit_view(t),
            )
            return self._view(session, settings, self._load(session, trial_id, settings))

    def correct_dose(
        self,
        actor: Actor,
        trial_id: int,
        expected_version: int,
        number: int,
        correction: DoseCorrection,
    ) -> TrialView:
        """Correct what was recorded for given dose ``number``: its time, lot or route.

        Append-only: the correction is a new row pointing at the one it corrects
        (``corrects_id``), which is kept unchanged and shown as corrected. Everything that
        reads the dose from then on (the trial's state, the 24-hour spacing, observation
        windows, the board) uses the correction. Same right as giving the dose; a reason is
        required. The corrected time must still satisfy the protocol
        (:func:`pumpclinic.domain.screening.correct_given_time`) and keep the dose's
        observations on their side of it: those after the dose at or after it, baselines at
        or before it. A later dose still planned moves when the corrected time leaves less
        than 24 hours before it; the dose's own open bed booking follows the corrected time.
        """
        require(actor, Permission.RECORD_SCREENING_RESPONSE)
        errors: list[FieldError] = []
        given_at = correction.given_at
        if not _aware(errors, "given_at", "Time given", given_at):
            raise ValidationFailed(errors)
        require_text(errors, "lot_number", "Lot number", correction.lot_number, MAX_LOT_LENGTH)
        require_text(errors, "route", "Route", correction.route, MAX_ROUTE_LENGTH)
        require_text(
            errors, "reason", "Reason for the correction", correction.reason, MAX_NOTES_LENGTH
        )
        lot_number = correction.lot_number.strip()
        route = correction.route.strip()
        with self._ctx.unit_of_work() as session:
            settings = read_settings(session)
            now = self._ctx.now()
            t = self._load(session, trial_id, settings, expected_version)
            old = t.doses.get(number)
            if old is None or old.given_at is None:
                raise ValidationFailed(
                    [FieldError("number", f"Dose {number} has not been given: nothing to correct.")]
                )
            if given_at > now + FUTURE_TOLERANCE:
                errors.append(
                    FieldError(
                        "given_at",
                        f"The corrected time given ({_local(given_at, settings)}) is in the"
                        " future.",
                    )
                )
            elif given_at != old.given_at:
                try:
                    correct_given_time(t.state, number, given_at.astimezone(settings.zone))
                except ScreeningRuleError as exc:
                    errors.append(FieldError("given_at", str(exc)))
                else:
                    self._check_observation_sides(session, t, old, given_at, settings, errors)
            if (
                not errors
                and given_at == old.given_at
                and lot_number == old.lot_number
                and route == old.route
            ):
                errors.append(
                    FieldError(
                        "given_at",
                        "Nothing to correct: the time given, lot number and route are as recorded.",
                    )
                )
            if errors:
                raise ValidationFailed(errors)
            before = self._trial_audit_view(t)
            row = TestDose(
                number=old.number,
                dose_mcg=old.dose_mcg,
                volume_ml=old.volume_ml,
                concentration_mcg_per_ml=old.concentration_mcg_per_ml,
                planned_at=old.planned_at,
                given_at=given_at,
                given_by_id=old.given_by_id,
                lot_number=lot_number,
                route=route,
                response=old.response,
                response_recorded_at=old.response_recorded_at,
                response_recorded_by_id=old.response_recorded_by_id,
                response_notes=old.response_notes,
                corrects_id=old.id,
                correction_reason=correction.reason.strip(),
                appointment_id=old.appointment_id,
                created_at=now,
            )
            t.row.doses.append(row)
            session.flush()
            t.doses[number] = row
            if given_at != old.given_at:
                if number == 1:
                    t.row.started_at = given_at
                flag_modified(t.row, "status")  # every change to the trial bumps its version
                self._move_own_booking(session, actor, t, row, given_at, now)
                if not t.state.ended and number == len(t.state.doses):
                    # The next dose is still planned: keep it 24 h after the corrected time.
                    self._ensure_dose_rows(session, actor, t, settings)
                    if number < len(t.protocol.doses):
                        self._shift_later_doses(session, actor, t, settings, number, given_at, now)
            else:
                flag_modified(t.row, "status")
            session.flush()
            audit.record(
                session,
                actor=actor,
                at=now,
                action=AuditAction.CREATE,
                entity="test_dose",
                entity_id=row.id,
                patient_id=t.row.patient_id,
                before=audit.snapshot(old),
                after=audit.snapshot(row),
            )
            self._audit(
                session,
                actor,
                AuditAction.UPDATE,
                t.row,
                before=before,
                after=self._trial_audit_view(t),
            )
            return self._view(session, settings, self._load(session, trial_id, settings))

    def _check_observation_sides(
        self,
        session: Session,
        t: _Trial,
        dose: TestDose,
        given_at: dt.datetime,
        settings: ClinicSettingsData,
        errors: list[FieldError],
    ) -> None:
        """A corrected time must not put the dose's observations on the wrong side of it."""
        views = [
            v
            for v in self._observation_views(session, t)
            if v.dose_number == dose.number and not v.corrected
        ]
        after = [v for v in views if not v.is_baseline and v.observed_at < given_at]
        if after:
            first = min(after, key=lambda v: v.observed_at)
            errors.append(
                FieldError(
                    "given_at",
                    f"Observation {first.id} at {_local(first.observed_at, settings)} was"
                    f" recorded after dose {dose.number}: the corrected time cannot be later"
                    " than that (correct the observation first if it was a baseline).",
                )
            )
        baselines = [v for v in views if v.is_baseline and v.observed_at > given_at]
        if baselines:
            last = max(baselines, key=lambda v: v.observed_at)
            errors.append(
                FieldError(
                    "given_at",
                    f"Baseline observation {last.id} at {_local(last.observed_at, settings)}"
                    f" was recorded before dose {dose.number}: the corrected time cannot be"
                    " earlier than that.",
                )
            )

    def record_observation(
        self, actor: Actor, trial_id: int, dose_number: int, data: ObservationInput
    ) -> ObservationView:
        """Vitals, scores and adverse effects for a dose (a baseline may precede it)."""
        require(actor, Permission.RECORD_VITALS)
        errors: list[FieldError] = []
        if not _aware(errors, "observed_at", "Observation time", data.observed_at):
            raise ValidationFailed(errors)
        with self._ctx.unit_of_work() as session:
            settings = read_settings(session)
            now = self._ctx.now()
            t = self._load(session, trial_id, settings)
            if not 1 <= dose_number <= len(t.protocol.doses):
                raise ValidationFailed(
                    [FieldError("dose_number", self._no_such_dose(t.protocol, dose_number))]
                )
            self._ensure_dose_rows(session, actor, t, settings)
            dose = t.doses.get(dose_number)
            if dose is None or (dose.given_at is None and t.state.ended):
                raise ValidationFailed(
                    [
                        FieldError(
                            "dose_number",
                            f"Dose {dose_number} was not given and the trial has ended"
                            f" ({t.state.describe_end()}).",
                        )
                    ]
                )
            effects = self._validate_observation(session, t, dose, data, settings, now, errors)
            if errors:
                raise ValidationFailed(errors)
            row = Observation(
                test_dose_id=dose.id,
                observed_at=data.observed_at,
                is_baseline=data.is_baseline,
                recorded_by_id=actor.user_id,
                penn_spasm_frequency=data.penn_spasm_frequency,
                heart_rate_bpm=data.heart_rate_bpm,
                respiratory_rate_per_min=data.respiratory_rate_per_min,
                spo2_pct=data.spo2_pct,
                notes=data.notes.strip(),
                corrects_id=data.corrects_id,
                created_at=now,
            )
            row.ashworth_scores = [
                AshworthScore(muscle_group=group.strip(), score=score)
                for group, score in sorted(data.ashworth.items())
            ]
            row.adverse_effects = [
                ObservationAdverseEffect(code=code, is_overdose_sign=overdose)
                for code, overdose in effects
            ]
            session.add(row)
            session.flush()
            audit.record(
                session,
                actor=actor,
                at=now,
                action=AuditAction.CREATE,
                entity="observation",
                entity_id=row.id,
                patient_id=t.row.patient_id,
                after={
                    **audit.snapshot(row),
                    "trial_id": t.row.id,
                    "dose_number": dose_number,
                    "ashworth": {s.muscle_group: s.score for s in row.ashworth_scores},
                    "adverse_effects": [code for code, _overdose in effects],
                },
            )
            views = self._observation_views(session, t)
            return next(v for v in views if v.id == row.id)

    def record_response(
        self,
        actor: Actor,
        trial_id: int,
        expected_version: int,
        number: int,
        response: DoseResponse,
        recorded_at: dt.datetime,
        effect_hours: float | None,
        notes: str,
    ) -> TrialView:
        """The clinician's decision on dose ``number``, from its assess-from time on.

        Positive: a candidate; the effective dose and the effect's duration (when known)
        give the suggested starting dose. Inadequate at the last dose: not a candidate.
        ``effect_hours`` is kept for a positive response only.
        """
        require(actor, Permission.RECORD_SCREENING_RESPONSE)
        errors: list[FieldError] = []
        if not _aware(errors, "recorded_at", "Time of the decision", recorded_at):
            raise ValidationFailed(errors)
        limit_text(errors, "notes", "Notes", notes, MAX_NOTES_LENGTH)
        response = DoseResponse(response)
        if response is DoseResponse.POSITIVE and effect_hours is not None:
            self._check_effect_hours(errors, effect_hours)
        with self._ctx.unit_of_work() as session:
            settings = read_settings(session)
            now = self._ctx.now()
            t = self._load(session, trial_id, settings, expected_version)
            last = t.state.last_dose
            if t.state.awaiting_response and last is not None and number != last.number:
                errors.append(
                    FieldError(
                        "number",
                        f"Dose {last.number} is the one awaiting a response, not dose {number}.",
                    )
                )
            if recorded_at > now + FUTURE_TOLERANCE:
                errors.append(
                    FieldError(
                        "recorded_at",
                        f"The time of the decision ({_local(recorded_at, settings)}) is in"
                        " the future.",
                    )
                )
            if errors:
                raise ValidationFailed(errors)
            try:
                state = record_response(t.state, response, recorded_at.astimezone(settings.zone))
            except ScreeningRuleError as exc:
                field_name = "recorded_at" if t.state.awaiting_response else "number"
                raise ValidationFailed([FieldError(field_name, str(exc))]) from exc
            before = self._trial_audit_view(t)
            row = t.doses[number]
            row.response = response.value
            row.response_recorded_at = recorded_at
            row.response_recorded_by_id = actor.user_id
            row.response_notes = notes.strip()
            self._store_state(t, state, actor)
            if response is DoseResponse.POSITIVE:
                t.row.effect_duration_hours = effect_hours
            if state.ended:
                self._cancel_remaining(session, actor, t, state, now)
            session.flush()
            self._audit(
                session,
                actor,
                AuditAction.UPDATE,
                t.row,
                before=before,
                after=self._trial_audit_view(t),
            )
            return self._view(session, settings, self._load(session, trial_id, settings))

    def set_effect_duration(
        self, actor: Actor, trial_id: int, expected_version: int, effect_hours: float
    ) -> TrialView:
        """How long the positive dose's effect lasted, when known only after the decision."""
        require(actor, Permission.RECORD_SCREENING_RESPONSE)
        errors: list[FieldError] = []
        self._check_effect_hours(errors, effect_hours)
        if errors:
            raise ValidationFailed(errors)
        with self._ctx.unit_of_work() as session:
            settings = read_settings(session)
            t = self._load(session, trial_id, settings, expected_version)
            if t.state.status is not TrialStatus.CANDIDATE:
                raise ValidationFailed(
                    [
                        FieldError(
                            "effect_hours",
                            "The effect's duration is recorded for a positive response only.",
                        )
                    ]
                )
            before = self._trial_audit_view(t)
            t.row.effect_duration_hours = effect_hours
            session.flush()
            self._audit(
                session,
                actor,
                AuditAction.UPDATE,
                t.row,
                before=before,
                after=self._trial_audit_view(t),
            )
            return self._view(session, settings, self._load(session, trial_id, settings))

    def stop_trial(
        self,
        actor: Actor,
        trial_id: int,
        expected_version: int,
        cause: StopCause,
        reason: str,
        stopped_at: dt.datetime,
    ) -> TrialView:
        """End the trial early, for an adverse event or by the clinician; reason required."""
        require(actor, Permission.RECORD_SCREENING_RESPONSE)
        errors: list[FieldError] = []
        if not _aware(errors, "stopped_at", "Time stopped", stopped_at):
            raise ValidationFailed(errors)
        require_text(errors, "reason", "Reason for stopping", reason, MAX_NOTES_LENGTH)
        with self._ctx.unit_of_work() as session:
            settings = read_settings(session)
            now = self._ctx.now()
            t = self._load(session, trial_id, settings, expected_version)
            if stopped_at > now + FUTURE_TOLERANCE:
                errors.append(
                    FieldError(
                        "stopped_at",
                        f"The time stopped ({_local(stopped_at, settings)}) is in the future.",
                    )
                )
            if errors:
                raise ValidationFailed(errors)
            try:
                state = stop_trial(
                    t.state, StopCause(cause), reason, stopped_at.astimezone(settings.zone)
                )
            except ScreeningRuleError as exc:
                if t.state.ended:
                    field_name = "status"
                elif t.state.last_dose is None:
                    field_name = "cause"  # an adverse event before any dose
                else:
                    field_name = "stopped_at"
                raise ValidationFailed([FieldError(field_name, str(exc))]) from exc
            before = self._trial_audit_view(t)
            self._store_state(t, state, actor)
            self._cancel_remaining(session, actor, t, state, now)
            session.flush()
            self._audit(
                session,
                actor,
                AuditAction.UPDATE,
                t.row,
                before=before,
                after=self._trial_audit_view(t),
            )
            return self._view(session, settings, self._load(session, trial_id, settings))

    # --- loading ------------------------------------------------------------------------

    def _protocol(self, protocol_id: str) -> ScreeningProtocolSpec:
        try:
            return self._ctx.reference.screening_protocol(protocol_id)
        except KeyError:
            known = ", ".join(p.id for p in self._ctx.reference.screening_protocols)
            raise ValidationFailed(
                [
                    FieldError(
                        "protocol_id",
                        f"There is no screening protocol {protocol_id!r}; known: {known}.",
                    )
                ]
            ) from None

    def _load(
        self,
        session: Session,
        trial_id: int,
        settings: ClinicSettingsData,
        expected_version: int | None = None,
    ) -> _Trial:
        row = session.scalar(
            select(ScreeningTrial)
            .where(ScreeningTrial.id == trial_id)
            .options(selectinload(ScreeningTrial.doses))
            .execution_options(populate_existing=True)
        )
        if row is None:
            raise NotFound(f"Screening trial {trial_id} does not exist.")
        if expected_version is not None and row.version != expected_version:
            raise StaleRecord(
                "This screening trial was changed by someone else after you opened it. "
                "Reload it to see their changes; nothing was saved."
            )
        try:
            protocol = self._ctx.reference.screening_protocol(row.protocol_id)
        except KeyError:
            raise NotFound(
                f"Screening trial {trial_id} follows the protocol {row.protocol_id!r}, which"
                " is no longer in the reference files (screening-protocols.json)."
            ) from None
        doses = _current_doses(row.doses)
        return _Trial(row, protocol, doses, _trial_state(row, protocol, doses, settings))

    def _active_trial_id(self, session: Session, patient_id: int) -> int | None:
        return session.scalar(
            select(ScreeningTrial.id)
            .where(
                ScreeningTrial.patient_id == patient_id,
                ScreeningTrial.status.in_(ACTIVE_TRIAL_STATUSES),
            )
            .order_by(ScreeningTrial.id.desc())
            .limit(1)
        )

    def _start_checks(
        self,
        session: Session,
        settings: ClinicSettingsData,
        patient_id: int,
        active_illness: bool,
    ) -> list[StartCheck]:
        patient = session.scalar(
            select(Patient)
            .where(Patient.id == patient_id)
            .options(selectinload(Patient.conditions), selectinload(Patient.medicines))
        )
        if patient is None:
            raise NotFound(f"Patient {patient_id} does not exist.")
        conditions = {c.code for c in patient.conditions}
        conditions |= {code for flag, code in _FLAG_CONDITIONS.items() if getattr(patient, flag)}
        today = self._ctx.now().astimezone(settings.zone).date()
        return trial_start_checks(
            patient.date_of_birth,
            today,
            active_illness,
            {m.code for m in patient.medicines},
            conditions,
            self._ctx.reference.leaflet,
        )

    def _open_trials(
        self, session: Session, settings: ClinicSettingsData, given_since: dt.datetime
    ) -> list[_Trial]:
        """Planned and running trials, and any with a dose given since ``given_since``."""
        recent = select(TestDose.trial_id).where(TestDose.given_at >= given_since)
        ids = session.scalars(
            select(ScreeningTrial.id)
            .where(
                or_(
                    ScreeningTrial.status.in_(ACTIVE_TRIAL_STATUSES),
                    ScreeningTrial.id.in_(recent),
                )
            )
            .order_by(ScreeningTrial.id)
        ).all()
        trials: list[_Trial] = []
        for trial_id in ids:
            try:
                trials.append(self._load(session, trial_id, settings))
            except NotFound:  # a protocol removed from the files: nothing to plan around
                continue
        return trials

    def _busy(
        self,
        session: Session,
        settings: ClinicSettingsData,
        around: dt.datetime,
        exclude_trial_id: int | None,
    ) -> list[tuple[dt.datetime, dt.datetime]]:
        """Observation windows of other trials' doses (dose .. dose + 8 h), given or planned."""
        windows: list[tuple[dt.datetime, dt.datetime]] = []
        since = around - dt.timedelta(days=2)
        for t in self._open_trials(session, settings, since):
            if t.row.id == exclude_trial_id:
                continue
            observe = _hours(t.protocol.observe_until_hours)
            plan = _plan(t, settings)
            for spec in t.protocol.doses:
                at = self._dose_time(t, spec.number, plan)
                if at is not None:
                    windows.append((at, at + observe))
        return windows

    def _dose_time(
        self, t: _Trial, number: int, plan: Mapping[int, PlannedDose]
    ) -> dt.datetime | None:
        """When the dose was given, else when it is planned (None: it never will be)."""
        row = t.doses.get(number)
        if row is not None and row.given_at is not None:
            return row.given_at
        if t.state.ended:
            return None
        if row is not None and row.planned_at is not None:
            return row.planned_at
        planned = plan.get(number)
        return planned.earliest_at if planned is not None else None

    # --- scheduling ---------------------------------------------------------------------

    def _fit_first_dose(
        self,
        protocol: ScreeningProtocolSpec,
        settings: ClinicSettingsData,
        first_dose_at: dt.datetime,
        busy: list[tuple[dt.datetime, dt.datetime]],
    ) -> TrialScheduleProposal:
        """The schedule with the first dose exactly at ``first_dose_at``, or a refusal that
        says why and what is possible."""
        calendar = ClinicCalendar.from_settings(settings)
        earliest = first_dose_at.astimezone(settings.zone)
        try:
            proposal = propose_trial_schedule(
                protocol, calendar, earliest, busy, settings.observation_beds
            )
            if proposal.first_dose_at == first_dose_at:
                return proposal
            # Off the proposal's 15-minute grid: any minute that fits is fine.
            proposal = propose_trial_schedule(
                protocol, calendar, earliest, busy, settings.observation_beds, step_minutes=1
            )
        except ScheduleError as exc:
            raise ValidationFailed([FieldError("first_dose_at", str(exc))]) from exc
        if proposal.first_dose_at == first_dose_at:
            return proposal
        why = proposal.doses[0].reason or (
            f"the earliest possible time is {_local(proposal.first_dose_at, settings)}."
        )
        raise ValidationFailed(
            [
                FieldError(
                    "first_dose_at",
                    f"The first dose cannot be at {_local(first_dose_at, settings)}: {why}",
                )
            ]
        )

    def _slot_from(
        self,
        protocol: ScreeningProtocolSpec,
        spec: ScreeningDoseSpec,
        settings: ClinicSettingsData,
        earliest: dt.datetime,
        busy: list[tuple[dt.datetime, dt.datetime]],
    ) -> dt.datetime | None:
        """The first time from ``earliest`` (to the minute) that fits one dose's observation."""
        try:
            proposal = propose_trial_schedule(
                replace(protocol, doses=(spec,)),
                ClinicCalendar.from_settings(settings),
                earliest.astimezone(settings.zone),
                busy,
                settings.observation_beds,
                step_minutes=1,
            )
        except ScheduleError:
            return None
        return proposal.first_dose_at

    def _shift_later_doses(
        self,
        session: Session,
        actor: Actor,
        t: _Trial,
        settings: ClinicSettingsData,
        number: int,
        given_at: dt.datetime,
        now: dt.datetime,
    ) -> None:
        """Move each planned dose that is now less than 24 h after the one before it."""
        interval = dose_interval(t.protocol)
        observe = _hours(t.protocol.observe_until_hours)
        busy: list[tuple[dt.datetime, dt.datetime]] | None = None
        previous_at = given_at
        for spec in t.protocol.doses[number:]:
            row = t.doses[spec.number]
            earliest = elapsed_after(previous_at, interval)
            if row.planned_at is not None and row.planned_at >= earliest:
                break  # this one and the ones after it are far enough apart already
            if busy is None:
                busy = self._busy(session, settings, earliest, exclude_trial_id=t.row.id)
            new_at = self._slot_from(t.protocol, spec, settings, earliest, busy)
            old_at = row.planned_at
            old_booking = self._open_booking(session, row)
            if new_at is None:
                # Nowhere to observe it within the search: plan the earliest, book by hand.
                row.planned_at = earliest
                if old_booking is not None:
                    self._cancel_booking(
                        session,
                        actor,
                        old_booking,
                        f"Dose {spec.number} moved by a late dose {number}: no free observation"
                        " bed found; book it by hand.",
                        now,
                    )
                row.appointment_id = None
                previous_at = earliest
                continue
            row.planned_at = new_at
            busy.append((new_at, new_at + observe))
            moved_from = f" from {_local(old_at, settings)}" if old_at is not None else ""
            given_local = _local(given_at, settings)
            booking = self._book_bed(
                session,
                actor,
                t.row,
                spec,
                new_at,
                new_at + observe,
                now,
                rescheduled_from_id=old_booking.id if old_booking is not None else None,
                note=f" Moved{moved_from}: dose {number} was given at {given_local}.",
            )
            if old_booking is not None:
                self._cancel_booking(
                    session,
                    actor,
                    old_booking,
                    f"Rescheduled to {_local(new_at, settings)}: dose {number} was given at"
                    f" {_local(given_at, settings)}, and 24 h must pass between doses.",
                    now,
                )
            row.appointment_id = booking.id
            previous_at = new_at

    def _ensure_dose_rows(
        self, session: Session, actor: Actor, t: _Trial, settings: ClinicSettingsData
    ) -> None:
        """Rows for every dose of a trial still running (older trials may lack them)."""
        if t.state.ended:
            return
        plan = _plan(t, settings)
        now = self._ctx.now()
        added: list[TestDose] = []
        for spec in t.protocol.doses:
            if spec.number in t.doses:
                continue
            planned = plan.get(spec.number)
            row = self._add_dose(
                t.row, t.protocol, spec, planned.earliest_at if planned else None, now
            )
            t.doses[spec.number] = row
            added.append(row)
        if added:
            session.flush()
            for row in added:
                audit.record(
                    session,
                    actor=actor,
                    at=now,
                    action=AuditAction.CREATE,
                    entity="test_dose",
                    entity_id=row.id,
                    patient_id=t.row.patient_id,
                    after=audit.snapshot(row),
                )

    def _add_dose(
        self,
        trial: ScreeningTrial,
        protocol: ScreeningProtocolSpec,
        spec: ScreeningDoseSpec,
        planned_at: dt.datetime | None,
        now: dt.datetime,
    ) -> TestDose:
        """A planned dose row, added through the trial's collection (which stays current)."""
        row = TestDose(
            number=spec.number,
            dose_mcg=spec.dose_mcg,
            volume_ml=spec.volume_ml,
            concentration_mcg_per_ml=protocol.concentration_mcg_per_ml,
            planned_at=planned_at,
            lot_number="",
            route=DEFAULT_ROUTE,
            response_notes="",
            created_at=now,
        )
        trial.doses.append(row)
        return row

    # --- bookings -----------------------------------------------------------------------

    def _bed_just_taken(
        self,
        session: Session,
        settings: ClinicSettingsData,
        protocol: ScreeningProtocolSpec,
        first_dose_at: dt.datetime,
        busy: list[tuple[dt.datetime, dt.datetime]],
        actor: Actor,
    ) -> str | None:
        """Why the first dose cannot be at ``first_dose_at``, when it is because another
        workstation booked the bed moments ago (the dialog that proposed the time showed it
        free); None when the time would not fit anyway."""
        now = self._ctx.now()
        ends_at = first_dose_at + _hours(protocol.observe_until_hours)
        recent = session.execute(
            select(Appointment, User.username)
            .join(User, User.id == Appointment.booked_by_id)
            .where(
                Appointment.kind == AppointmentKind.SCREENING.value,
                Appointment.status.in_(_OPEN_APPOINTMENT_STATUSES),
                Appointment.starts_at < ends_at,
                Appointment.ends_at > first_dose_at,
                Appointment.booked_at >= now - BED_JUST_TAKEN,
                Appointment.booked_by_id != actor.user_id,
            )
            .order_by(Appointment.booked_at.desc())
        ).all()
        if not recent:
            return None
        theirs = {(b.starts_at, b.ends_at) for b, _username in recent}
        try:
            self._fit_first_dose(
                protocol, settings, first_dose_at, [w for w in busy if w not in theirs]
            )
        except ValidationFailed:
            return None  # hours, days or older bookings stand in the way too
        booking, username = recent[0]
        patient = session.get(Patient, booking.patient_id)
        who = f" for {_name(patient)}" if patient is not None else ""
        start = _local(first_dose_at, settings)
        return (
            f"The last free observation bed at {start} was just taken by another workstation:"
            f" it is now booked{who} (by {username} at {_clock(booking.booked_at, settings)})."
            " Choose another time, or press Propose times."
        )

    def _book_bed(
        self,
        session: Session,
        actor: Actor,
        trial: ScreeningTrial,
        spec: ScreeningDoseSpec,
        starts_at: dt.datetime,
        ends_at: dt.datetime,
        now: dt.datetime,
        *,
        rescheduled_from_id: int | None = None,
        note: str = "",
    ) -> Appointment:
        booking = Appointment(
            patient_id=trial.patient_id,
            pump_id=None,
            kind=AppointmentKind.SCREENING.value,
            status=AppointmentStatus.BOOKED.value,
            starts_at=starts_at,
            ends_at=ends_at,
            booked_by_id=actor.user_id,
            booked_at=now,
            rescheduled_from_id=rescheduled_from_id,
            notes=(
                f"Screening trial {trial.id}, test dose {spec.number}:"
                f" {_number(spec.dose_mcg)} mcg ({_number(spec.volume_ml)} mL) intrathecal;"
                " observation bed until the end of the observation." + note
            ),
        )
        session.add(booking)
        # The booking records its create in its own row (sealed at the flush, with who
        # booked it and when): pumpclinic.services.row_seals.
        session.flush()
        return booking

    def _open_booking(self, session: Session, dose: TestDose) -> Appointment | None:
        if dose.appointment_id is None:
            return None
        booking = session.get(Appointment, dose.appointment_id)
        if booking is None or booking.status not in _OPEN_APPOINTMENT_STATUSES:
            return None
        return booking

    def _cancel_booking(
        self, session: Session, actor: Actor, booking: Appointment, reason: str, now: dt.datetime
    ) -> None:
        before = audit.snapshot(booking)
        booking.status = AppointmentStatus.CANCELLED.value
        booking.status_changed_at = now
        booking.status_changed_by_id = actor.user_id
        booking.cancel_reason = reason
        session.flush()
        audit.record(
            session,
            actor=actor,
            at=now,
            action=AuditAction.UPDATE,
            entity="appointment",
            entity_id=booking.id,
            patient_id=booking.patient_id,
            before=before,
            after=audit.snapshot(booking),
        )

    def _move_own_booking(
        self,
        session: Session,
        actor: Actor,
        t: _Trial,
        dose: TestDose,
        given_at: dt.datetime,
        now: dt.datetime,
    ) -> None:
        """The given dose's bed booking follows the time it was actually given."""
        booking = self._open_booking(session, dose)
        if booking is None:
            return
        ends_at = given_at + _hours(t.protocol.observe_until_hours)
        if booking.starts_at == given_at and booking.ends_at == ends_at:
            return
        before = audit.snapshot(booking)
        booking.starts_at = given_at
        booking.ends_at = ends_at
        session.flush()
        audit.record(
            session,
            actor=actor,
            at=now,
            action=AuditAction.UPDATE,
            entity="appointment",
            entity_id=booking.id,
            patient_id=booking.patient_id,
            before=before,
            after=audit.snapshot(booking),
        )

    def _cancel_remaining(
        self, session: Session, actor: Actor, t: _Trial, state: TrialState, now: dt.datetime
    ) -> None:
        """The trial ended: free the beds booked for doses that will not be given."""
        for row in t.doses.values():
            if row.given_at is not None:
                continue
            booking = self._open_booking(session, row)
            if booking is not None:
                self._cancel_booking(
                    session,
                    actor,
                    booking,
                    f"Screening trial ended ({state.describe_end()}): dose {row.number}"
                    " will not be given.",
                    now,
                )

    # --- storing ------------------------------------------------------------------------

    def _store_state(self, t: _Trial, state: TrialState, actor: Actor) -> None:
        row = t.row
        row.status = state.status.value
        flag_modified(row, "status")  # every change to the trial bumps its version
        row.effective_dose_mcg = state.effective_dose_mcg
        if state.ended:
            row.ended_at = state.ended_at
            row.decided_by_id = actor.user_id
        if state.status is TrialStatus.STOPPED:
            row.stop_cause = state.stop_cause.value if state.stop_cause else None
            row.stop_reason = state.stop_reason

    def _trial_audit_view(self, t: _Trial) -> dict[str, Any]:
        return {
            **audit.snapshot(t.row),
            "doses": [audit.snapshot(t.doses[n]) for n in sorted(t.doses)],
        }

    def _audit(
        self,
        session: Session,
        actor: Actor,
        action: AuditAction,
        trial: ScreeningTrial,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        audit.record(
            session,
            actor=actor,
            at=self._ctx.now(),
            action=action,
            entity="screening_trial",
            entity_id=trial.id,
            patient_id=trial.patient_id,
            before=before,
            after=after,
        )

    # --- validation ---------------------------------------------------------------------

    def _check_effect_hours(self, errors: list[FieldError], effect_hours: float) -> None:
        if not math.isfinite(effect_hours) or not 0 < effect_hours <= MAX_EFFECT_HOURS:
            errors.append(
                FieldError(
                    "effect_hours",
                    f"Effect duration must be more than 0 and at most {MAX_EFFECT_HOURS:g}"
                    f" hours ({effect_hours:g}).",
                )
            )

    def _wrong_dose(self, t: _Trial, number: int, expected: int) -> str:
        if t.state.ended:
            return f"Dose {number} cannot be given: the trial has ended ({t.state.describe_end()})."
        if expected > len(t.protocol.doses):
            return f"All {len(t.protocol.doses)} doses of the protocol have been given."
        return f"Dose {expected} is the next dose, not dose {number}."

    @staticmethod
    def _no_such_dose(protocol: ScreeningProtocolSpec, number: int) -> str:
        return (
            f"Dose number must be between 1 and {len(protocol.doses)} (the protocol"
            f" {protocol.id!r}), not {number}."
        )

    def _validate_observation(
        self,
        session: Session,
        t: _Trial,
        dose: TestDose,
        data: ObservationInput,
        settings: ClinicSettingsData,
        now: dt.datetime,
        errors: list[FieldError],
    ) -> list[tuple[str, bool]]:
        """Field errors into ``errors``; returns the adverse effects as (code, overdose sign)."""
        for name, label, value, (low, high) in (
            ("penn_spasm_frequency", "Penn spasm frequency", data.penn_spasm_frequency, PENN_RANGE),
            ("heart_rate_bpm", "Heart rate (bpm)", data.heart_rate_bpm, HEART_RATE_RANGE),
            (
                "respiratory_rate_per_min",
                "Breathing rate (/min)",
                data.respiratory_rate_per_min,
                RESPIRATORY_RATE_RANGE,
            ),
            ("spo2_pct", "SpO2 (%)", data.spo2_pct, SPO2_RANGE),
        ):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                errors.append(FieldError(name, f"{label} must be a whole number ({value!r})."))
            else:
                require_int_range(errors, name, label, value, low, high)
        groups: set[str] = set()
        for group, score in data.ashworth.items():
            name = group.strip()
            if not name:
                errors.append(FieldError("ashworth", "Muscle group is required for a score."))
            elif len(name) > MAX_MUSCLE_GROUP_LENGTH:
                errors.append(
                    FieldError(
                        "ashworth",
                        f"Muscle group must be at most {MAX_MUSCLE_GROUP_LENGTH} characters"
                        f" ({len(name)}).",
                    )
                )
            elif "\x00" in name:
                errors.append(
                    FieldError("ashworth", "Muscle group must not contain a NUL character.")
                )
            elif name.casefold() in groups:
                errors.append(FieldError("ashworth", f"Muscle group {name!r} is scored twice."))
            groups.add(name.casefold())
            if score not in ASHWORTH_SCORES:
                errors.append(
                    FieldError(
                        "ashworth",
                        f"Modified Ashworth score for {name or 'a muscle group'} must be one of"
                        f" {', '.join(ASHWORTH_SCORES)} ({score!r}).",
                    )
                )
        effects: list[tuple[str, bool]] = []
        known = {i.id for i in self._ctx.reference.leaflet.side_effects} | {
            i.id for i in self._ctx.reference.leaflet.overdose_signs
        }
        for code in dict.fromkeys(data.adverse_effect_codes):
            if code not in known:
                errors.append(
                    FieldError(
                        "adverse_effect_codes",
                        f"Adverse effect {code!r} is on neither the leaflet's side-effect list"
                        " nor its overdose list.",
                    )
                )
            else:
                effects.append((code, self._overdose_item(code) is not None))
        limit_text(errors, "notes", "Notes", data.notes, MAX_NOTES_LENGTH)
        if (
            not data.ashworth
            and not effects
            and not data.notes.strip()
            and all(
                v is None
                for v in (
                    data.penn_spasm_frequency,
                    data.heart_rate_bpm,
                    data.respiratory_rate_per_min,
                    data.spo2_pct,
                )
            )
        ):
            errors.append(
                FieldError("observed_at", "Record at least one value, score, effect or note.")
            )
        observed_at = data.observed_at
        if observed_at > now + FUTURE_TOLERANCE:
            errors.append(
                FieldError(
                    "observed_at",
                    f"The observation time ({_local(observed_at, settings)}) is in the future.",
                )
            )
        if dose.given_at is None and not data.is_baseline:
            errors.append(
                FieldError(
                    "is_baseline",
                    f"Dose {dose.number} has not been given yet: only a baseline can be"
                    " recorded before it.",
                )
            )
        elif dose.given_at is not None:
            given = _local(dose.given_at, settings)
            if data.is_baseline and observed_at > dose.given_at:
                errors.append(
                    FieldError(
                        "observed_at",
                        f"A baseline is observed before the dose; dose {dose.number} was given"
                        f" at {given}.",
                    )
                )
            elif not data.is_baseline and observed_at < dose.given_at:
                errors.append(
                    FieldError(
                        "observed_at",
                        f"The observation ({_local(observed_at, settings)}) is before dose"
                        f" {dose.number} was given ({given}); record it as a baseline.",
                    )
                )
        if data.corrects_id is not None:
            old = session.get(Observation, data.corrects_id)
            numbers = {d.id: d.number for d in t.row.doses}
            if old is None or old.test_dose_id not in numbers:
                errors.append(
                    FieldError(
                        "corrects_id",
                        f"Observation {data.corrects_id} is not one of this trial's.",
                    )
                )
            else:
                if numbers[old.test_dose_id] != dose.number:
                    errors.append(
                        FieldError(
                            "corrects_id",
                            f"Observation {old.id} belongs to another dose: a correction"
                            " stays with the same dose.",
                        )
                    )
                later = session.scalar(
                    select(Observation.id).where(Observation.corrects_id == old.id).limit(1)
                )
                if later is not None:
                    errors.append(
                        FieldError(
                            "corrects_id",
                            f"Observation {old.id} was already corrected by observation"
                            f" {later}: correct that one.",
                        )
                    )
        return effects

    def _overdose_item(self, code: str) -> LeafletItem | None:
        """The overdose-list item ``code`` stands for: same id, or a side effect whose label
        is an overdose sign's (the two lists' ids may differ)."""
        leaflet = self._ctx.reference.leaflet
        for item in leaflet.overdose_signs:
            if item.id == code:
                return item
        label = leaflet.labels("side_effects").get(code)
        if label is None:
            return None
        for item in leaflet.overdose_signs:
            if item.label.casefold() == label.casefold():
                return item
        return None

    def _effect_label(self, code: str, is_overdose_sign: bool) -> str:
        leaflet = self._ctx.reference.leaflet
        if is_overdose_sign:
            item = self._overdose_item(code)
            if item is not None:
                return item.label
        return leaflet.labels("side_effects").get(code) or (
            leaflet.labels("overdose_signs").get(code) or code
        )

    # --- views --------------------------------------------------------------------------

    def _names(self, session: Session, ids: Iterable[int | None]) -> dict[int, str]:
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return {}
        query = select(User.id, User.username).where(User.id.in_(wanted))
        return {user_id: username for user_id, username in session.execute(query)}

    def _view(self, session: Session, settings: ClinicSettingsData, t: _Trial) -> TrialView:
        row = t.row
        patient = session.get(Patient, row.patient_id)
        assert patient is not None  # a foreign key
        now = self._ctx.now()
        today = now.astimezone(settings.zone).date()
        names = self._names(
            session,
            [row.checks_acknowledged_by_id, row.decided_by_id]
            + [d.given_by_id for d in row.doses]
            + [d.response_recorded_by_id for d in t.doses.values()],
        )
        entries = {d.id: d for d in row.doses}
        plan = _plan(t, settings)
        assess = _hours(t.protocol.assess_from_hours)
        observe = _hours(t.protocol.observe_until_hours)
        doses: list[DoseView] = []
        for spec in t.protocol.doses:
            dose = t.doses.get(spec.number)
            planned = plan.get(spec.number)
            given_at = dose.given_at if dose is not None else None
            if given_at is None and t.state.ended:
                continue  # never given, never will be
            at = self._dose_time(t, spec.number, plan)
            doses.append(
                DoseView(
                    number=spec.number,
                    dose_mcg=dose.dose_mcg if dose is not None else spec.dose_mcg,
                    volume_ml=dose.volume_ml if dose is not None else spec.volume_ml,
                    concentration_mcg_per_ml=(
                        dose.concentration_mcg_per_ml
                        if dose is not None
                        else t.protocol.concentration_mcg_per_ml
                    ),
                    planned_at=_utc(dose.planned_at if dose is not None else None),
                    earliest_at=_utc(planned.earliest_at if planned is not None else None),
                    given_at=_utc(given_at),
                    given_by=names.get(dose.given_by_id or -1, "") if dose else "",
                    lot_number=dose.lot_number if dose is not None else "",
                    route=dose.route if dose is not None else DEFAULT_ROUTE,
                    assess_from=_utc(elapsed_after(at, assess) if at is not None else None),
                    observe_until=_utc(elapsed_after(at, observe) if at is not None else None),
                    response=(
                        DoseResponse(dose.response) if dose is not None and dose.response else None
                    ),
                    response_by=(names.get(dose.response_recorded_by_id or -1, "") if dose else ""),
                    response_at=_utc(dose.response_recorded_at if dose is not None else None),
                    notes=dose.response_notes if dose is not None else "",
                    appointment_id=dose.appointment_id if dose is not None else None,
                    entry_id=dose.id if dose is not None else None,
                    correction_reason=dose.correction_reason if dose is not None else "",
                    superseded=_superseded(dose, entries, names) if dose is not None else (),
                )
            )
        state = t.state
        last = state.last_dose
        next_spec = state.next_dose
        suggested: float | None = None
        if (
            state.status is TrialStatus.CANDIDATE
            and row.effective_dose_mcg is not None
            and row.effect_duration_hours is not None
        ):
            suggested = starting_dose_mcg_per_day(row.effective_dose_mcg, row.effect_duration_hours)
        return TrialView(
            id=row.id,
            patient_id=patient.id,
            patient_name=_name(patient),
            mrn=patient.mrn,
            patient_age_years=age_in_years(patient.date_of_birth, today),
            protocol_id=t.protocol.id,
            protocol_name=t.protocol.name,
            status=state.status,
            stage=state.stage(now.astimezone(settings.zone)),
            status_text=self._status_text(t, settings, now),
            planned_first_dose_at=_utc(row.planned_first_dose_at),
            started_at=_utc(row.started_at),
            ended_at=_utc(row.ended_at),
            doses=tuple(doses),
            next_dose_number=next_spec.number if next_spec is not None else None,
            next_dose_earliest_at=_utc(state.next_dose_earliest_at),
            awaiting_response_number=(
                last.number if state.awaiting_response and last is not None else None
            ),
            stop_cause=state.stop_cause,
            stop_reason=row.stop_reason,
            active_illness=row.active_illness,
            acknowledged_checks=_checks_from_json(row.start_checks_json),
            checks_acknowledged_by=names.get(row.checks_acknowledged_by_id or -1, ""),
            checks_acknowledged_at=_utc(row.checks_acknowledged_at),
            decided_by=names.get(row.decided_by_id or -1, ""),
            effective_dose_mcg=row.effective_dose_mcg,
            effect_duration_hours=row.effect_duration_hours,
            suggested_starting_dose_mcg_per_day=suggested,
            version=row.version,
        )

    def _status_text(self, t: _Trial, settings: ClinicSettingsData, now: dt.datetime) -> str:
        state = t.state
        if state.ended:
            return _sentence(state.describe_end())
        last = state.last_dose
        if last is not None and last.response is None:
            if now < last.assess_from:
                return (
                    f"Dose {last.number} given at {_clock(last.given_at, settings)}: assess from"
                    f" {_clock(last.assess_from, settings)}"
                )
            return f"Dose {last.number}: record the response"
        next_spec = state.next_dose
        if next_spec is None:
            return state.status.value
        plan = _plan(t, settings)
        at = self._dose_time(t, next_spec.number, plan)
        when = f" {_local(at, settings)}" if at is not None else ""
        return f"Dose {next_spec.number} ({_number(next_spec.dose_mcg)} mcg) planned{when}"

    def _observation_views(self, session: Session, t: _Trial) -> list[ObservationView]:
        # Observations stay on the dose row they were recorded against; when that row was
        # corrected since, they belong to the dose's current row (its corrected time).
        by_dose = {d.id: t.doses.get(d.number, d) for d in t.row.doses}
        rows = session.scalars(
            select(Observation)
            .where(Observation.test_dose_id.in_(list(by_dose)))
            .options(
                selectinload(Observation.ashworth_scores),
                selectinload(Observation.adverse_effects),
            )
            .order_by(Observation.observed_at, Observation.id)
        ).all()
        corrected_by = {r.corrects_id: r.id for r in rows if r.corrects_id is not None}
        names = self._names(session, [r.recorded_by_id for r in rows])
        views: list[ObservationView] = []
        for r in rows:
            dose = by_dose[r.test_dose_id]
            minutes = (
                (r.observed_at - dose.given_at) / dt.timedelta(minutes=1)
                if dose.given_at is not None
                else None
            )
            views.append(
                ObservationView(
                    id=r.id,
                    trial_id=t.row.id,
                    dose_number=dose.number,
                    observed_at=r.observed_at.astimezone(dt.UTC),
                    minutes_after_dose=minutes,
                    is_baseline=r.is_baseline,
                    recorded_by=names.get(r.recorded_by_id, ""),
                    penn_spasm_frequency=r.penn_spasm_frequency,
                    heart_rate_bpm=r.heart_rate_bpm,
                    respiratory_rate_per_min=r.respiratory_rate_per_min,
                    spo2_pct=r.spo2_pct,
                    ashworth={s.muscle_group: s.score for s in r.ashworth_scores},
                    adverse_effects=tuple(
                        AdverseEffectView(
                            e.code,
                            self._effect_label(e.code, e.is_overdose_sign),
                            e.is_overdose_sign,
                        )
                        for e in sorted(
                            r.adverse_effects, key=lambda e: (not e.is_overdose_sign, e.code)
                        )
                    ),
                    notes=r.notes,
                    corrects_id=r.corrects_id,
                    corrected_by_id=corrected_by.get(r.id),
                    created_at=r.created_at.astimezone(dt.UTC),
                )
            )
        return views

    def _overdose_signs(self, views: Iterable[ObservationView]) -> tuple[str, ...]:
        found = {label for v in views if not v.corrected for label in v.overdose_signs}
        order = [i.label for i in self._ctx.reference.leaflet.overdose_signs]
        return tuple(
            sorted(
                found,
                key=lambda label: (order.index(label) if label in order else len(order), label),
            )
        )

    def _board(
        self, session: Session, settings: ClinicSettingsData, day: dt.date | None
    ) -> list[BoardRow]:
        zone = settings.zone
        now = self._ctx.now()
        today = now.astimezone(zone).date()
        day = day or today
        start = dt.datetime.combine(day, dt.time(), tzinfo=zone)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
        since = min(start, now) - dt.timedelta(days=1)
        rows: list[BoardRow] = []
        for t in self._open_trials(session, settings, since):
            patient = session.get(Patient, t.row.patient_id)
            assert patient is not None
            plan = _plan(t, settings)
            stage = t.state.stage(now.astimezone(zone))
            overdose: tuple[str, ...] | None = None
            for spec in t.protocol.doses:
                dose = t.doses.get(spec.number)
                given_at = dose.given_at if dose is not None else None
                at = self._dose_time(t, spec.number, plan)
                if at is None:
                    continue
                assess_from = elapsed_after(at, _hours(t.protocol.assess_from_hours))
                observe_until = elapsed_after(at, _hours(t.protocol.observe_until_hours))
                on_day = start <= at < end
                observing = (
                    given_at is not None and day == today and given_at <= now < observe_until
                )
                if not (on_day or observing):
                    continue
                if overdose is None:
                    overdose = self._overdose_signs(self._observation_views(session, t))
                response = (
                    DoseResponse(dose.response) if dose is not None and dose.response else None
                )
                rows.append(
                    BoardRow(
                        trial_id=t.row.id,
                        trial_version=t.row.version,
                        patient_id=patient.id,
                        patient_name=_name(patient),
                        mrn=patient.mrn,
                        dose_number=spec.number,
                        dose_mcg=dose.dose_mcg if dose is not None else spec.dose_mcg,
                        volume_ml=dose.volume_ml if dose is not None else spec.volume_ml,
                        planned_at=_utc(
                            at if given_at is None else (dose.planned_at if dose else None)
                        ),
                        given_at=_utc(given_at),
                        assess_from=assess_from.astimezone(dt.UTC),
                        observe_until=observe_until.astimezone(dt.UTC),
                        response=response,
                        trial_status=t.state.status,
                        trial_stage=stage,
                        status_text=self._board_text(
                            t, spec.number, given_at, at, response, settings, now
                        ),
                        overdose_signs=overdose,
                    )
                )
        rows.sort(key=lambda r: (r.at, r.patient_name))
        return rows

    def _board_text(
        self,
        t: _Trial,
        number: int,
        given_at: dt.datetime | None,
        at: dt.datetime,
        response: DoseResponse | None,
        settings: ClinicSettingsData,
        now: dt.datetime,
    ) -> str:
        state = t.state
        if given_at is None:
            last = state.last_dose
            if last is not None and last.response is None:
                return f"Due {_clock(at, settings)}; waiting for the response to dose {last.number}"
            if at <= now:
                return f"Due since {_clock(at, settings)}"
            return f"Due {_clock(at, settings)}"
        assess_from = elapsed_after(given_at, _hours(t.protocol.assess_from_hours))
        observe_until = elapsed_after(given_at, _hours(t.protocol.observe_until_hours))
        last = state.last_dose
        if response is None:
            if state.ended and last is not None and last.number == number:
                return _sentence(state.describe_end())
            if now < assess_from:
                return (
                    f"Given {_clock(given_at, settings)};"
                    f" assess from {_clock(assess_from, settings)}"
                )
            if now < observe_until:
                return f"Assess now; observation ends {_clock(observe_until, settings)}"
            return "Observation ended: record the response"
        if state.ended and last is not None and last.number == number:
            return _sentence(state.describe_end())
        next_at = state.next_dose_earliest_at
        text = "Inadequate response"
        if next_at is not None and state.next_dose is not None:
            text += f"; dose {state.next_dose.number} from {_local(next_at, settings)}"
        return text


def _superseded(
    dose: TestDose, entries: Mapping[int, TestDose], names: Mapping[int, str]
) -> tuple[SupersededDose, ...]:
    """The entries ``dose`` replaced, newest first, each with what replaced it."""
    found: list[SupersededDose] = []
    newer = dose
    while newer.corrects_id is not None and newer.corrects_id in entries:
        older = entries[newer.corrects_id]
        found.append(
            SupersededDose(
                entry_id=older.id,
                given_at=_utc(older.given_at),
                given_by=names.get(older.given_by_id or -1, ""),
                lot_number=older.lot_number,
                route=older.route,
                corrected_by_entry_id=newer.id,
                corrected_at=newer.created_at.astimezone(dt.UTC),
                reason=newer.correction_reason,
            )
        )
        newer = older
    return tuple(found)


def _baseline_change(
    trial_id: int, dose_number: int, views: Sequence[ObservationView]
) -> BaselineChange:
    baselines = [v for v in views if v.is_baseline and v.dose_number == dose_number]
    if not baselines:
        baselines = [v for v in views if v.is_baseline and v.dose_number < dose_number]
        if baselines:
            last_dose = max(v.dose_number for v in baselines)
            baselines = [v for v in baselines if v.dose_number == last_dose]
    after = [v for v in views if not v.is_baseline and v.dose_number == dose_number]
    base_scores: dict[str, str] = {}
    latest_scores: dict[str, str] = {}
    for v in baselines:  # time order: the latest baseline of each group wins
        base_scores.update(v.ashworth)
    for v in after:
        latest_scores.update(v.ashworth)
    groups = sorted(set(base_scores) | set(latest_scores), key=str.casefold)
    changes = []
    for group in groups:
        base, latest = base_scores.get(group), latest_scores.get(group)
        base_step, latest_step = _ashworth_step(base), _ashworth_step(latest)
        steps = (
            latest_step - base_step if base_step is not None and latest_step is not None else None
        )
        changes.append(AshworthChange(group, base, latest, steps))
    penn_base = next(
        (v.penn_spasm_frequency for v in reversed(baselines) if v.penn_spasm_frequency is not None),
        None,
    )
    penn_latest = next(
        (v.penn_spasm_frequency for v in reversed(after) if v.penn_spasm_frequency is not None),
        None,
    )
    return BaselineChange(
        trial_id=trial_id,
        dose_number=dose_number,
        baseline_observed_at=baselines[-1].observed_at if baselines else None,
        latest_observed_at=after[-1].observed_at if after else None,
        ashworth=tuple(changes),
        penn_baseline=penn_base,
        penn_latest=penn_latest,
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")
