"""The clinic's data model: SQLAlchemy 2.0 declarative, typed.

Every datetime column is a :class:`UTCDateTime` (aware, stored as UTC); calendar days
(date of birth, implant date, holidays) are plain dates. Volumes are mL, doses mcg or
mcg/day, concentrations mcg/mL, and CHECK constraints keep them in range.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    Time,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from pumpclinic.db import triggers
from pumpclinic.db.types import UTCDateTime
from pumpclinic.domain.alerts import ContactMethod, ContactOutcome
from pumpclinic.domain.enums import (
    ASHWORTH_SCORES,
    AppointmentKind,
    AppointmentStatus,
    AuditAction,
    DoseResponse,
    ProgramMode,
    PumpKind,
    Role,
    Sex,
    SpasticityOrigin,
    TrialStatus,
)
from pumpclinic.domain.screening import StopCause

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime()}


def one_of(column: str, enum: type[StrEnum], name: str | None = None) -> CheckConstraint:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return CheckConstraint(f"{column} IN ({values})", name=name or f"{column}_valid")


def _fk(target: str, *, nullable: bool = False, ondelete: str | None = None) -> Mapped[int]:
    return mapped_column(ForeignKey(target, ondelete=ondelete), nullable=nullable, index=True)


# --- People -----------------------------------------------------------------------------


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        one_of("role", Role),
        CheckConstraint("failed_login_count >= 0", name="failed_login_count_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_login_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None]
    last_login_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (
        one_of("spasticity_origin", SpasticityOrigin),
        one_of("sex", Sex),
        CheckConstraint("length(trim(mrn)) > 0", name="mrn_not_blank"),
        Index("ix_patients_family_given", "family_name", "given_name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mrn: Mapped[str] = mapped_column(String(32), unique=True)
    family_name: Mapped[str] = mapped_column(String(100))
    given_name: Mapped[str] = mapped_column(String(100))
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(16), default=Sex.UNKNOWN.value)
    spasticity_origin: Mapped[str] = mapped_column(String(16))
    diagnosis: Mapped[str] = mapped_column(String(300))
    # Risk flags that raise every refill alert one level (ITB-FACTS §6).
    sci_at_or_above_t6: Mapped[bool] = mapped_column(Boolean, default=False)
    communication_difficulties: Mapped[bool] = mapped_column(Boolean, default=False)
    previous_withdrawal: Mapped[bool] = mapped_column(Boolean, default=False)
    allergies: Mapped[str] = mapped_column(Text, default="")
    other_medicines: Mapped[str] = mapped_column(Text, default="")
    pregnant: Mapped[bool] = mapped_column(Boolean, default=False)
    breastfeeding: Mapped[bool] = mapped_column(Boolean, default=False)
    phone: Mapped[str] = mapped_column(String(50), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    do_not_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    do_not_contact_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)

    conditions: Mapped[list[PatientCondition]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", order_by="PatientCondition.code"
    )
    medicines: Mapped[list[PatientMedicine]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", order_by="PatientMedicine.code"
    )
    contacts: Mapped[list[PatientContact]] = relationship(
        back_populates="patient", cascade="all, delete-orphan", order_by="PatientContact.id"
    )
    pumps: Mapped[list[ImplantedPump]] = relationship(
        back_populates="patient", order_by="ImplantedPump.implanted_on"
    )

    __mapper_args__ = {"version_id_col": version}


class PatientCondition(Base):
    """A condition from the leaflet's precaution list (code = the resource entry's id)."""

    __tablename__ = "patient_conditions"

    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient: Mapped[Patient] = relationship(back_populates="conditions")


class PatientMedicine(Base):
    """A current medicine from the leaflet's interaction list (code = the entry's id)."""

    __tablename__ = "patient_medicines"

    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient: Mapped[Patient] = relationship(back_populates="medicines")


class PatientContact(Base):
    __tablename__ = "patient_contacts"
    __table_args__ = (CheckConstraint("length(trim(name)) > 0", name="name_not_blank"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _fk("patients.id", ondelete="CASCADE")
    name: Mapped[str] = mapped_column(String(200))
    relationship_to_patient: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(50), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    patient: Mapped[Patient] = relationship(back_populates="contacts")


# --- Catalogs ---------------------------------------------------------------------------


class PumpModel(Base):
    """A pump model of the catalog; seeded from resources/pumps.json, editable by an admin."""

    __tablename__ = "pump_models"
    __table_args__ = (
        one_of("kind", PumpKind),
        CheckConstraint("reservoir_ml > 0", name="reservoir_positive"),
        CheckConstraint(
            "low_reservoir_alarm_ml >= 0 AND low_reservoir_alarm_ml < reservoir_ml",
            name="alarm_within_reservoir",
        ),
        CheckConstraint("flow_accuracy_pct > 0 AND flow_accuracy_pct < 100", name="accuracy_range"),
        CheckConstraint(
            "max_flex_steps >= 0 AND max_flex_steps <= 24", name="max_flex_steps_range"
        ),
        CheckConstraint(
            "(kind = 'constant-flow' AND constant_flow_ml_per_day > 0)"
            " OR (kind = 'programmable' AND constant_flow_ml_per_day IS NULL)",
            name="constant_flow_rate",
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    manufacturer: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    model_number: Mapped[str] = mapped_column(String(50), default="")
    kind: Mapped[str] = mapped_column(String(16))
    reservoir_ml: Mapped[float] = mapped_column(Float)
    low_reservoir_alarm_ml: Mapped[float] = mapped_column(Float)
    flow_accuracy_pct: Mapped[float] = mapped_column(Float)
    max_flex_steps: Mapped[int] = mapped_column(Integer)
    battery_life_years: Mapped[float | None] = mapped_column(Float)
    eri_days_before_end: Mapped[int | None] = mapped_column(Integer)
    constant_flow_ml_per_day: Mapped[float | None] = mapped_column(Float)
    pocket_fill_warning_ml: Mapped[float] = mapped_column(Float)
    plans_refill_with_boluses: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Two administrators editing the same model: the second save is refused, not lost.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}


class DrugProduct(Base):
    __tablename__ = "drug_products"
    __table_args__ = (
        CheckConstraint("concentration_mcg_per_ml > 0", name="concentration_positive"),
        CheckConstraint("stability_days > 0", name="stability_positive"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    concentration_mcg_per_ml: Mapped[float] = mapped_column(Float)
    screening_only: Mapped[bool] = mapped_column(Boolean, default=False)
    stability_days: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}


# --- Pumps, programs, refills ----------------------------------------------------------


class ImplantedPump(Base):
    __tablename__ = "implanted_pumps"
    __table_args__ = (
        CheckConstraint("reservoir_ml > 0", name="reservoir_positive"),
        CheckConstraint(
            "low_reservoir_alarm_ml >= 0 AND low_reservoir_alarm_ml < reservoir_ml",
            name="alarm_within_reservoir",
        ),
        CheckConstraint(
            "explanted_on IS NULL OR explanted_on >= implanted_on", name="explant_after_implant"
        ),
        UniqueConstraint("pump_model_id", "serial_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _fk("patients.id")
    pump_model_id: Mapped[str] = mapped_column(ForeignKey("pump_models.id"), index=True)
    serial_number: Mapped[str] = mapped_column(String(64))
    implanted_on: Mapped[dt.date] = mapped_column(Date)
    # Copied from the model at implant so that a catalog edit never rewrites history.
    reservoir_ml: Mapped[float] = mapped_column(Float)
    low_reservoir_alarm_ml: Mapped[float] = mapped_column(Float)
    battery_replace_by: Mapped[dt.date | None] = mapped_column(Date)
    explanted_on: Mapped[dt.date | None] = mapped_column(Date)
    explant_reason: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)

    patient: Mapped[Patient] = relationship(back_populates="pumps")
    pump_model: Mapped[PumpModel] = relationship()
    programs: Mapped[list[DoseProgram]] = relationship(
        back_populates="pump", order_by="DoseProgram.effective_from"
    )
    refills: Mapped[list[Refill]] = relationship(
        back_populates="pump", order_by="Refill.performed_at", foreign_keys="Refill.pump_id"
    )

    __mapper_args__ = {"version_id_col": version}


class DoseProgram(Base):
    """What the pump is programmed to deliver from ``effective_from`` on."""

    __tablename__ = "dose_programs"
    __table_args__ = (
        one_of("mode", ProgramMode),
        CheckConstraint("concentration_mcg_per_ml > 0", name="concentration_positive"),
        CheckConstraint("dose_mcg_per_day >= 0 AND dose_mcg_per_day <= 5000", name="dose_range"),
        CheckConstraint("bolus_dose_mcg IS NULL OR bolus_dose_mcg > 0", name="bolus_dose_positive"),
        CheckConstraint(
            "max_boluses_per_day >= 0 AND max_boluses_per_day <= 24", name="bolus_count_range"
        ),
        Index("ix_dose_programs_pump_effective", "pump_id", "effective_from"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pump_id: Mapped[int] = mapped_column(ForeignKey("implanted_pumps.id"))
    effective_from: Mapped[dt.datetime]
    drug_product_id: Mapped[str | None] = mapped_column(ForeignKey("drug_products.id"))
    concentration_mcg_per_ml: Mapped[float] = mapped_column(Float)
    mode: Mapped[str] = mapped_column(String(24), default=ProgramMode.SIMPLE_CONTINUOUS.value)
    # Prescribed as mcg per DAY. For flex programs this is the day's total.
    dose_mcg_per_day: Mapped[float] = mapped_column(Float)
    bolus_dose_mcg: Mapped[float | None] = mapped_column(Float)
    max_boluses_per_day: Mapped[int] = mapped_column(Integer, default=0)
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    double_checked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    refill_id: Mapped[int | None] = mapped_column(ForeignKey("refills.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]
    # The row's seal (pumpclinic.services.row_seals): its create is recorded here.
    seal: Mapped[bytes | None] = mapped_column(LargeBinary(16))

    pump: Mapped[ImplantedPump] = relationship(back_populates="programs")
    flex_steps: Mapped[list[FlexStep]] = relationship(
        back_populates="program", cascade="all, delete-orphan", order_by="FlexStep.step_number"
    )


class FlexStep(Base):
    """One step of a flex program: from ``starts_at_minute`` of the day, this rate."""

    __tablename__ = "flex_steps"
    __table_args__ = (
        CheckConstraint("step_number >= 1 AND step_number <= 13", name="step_number_range"),
        CheckConstraint(
            "starts_at_minute >= 0 AND starts_at_minute < 1440", name="starts_at_minute_range"
        ),
        CheckConstraint("rate_mcg_per_day >= 0 AND rate_mcg_per_day <= 5000", name="rate_range"),
        UniqueConstraint("program_id", "step_number"),
        UniqueConstraint("program_id", "starts_at_minute"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    program_id: Mapped[int] = _fk("dose_programs.id", ondelete="CASCADE")
    step_number: Mapped[int] = mapped_column(Integer)
    starts_at_minute: Mapped[int] = mapped_column(Integer)
    rate_mcg_per_day: Mapped[float] = mapped_column(Float)
    program: Mapped[DoseProgram] = relationship(back_populates="flex_steps")


class Refill(Base):
    """A refill as performed. Never edited: a correction is a new row that points here."""

    __tablename__ = "refills"
    __table_args__ = (
        CheckConstraint("concentration_mcg_per_ml > 0", name="concentration_positive"),
        CheckConstraint(
            "expected_residual_ml IS NULL OR expected_residual_ml >= 0",
            name="expected_residual_non_negative",
        ),
        CheckConstraint("aspirated_residual_ml >= 0", name="aspirated_non_negative"),
        CheckConstraint("volume_added_ml >= 0", name="added_non_negative"),
        CheckConstraint("volume_after_ml >= 0", name="after_non_negative"),
        CheckConstraint(
            "measured_after_ml IS NULL OR measured_after_ml >= 0",
            name="measured_after_non_negative",
        ),
        Index("ix_refills_pump_performed", "pump_id", "performed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pump_id: Mapped[int] = mapped_column(ForeignKey("implanted_pumps.id"))
    performed_at: Mapped[dt.datetime]
    performed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    double_checked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"))
    drug_product_id: Mapped[str | None] = mapped_column(ForeignKey("drug_products.id"))
    lot_number: Mapped[str] = mapped_column(String(64), default="")
    concentration_mcg_per_ml: Mapped[float] = mapped_column(Float)
    expected_residual_ml: Mapped[float | None] = mapped_column(Float)
    aspirated_residual_ml: Mapped[float] = mapped_column(Float)
    volume_added_ml: Mapped[float] = mapped_column(Float)
    volume_after_ml: Mapped[float] = mapped_column(Float)
    # Pocket-fill check: what was measured in the reservoir after filling.
    measured_after_ml: Mapped[float | None] = mapped_column(Float)
    reconciliation_flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    corrects_refill_id: Mapped[int | None] = mapped_column(ForeignKey("refills.id"))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]
    # The row's seal (pumpclinic.services.row_seals): its create is recorded here.
    seal: Mapped[bytes | None] = mapped_column(LargeBinary(16))

    pump: Mapped[ImplantedPump] = relationship(back_populates="refills", foreign_keys=[pump_id])


# --- Appointments -----------------------------------------------------------------------


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (
        one_of("kind", AppointmentKind),
        one_of("status", AppointmentStatus),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_appointments_starts_at", "starts_at"),
        Index("ix_appointments_patient_id", "patient_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    pump_id: Mapped[int | None] = mapped_column(ForeignKey("implanted_pumps.id"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=AppointmentStatus.BOOKED.value)
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    booked_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    booked_at: Mapped[dt.datetime]
    # Booking after refill_due needs a reason; after the alarm, a clinician's override.
    late_reason: Mapped[str] = mapped_column(Text, default="")
    override_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    rescheduled_from_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"))
    status_changed_at: Mapped[dt.datetime | None]
    status_changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cancel_reason: Mapped[str] = mapped_column(Text, default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The row's seal (pumpclinic.services.row_seals): its create is recorded here.
    seal: Mapped[bytes | None] = mapped_column(LargeBinary(16))

    __mapper_args__ = {"version_id_col": version}


class ScheduleLock(Base):
    """A row a booking updates before it looks for a free slot or bed, so that two
    workstations booking at once take turns and the second sees the first's booking.

    One row per lock (``refill-day:2026-12-01``, ``observation-beds``), made on first use;
    ``times_taken`` only gives the UPDATE something to change.
    """

    __tablename__ = "schedule_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    times_taken: Mapped[int] = mapped_column(Integer, default=0)


# --- Screening --------------------------------------------------------------------------


class ScreeningTrial(Base):
    __tablename__ = "screening_trials"
    __table_args__ = (
        one_of("status", TrialStatus),
        CheckConstraint(
            "effective_dose_mcg IS NULL OR effective_dose_mcg > 0", name="effective_dose_positive"
        ),
        CheckConstraint(
            "stop_cause IS NULL OR stop_cause IN ("
            + ", ".join(f"'{c.value}'" for c in StopCause)
            + ")",
            name="stop_cause_valid",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _fk("patients.id")
    protocol_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=TrialStatus.PLANNED.value)
    planned_first_dose_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    stop_reason: Mapped[str] = mapped_column(Text, default="")
    # Set when the trial was stopped: an adverse event, or the clinician's decision.
    stop_cause: Mapped[str | None] = mapped_column(String(16))
    # Declared at planning; an active illness is a start check to acknowledge, not a refusal.
    active_illness: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The start checks the clinician acknowledged (JSON list of kind, code, message).
    start_checks_json: Mapped[str | None] = mapped_column(Text)
    checks_acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    checks_acknowledged_at: Mapped[dt.datetime | None]
    effective_dose_mcg: Mapped[float | None] = mapped_column(Float)
    effect_duration_hours: Mapped[float | None] = mapped_column(Float)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime]
    version: Mapped[int] = mapped_column(Integer, default=1)

    doses: Mapped[list[TestDose]] = relationship(back_populates="trial", order_by="TestDose.number")

    __mapper_args__ = {"version_id_col": version}


class TestDose(Base):
    """One intrathecal test dose. Append-only: a correction points at what it corrects."""

    __tablename__ = "test_doses"
    __test__ = False  # not a pytest test class
    __table_args__ = (
        CheckConstraint("number >= 1 AND number <= 3", name="number_range"),
        CheckConstraint("dose_mcg > 0 AND dose_mcg <= 200", name="dose_range"),
        CheckConstraint("volume_ml > 0", name="volume_positive"),
        CheckConstraint("concentration_mcg_per_ml > 0", name="concentration_positive"),
        CheckConstraint(
            "response IS NULL OR response IN ("
            + ", ".join(f"'{r.value}'" for r in DoseResponse)
            + ")",
            name="response_valid",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    trial_id: Mapped[int] = _fk("screening_trials.id")
    number: Mapped[int] = mapped_column(Integer)
    dose_mcg: Mapped[float] = mapped_column(Float)
    volume_ml: Mapped[float] = mapped_column(Float)
    concentration_mcg_per_ml: Mapped[float] = mapped_column(Float)
    planned_at: Mapped[dt.datetime | None]
    given_at: Mapped[dt.datetime | None]
    given_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    lot_number: Mapped[str] = mapped_column(String(64), default="")
    route: Mapped[str] = mapped_column(String(64), default="lumbar puncture")
    response: Mapped[str | None] = mapped_column(String(16))
    response_recorded_at: Mapped[dt.datetime | None]
    response_recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    response_notes: Mapped[str] = mapped_column(Text, default="")
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("test_doses.id"))
    # Why this row corrects the one it points at (empty on a row that corrects nothing).
    correction_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The observation bed booked for this dose (dose time .. end of observation).
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"))
    created_at: Mapped[dt.datetime]

    trial: Mapped[ScreeningTrial] = relationship(back_populates="doses")
    observations: Mapped[list[Observation]] = relationship(
        back_populates="test_dose", order_by="Observation.observed_at"
    )


class Observation(Base):
    """Vitals and scores after a test dose (or the baseline before it). Append-only."""

    __tablename__ = "observations"
    __table_args__ = (
        CheckConstraint(
            "penn_spasm_frequency IS NULL OR (penn_spasm_frequency BETWEEN 0 AND 4)",
            name="penn_range",
        ),
        CheckConstraint(
            "heart_rate_bpm IS NULL OR (heart_rate_bpm BETWEEN 20 AND 250)",
            name="heart_rate_range",
        ),
        CheckConstraint(
            "respiratory_rate_per_min IS NULL OR (respiratory_rate_per_min BETWEEN 2 AND 80)",
            name="respiratory_rate_range",
        ),
        CheckConstraint("spo2_pct IS NULL OR (spo2_pct BETWEEN 50 AND 100)", name="spo2_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    test_dose_id: Mapped[int] = _fk("test_doses.id")
    observed_at: Mapped[dt.datetime]
    is_baseline: Mapped[bool] = mapped_column(Boolean, default=False)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    penn_spasm_frequency: Mapped[int | None] = mapped_column(Integer)
    heart_rate_bpm: Mapped[int | None] = mapped_column(Integer)
    respiratory_rate_per_min: Mapped[int | None] = mapped_column(Integer)
    spo2_pct: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str] = mapped_column(Text, default="")
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("observations.id"))
    created_at: Mapped[dt.datetime]

    test_dose: Mapped[TestDose] = relationship(back_populates="observations")
    ashworth_scores: Mapped[list[AshworthScore]] = relationship(
        cascade="all, delete-orphan", order_by="AshworthScore.muscle_group"
    )
    adverse_effects: Mapped[list[ObservationAdverseEffect]] = relationship(
        cascade="all, delete-orphan"
    )


class AshworthScore(Base):
    __tablename__ = "ashworth_scores"
    __table_args__ = (
        CheckConstraint(
            "score IN (" + ", ".join(f"'{s}'" for s in ASHWORTH_SCORES) + ")", name="score_valid"
        ),
    )

    observation_id: Mapped[int] = mapped_column(
        ForeignKey("observations.id", ondelete="CASCADE"), primary_key=True
    )
    muscle_group: Mapped[str] = mapped_column(String(64), primary_key=True)
    score: Mapped[str] = mapped_column(String(2))


class ObservationAdverseEffect(Base):
    """An adverse effect picked from the leaflet's side-effect or overdose lists."""

    __tablename__ = "observation_adverse_effects"

    observation_id: Mapped[int] = mapped_column(
        ForeignKey("observations.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    is_overdose_sign: Mapped[bool] = mapped_column(Boolean, default=False)


# --- Clinic settings, audit -------------------------------------------------------------


class ClinicSettings(Base):
    """The one row of clinic-wide settings (id is always 1)."""

    __tablename__ = "clinic_settings"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("closes_at > opens_at", name="closes_after_opening"),
        CheckConstraint(
            "refill_safety_margin_days >= 0 AND refill_safety_margin_days <= 60",
            name="margin_range",
        ),
        CheckConstraint(
            "due_soon_horizon_days >= 1 AND due_soon_horizon_days <= 90", name="horizon_range"
        ),
        CheckConstraint(
            "observation_beds >= 0 AND observation_beds <= 50", name="observation_beds_range"
        ),
        CheckConstraint(
            "refill_slot_minutes >= 5 AND refill_slot_minutes <= 240", name="slot_range"
        ),
        CheckConstraint(
            "idle_lock_minutes >= 1 AND idle_lock_minutes <= 240", name="idle_lock_range"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    clinic_name: Mapped[str] = mapped_column(String(200))
    # Printed on patient cards: who to call when the pump alarms.
    clinic_phone: Mapped[str] = mapped_column(String(50), default="", server_default="")
    time_zone: Mapped[str] = mapped_column(String(64))
    opens_at: Mapped[dt.time] = mapped_column(Time)
    closes_at: Mapped[dt.time] = mapped_column(Time)
    # ISO weekdays, Monday = 1 ... Sunday = 7, comma separated.
    open_weekdays: Mapped[str] = mapped_column(String(32))
    refill_safety_margin_days: Mapped[int] = mapped_column(Integer)
    due_soon_horizon_days: Mapped[int] = mapped_column(Integer)
    observation_beds: Mapped[int] = mapped_column(Integer)
    refill_slot_minutes: Mapped[int] = mapped_column(Integer)
    idle_lock_minutes: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class Holiday(Base):
    __tablename__ = "holidays"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")


class AuditEntry(Base):
    """Who changed what, when, with the values before and after (JSON)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        one_of("action", AuditAction),
        Index("ix_audit_log_entity", "entity", "entity_id"),
        Index("ix_audit_log_patient", "patient_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime]
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[int | None] = mapped_column(Integer)
    before_json: Mapped[str | None] = mapped_column(Text)
    after_json: Mapped[str | None] = mapped_column(Text)
    # Keyed hash chain (filled in by the trust work); nullable until then.
    previous_hash: Mapped[str | None] = mapped_column(String(128))
    entry_hash: Mapped[str | None] = mapped_column(String(128))


# --- Alerts: contact attempts -------------------------------------------------------------


class ContactAttempt(Base):
    """A call, text, email, letter or visit to reach a patient about an alert. Append-only."""

    __tablename__ = "contact_attempts"
    __table_args__ = (
        one_of("method", ContactMethod),
        one_of("outcome", ContactOutcome),
        Index("ix_contact_attempts_patient_at", "patient_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    pump_id: Mapped[int | None] = mapped_column(ForeignKey("implanted_pumps.id"))
    at: Mapped[dt.datetime]
    by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    method: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    # The day the patient promised to come (or to call back), if they gave one.
    promised_date: Mapped[dt.date | None] = mapped_column(Date)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime]


# What the alert list reads by (one query for the whole clinic): the latest fill per pump
# that no later entry corrects, and the next booked refill per patient. Both are partial
# indexes over the few rows they serve (corrections; refills still booked), not over years
# of history. A query uses the appointments one only when it repeats this very condition.
ACTIVE_REFILL_BOOKING = "kind = 'refill' AND status IN ('booked', 'arrived')"
Index(
    "ix_refills_corrects_refill_id",
    Refill.corrects_refill_id,
    sqlite_where=Refill.corrects_refill_id.is_not(None),
    postgresql_where=Refill.corrects_refill_id.is_not(None),
)
Index(
    "ix_appointments_active_refill",
    Appointment.patient_id,
    Appointment.starts_at,
    sqlite_where=text(ACTIVE_REFILL_BOOKING),
    postgresql_where=text(ACTIVE_REFILL_BOOKING),
)


class AuditChainHead(Base):
    """The newest audit entry, sealed with the audit key: deleting the last entries of the
    chain (which leaves no broken link behind) is then detected too."""

    __tablename__ = "audit_chain_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    last_entry_id: Mapped[int] = mapped_column(Integer)
    last_entry_hash: Mapped[str] = mapped_column(String(128))
    seal: Mapped[str] = mapped_column(String(128))


class RowSealHead(Base):
    """Per sealed table: how many sealed rows it holds and the sum of their seals, sealed
    with the audit key, so that a sealed row deleted behind PumpClinic's back is detected."""

    __tablename__ = "row_seal_heads"

    table_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    row_count: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(32))
    seal: Mapped[str] = mapped_column(String(64))


# --- Derived data: the forecast kept per pump -----------------------------------------------


class PumpForecast(Base):
    """A pump's forecast from its latest fill, kept to be reused by the next reads.

    Derived data only. It holds for ``as_of`` from ``inputs_from`` (the pump's latest fill
    or program change at or before the time it was computed for) up to ``inputs_until``
    (its next one after that time, if any), while ``inputs`` — the arithmetic's version and
    a digest of the calendar and catalog values — is the same and ``input_revision`` is
    still the pump's revision in ``pump_input_revisions``. The database's triggers
    (``pumpclinic.db.triggers``) delete it when the pump's rows change."""

    __tablename__ = "pump_forecasts"

    pump_id: Mapped[int] = mapped_column(
        ForeignKey("implanted_pumps.id", ondelete="CASCADE"), primary_key=True
    )
    inputs: Mapped[str] = mapped_column(String(64))
    input_revision: Mapped[int] = mapped_column(Integer)
    inputs_from: Mapped[dt.datetime]
    inputs_until: Mapped[dt.datetime | None]
    daily_volume_ml: Mapped[float] = mapped_column(Float)
    alarm_at: Mapped[dt.datetime | None]
    empty_at: Mapped[dt.datetime | None]
    stability_limit_at: Mapped[dt.datetime | None]
    refill_due: Mapped[dt.date | None] = mapped_column(Date)
    days_to_alarm: Mapped[float | None] = mapped_column(Float)
    computed_at: Mapped[dt.datetime]


class PumpInputRevision(Base):
    """How many times the rows a pump's forecast is computed from (its fills, programs,
    flex steps and the pump itself) have changed: counted by the database's triggers, in
    the writer's transaction, whoever writes. No row: none since the triggers exist."""

    __tablename__ = "pump_input_revisions"

    pump_id: Mapped[int] = mapped_column(
        ForeignKey("implanted_pumps.id", ondelete="CASCADE"), primary_key=True
    )
    revision: Mapped[int] = mapped_column(Integer)


triggers.attach(Base.metadata)
