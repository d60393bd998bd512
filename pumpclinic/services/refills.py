"""Pumps and refills: the reservoir forecast, the refill visit and its double check."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
import secrets
import threading
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from pumpclinic.db.models import (
    Appointment,
    DoseProgram,
    DrugProduct,
    FlexStep,
    ImplantedPump,
    Patient,
    PumpModel,
    Refill,
    User,
)
from pumpclinic.domain.calendar import ClinicCalendar
from pumpclinic.domain.clinic import ClinicSettingsData
from pumpclinic.domain.enums import (
    AppointmentStatus,
    AuditAction,
    ProgramMode,
    Role,
    SpasticityOrigin,
)
from pumpclinic.domain.patients import age_in_years
from pumpclinic.domain.reservoir import (
    FlexStep as FlexStepSpec,
)
from pumpclinic.domain.reservoir import (
    Forecast,
    PocketFillCheck,
    ProgramPeriod,
    PumpSpec,
    Reconciliation,
    ReconciliationTrend,
    forecast,
    mcg_per_hour,
    pocket_fill_check,
    program_daily_volume_ml,
    reconcile,
    reconciliation_trend,
    volume_at,
    volume_series,
)
from pumpclinic.domain.titration import check_titration
from pumpclinic.domain.validation import FieldError
from pumpclinic.services import audit
from pumpclinic.services.context import Actor, ServiceContext
from pumpclinic.services.errors import NotFound, ValidationFailed
from pumpclinic.services.permissions import Permission, can, require
from pumpclinic.services.settings import read_settings

CHILD_AGE_YEARS = 18
# A refill recorded this far in the future is a typing error, not clock skew.
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
MATCH_TOLERANCE = 1e-6
# How long a second person's confirmation stays good for the save it was given for.
DOUBLE_CHECK_VALID_FOR = dt.timedelta(minutes=5)
ASK_AGAIN = "ask the second nurse or clinician to confirm again"


# --- read models ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProgramView:
    effective_from: dt.datetime
    drug_name: str
    concentration_mcg_per_ml: float
    dose_mcg_per_day: float
    daily_volume_ml: float
    flex_steps: tuple[tuple[int, float], ...]
    bolus_dose_mcg: float | None
    max_boluses_per_day: int

    @property
    def dose_mcg_per_hour(self) -> float:
        return mcg_per_hour(self.dose_mcg_per_day)

    @property
    def is_flex(self) -> bool:
        return bool(self.flex_steps)


@dataclass(frozen=True, slots=True)
class PumpCard:
    pump_id: int
    patient_id: int
    model_id: str
    model_name: str
    manufacturer: str
    constant_flow: bool
    serial_number: str
    implanted_on: dt.date
    reservoir_ml: float
    low_reservoir_alarm_ml: float
    flow_accuracy_pct: float
    pocket_fill_warning_ml: float
    battery_replace_by: dt.date | None
    program: ProgramView | None
    last_fill_at: dt.datetime | None
    last_fill_volume_ml: float | None


@dataclass(frozen=True, slots=True)
class ReservoirView:
    now: dt.datetime
    volume_now_ml: float
    forecast: Forecast
    series: tuple[tuple[dt.datetime, float], ...]
    fills: tuple[tuple[dt.datetime, float], ...]


@dataclass(frozen=True, slots=True)
class PumpModelChoice:
    """A catalog pump model offered for a new implant."""

    id: str
    name: str
    manufacturer: str
    reservoir_ml: float
    low_reservoir_alarm_ml: float
    drug_products: tuple[tuple[str, str, float], ...]  # (id, name, concentration mcg/mL)


@dataclass(frozen=True, slots=True)
class RefillRow:
    id: int
    performed_at: dt.datetime
    performed_by: str
    double_checked_by: str
    drug_name: str
    lot_number: str
    concentration_mcg_per_ml: float
    expected_residual_ml: float | None
    aspirated_residual_ml: float
    volume_added_ml: float
    volume_after_ml: float
    measured_after_ml: float | None
    flagged: bool
    corrects_refill_id: int | None
    corrected_by_id: int | None
    notes: str

    @property
    def discrepancy_ml(self) -> float | None:
        if self.expected_residual_ml is None:
            return None
        return self.aspirated_residual_ml - self.expected_residual_ml


@dataclass(frozen=True, slots=True)
class PumpOverview:
    patient_id: int
    patient_name: str
    mrn: str
    date_of_birth: dt.date
    zone: zoneinfo.ZoneInfo
    card: PumpCard | None
    reservoir: ReservoirView | None
    refills: tuple[RefillRow, ...]
    trend: ReconciliationTrend | None


@dataclass(frozen=True, slots=True)
class RefillInput:
    """What the nurse enters at the refill visit."""

    pump_id: int
    performed_at: dt.datetime
    aspirated_residual_ml: float
    drug_product_id: str
    lot_number: str
    volume_added_ml: float
    dose_mcg_per_day: float
    measured_after_ml: float | None = None
    appointment_id: int | None = None
    change_reason: str = ""
    notes: str = ""
    corrects_refill_id: int | None = None


@dataclass(frozen=True, slots=True)
class ImplantInput:
    """A newly implanted pump, its first program and the fill given in theatre."""

    patient_id: int
    pump_model_id: str
    serial_number: str
    implanted_on: dt.date
    filled_at: dt.datetime
    drug_product_id: str
    lot_number: str
    volume_ml: float
    dose_mcg_per_day: float
    notes: str = ""


@dataclass(frozen=True, slots=True)
class DoubleCheck:
    """The second user's independent entry: re-typed, never copied from the first."""

    username: str
    password: str
    concentration_mcg_per_ml: float | None
    dose_mcg_per_day: float | None


@dataclass(frozen=True, slots=True)
class DoubleCheckToken:
    """A double check verified by ``RefillService.verify_double_check`` (the second person's
    password, role, and that they are not the one recording): who checked, for whom, which
    pump and patient, the values they typed, until when. Signed by the service that issued
    it, so that no field can be changed, and good for one save."""

    checker_user_id: int
    recorder_user_id: int
    pump_id: int
    patient_id: int
    concentration_mcg_per_ml: float | None
    dose_mcg_per_day: float | None
    expires_at: dt.datetime
    nonce: str
    signature: str = ""

    def signed_text(self) -> bytes:
        return json.dumps(
            [
                self.checker_user_id,
                self.recorder_user_id,
                self.pump_id,
                self.patient_id,
                self.concentration_mcg_per_ml,
                self.dose_mcg_per_day,
                self.expires_at.isoformat(),
                self.nonce,
            ]
        ).encode()


