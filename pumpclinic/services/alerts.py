"""The alert worklist: every implanted pump's alerts as of a time, and the work done on them.

The whole clinic is read in a constant number of indexed queries — every implanted pump
with the forecast kept for it where one still holds, the next booked refill per patient, the
last contact attempt per patient, the active screening trials — never a query per pump and
never a pump's whole history. Only the pumps without a kept forecast that holds (a refill or
a program since, a catalog or calendar change) have their latest events read — the latest
fill that no later entry corrects and the programs since — and their forecast computed and
kept. The database's triggers (``pumpclinic.db.triggers``) make sure that no change to a
pump's rows, whoever writes it, leaves a kept forecast behind. The alerts themselves are
computed by ``pumpclinic.domain.alerts``, so an alert closes by itself when the refill is
recorded.

Staff (front desk) may see and work the list — log contact attempts, set do-not-contact, book
— without clinical editing rights.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import logging
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Executable,
    ScalarSelect,
    String,
    and_,
    delete,
    exists,
    false,
    func,
    insert,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from pumpclinic.db import triggers
from pumpclinic.db.models import (
    ACTIVE_REFILL_BOOKING,
    Appointment,
    ContactAttempt,
    DoseProgram,
    DrugProduct,
    FlexStep,
    ImplantedPump,
    Patient,
    PatientContact,
    PumpForecast,
    PumpInputRevision,
    PumpModel,
    Refill,
    ScreeningTrial,
    TestDose,
    User,
)
from pumpclinic.db.types import from_stored
from pumpclinic.domain.alerts import (
    Alert,
    AlertKind,
    AlertSettings,
    ContactMethod,
    ContactOutcome,
    PumpSituation,
    RiskFlag,
    ScreeningDoseSituation,
    Severity,
    apply_risk_flags,
    count_by_kind,
    count_by_severity,
    evaluate,
    fast_forecast,
    outcomes_for,
    risk_flags,
)
from pumpclinic.domain.calendar import ClinicCalendar
from pumpclinic.domain.clinic import ClinicSettingsData
from pumpclinic.domain.enums import (
    AppointmentKind,
    AppointmentStatus,
    AuditAction,
    DoseResponse,
    TrialStatus,
)
from pumpclinic.domain.reference import Reference
from pumpclinic.domain.reservoir import FlexStep as FlexStepSpec
from pumpclinic.domain.reservoir import Forecast, ProgramPeriod, PumpSpec
from pumpclinic.domain.screening import elapsed_after
from pumpclinic.domain.validation import FieldError
from pumpclinic.services import audit
from pumpclinic.services.context import Actor, ServiceContext
from pumpclinic.services.errors import NotFound, ServiceError, ValidationFailed
from pumpclinic.services.permissions import Permission, require
from pumpclinic.services.settings import read_settings

log = logging.getLogger("pumpclinic.alerts")

# A contact logged this far in the future is a typing error, not clock skew.
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
MAX_NOTES_LENGTH = 2000
MAX_REASON_LENGTH = 500
PROMISE_LIMIT_DAYS = 366
ACTIVE_BOOKING = (AppointmentStatus.BOOKED.value, AppointmentStatus.ARRIVED.value)
ACTIVE_TRIALS = (TrialStatus.PLANNED.value, TrialStatus.IN_PROGRESS.value)
# --- read models ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LastContact:
    at: dt.datetime
    method: ContactMethod
    outcome: ContactOutcome
    promised_date: dt.date | None
    by_user_id: int
    by: str
    notes: str


@dataclass(frozen=True, slots=True)
class AlertRow:
    """An alert with what the worklist shows of its patient."""

    alert: Alert
    patient_name: str
    mrn: str
    phone: str
    do_not_contact: bool
    do_not_contact_reason: str
    last_contact: LastContact | None

    @property
    def kind(self) -> AlertKind:
        return self.alert.kind

    @property
    def severity(self) -> Severity:
        return self.alert.severity

    @property
    def patient_id(self) -> int:
        return self.alert.patient_id

    @property
    def key(self) -> str:
        return self.alert.key


@dataclass(frozen=True, slots=True)
class AlertList:
    """The worklist as of ``as_of``: most severe first, then soonest deadline."""

    as_of: dt.datetime
    zone: zoneinfo.ZoneInfo
    clinic_name: str
    rows: tuple[AlertRow, ...]
    pumps_checked: int
    # Implanted pumps without a forecast (no fill or no program in force at it): data to put
    # right, never silently dropped. (pump id, patient id, patient name, MRN).
    unforecastable: tuple[tuple[int, int, str, str], ...] = ()

    @property
    def unforecastable_pump_ids(self) -> tuple[int, ...]:
        return tuple(pump_id for pump_id, *_rest in self.unforecastable)

    @property
    def counts(self) -> dict[Severity, int]:
        return count_by_severity(row.alert for row in self.rows)

    @property
    def kind_counts(self) -> dict[AlertKind, int]:
        return count_by_kind(row.alert for row in self.rows)


@dataclass(frozen=True, slots=True)
class ContactAttemptRow:
    id: int
    patient_id: int
    pump_id: int | None
    at: dt.datetime
    by_user_id: int
    by: str
    method: ContactMethod
    outcome: ContactOutcome
    promised_date: dt.date | None
    notes: str


@dataclass(frozen=True, slots=True)
class ContactInput:
    """A contact attempt as the worklist enters it."""

    patient_id: int
    at: dt.datetime
    method: ContactMethod | str
    outcome: ContactOutcome | str
    promised_date: dt.date | None = None
    notes: str = ""


@dataclass(frozen=True, slots=True)
class ContactSheet:
    """How to reach a patient, whether to, and the attempts so far (newest first)."""

    patient_id: int
    patient_name: str
    mrn: str
    phone: str
    email: str
    address: str
    emergency_contacts: tuple[tuple[str, str, str], ...]  # (name, relationship, phone)
    risk_flags: tuple[RiskFlag, ...]
    do_not_contact: bool
    do_not_contact_reason: str
    attempts: tuple[ContactAttemptRow, ...]
    version: int


@dataclass(frozen=True, slots=True)
class BookedVisit:
    """A booked appointment, for the calendar export."""

    id: int
    patient_id: int
    patient_name: str
    mrn: str
    kind: AppointmentKind
    status: AppointmentStatus
    starts_at: dt.datetime
    ends_at: dt.datetime
    notes: str
    late_reason: str


@dataclass(frozen=True, slots=True)
class _PatientInfo:
    name: str
    mrn: str
    phone: str
    do_not_contact: bool
    do_not_contact_reason: str
    flags: frozenset[RiskFlag]


@dataclass(slots=True)
class _PumpRow:
    """One implanted pump, its latest fill and the raw rows of the programs since, read to
    compute its forecast (when no kept forecast holds), with the pump's input revision."""

    pump_id: int
    patient_id: int
    pump_model_id: str
    reservoir_ml: float
    alarm_ml: float
    revision: int
    # The pump's first fill or program change after "as of", if any.
    next_change_at: dt.datetime | None
    fill_id: int | None
    # As the database returns it (an integer on SQLite): parsed only when computed.
    filled_at_raw: object
    volume_ml: float
    drug_product_id: str | None
    # (program id, effective from (raw), mcg/mL, mcg/day, bolus mcg, boluses/day, minute,
    # rate)
    program_rows: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def filled_at(self) -> dt.datetime | None:
        return None if self.filled_at_raw is None else from_stored(self.filled_at_raw)

    @property
    def inputs_from(self) -> dt.datetime | None:
        """The latest time of the fill and programs in force: from then until the next
        change, the same rows are in force."""
        if self.filled_at_raw is None:
            return None
        return from_stored(max([self.filled_at_raw, *(row[1] for row in self.program_rows)]))


@dataclass(frozen=True, slots=True)
class ComputedForecast:
    """A forecast computed by a read, with what it holds for, to be kept by
    ``store_forecasts``: the catalog and calendar (``inputs``), the pump's input revision,
    and the span of "as of" times in which the pump's rows in force are the same."""

    pump_id: int
    inputs: str
    revision: int
    inputs_from: dt.datetime
    inputs_until: dt.datetime | None
    forecast: Forecast

    def holds_at(self, at: dt.datetime) -> bool:
        return self.inputs_from <= at and (self.inputs_until is None or at < self.inputs_until)


ComputedForecasts = list[ComputedForecast]
# Part of every kept forecast's inputs: a change to the forecast arithmetic must not reuse
# forecasts kept by the earlier arithmetic. Raise it with any change to how forecasts are
# computed.
FORECAST_RULES_VERSION = 2


# Ids per IN (...) list: well under the SQLite and PostgreSQL parameter limits.
_IN_CHUNK = 5000


# --- the whole clinic at once -----------------------------------------------------------


def _not_corrected(program: type[DoseProgram]) -> ColumnElement[bool]:
    """The program was not set by a refill that a later entry corrects."""
    correction = aliased(Refill)
    return or_(
        program.refill_id.is_(None),
        ~exists().where(correction.corrects_refill_id == program.refill_id),
    )


def _latest_fill_id(as_of: dt.datetime) -> ScalarSelect[int]:
    """Per implanted pump: the latest fill up to ``as_of`` that no entry corrects
    (index ``ix_refills_pump_performed``, then ``ix_refills_corrects_refill_id``)."""
    fill = aliased(Refill)
    correction = aliased(Refill)
    return (
        select(fill.id)
        .where(
            fill.pump_id == ImplantedPump.id,
            fill.performed_at <= as_of,
            ~exists().where(correction.corrects_refill_id == fill.id),
        )
        .order_by(fill.performed_at.desc(), fill.id.desc())
        .limit(1)
        .correlate(ImplantedPump)
        .scalar_subquery()
    )


def _raw(column: Any) -> Any:
    """The column as the driver returns it (no per-value conversion in the bulk read)."""
    return type_coerce(column, String()).label(column.key)


def _next_time(column: Any, pump_id: Any, as_of: dt.datetime) -> ScalarSelect[Any]:
    """The pump's first ``column`` time after ``as_of`` (a fill or a program change)."""
    return (
        select(func.min(column))
        .where(pump_id == ImplantedPump.id, column > as_of)
        .correlate(ImplantedPump)
        .scalar_subquery()
    )


def latest_events_statement(
    as_of: dt.datetime, pump_ids: Sequence[int] | None = None
) -> Executable:
    """Every implanted pump (or those of ``pump_ids``) with its input revision, its latest
    fill and the programs since (one row per flex step, or per program without steps): the
    program in force at the fill and every later one up to ``as_of``, leaving out those set
    by a corrected refill. Driven by the pumps: a handful of index seeks per pump, never a
    pump's whole history. The revision is read in the same statement as the rows, so that
    a forecast is never stamped with a revision newer than its rows."""
    fill = aliased(Refill)
    earlier = aliased(DoseProgram)
    in_force_from = (
        select(earlier.effective_from)
        .where(
            earlier.pump_id == ImplantedPump.id,
            earlier.effective_from <= fill.performed_at,
            _not_corrected(earlier),
        )
        .order_by(earlier.effective_from.desc())
        .limit(1)
        .correlate(ImplantedPump, fill)
        .scalar_subquery()
    )
    statement = (
        select(
            ImplantedPump.id,
            ImplantedPump.patient_id,
            ImplantedPump.pump_model_id,
            ImplantedPump.reservoir_ml,
            ImplantedPump.low_reservoir_alarm_ml,
            func.coalesce(PumpInputRevision.revision, 0),
            _next_time(Refill.performed_at, Refill.pump_id, as_of),
            _next_time(DoseProgram.effective_from, DoseProgram.pump_id, as_of),
            fill.id,
            _raw(fill.performed_at),
            fill.volume_after_ml,
            fill.drug_product_id,
            DoseProgram.id,
            _raw(DoseProgram.effective_from),
            DoseProgram.concentration_mcg_per_ml,
            DoseProgram.dose_mcg_per_day,
            DoseProgram.bolus_dose_mcg,
            DoseProgram.max_boluses_per_day,
            FlexStep.starts_at_minute,
            FlexStep.rate_mcg_per_day,
        )
        .select_from(ImplantedPump)
        .outerjoin(PumpInputRevision, PumpInputRevision.pump_id == ImplantedPump.id)
        .outerjoin(fill, fill.id == _latest_fill_id(as_of))
        .outerjoin(
            DoseProgram,
            and_(
                DoseProgram.pump_id == ImplantedPump.id,
                DoseProgram.effective_from <= as_of,
                DoseProgram.effective_from >= in_force_from,
                _not_corrected(DoseProgram),
            ),
        )
        .outerjoin(FlexStep, FlexStep.program_id == DoseProgram.id)
        .where(ImplantedPump.explanted_on.is_(None))
        .order_by(ImplantedPump.id, DoseProgram.effective_from, FlexStep.step_number)
    )
    if pump_ids is not None:
        statement = statement.where(ImplantedPump.id.in_(pump_ids))
    return statement