@dataclass(frozen=True, slots=True)
class RefillPreview:
    reconciliation: Reconciliation | None
    old_program: ProgramView | None
    new_program: ProgramView
    titration_warning: str | None
    needs_clinician: bool
    pocket_fill: PocketFillCheck | None
    new_forecast: Forecast


@dataclass(frozen=True, slots=True)
class PatientCardData:
    """What the printed patient card carries."""

    clinic_name: str
    clinic_phone: str
    patient_name: str
    mrn: str
    date_of_birth: dt.date
    pump: str
    drug_name: str
    concentration_mcg_per_ml: float
    dose_mcg_per_day: float
    alarm_at: dt.datetime | None
    refill_due: dt.date | None
    withdrawal_signs: tuple[str, ...]
    zone: zoneinfo.ZoneInfo
    printed_at: dt.datetime

    @property
    def dose_mcg_per_hour(self) -> float:
        return mcg_per_hour(self.dose_mcg_per_day)


@dataclass(frozen=True, slots=True)
class RecordedRefill:
    refill: RefillRow
    forecast: Forecast
    reconciliation: Reconciliation | None
    card: PatientCardData


# --- conversions ------------------------------------------------------------------------


def pump_spec(pump: ImplantedPump) -> PumpSpec:
    model = pump.pump_model
    return PumpSpec(
        reservoir_ml=pump.reservoir_ml,
        low_reservoir_alarm_ml=pump.low_reservoir_alarm_ml,
        flow_accuracy_pct=model.flow_accuracy_pct,
        constant_flow_ml_per_day=model.constant_flow_ml_per_day,
        pocket_fill_warning_ml=model.pocket_fill_warning_ml,
    )


def program_period(program: DoseProgram) -> ProgramPeriod:
    return ProgramPeriod(
        effective_from=program.effective_from,
        concentration_mcg_per_ml=program.concentration_mcg_per_ml,
        dose_mcg_per_day=program.dose_mcg_per_day,
        flex_steps=tuple(
            FlexStepSpec(step.starts_at_minute, step.rate_mcg_per_day)
            for step in program.flex_steps
        ),
        bolus_dose_mcg=program.bolus_dose_mcg,
        max_boluses_per_day=program.max_boluses_per_day,
    )


def current_fill(pump: ImplantedPump) -> Refill | None:
    """The latest refill that no later entry corrects."""
    corrected = {r.corrects_refill_id for r in pump.refills if r.corrects_refill_id}
    valid = [r for r in pump.refills if r.id not in corrected]
    return max(valid, key=lambda r: (r.performed_at, r.id), default=None)


@dataclass(frozen=True, slots=True)
class NewPump:
    """An implanted pump with the fill it holds and its program, as first recorded."""

    patient_id: int
    model: PumpModel
    serial_number: str
    implanted_on: dt.date
    battery_replace_by: dt.date | None
    filled_at: dt.datetime
    drug: DrugProduct
    lot_number: str
    volume_ml: float
    dose_mcg_per_day: float
    by_user_id: int
    checked_by_user_id: int | None
    pump_notes: str
    fill_notes: str
    program_reason: str


def add_pump_with_fill(
    session: Session, new: NewPump, now: dt.datetime
) -> tuple[ImplantedPump, Refill, DoseProgram]:
    """Write the pump, its fill and its first program (the caller validates and audits)."""
    pump = ImplantedPump(
        patient_id=new.patient_id,
        pump_model_id=new.model.id,
        serial_number=new.serial_number,
        implanted_on=new.implanted_on,
        # Copied from the model so that a later catalog edit never rewrites history.
        reservoir_ml=new.model.reservoir_ml,
        low_reservoir_alarm_ml=new.model.low_reservoir_alarm_ml,
        battery_replace_by=new.battery_replace_by,
        notes=new.pump_notes,
    )
    session.add(pump)
    session.flush()
    fill = Refill(
        pump_id=pump.id,
        performed_at=new.filled_at,
        performed_by_id=new.by_user_id,
        double_checked_by_id=new.checked_by_user_id,
        drug_product_id=new.drug.id,
        lot_number=new.lot_number,
        concentration_mcg_per_ml=new.drug.concentration_mcg_per_ml,
        expected_residual_ml=None,
        aspirated_residual_ml=0.0,
        volume_added_ml=new.volume_ml,
        volume_after_ml=new.volume_ml,
        notes=new.fill_notes,
        created_at=now,
    )
    session.add(fill)
    session.flush()
    program = DoseProgram(
        pump_id=pump.id,
        effective_from=new.filled_at,
        drug_product_id=new.drug.id,
        concentration_mcg_per_ml=new.drug.concentration_mcg_per_ml,
        mode=ProgramMode.SIMPLE_CONTINUOUS.value,
        dose_mcg_per_day=new.dose_mcg_per_day,
        max_boluses_per_day=0,
        entered_by_id=new.by_user_id,
        double_checked_by_id=new.checked_by_user_id,
        refill_id=fill.id,
        reason=new.program_reason,
        created_at=now,
    )
    session.add(program)
    session.flush()
    return pump, fill, program


def pump_audit_view(pump: ImplantedPump, fill: Refill, program: DoseProgram) -> dict[str, object]:
    """What a new pump's audit entry records: the pump, its first fill and its program."""
    return {
        **audit.snapshot(pump),
        "fill": audit.snapshot(fill),
        "program": audit.snapshot(program),
    }


def _programs(pump: ImplantedPump) -> list[DoseProgram]:
    """The pump's programs in order, leaving out those set by a refill later corrected."""
    corrected = {r.corrects_refill_id for r in pump.refills if r.corrects_refill_id}
    return [p for p in pump.programs if p.refill_id is None or p.refill_id not in corrected]