def _kept_forecast_holds(as_of: dt.datetime, inputs: str) -> ColumnElement[bool]:
    """The kept forecast is the pump's (joined with its input revision), for these
    ``inputs``, its current input revision and a span that holds ``as_of``."""
    return and_(
        PumpForecast.pump_id == ImplantedPump.id,
        PumpForecast.inputs == inputs,
        PumpForecast.input_revision == func.coalesce(PumpInputRevision.revision, 0),
        PumpForecast.inputs_from <= as_of,
        or_(PumpForecast.inputs_until.is_(None), PumpForecast.inputs_until > as_of),
    )


def kept_forecasts_statement(as_of: dt.datetime, inputs: str | None) -> Executable:
    """Every implanted pump with what the alerts need of it, and its kept forecast where
    one holds as of ``as_of`` for these ``inputs`` and the pump's current input revision
    (NULLs otherwise; none at all when ``inputs`` is None)."""
    holds = _kept_forecast_holds(as_of, inputs) if inputs is not None else false()
    return (
        select(
            ImplantedPump.id,
            ImplantedPump.patient_id,
            ImplantedPump.pump_model_id,
            ImplantedPump.battery_replace_by,
            PumpForecast.daily_volume_ml,
            _raw(PumpForecast.alarm_at),
            _raw(PumpForecast.empty_at),
            _raw(PumpForecast.stability_limit_at),
            PumpForecast.refill_due,
            PumpForecast.days_to_alarm,
        )
        .select_from(ImplantedPump)
        .outerjoin(PumpInputRevision, PumpInputRevision.pump_id == ImplantedPump.id)
        .outerjoin(PumpForecast, holds)
        .where(ImplantedPump.explanted_on.is_(None))
        .order_by(ImplantedPump.id)
    )


class _ClinicReader:
    """The alert list's queries, run inside one unit of work: a fixed number of them,
    whatever the size of the clinic."""

    def __init__(self, session: Session, reference: Reference, as_of: dt.datetime) -> None:
        self.session = session
        self.connection = session.connection()
        self.reference = reference
        self.as_of = as_of
        self.settings = read_settings(session)
        self.zone = self.settings.zone
        local_day = as_of.astimezone(self.zone).date()
        self.day_start = dt.datetime.combine(local_day, dt.time(), tzinfo=self.zone)

    def implanted(self, inputs: str | None) -> list[tuple[Any, ...]]:
        """Every implanted pump: (pump id, patient id, model, battery replace-by, and the
        kept forecast's six values where one holds, else NULLs); see
        ``kept_forecasts_statement``."""
        rows = self.connection.execute(kept_forecasts_statement(self.as_of, inputs)).all()
        return cast("list[tuple[Any, ...]]", rows)

    def pumps(self, pump_ids: Sequence[int]) -> list[_PumpRow]:
        """The pumps of ``pump_ids`` with their latest fill and the programs since."""
        pumps: list[_PumpRow] = []
        for start in range(0, len(pump_ids), _IN_CHUNK):
            statement = latest_events_statement(self.as_of, pump_ids[start : start + _IN_CHUNK])
            current: _PumpRow | None = None
            for row in self.connection.execute(statement):
                pump_id = row[0]
                if current is None or current.pump_id != pump_id:
                    current = _PumpRow(
                        pump_id=pump_id,
                        patient_id=row[1],
                        pump_model_id=row[2],
                        reservoir_ml=row[3],
                        alarm_ml=row[4],
                        revision=row[5],
                        next_change_at=min((at for at in row[6:8] if at is not None), default=None),
                        fill_id=row[8],
                        filled_at_raw=row[9],
                        volume_ml=row[10] if row[10] is not None else 0.0,
                        drug_product_id=row[11],
                    )
                    pumps.append(current)
                if row[12] is not None:
                    current.program_rows.append(tuple(row[12:]))
        return pumps

    def pump_models(self) -> dict[str, tuple[float, float | None, float, int | None]]:
        """(accuracy %, constant flow mL/day, pocket-fill warning mL, ERI days) by model."""
        rows = self.connection.execute(
            select(
                PumpModel.id,
                PumpModel.flow_accuracy_pct,
                PumpModel.constant_flow_ml_per_day,
                PumpModel.pocket_fill_warning_ml,
                PumpModel.eri_days_before_end,
            )
        )
        return {model_id: tuple(rest) for model_id, *rest in rows}  # type: ignore[misc]

    def stability_days(self) -> dict[str, int]:
        rows = self.connection.execute(select(DrugProduct.id, DrugProduct.stability_days))
        return {drug_id: days for drug_id, days in rows}

    def patients(self, patient_ids: Iterable[int]) -> dict[int, _PatientInfo]:
        """Names, phone, do-not-contact and risk flags of the patients on the list."""
        wanted = sorted(set(patient_ids))
        found: dict[int, _PatientInfo] = {}
        for start in range(0, len(wanted), _IN_CHUNK):
            rows = self.connection.execute(
                select(
                    Patient.id,
                    Patient.family_name,
                    Patient.given_name,
                    Patient.mrn,
                    Patient.phone,
                    Patient.do_not_contact,
                    Patient.do_not_contact_reason,
                    Patient.sci_at_or_above_t6,
                    Patient.communication_difficulties,
                    Patient.previous_withdrawal,
                ).where(Patient.id.in_(wanted[start : start + _IN_CHUNK]))
            )
            for (
                patient_id,
                family_name,
                given_name,
                mrn,
                phone,
                do_not_contact,
                reason,
                sci,
                communication,
                withdrawal,
            ) in rows:
                found[patient_id] = _PatientInfo(
                    name=f"{family_name.upper()}, {given_name}",
                    mrn=mrn,
                    phone=phone,
                    do_not_contact=do_not_contact,
                    do_not_contact_reason=reason,
                    flags=risk_flags(
                        sci_at_or_above_t6=sci,
                        communication_difficulties=communication,
                        previous_withdrawal=withdrawal,
                    ),
                )
        return found

    def next_bookings(self) -> dict[int, dt.datetime]:
        """Per patient: the earliest refill still booked (or arrived) from today on
        (partial index ``ix_appointments_active_refill``, whose condition this repeats)."""
        rows = self.connection.execute(
            select(Appointment.patient_id, func.min(Appointment.starts_at))
            .where(text(ACTIVE_REFILL_BOOKING), Appointment.starts_at >= self.day_start)
            .group_by(Appointment.patient_id)
        )
        return {patient_id: starts_at for patient_id, starts_at in rows}

    def last_contacts(self) -> dict[int, LastContact]:
        """Per patient: the latest contact attempt up to ``as_of``."""
        ranked = (
            select(
                ContactAttempt.id,
                func.row_number()
                .over(
                    partition_by=ContactAttempt.patient_id,
                    order_by=(ContactAttempt.at.desc(), ContactAttempt.id.desc()),
                )
                .label("position"),
            )
            .where(ContactAttempt.at <= self.as_of)
            .subquery()
        )
        rows = self.connection.execute(
            select(
                ContactAttempt.patient_id,
                ContactAttempt.at,
                ContactAttempt.method,
                ContactAttempt.outcome,
                ContactAttempt.promised_date,
                ContactAttempt.by_user_id,
                User.full_name,
                ContactAttempt.notes,
            )
            .join(ranked, ranked.c.id == ContactAttempt.id)
            .join(User, User.id == ContactAttempt.by_user_id)
            .where(ranked.c.position == 1)
        )
        return {
            patient_id: LastContact(
                at=at,
                method=ContactMethod(method),
                outcome=ContactOutcome(outcome),
                promised_date=promised,
                by_user_id=by_id,
                by=by,
                notes=notes,
            )
            for patient_id, at, method, outcome, promised, by_id, by, notes in rows
        }

    def screening_doses(self) -> list[ScreeningDoseSituation]:
        """Per active trial: the given dose awaiting its response, or else the next planned
        dose (the trial's planned first dose before any dose row exists)."""
        trials = self.connection.execute(
            select(
                ScreeningTrial.id,
                ScreeningTrial.patient_id,
                ScreeningTrial.protocol_id,
                ScreeningTrial.planned_first_dose_at,
            ).where(ScreeningTrial.status.in_(ACTIVE_TRIALS))
        ).all()
        if not trials:
            return []
        doses = self.connection.execute(
            select(
                TestDose.trial_id,
                TestDose.id,
                TestDose.corrects_id,
                TestDose.number,
                TestDose.dose_mcg,
                TestDose.planned_at,
                TestDose.given_at,
                TestDose.response,
            )
            .join(ScreeningTrial, ScreeningTrial.id == TestDose.trial_id)
            .where(ScreeningTrial.status.in_(ACTIVE_TRIALS))
            .order_by(TestDose.trial_id, TestDose.number, TestDose.id)
        ).all()
        corrected = {row.corrects_id for row in doses if row.corrects_id is not None}
        answers = {response.value for response in DoseResponse}
        by_trial: dict[int, dict[int, _DoseRow]] = defaultdict(dict)
        for row in doses:
            if row.id not in corrected:
                by_trial[row.trial_id][row.number] = _DoseRow(
                    row.dose_mcg, row.planned_at, row.given_at, row.response in answers
                )
        found: list[ScreeningDoseSituation] = []
        for trial_id, patient_id, protocol_id, first_dose_at in trials:
            try:
                protocol = self.reference.screening_protocol(protocol_id)
            except KeyError:
                log.warning("trial %s: unknown screening protocol %r", trial_id, protocol_id)
                continue
            trial_doses = by_trial.get(trial_id, {})
            given = [number for number, d in sorted(trial_doses.items()) if d.given_at]
            if given and not trial_doses[given[-1]].answered:
                dose = trial_doses[given[-1]]
                assert dose.given_at is not None
                found.append(
                    ScreeningDoseSituation(
                        patient_id=patient_id,
                        trial_id=trial_id,
                        number=given[-1],
                        dose_mcg=dose.dose_mcg,
                        given_at=dose.given_at,
                        assess_from=elapsed_after(
                            dose.given_at, dt.timedelta(hours=protocol.assess_from_hours)
                        ),
                        observe_until=elapsed_after(
                            dose.given_at, dt.timedelta(hours=protocol.observe_until_hours)
                        ),
                    )
                )
                continue
            waiting = [
                number
                for number, d in sorted(trial_doses.items())
                if d.given_at is None and d.planned_at is not None
            ]
            if waiting:
                dose = trial_doses[waiting[0]]
                found.append(
                    ScreeningDoseSituation(
                        patient_id=patient_id,
                        trial_id=trial_id,
                        number=waiting[0],
                        dose_mcg=dose.dose_mcg,
                        planned_at=dose.planned_at,
                    )
                )
            elif not trial_doses and first_dose_at is not None and protocol.doses:
                first = protocol.doses[0]
                found.append(
                    ScreeningDoseSituation(
                        patient_id=patient_id,
                        trial_id=trial_id,
                        number=first.number,
                        dose_mcg=first.dose_mcg,
                        planned_at=first_dose_at,
                    )
                )
        return found


@dataclass(frozen=True, slots=True)
class _DoseRow:
    dose_mcg: float
    planned_at: dt.datetime | None
    given_at: dt.datetime | None
    answered: bool


def forecast_inputs_prefix(
    settings: ClinicSettingsData,
    models: Mapping[str, tuple[float, float | None, float, int | None]],
    stability_days: Mapping[str, int],
) -> str:
    """What every pump's forecast depends on beside its own rows: the arithmetic's version,
    the clinic calendar and margin, and the catalog values."""
    calendar = (
        settings.time_zone,
        settings.opens_at.isoformat(),
        settings.closes_at.isoformat(),
        sorted(settings.open_weekdays),
        sorted(day.isoformat() for day, _name in settings.holidays),
        settings.refill_safety_margin_days,
    )
    catalog = (sorted(models.items()), sorted(stability_days.items()))
    digest = hashlib.sha256(repr((calendar, catalog)).encode()).hexdigest()[:32]
    return f"v{FORECAST_RULES_VERSION}:{digest}"