def _is_child(patient: Patient, today: dt.date) -> bool:
    return age_in_years(patient.date_of_birth, today) < CHILD_AGE_YEARS


class RefillService:
    def __init__(self, context: ServiceContext) -> None:
        self._ctx = context
        # Double-check tokens are signed with a key of this service alone (never stored)
        # and spent once: the nonces used, until their tokens expire.
        self._token_key = secrets.token_bytes(32)
        self._spent_tokens: dict[str, dt.datetime] = {}
        self._spent_lock = threading.Lock()

    # --- reading ----------------------------------------------------------------------

    def active_pump_id(self, actor: Actor, patient_id: int) -> int | None:
        require(actor, Permission.VIEW_PATIENTS)
        with self._ctx.unit_of_work() as session:
            return session.scalar(
                select(ImplantedPump.id).where(
                    ImplantedPump.patient_id == patient_id, ImplantedPump.explanted_on.is_(None)
                )
            )

    def overview(self, actor: Actor, patient_id: int) -> PumpOverview:
        """The patient page: pump card, reservoir now and ahead, refill history."""
        require(actor, Permission.VIEW_PATIENTS)
        with self._ctx.unit_of_work() as session:
            patient = session.get(Patient, patient_id)
            if patient is None:
                raise NotFound(f"Patient {patient_id} does not exist.")
            settings = read_settings(session)
            pump = self.load_active_pump(session, patient_id)
            card = reservoir = trend = None
            rows: tuple[RefillRow, ...] = ()
            if pump is not None:
                card = self._card(session, pump)
                reservoir = self.reservoir_view(session, pump, settings)
                rows = self._refill_rows(session, pump)
                trend = self._trend(pump, settings.zone)
            return PumpOverview(
                patient_id=patient.id,
                patient_name=f"{patient.family_name.upper()}, {patient.given_name}",
                mrn=patient.mrn,
                date_of_birth=patient.date_of_birth,
                zone=settings.zone,
                card=card,
                reservoir=reservoir,
                refills=rows,
                trend=trend,
            )

    def overview_for_pump(self, actor: Actor, pump_id: int) -> PumpOverview:
        """The overview of the patient this pump belongs to (the refill dialog has a pump)."""
        require(actor, Permission.VIEW_PATIENTS)
        with self._ctx.unit_of_work() as session:
            patient_id = session.scalar(
                select(ImplantedPump.patient_id).where(ImplantedPump.id == pump_id)
            )
        if patient_id is None:
            raise NotFound(f"Pump {pump_id} does not exist.")
        return self.overview(actor, patient_id)

    def forecast_for_pump(self, actor: Actor, pump_id: int) -> Forecast | None:
        require(actor, Permission.VIEW_SCHEDULE)
        with self._ctx.unit_of_work() as session:
            pump = self.load_pump(session, pump_id)
            view = self.reservoir_view(session, pump, read_settings(session))
            return view.forecast if view else None

    def drug_products(self, actor: Actor, pump_id: int) -> list[tuple[str, str, float]]:
        """(id, name, concentration) of the products this pump may be filled with."""
        require(actor, Permission.VIEW_PATIENTS)
        with self._ctx.unit_of_work() as session:
            pump = self.load_pump(session, pump_id)
            allowed = self._allowed_concentrations(pump)
            products = session.scalars(
                select(DrugProduct)
                .where(DrugProduct.active.is_(True), DrugProduct.screening_only.is_(False))
                .order_by(DrugProduct.concentration_mcg_per_ml)
            )
            return [
                (d.id, d.name, d.concentration_mcg_per_ml)
                for d in products
                if not allowed or d.concentration_mcg_per_ml in allowed
            ]

    def pump_models(self, actor: Actor) -> list[PumpModelChoice]:
        """The active pump models a new implant may be, with the drugs each may hold."""
        require(actor, Permission.VIEW_PATIENTS)
        with self._ctx.unit_of_work() as session:
            drugs = list(
                session.scalars(
                    select(DrugProduct)
                    .where(DrugProduct.active.is_(True), DrugProduct.screening_only.is_(False))
                    .order_by(DrugProduct.concentration_mcg_per_ml)
                )
            )
            models = session.scalars(
                select(PumpModel)
                .where(PumpModel.active.is_(True))
                .order_by(PumpModel.manufacturer, PumpModel.name)
            )
            choices = []
            for model in models:
                try:
                    allowed = frozenset(
                        self._ctx.reference.pump_model(model.id).allowed_concentrations_mcg_per_ml
                    )
                except KeyError:
                    allowed = frozenset()
                choices.append(
                    PumpModelChoice(
                        id=model.id,
                        name=model.name,
                        manufacturer=model.manufacturer,
                        reservoir_ml=model.reservoir_ml,
                        low_reservoir_alarm_ml=model.low_reservoir_alarm_ml,
                        drug_products=tuple(
                            (d.id, d.name, d.concentration_mcg_per_ml)
                            for d in drugs
                            if not allowed or d.concentration_mcg_per_ml in allowed
                        ),
                    )
                )
            return choices

    def expected_residual_ml(self, actor: Actor, pump_id: int, at: dt.datetime) -> float | None:
        """Shown before aspiration: what the pump should hold now by its program."""
        require(actor, Permission.RECORD_REFILLS)
        with self._ctx.unit_of_work() as session:
            pump = self.load_pump(session, pump_id)
            fill = current_fill(pump)
            if fill is None:
                return None
            return volume_at(
                fill.performed_at,
                fill.volume_after_ml,
                [program_period(p) for p in _programs(pump)],
                pump_spec(pump),
                at,
                read_settings(session).zone,
            )

    # --- the refill visit -------------------------------------------------------------

    def preview(self, actor: Actor, data: RefillInput) -> RefillPreview:
        """Everything the nurse must see before saving; raises ValidationFailed on bad input."""
        require(actor, Permission.RECORD_REFILLS)
        with self._ctx.unit_of_work() as session:
            return self._preview(session, actor, data, self.load_pump(session, data.pump_id))

    def verify_double_check(
        self, actor: Actor, pump_id: int, check: DoubleCheck
    ) -> DoubleCheckToken:
        """The second person signs in (failed attempts counted, five lock the account) for
        ``actor``'s refill of ``pump_id``; the token carries what they typed to
        ``record_refill``, which compares it with the refill and takes it once, within
        DOUBLE_CHECK_VALID_FOR."""
        require(actor, Permission.RECORD_REFILLS)
        with self._ctx.unit_of_work() as session:
            patient_id = session.scalar(
                select(ImplantedPump.patient_id).where(ImplantedPump.id == pump_id)
            )
        if patient_id is None:
            raise NotFound(f"Pump {pump_id} does not exist.")
        checker = self._double_checker(actor, check)
        token = DoubleCheckToken(
            checker_user_id=checker.user_id,
            recorder_user_id=actor.user_id,
            pump_id=pump_id,
            patient_id=patient_id,
            concentration_mcg_per_ml=check.concentration_mcg_per_ml,
            dose_mcg_per_day=check.dose_mcg_per_day,
            expires_at=self._ctx.now() + DOUBLE_CHECK_VALID_FOR,
            nonce=secrets.token_hex(16),
        )
        return replace(token, signature=self._sign(token))

    def record_refill(
        self, actor: Actor, data: RefillInput, check: DoubleCheckToken
    ) -> RecordedRefill:
        """Save a refill and its new program, with the second person's double check (from
        ``verify_double_check``): validate, save, audit and forecast, for this pump only.
        The token is spent by a save that is committed; one refused (a typing error, say)
        leaves it good for the corrected save, within its time."""
        require(actor, Permission.RECORD_REFILLS)
        spent: list[str] = []
        try:
            return self._record_refill(actor, data, check, spent)
        except BaseException:
            with self._spent_lock:
                for nonce in spent:
                    self._spent_tokens.pop(nonce, None)
            raise

    def _record_refill(
        self, actor: Actor, data: RefillInput, check: DoubleCheckToken, spent: list[str]
    ) -> RecordedRefill:
        with self._ctx.unit_of_work() as session:
            pump = self.load_pump(session, data.pump_id)
            checker = self._redeem(session, actor, pump, check)
            spent.append(check.nonce)
            preview = self._preview(session, actor, data, pump)
            errors = _double_check_errors(check, preview.new_program)
            if preview.needs_clinician and not (
                can(actor, Permission.CHANGE_PROGRAM_BEYOND_BOUNDS)
                or can(checker, Permission.CHANGE_PROGRAM_BEYOND_BOUNDS)
            ):
                errors.append(
                    FieldError(
                        "dose_mcg_per_day",
                        "This dose change is beyond the titration bounds: a clinician must "
                        "record it or be the second checker.",
                    )
                )
            if preview.needs_clinician and not data.change_reason.strip():
                errors.append(
                    FieldError(
                        "change_reason", "Reason for the change is required beyond the bounds."
                    )
                )
            if errors:
                raise ValidationFailed(errors)
            drug = session.get(DrugProduct, data.drug_product_id)
            assert drug is not None  # checked in _preview
            now = self._ctx.now()
            reconciliation = preview.reconciliation
            refill = Refill(
                pump_id=pump.id,
                performed_at=data.performed_at,
                performed_by_id=actor.user_id,
                double_checked_by_id=checker.user_id,
                appointment_id=data.appointment_id,
                drug_product_id=drug.id,
                lot_number=data.lot_number.strip(),
                concentration_mcg_per_ml=drug.concentration_mcg_per_ml,
                expected_residual_ml=(
                    reconciliation.expected_residual_ml if reconciliation else None
                ),
                aspirated_residual_ml=data.aspirated_residual_ml,
                volume_added_ml=data.volume_added_ml,
                volume_after_ml=data.volume_added_ml,
                measured_after_ml=data.measured_after_ml,
                reconciliation_flagged=bool(reconciliation and reconciliation.flagged),
                corrects_refill_id=data.corrects_refill_id,
                notes=data.notes.strip(),
                created_at=now,
            )
            session.add(refill)
            session.flush()
            old = preview.old_program
            keep_flex = (
                old is not None
                and old.is_flex
                and math.isclose(old.dose_mcg_per_day, data.dose_mcg_per_day)
            )
            program = DoseProgram(
                pump_id=pump.id,
                effective_from=data.performed_at,
                drug_product_id=drug.id,
                concentration_mcg_per_ml=drug.concentration_mcg_per_ml,
                mode=(ProgramMode.FLEX if keep_flex else ProgramMode.SIMPLE_CONTINUOUS).value,
                dose_mcg_per_day=data.dose_mcg_per_day,
                bolus_dose_mcg=old.bolus_dose_mcg if old else None,
                max_boluses_per_day=old.max_boluses_per_day if old else 0,
                entered_by_id=actor.user_id,
                double_checked_by_id=checker.user_id,
                refill_id=refill.id,
                reason=data.change_reason.strip(),
                created_at=now,
            )
            if keep_flex and old is not None:
                program.flex_steps = [
                    FlexStep(step_number=i, starts_at_minute=minute, rate_mcg_per_day=rate)
                    for i, (minute, rate) in enumerate(old.flex_steps, start=1)
                ]
            session.add(program)
            completed: tuple[Appointment, dict[str, object]] | None = None
            if data.appointment_id is not None:
                appointment = session.get(Appointment, data.appointment_id)
                if appointment is not None and appointment.status in (
                    AppointmentStatus.BOOKED.value,
                    AppointmentStatus.ARRIVED.value,
                ):
                    completed = (appointment, audit.snapshot(appointment))
                    appointment.status = AppointmentStatus.COMPLETED.value
                    appointment.status_changed_at = now
                    appointment.status_changed_by_id = actor.user_id
            # The refill and its program record their create in their own rows: the
            # flush seals them (pumpclinic.services.row_seals), with who recorded the
            # refill, who checked it and when as columns of the rows.
            session.flush()
            if completed is not None:
                appointment, before = completed
                audit.record(
                    session,
                    actor=actor,
                    at=now,
                    action=AuditAction.UPDATE,
                    entity="appointment",
                    entity_id=appointment.id,
                    patient_id=appointment.patient_id,
                    before=before,
                    after=audit.snapshot(appointment),
                )
            session.expire(pump)
            pump = self.load_pump(session, pump.id)
            settings = read_settings(session)
            view = self.reservoir_view(session, pump, settings)
            assert view is not None
            row = next(r for r in self._refill_rows(session, pump) if r.id == refill.id)
            card = self._card_data(session, pump, settings, view.forecast)
            return RecordedRefill(
                refill=row, forecast=view.forecast, reconciliation=reconciliation, card=card
            )

    def implant_pump(self, actor: Actor, data: ImplantInput, check: DoubleCheck) -> int:
        """Record an implanted pump with its first program and fill; returns the pump id."""
        require(actor, Permission.EDIT_PATIENTS)
        require(actor, Permission.RECORD_REFILLS)
        checker = self._double_checker(actor, check)
        with self._ctx.unit_of_work() as session:
            settings = read_settings(session)
            errors: list[FieldError] = []
            patient = session.get(Patient, data.patient_id)
            if patient is None:
                raise NotFound(f"Patient {data.patient_id} does not exist.")
            if self.load_active_pump(session, data.patient_id) is not None:
                errors.append(
                    FieldError("pump_model_id", "This patient already has an implanted pump.")
                )
            model = session.get(PumpModel, data.pump_model_id)
            if model is None or not model.active:
                raise ValidationFailed([FieldError("pump_model_id", "Choose the pump model.")])
            serial = data.serial_number.strip()
            if not serial or len(serial) > 64:
                errors.append(
                    FieldError("serial_number", "Serial number is required (at most 64).")
                )
            elif session.scalar(
                select(ImplantedPump.id).where(
                    ImplantedPump.pump_model_id == model.id, ImplantedPump.serial_number == serial
                )
            ):
                errors.append(
                    FieldError(
                        "serial_number", f"Serial {serial} is already recorded for this model."
                    )
                )
            today = self._ctx.now().astimezone(settings.zone).date()
            if data.implanted_on > today:
                errors.append(FieldError("implanted_on", "Implant date cannot be in the future."))
            if data.filled_at.tzinfo is None or data.filled_at > self._ctx.now() + FUTURE_TOLERANCE:
                errors.append(FieldError("filled_at", "Fill time cannot be in the future."))
            spec = PumpSpec(
                reservoir_ml=model.reservoir_ml,
                low_reservoir_alarm_ml=model.low_reservoir_alarm_ml,
                flow_accuracy_pct=model.flow_accuracy_pct,
                constant_flow_ml_per_day=model.constant_flow_ml_per_day,
                pocket_fill_warning_ml=model.pocket_fill_warning_ml,
            )
            _check_volume(errors, "volume_ml", "Fill volume", data.volume_ml, spec)
            drug = session.get(DrugProduct, data.drug_product_id)
            if drug is None or drug.screening_only or not drug.active:
                errors.append(FieldError("drug_product_id", "Choose the drug product filled."))
            if not data.lot_number.strip():
                errors.append(FieldError("lot_number", "Lot number is required."))
            if not math.isfinite(data.dose_mcg_per_day) or not 0 <= data.dose_mcg_per_day <= 3000:
                errors.append(
                    FieldError("dose_mcg_per_day", "Daily dose must be between 0 and 3000 mcg/day.")
                )
            if errors:
                raise ValidationFailed(errors)
            assert drug is not None
            view = ProgramView(
                effective_from=data.filled_at,
                drug_name=drug.name,
                concentration_mcg_per_ml=drug.concentration_mcg_per_ml,
                dose_mcg_per_day=data.dose_mcg_per_day,
                daily_volume_ml=0.0,
                flex_steps=(),
                bolus_dose_mcg=None,
                max_boluses_per_day=0,
            )
            mismatch = _double_check_errors(check, view)
            if mismatch:
                raise ValidationFailed(mismatch)
            now = self._ctx.now()
            battery = (
                data.implanted_on + dt.timedelta(days=round(model.battery_life_years * 365.25))
                if model.battery_life_years
                else None
            )
            pump, fill, program = add_pump_with_fill(
                session,
                NewPump(
                    patient_id=patient.id,
                    model=model,
                    serial_number=serial,
                    implanted_on=data.implanted_on,
                    battery_replace_by=battery,
                    filled_at=data.filled_at,
                    drug=drug,
                    lot_number=data.lot_number.strip(),
                    volume_ml=data.volume_ml,
                    dose_mcg_per_day=data.dose_mcg_per_day,
                    by_user_id=actor.user_id,
                    checked_by_user_id=checker.user_id,
                    pump_notes=data.notes.strip(),
                    fill_notes="Implant fill",
                    program_reason="Starting dose at implant",
                ),
                now,
            )
            session.flush()
            audit.record(
                session,
                actor=actor,
                at=now,
                action=AuditAction.CREATE,
                entity="pump",
                entity_id=pump.id,
                patient_id=patient.id,
                after=pump_audit_view(pump, fill, program),
            )
            return pump.id

    def patient_card(self, actor: Actor, pump_id: int) -> PatientCardData:
        require(actor, Permission.VIEW_PATIENTS)
        with self._ctx.unit_of_work() as session:
            pump = self.load_pump(session, pump_id)
            settings = read_settings(session)
            view = self.reservoir_view(session, pump, settings)
            return self._card_data(session, pump, settings, view.forecast if view else None)

    # --- helpers ----------------------------------------------------------------------

    def load_pump(self, session: Session, pump_id: int) -> ImplantedPump:
        pump = session.scalar(
            select(ImplantedPump)
            .where(ImplantedPump.id == pump_id)
            .options(
                selectinload(ImplantedPump.programs).selectinload(DoseProgram.flex_steps),
                selectinload(ImplantedPump.refills),
                selectinload(ImplantedPump.pump_model),
                selectinload(ImplantedPump.patient),
            )
        )
        if pump is None:
            raise NotFound(f"Pump {pump_id} does not exist.")
        return pump

    def load_active_pump(self, session: Session, patient_id: int) -> ImplantedPump | None:
        pump_id = session.scalar(
            select(ImplantedPump.id).where(
                ImplantedPump.patient_id == patient_id, ImplantedPump.explanted_on.is_(None)
            )
        )
        return self.load_pump(session, pump_id) if pump_id is not None else None

    def _allowed_concentrations(self, pump: ImplantedPump) -> frozenset[float]:
        try:
            spec = self._ctx.reference.pump_model(pump.pump_model_id)
        except KeyError:
            return frozenset()
        return frozenset(spec.allowed_concentrations_mcg_per_ml)

    def _program_view(self, session: Session, program: DoseProgram, pump: PumpSpec) -> ProgramView:
        drug = (
            session.get(DrugProduct, program.drug_product_id) if program.drug_product_id else None
        )
        period = program_period(program)
        return ProgramView(
            effective_from=program.effective_from,
            drug_name=drug.name if drug else "Baclofen intrathecal",
            concentration_mcg_per_ml=program.concentration_mcg_per_ml,
            dose_mcg_per_day=program.dose_mcg_per_day,
            daily_volume_ml=program_daily_volume_ml(period, pump),
            flex_steps=tuple((s.starts_at_minute, s.rate_mcg_per_day) for s in program.flex_steps),
            bolus_dose_mcg=program.bolus_dose_mcg,
            max_boluses_per_day=program.max_boluses_per_day,
        )

    def _card(self, session: Session, pump: ImplantedPump) -> PumpCard:
        fill = current_fill(pump)
        spec = pump_spec(pump)
        latest = _programs(pump)[-1] if _programs(pump) else None
        return PumpCard(
            pump_id=pump.id,
            patient_id=pump.patient_id,
            model_id=pump.pump_model_id,
            model_name=pump.pump_model.name,
            manufacturer=pump.pump_model.manufacturer,
            constant_flow=spec.constant_flow_ml_per_day is not None,
            serial_number=pump.serial_number,
            implanted_on=pump.implanted_on,
            reservoir_ml=pump.reservoir_ml,
            low_reservoir_alarm_ml=pump.low_reservoir_alarm_ml,
            flow_accuracy_pct=spec.flow_accuracy_pct,
            pocket_fill_warning_ml=spec.pocket_fill_warning_ml,
            battery_replace_by=pump.battery_replace_by,
            program=self._program_view(session, latest, spec) if latest else None,
            last_fill_at=fill.performed_at if fill else None,
            last_fill_volume_ml=fill.volume_after_ml if fill else None,
        )

    def _stability_days(self, session: Session, fill: Refill) -> int | None:
        if fill.drug_product_id is None:
            return None
        drug = session.get(DrugProduct, fill.drug_product_id)
        return drug.stability_days if drug else None

    def reservoir_view(
        self, session: Session, pump: ImplantedPump, settings: ClinicSettingsData
    ) -> ReservoirView | None:
        fill = current_fill(pump)
        if fill is None or not _programs(pump):
            return None
        programs = [program_period(p) for p in _programs(pump)]
        spec = pump_spec(pump)
        now = self._ctx.now()
        outlook = forecast(
            fill.performed_at,
            fill.volume_after_ml,
            programs,
            spec,
            ClinicCalendar.from_settings(settings),
            margin_days=settings.refill_safety_margin_days,
            stability_days=self._stability_days(session, fill),
            zone=settings.zone,
        )
        horizon = max(
            now + dt.timedelta(days=14),
            outlook.empty_at or fill.performed_at + dt.timedelta(days=200),
        )
        series = volume_series(
            fill.performed_at, fill.volume_after_ml, programs, spec, settings.zone, until=horizon
        )
        corrected = {r.corrects_refill_id for r in pump.refills if r.corrects_refill_id}
        fills = tuple(
            (r.performed_at, r.volume_after_ml) for r in pump.refills if r.id not in corrected
        )
        return ReservoirView(
            now=now,
            volume_now_ml=volume_at(
                fill.performed_at, fill.volume_after_ml, programs, spec, now, settings.zone
            ),
            forecast=outlook,
            series=tuple(series),
            fills=fills,
        )

    def _refill_rows(self, session: Session, pump: ImplantedPump) -> tuple[RefillRow, ...]:
        user_ids = {r.performed_by_id for r in pump.refills} | {
            r.double_checked_by_id for r in pump.refills if r.double_checked_by_id
        }
        names = dict(
            session.execute(select(User.id, User.username).where(User.id.in_(user_ids))).all()
        )
        drugs = dict(session.execute(select(DrugProduct.id, DrugProduct.name)).all())
        corrected_by = {r.corrects_refill_id: r.id for r in pump.refills if r.corrects_refill_id}
        return tuple(
            RefillRow(
                id=r.id,
                performed_at=r.performed_at,
                performed_by=names.get(r.performed_by_id, ""),
                double_checked_by=names.get(r.double_checked_by_id or -1, ""),
                drug_name=drugs.get(r.drug_product_id or "", ""),
                lot_number=r.lot_number,
                concentration_mcg_per_ml=r.concentration_mcg_per_ml,
                expected_residual_ml=r.expected_residual_ml,
                aspirated_residual_ml=r.aspirated_residual_ml,
                volume_added_ml=r.volume_added_ml,
                volume_after_ml=r.volume_after_ml,
                measured_after_ml=r.measured_after_ml,
                flagged=r.reconciliation_flagged,
                corrects_refill_id=r.corrects_refill_id,
                corrected_by_id=corrected_by.get(r.id),
                notes=r.notes,
            )
            for r in sorted(pump.refills, key=lambda r: (r.performed_at, r.id), reverse=True)
        )

    def _trend(self, pump: ImplantedPump, zone: dt.tzinfo) -> ReconciliationTrend | None:
        """Reconcile each fill against the next aspiration, oldest first."""
        corrected = {r.corrects_refill_id for r in pump.refills if r.corrects_refill_id}
        fills = sorted(
            (r for r in pump.refills if r.id not in corrected), key=lambda r: r.performed_at
        )
        programs = [program_period(p) for p in _programs(pump)]
        spec = pump_spec(pump)
        history = [
            reconcile(
                before.volume_after_ml,
                before.performed_at,
                programs,
                spec,
                after.aspirated_residual_ml,
                after.performed_at,
                zone,
            )
            for before, after in pairwise(fills)
        ]
        return reconciliation_trend(history) if history else None

    def _card_data(
        self,
        session: Session,
        pump: ImplantedPump,
        settings: ClinicSettingsData,
        outlook: Forecast | None,
    ) -> PatientCardData:
        patient = pump.patient
        latest = _programs(pump)[-1] if _programs(pump) else None
        view = self._program_view(session, latest, pump_spec(pump)) if latest else None
        return PatientCardData(
            clinic_name=settings.clinic_name,
            clinic_phone=settings.clinic_phone,
            patient_name=f"{patient.given_name} {patient.family_name}",
            mrn=patient.mrn,
            date_of_birth=patient.date_of_birth,
            pump=f"{pump.pump_model.name}, serial {pump.serial_number}",
            drug_name=view.drug_name if view else "",
            concentration_mcg_per_ml=view.concentration_mcg_per_ml if view else 0.0,
            dose_mcg_per_day=view.dose_mcg_per_day if view else 0.0,
            alarm_at=outlook.alarm_at if outlook else None,
            refill_due=outlook.refill_due if outlook else None,
            withdrawal_signs=tuple(i.label for i in self._ctx.reference.leaflet.withdrawal_signs),
            zone=settings.zone,
            printed_at=self._ctx.now(),
        )

    def _double_checker(self, actor: Actor, check: DoubleCheck) -> Actor:
        from pumpclinic.services.users import UserService

        if not check.username.strip():
            raise ValidationFailed(
                [FieldError("double_check", "Double check: the second person must sign in.")]
            )
        if check.username.strip().lower() == actor.username:
            raise ValidationFailed(
                [
                    FieldError(
                        "double_check",
                        "Double check: a second person must check, not the one recording.",
                    )
                ]
            )
        checker = UserService(self._ctx).authenticate(check.username, check.password)
        if not can(checker, Permission.RECORD_REFILLS):
            raise ValidationFailed(
                [
                    FieldError(
                        "double_check",
                        f"Double check: {checker.full_name} ({checker.role.label}) may not "
                        "check a refill; a nurse or clinician must.",
                    )
                ]
            )
        return checker

    def _sign(self, token: DoubleCheckToken) -> str:
        return hmac.new(self._token_key, token.signed_text(), hashlib.sha256).hexdigest()

    def _redeem(
        self, session: Session, actor: Actor, pump: ImplantedPump, token: DoubleCheckToken
    ) -> Actor:
        """The checker of a valid token for this save, which spends it (``record_refill``
        gives it back when the save is not committed); refused at the double-check field
        when forged, expired, given for another save, or already used, or when the checker
        may no longer check."""

        def refuse(message: str) -> ValidationFailed:
            return ValidationFailed([FieldError("double_check", message)])

        if not isinstance(token, DoubleCheckToken) or not hmac.compare_digest(
            token.signature, self._sign(token)
        ):
            raise refuse(f"The double check is not valid: {ASK_AGAIN}.")
        now = self._ctx.now()
        if now >= token.expires_at:
            raise refuse(f"The double check has expired: {ASK_AGAIN}.")
        if token.recorder_user_id != actor.user_id or token.checker_user_id == actor.user_id:
            raise refuse(f"The double check was given to another user recording: {ASK_AGAIN}.")
        if token.pump_id != pump.id or token.patient_id != pump.patient_id:
            raise refuse(
                "The double check was given for another patient's pump: ask the second nurse "
                "or clinician to check this refill."
            )
        user = session.get(User, token.checker_user_id)
        if user is None or not user.active:
            raise refuse(
                "Double check: the checker's account is no longer active; another nurse or "
                "clinician must check."
            )
        if user.locked_until is not None and user.locked_until > now:
            raise refuse(
                f"Double check: {user.full_name}'s account is locked after failed sign-ins; "
                "another nurse or clinician must check."
            )
        checker = Actor(
            user_id=user.id, username=user.username, full_name=user.full_name, role=Role(user.role)
        )
        if not can(checker, Permission.RECORD_REFILLS):
            raise refuse(
                f"Double check: {checker.full_name} ({checker.role.label}) may not check a "
                "refill; a nurse or clinician must."
            )
        with self._spent_lock:
            self._spent_tokens = {
                nonce: until for nonce, until in self._spent_tokens.items() if until > now
            }
            if token.nonce in self._spent_tokens:
                raise refuse(f"The double check was already used for a save: {ASK_AGAIN}.")
            self._spent_tokens[token.nonce] = token.expires_at
        return checker

    def _preview(
        self, session: Session, actor: Actor, data: RefillInput, pump: ImplantedPump
    ) -> RefillPreview:
        settings = read_settings(session)
        spec = pump_spec(pump)
        errors: list[FieldError] = []
        now = self._ctx.now()
        fill = current_fill(pump)
        if data.performed_at.tzinfo is None:
            errors.append(FieldError("performed_at", "Refill time must include a time zone."))
        elif data.performed_at > now + FUTURE_TOLERANCE:
            errors.append(FieldError("performed_at", "Refill time cannot be in the future."))
        elif (
            fill is not None
            and data.corrects_refill_id is None
            and data.performed_at <= fill.performed_at
        ):
            local = fill.performed_at.astimezone(settings.zone)
            errors.append(
                FieldError(
                    "performed_at",
                    f"Refill time must be after the last refill ({local:%d %b %Y %H:%M}).",
                )
            )
        if pump.explanted_on is not None:
            errors.append(FieldError("pump_id", "This pump has been explanted."))
        _check_volume(
            errors, "aspirated_residual_ml", "Aspirated volume", data.aspirated_residual_ml, spec
        )
        _check_volume(errors, "volume_added_ml", "Volume added", data.volume_added_ml, spec)
        if math.isfinite(data.volume_added_ml) and data.volume_added_ml == 0:
            errors.append(FieldError("volume_added_ml", "Volume added must be more than 0 mL."))
        if data.measured_after_ml is not None:
            _check_volume(
                errors, "measured_after_ml", "Measured volume", data.measured_after_ml, spec
            )
        drug = session.get(DrugProduct, data.drug_product_id)
        allowed = self._allowed_concentrations(pump)
        if drug is None or not drug.active or drug.screening_only:
            errors.append(FieldError("drug_product_id", "Choose the drug product filled."))
        elif allowed and drug.concentration_mcg_per_ml not in allowed:
            errors.append(
                FieldError(
                    "drug_product_id",
                    f"{drug.name} is not approved for the {pump.pump_model.name} "
                    f"(allowed: {', '.join(f'{c:g}' for c in sorted(allowed))} mcg/mL).",
                )
            )
        if not data.lot_number.strip():
            errors.append(FieldError("lot_number", "Lot number is required."))
        elif len(data.lot_number.strip()) > 64:
            errors.append(FieldError("lot_number", "Lot number must be at most 64 characters."))
        if not math.isfinite(data.dose_mcg_per_day) or not 0 <= data.dose_mcg_per_day <= 3000:
            errors.append(
                FieldError("dose_mcg_per_day", "Daily dose must be between 0 and 3000 mcg/day.")
            )
        if data.corrects_refill_id is not None:
            target = next((r for r in pump.refills if r.id == data.corrects_refill_id), None)
            already = {r.corrects_refill_id for r in pump.refills}
            if target is None:
                errors.append(
                    FieldError("corrects_refill_id", "The refill to correct is not on this pump.")
                )
            elif target.id in already:
                errors.append(
                    FieldError("corrects_refill_id", "That refill was already corrected.")
                )
        if errors:
            raise ValidationFailed(errors)
        assert drug is not None
        programs = [program_period(p) for p in _programs(pump)]
        reconciliation = None
        if fill is not None and programs and data.corrects_refill_id is None:
            reconciliation = reconcile(
                fill.volume_after_ml,
                fill.performed_at,
                programs,
                spec,
                data.aspirated_residual_ml,
                data.performed_at,
                settings.zone,
            )
        latest = _programs(pump)[-1] if _programs(pump) else None
        old_view = self._program_view(session, latest, spec) if latest else None
        new_period = ProgramPeriod(
            effective_from=data.performed_at,
            concentration_mcg_per_ml=drug.concentration_mcg_per_ml,
            dose_mcg_per_day=data.dose_mcg_per_day,
            bolus_dose_mcg=old_view.bolus_dose_mcg if old_view else None,
            max_boluses_per_day=old_view.max_boluses_per_day if old_view else 0,
        )
        new_view = ProgramView(
            effective_from=data.performed_at,
            drug_name=drug.name,
            concentration_mcg_per_ml=drug.concentration_mcg_per_ml,
            dose_mcg_per_day=data.dose_mcg_per_day,
            daily_volume_ml=program_daily_volume_ml(new_period, spec),
            flex_steps=(),
            bolus_dose_mcg=new_period.bolus_dose_mcg,
            max_boluses_per_day=new_period.max_boluses_per_day,
        )
        warning = None
        if data.dose_mcg_per_day == 0 and (old_view is None or old_view.dose_mcg_per_day > 0):
            warning = (
                "A daily dose of 0 mcg/day stops all delivery: abrupt baclofen withdrawal "
                "(fever, rigidity, rhabdomyolysis). Only a clinician may program it, with a reason."
            )
        elif old_view is not None and old_view.dose_mcg_per_day > 0:
            last_change = _last_dose_change(_programs(pump)) or dt.datetime.combine(
                pump.implanted_on, dt.time(), tzinfo=settings.zone
            )
            hours = max(0.0, (data.performed_at - last_change).total_seconds() / 3600)
            warning = check_titration(
                old_view.dose_mcg_per_day,
                data.dose_mcg_per_day,
                SpasticityOrigin(pump.patient.spasticity_origin),
                _is_child(pump.patient, data.performed_at.astimezone(settings.zone).date()),
                hours,
            )
        pocket = None
        if data.measured_after_ml is not None:
            pocket = pocket_fill_check(
                data.volume_added_ml, data.volume_added_ml, data.measured_after_ml, spec
            )
        new_forecast = forecast(
            data.performed_at,
            data.volume_added_ml,
            [*[p for p in programs if p.effective_from < data.performed_at], new_period],
            spec,
            ClinicCalendar.from_settings(settings),
            margin_days=settings.refill_safety_margin_days,
            stability_days=drug.stability_days,
            zone=settings.zone,
        )
        return RefillPreview(
            reconciliation=reconciliation,
            old_program=old_view,
            new_program=new_view,
            titration_warning=warning,
            needs_clinician=warning is not None,
            pocket_fill=pocket,
            new_forecast=new_forecast,
        )