def _kept_forecasts(pumps: Iterable[tuple[Any, ...]]) -> dict[int, Forecast]:
    """The kept forecasts read with the pumps (see ``kept_forecasts_statement``)."""
    kept: dict[int, Forecast] = {}
    for pump_id, _patient, _model, _battery, daily_ml, alarm, empty, stability, due, days in pumps:
        if daily_ml is not None:
            kept[pump_id] = Forecast(
                daily_volume_ml=daily_ml,
                alarm_at=None if alarm is None else from_stored(alarm),
                empty_at=None if empty is None else from_stored(empty),
                stability_limit_at=None if stability is None else from_stored(stability),
                refill_due=due,
                days_to_alarm=days,
            )
    return kept


def clinic_forecasts(
    pumps: Iterable[_PumpRow],
    settings: ClinicSettingsData,
    models: Mapping[str, tuple[float, float | None, float, int | None]],
    stability_days: Mapping[str, int],
) -> tuple[dict[int, Forecast], list[int]]:
    """Each pump's forecast computed from its latest fill, and the pumps without one (no
    fill, no program in force at it, or data the arithmetic refuses)."""
    calendar = ClinicCalendar.from_settings(settings)
    margin_days = settings.refill_safety_margin_days
    zone = settings.zone
    forecasts: dict[int, Forecast] = {}
    missing: list[int] = []
    specs: dict[tuple[str, float, float], PumpSpec] = {}
    for pump in pumps:
        filled_at = pump.filled_at
        if filled_at is None or not pump.program_rows:
            missing.append(pump.pump_id)
            continue
        try:
            spec_key = (pump.pump_model_id, pump.reservoir_ml, pump.alarm_ml)
            spec = specs.get(spec_key)
            if spec is None:
                accuracy, constant_flow, pocket_ml, _eri = models[pump.pump_model_id]
                spec = specs[spec_key] = PumpSpec(
                    reservoir_ml=pump.reservoir_ml,
                    low_reservoir_alarm_ml=pump.alarm_ml,
                    flow_accuracy_pct=accuracy,
                    constant_flow_ml_per_day=constant_flow,
                    pocket_fill_warning_ml=pocket_ml,
                )
            forecasts[pump.pump_id] = fast_forecast(
                filled_at,
                pump.volume_ml,
                _programs(pump.program_rows),
                spec,
                calendar,
                margin_days=margin_days,
                stability_days=stability_days.get(pump.drug_product_id or ""),
                zone=zone,
            )
        except ValueError as error:  # stored data the arithmetic refuses
            log.warning("pump %s: no forecast (%s)", pump.pump_id, error)
            missing.append(pump.pump_id)
    return forecasts, missing


def store_forecasts(session: Session, computed: ComputedForecasts, at: dt.datetime) -> None:
    """Keep freshly computed forecasts (replacing what was kept for those pumps)."""
    for start in range(0, len(computed), _IN_CHUNK):
        chunk = computed[start : start + _IN_CHUNK]
        session.execute(
            delete(PumpForecast).where(PumpForecast.pump_id.in_([c.pump_id for c in chunk]))
        )
        session.execute(
            insert(PumpForecast),
            [
                {
                    "pump_id": c.pump_id,
                    "inputs": c.inputs,
                    "input_revision": c.revision,
                    "inputs_from": c.inputs_from,
                    "inputs_until": c.inputs_until,
                    "daily_volume_ml": c.forecast.daily_volume_ml,
                    "alarm_at": c.forecast.alarm_at,
                    "empty_at": c.forecast.empty_at,
                    "stability_limit_at": c.forecast.stability_limit_at,
                    "refill_due": c.forecast.refill_due,
                    "days_to_alarm": c.forecast.days_to_alarm,
                    "computed_at": at,
                }
                for c in chunk
            ],
        )


def _programs(rows: Iterable[tuple[Any, ...]]) -> list[ProgramPeriod]:
    """Program periods from the raw rows (one per flex step, in step order)."""
    programs: list[ProgramPeriod] = []
    current_id: object = None
    header: tuple[Any, ...] = ()
    steps: list[FlexStepSpec] = []

    def flush() -> None:
        if header:
            _id, effective_from, concentration, dose, bolus, boluses = header
            programs.append(
                ProgramPeriod(
                    effective_from=from_stored(effective_from),
                    concentration_mcg_per_ml=concentration,
                    dose_mcg_per_day=dose,
                    flex_steps=tuple(steps),
                    bolus_dose_mcg=bolus,
                    max_boluses_per_day=boluses,
                )
            )

    for program_id, *values, minute, rate in rows:
        if program_id != current_id:
            flush()
            current_id = program_id
            header = (program_id, *values)
            steps = []
        if minute is not None:
            steps.append(FlexStepSpec(minute, rate))
    flush()
    return programs


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a whole clinic is read: the tens of thousands of
    short-lived rows and forecasts made here hold no reference cycles, yet each batch of 700
    new objects would set off a collection pass over every object the process holds."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_alerts(
    session: Session,
    reference: Reference,
    as_of: dt.datetime,
    *,
    computed: ComputedForecasts | None = None,
) -> AlertList:
    """The whole clinic's alerts as of ``as_of``, inside an open unit of work (no permission
    check: the caller has done it, or is the headless command reading a file it was given).
    Forecasts computed because none was kept for them are added to ``computed``."""
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    with paused_gc():
        return _read_alerts(session, reference, as_of, computed)


@dataclass(frozen=True, slots=True)
class _Clinic:
    """Every implanted pump and its forecast, where it has one."""

    # (pump id, patient id, model, battery replace-by, ...): see ``kept_forecasts_statement``
    pumps: list[tuple[Any, ...]]
    forecasts: dict[int, Forecast]
    missing: list[int]
    models: dict[str, tuple[float, float | None, float, int | None]]


def _clinic(reader: _ClinicReader, computed: ComputedForecasts | None) -> _Clinic:
    """The kept forecasts that hold, and the others computed (and added to ``computed``).

    A kept forecast is trusted only while the triggers that delete it and count the
    revisions of its pump's rows are in place: without them, every forecast is computed."""
    models = reader.pump_models()
    stability_days = reader.stability_days()
    prefix = forecast_inputs_prefix(reader.settings, models, stability_days)
    inputs: str | None = prefix
    if not triggers.in_place(reader.connection):
        log.warning("the kept-forecast triggers are missing: every forecast is computed")
        inputs = None
    pumps = reader.implanted(inputs)
    forecasts = _kept_forecasts(pumps)
    stale = [row[0] for row in pumps if row[0] not in forecasts]
    missing: list[int] = []
    if stale:
        rows = reader.pumps(stale)
        fresh, missing = clinic_forecasts(rows, reader.settings, models, stability_days)
        forecasts.update(fresh)
        if computed is not None:
            # Offered for keeping even without the triggers: ``keep_forecasts`` then
            # clears what is kept instead (see there).
            computed.extend(_as_kept(rows, fresh, prefix))
    return _Clinic(pumps, forecasts, missing, models)


def _as_kept(
    rows: Iterable[_PumpRow], fresh: Mapping[int, Forecast], inputs: str
) -> Iterator[ComputedForecast]:
    """The forecasts computed from ``rows`` as they are kept: with the ``inputs``, the
    pump's input revision and the span of "as of" times they hold for."""
    for pump in rows:
        forecast = fresh.get(pump.pump_id)
        since = pump.inputs_from
        if forecast is not None and since is not None:
            yield ComputedForecast(
                pump.pump_id, inputs, pump.revision, since, pump.next_change_at, forecast
            )


@dataclass(frozen=True, slots=True)
class KeptForecastRecheck:
    """The kept forecasts the alert list would reuse as of a time, each beside the forecast
    its pump's rows give when computed again (None when they give none)."""

    kept_total: int  # every kept forecast in the database, reused or not
    pairs: tuple[tuple[ComputedForecast, ComputedForecast | None], ...]


def recheck_kept_forecasts(
    session: Session, reference: Reference, as_of: dt.datetime
) -> KeptForecastRecheck:
    """Every kept forecast that holds as of ``as_of`` (the ones the alert list reuses while
    the triggers are in place, which the caller checks), with its forecast computed again
    by the alert list's own reads and arithmetic — for the verifier, which compares them."""
    reader = _ClinicReader(session, reference, as_of)
    models = reader.pump_models()
    stability_days = reader.stability_days()
    inputs = forecast_inputs_prefix(reader.settings, models, stability_days)
    statement = (
        select(
            PumpForecast.pump_id,
            PumpForecast.input_revision,
            PumpForecast.inputs_from,
            PumpForecast.inputs_until,
            PumpForecast.daily_volume_ml,
            PumpForecast.alarm_at,
            PumpForecast.empty_at,
            PumpForecast.stability_limit_at,
            PumpForecast.refill_due,
            PumpForecast.days_to_alarm,
        )
        .select_from(ImplantedPump)
        .outerjoin(PumpInputRevision, PumpInputRevision.pump_id == ImplantedPump.id)
        .join(PumpForecast, _kept_forecast_holds(as_of, inputs))
        .where(ImplantedPump.explanted_on.is_(None))
        .order_by(ImplantedPump.id)
    )
    kept = [
        ComputedForecast(
            pump_id,
            inputs,
            revision,
            inputs_from,
            inputs_until,
            Forecast(daily_ml, alarm_at, empty_at, stability_at, refill_due, days_to_alarm),
        )
        for (
            pump_id,
            revision,
            inputs_from,
            inputs_until,
            daily_ml,
            alarm_at,
            empty_at,
            stability_at,
            refill_due,
            days_to_alarm,
        ) in session.execute(statement)
    ]
    kept_total = session.scalar(select(func.count()).select_from(PumpForecast)) or 0
    rows = reader.pumps([k.pump_id for k in kept])
    fresh, _missing = clinic_forecasts(rows, reader.settings, models, stability_days)
    again = {c.pump_id: c for c in _as_kept(rows, fresh, inputs)}
    return KeptForecastRecheck(kept_total, tuple((k, again.get(k.pump_id)) for k in kept))


def _read_alerts(
    session: Session,
    reference: Reference,
    as_of: dt.datetime,
    computed: ComputedForecasts | None,
) -> AlertList:
    reader = _ClinicReader(session, reference, as_of)
    clinic = _clinic(reader, computed)
    pumps, forecasts, missing, models = (
        clinic.pumps,
        clinic.forecasts,
        clinic.missing,
        clinic.models,
    )
    bookings = reader.next_bookings()
    doses = reader.screening_doses()
    settings = reader.settings
    policy = AlertSettings(zone=settings.zone, due_soon_horizon_days=settings.due_soon_horizon_days)
    no_model = (0.0, None, 0.0, None)
    # Risk flags only raise a severity, never make or close an alert: read the patients of
    # the alerts found, then raise theirs.
    alerts = evaluate(
        (
            PumpSituation(
                patient_id=patient_id,
                pump_id=pump_id,
                forecast=forecasts.get(pump_id),
                next_booked_refill_at=bookings.get(patient_id),
                battery_replace_by=battery_replace_by,
                battery_notice_days=models.get(model_id, no_model)[3],
            )
            for pump_id, patient_id, model_id, battery_replace_by, *_kept in pumps
        ),
        doses,
        as_of,
        policy,
    )
    patient_of = {row[0]: row[1] for row in pumps}
    missing_patients = {patient_of[pump_id] for pump_id in missing}
    patients = reader.patients({alert.patient_id for alert in alerts} | missing_patients)
    alerts = apply_risk_flags(
        alerts, {patient_id: info.flags for patient_id, info in patients.items()}
    )
    contacts = reader.last_contacts()
    rows = []
    for alert in alerts:
        info = patients[alert.patient_id]
        rows.append(
            AlertRow(
                alert=alert,
                patient_name=info.name,
                mrn=info.mrn,
                phone=info.phone,
                do_not_contact=info.do_not_contact,
                do_not_contact_reason=info.do_not_contact_reason,
                last_contact=contacts.get(alert.patient_id),
            )
        )
    if missing:
        log.warning("%d implanted pump(s) without a forecast: %s", len(missing), missing[:20])
    return AlertList(
        as_of=as_of,
        zone=settings.zone,
        clinic_name=settings.clinic_name,
        rows=tuple(rows),
        pumps_checked=len(pumps),
        unforecastable=tuple(
            (
                pump_id,
                patient_of[pump_id],
                patients[patient_of[pump_id]].name,
                patients[patient_of[pump_id]].mrn,
            )
            for pump_id in sorted(missing)
        ),
    )