def _last_dose_change(programs: Sequence[DoseProgram]) -> dt.datetime | None:
    last: dt.datetime | None = None
    for before, after in pairwise(programs):
        if not math.isclose(before.dose_mcg_per_day, after.dose_mcg_per_day):
            last = after.effective_from
    return last


def _check_volume(
    errors: list[FieldError], field: str, label: str, value: float, pump: PumpSpec
) -> None:
    if not math.isfinite(value) or value < 0:
        errors.append(FieldError(field, f"{label} must be 0 mL or more."))
    elif value > pump.reservoir_ml:
        errors.append(
            FieldError(
                field, f"{label} cannot exceed the reservoir, {pump.reservoir_ml:g} mL ({value:g})."
            )
        )


def _double_check_errors(
    check: DoubleCheck | DoubleCheckToken, program: ProgramView
) -> list[FieldError]:
    errors: list[FieldError] = []
    if check.concentration_mcg_per_ml is None or not math.isclose(
        check.concentration_mcg_per_ml, program.concentration_mcg_per_ml, abs_tol=MATCH_TOLERANCE
    ):
        errors.append(
            FieldError(
                "check_concentration",
                "Double check does not match: the concentration entered by the second person "
                "differs. Stop, compare the vial and the program, then enter again.",
            )
        )
    if check.dose_mcg_per_day is None or not math.isclose(
        check.dose_mcg_per_day, program.dose_mcg_per_day, abs_tol=MATCH_TOLERANCE
    ):
        errors.append(
            FieldError(
                "check_dose",
                "Double check does not match: the daily dose entered by the second person "
                "differs. Stop, compare the prescription (mcg/day) and the program.",
            )
        )
    return errors