def read_forecasts(
    session: Session,
    reference: Reference,
    as_of: dt.datetime,
    *,
    computed: ComputedForecasts | None = None,
) -> dict[int, Forecast]:
    """Every implanted pump's forecast from the same reads as the alert list."""
    with paused_gc():
        return _clinic(_ClinicReader(session, reference, as_of), computed).forecasts


def keep_forecasts(context: ServiceContext, computed: ComputedForecasts) -> None:
    """Store the forecasts a read computed that hold now (a read of another time keeps
    nothing that does not), in a transaction of their own. Only derived data: when it
    cannot be written (a read-only file, a locked database, another workstation keeping the
    same pump's forecast at the same moment, a pump deleted since) the next read computes
    them again, so a failure is logged and nothing else."""
    now = context.now()
    holding = [c for c in computed if c.holds_at(now)]
    if not holding:
        return
    try:
        with context.unit_of_work() as session:
            if not triggers.in_place(session.connection()):
                # Changes made while the triggers are missing count no revision: a
                # forecast kept from before would look current again once they are back.
                # So nothing is kept without them, and what was kept goes.
                session.execute(delete(PumpForecast))
                log.warning("the kept-forecast triggers are missing: kept forecasts cleared")
                return
            store_forecasts(session, holding, now)
    except (ServiceError, IntegrityError) as error:
        log.info("forecasts not kept (%d pumps): %s", len(holding), error)


def refresh_kept_forecasts(context: ServiceContext) -> int:
    """Compute and keep every implanted pump's forecast that the database does not hold
    (after a bulk load such as the demo clinic); returns how many were computed."""
    computed: ComputedForecasts = []
    with context.unit_of_work() as session:
        read_forecasts(session, context.reference, context.now(), computed=computed)
    keep_forecasts(context, computed)
    return len(computed)


# --- the service ------------------------------------------------------------------------


class AlertService:
    def __init__(self, context: ServiceContext) -> None:
        self._ctx = context

    # --- reading ----------------------------------------------------------------------

    def alerts(self, actor: Actor, as_of: dt.datetime | None = None) -> AlertList:
        """Every alert in the clinic as of ``as_of`` (default: now)."""
        require(actor, Permission.VIEW_ALERTS)
        at = self._ctx.now() if as_of is None else as_of
        computed: ComputedForecasts = []
        with self._ctx.unit_of_work() as session:
            found = read_alerts(session, self._ctx.reference, at, computed=computed)
        keep_forecasts(self._ctx, computed)
        return found

    def forecasts(self, actor: Actor, as_of: dt.datetime | None = None) -> dict[int, Forecast]:
        """Every implanted pump's forecast, by pump id, from the bulk reads."""
        require(actor, Permission.VIEW_ALERTS)
        at = self._ctx.now() if as_of is None else as_of
        computed: ComputedForecasts = []
        with self._ctx.unit_of_work() as session:
            found = read_forecasts(session, self._ctx.reference, at, computed=computed)
        keep_forecasts(self._ctx, computed)
        return found

    def contact_sheet(self, actor: Actor, patient_id: int) -> ContactSheet:
        require(actor, Permission.VIEW_ALERTS)
        with self._ctx.unit_of_work() as session:
            patient = session.get(Patient, patient_id)
            if patient is None:
                raise NotFound(f"Patient {patient_id} does not exist.")
            contacts = session.scalars(
                select(PatientContact)
                .where(PatientContact.patient_id == patient_id)
                .order_by(PatientContact.is_primary.desc(), PatientContact.id)
            )
            return ContactSheet(
                patient_id=patient.id,
                patient_name=f"{patient.family_name.upper()}, {patient.given_name}",
                mrn=patient.mrn,
                phone=patient.phone,
                email=patient.email,
                address=patient.address,
                emergency_contacts=tuple(
                    (c.name, c.relationship_to_patient, c.phone) for c in contacts
                ),
                risk_flags=tuple(
                    flag
                    for flag in RiskFlag
                    if flag
                    in risk_flags(
                        sci_at_or_above_t6=patient.sci_at_or_above_t6,
                        communication_difficulties=patient.communication_difficulties,
                        previous_withdrawal=patient.previous_withdrawal,
                    )
                ),
                do_not_contact=patient.do_not_contact,
                do_not_contact_reason=patient.do_not_contact_reason,
                attempts=tuple(self._attempts(session, patient_id)),
                version=patient.version,
            )

    def contact_attempts(self, actor: Actor, patient_id: int) -> list[ContactAttemptRow]:
        """The patient's contact attempts, newest first."""
        require(actor, Permission.VIEW_ALERTS)
        with self._ctx.unit_of_work() as session:
            return self._attempts(session, patient_id)

    def booked_visits(
        self, actor: Actor, first_day: dt.date, last_day: dt.date
    ) -> list[BookedVisit]:
        """Appointments still booked (or arrived) from ``first_day`` to ``last_day``
        (clinic days, both included), in time order."""
        require(actor, Permission.VIEW_SCHEDULE)
        if last_day < first_day:
            raise ValidationFailed(
                [FieldError("last_day", "The last day must not be before the first day.")]
            )
        with self._ctx.unit_of_work() as session:
            zone = read_settings(session).zone
            start = dt.datetime.combine(first_day, dt.time(), tzinfo=zone)
            end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
            rows = session.execute(
                select(Appointment, Patient.family_name, Patient.given_name, Patient.mrn)
                .join(Patient, Patient.id == Appointment.patient_id)
                .where(
                    Appointment.status.in_(ACTIVE_BOOKING),
                    Appointment.starts_at >= start,
                    Appointment.starts_at < end,
                )
                .order_by(Appointment.starts_at, Appointment.id)
            )
            return [
                BookedVisit(
                    id=a.id,
                    patient_id=a.patient_id,
                    patient_name=f"{family.upper()}, {given}",
                    mrn=mrn,
                    kind=AppointmentKind(a.kind),
                    status=AppointmentStatus(a.status),
                    starts_at=a.starts_at,
                    ends_at=a.ends_at,
                    notes=a.notes,
                    late_reason=a.late_reason,
                )
                for a, family, given, mrn in rows
            ]

    # --- working the list -------------------------------------------------------------

    def log_contact(self, actor: Actor, data: ContactInput) -> ContactAttemptRow:
        """Record an attempt to reach a patient (a call, a text, a letter ...)."""
        require(actor, Permission.LOG_CONTACTS)
        with self._ctx.unit_of_work() as session:
            patient = session.get(Patient, data.patient_id)
            if patient is None:
                raise NotFound(f"Patient {data.patient_id} does not exist.")
            settings = read_settings(session)
            now = self._ctx.now()
            method, outcome = _check_contact(data, settings.zone, now)
            pump_id = session.scalar(
                select(ImplantedPump.id).where(
                    ImplantedPump.patient_id == patient.id, ImplantedPump.explanted_on.is_(None)
                )
            )
            row = ContactAttempt(
                patient_id=patient.id,
                pump_id=pump_id,
                at=data.at,
                by_user_id=actor.user_id,
                method=method.value,
                outcome=outcome.value,
                promised_date=data.promised_date,
                notes=data.notes.strip(),
                created_at=now,
            )
            session.add(row)
            session.flush()
            audit.record(
                session,
                actor=actor,
                at=now,
                action=AuditAction.CREATE,
                entity="contact_attempt",
                entity_id=row.id,
                patient_id=patient.id,
                after=audit.snapshot(row),
            )
            return ContactAttemptRow(
                id=row.id,
                patient_id=row.patient_id,
                pump_id=row.pump_id,
                at=row.at,
                by_user_id=actor.user_id,
                by=actor.full_name,
                method=method,
                outcome=outcome,
                promised_date=row.promised_date,
                notes=row.notes,
            )

    def set_do_not_contact(
        self, actor: Actor, patient_id: int, do_not_contact: bool, reason: str = ""
    ) -> ContactSheet:
        """Flag (with a reason) or unflag a patient who must not be contacted directly.

        The flag never hides an alert: the worklist shows it so that staff reach the patient
        another way (a carer, the GP, the ward)."""
        require(actor, Permission.LOG_CONTACTS)
        reason = reason.strip()
        if do_not_contact and not reason:
            raise ValidationFailed(
                [FieldError("do_not_contact_reason", "Give the reason not to contact.")]
            )
        if len(reason) > MAX_REASON_LENGTH:
            raise ValidationFailed(
                [
                    FieldError(
                        "do_not_contact_reason",
                        f"Reason: at most {MAX_REASON_LENGTH} characters ({len(reason)}).",
                    )
                ]
            )
        if "\x00" in reason:
            raise ValidationFailed(
                [FieldError("do_not_contact_reason", "Reason must not contain a NUL character.")]
            )
        with self._ctx.unit_of_work() as session:
            patient = session.get(Patient, patient_id)
            if patient is None:
                raise NotFound(f"Patient {patient_id} does not exist.")
            before = audit.snapshot(patient)
            patient.do_not_contact = do_not_contact
            patient.do_not_contact_reason = reason if do_not_contact else ""
            now = self._ctx.now()
            patient.updated_at = now
            session.flush()
            audit.record(
                session,
                actor=actor,
                at=now,
                action=AuditAction.UPDATE,
                entity="patient",
                entity_id=patient.id,
                patient_id=patient.id,
                before=before,
                # The whole row: the audit trail holds every patient row as it stands.
                after=audit.snapshot(patient),
            )
        return self.contact_sheet(actor, patient_id)

    # --- helpers ----------------------------------------------------------------------

    def _attempts(self, session: Session, patient_id: int) -> list[ContactAttemptRow]:
        rows = session.execute(
            select(ContactAttempt, User.full_name)
            .join(User, User.id == ContactAttempt.by_user_id)
            .where(ContactAttempt.patient_id == patient_id)
            .order_by(ContactAttempt.at.desc(), ContactAttempt.id.desc())
        )
        return [
            ContactAttemptRow(
                id=c.id,
                patient_id=c.patient_id,
                pump_id=c.pump_id,
                at=c.at,
                by_user_id=c.by_user_id,
                by=name,
                method=ContactMethod(c.method),
                outcome=ContactOutcome(c.outcome),
                promised_date=c.promised_date,
                notes=c.notes,
            )
            for c, name in rows
        ]


def _check_contact(
    data: ContactInput, zone: dt.tzinfo, now: dt.datetime
) -> tuple[ContactMethod, ContactOutcome]:
    errors: list[FieldError] = []
    method = outcome = None
    try:
        method = ContactMethod(data.method)
    except ValueError:
        errors.append(FieldError("method", "Choose how you tried to reach the patient."))
    try:
        outcome = ContactOutcome(data.outcome)
    except ValueError:
        errors.append(FieldError("outcome", "Choose the outcome."))
    if method is not None and outcome is not None and outcome not in outcomes_for(method):
        errors.append(
            FieldError(
                "outcome",
                f"“{outcome.label}” does not go with {method.label.lower()}: choose another"
                " outcome.",
            )
        )
    at_day: dt.date | None = None
    if data.at.tzinfo is None or data.at.utcoffset() is None:
        errors.append(FieldError("at", "The time of the attempt needs a time zone."))
    elif data.at > now + FUTURE_TOLERANCE:
        errors.append(FieldError("at", "The time of the attempt cannot be in the future."))
    else:
        at_day = data.at.astimezone(zone).date()
    promised = data.promised_date
    if promised is not None and at_day is not None:
        if promised < at_day:
            errors.append(
                FieldError(
                    "promised_date", "The promised date cannot be before the attempt itself."
                )
            )
        elif promised > at_day + dt.timedelta(days=PROMISE_LIMIT_DAYS):
            errors.append(FieldError("promised_date", "The promised date must be within a year."))
    if len(data.notes.strip()) > MAX_NOTES_LENGTH:
        errors.append(
            FieldError(
                "notes", f"Notes: at most {MAX_NOTES_LENGTH} characters ({len(data.notes)})."
            )
        )
    elif "\x00" in data.notes:
        errors.append(FieldError("notes", "Notes must not contain a NUL character."))
    if errors:
        raise ValidationFailed(errors)
    assert method is not None and outcome is not None
    return method, outcome
