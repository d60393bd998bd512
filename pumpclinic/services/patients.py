"""The patient registry: list, read, add and edit patients."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from pumpclinic.db.models import (
    ImplantedPump,
    Patient,
    PatientCondition,
    PatientContact,
    PatientMedicine,
    PumpModel,
    ScreeningTrial,
)
from pumpclinic.domain.enums import AuditAction, SpasticityOrigin, TrialStatus
from pumpclinic.domain.patients import (
    PatientInput,
    PatientWarning,
    age_in_years,
    patient_warnings,
    validate_patient,
)
from pumpclinic.domain.validation import FieldError
from pumpclinic.services import audit
from pumpclinic.services.context import Actor, ServiceContext
from pumpclinic.services.errors import NotFound, StaleRecord, ValidationFailed
from pumpclinic.services.permissions import Permission, require
from pumpclinic.services.settings import clinic_zone

RISK_FLAG_LABELS = {
    "sci_at_or_above_t6": "SCI ≥ T6",
    "communication_difficulties": "Communication",
    "previous_withdrawal": "Prior withdrawal",
}

_TRIAL_LABELS = {
    TrialStatus.PLANNED: "Screening planned",
    TrialStatus.IN_PROGRESS: "In screening",
    TrialStatus.CANDIDATE: "Candidate (awaiting implant)",
    TrialStatus.NOT_CANDIDATE: "Not a candidate",
    TrialStatus.STOPPED: "Screening stopped",
}


@dataclass(frozen=True, slots=True)
class PatientRow:
    """One line of the patient list."""

    id: int
    mrn: str
    family_name: str
    given_name: str
    date_of_birth: dt.date
    age_years: int
    spasticity_origin: SpasticityOrigin
    diagnosis: str
    pump_status: str
    risk_flags: tuple[str, ...]

    @property
    def display_name(self) -> str:
        return f"{self.family_name.upper()}, {self.given_name}"


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """A patient as the edit form shows it; ``version`` guards concurrent edits."""

    id: int
    version: int
    data: PatientInput
    updated_at: dt.datetime


class PatientService:
    def __init__(self, context: ServiceContext) -> None:
        self._ctx = context

    def today_in_clinic(self, session: Session) -> dt.date:
        return self._ctx.now().astimezone(clinic_zone(session)).date()

    def list_patients(self, actor: Actor) -> list[PatientRow]:
        require(actor, Permission.VIEW_PATIENTS)
        with self._ctx.unit_of_work() as session:
            today = self.today_in_clinic(session)
            pumps = dict(
                session.execute(
                    select(ImplantedPump.patient_id, PumpModel.name)
                    .join(PumpModel, PumpModel.id == ImplantedPump.pump_model_id)
                    .where(ImplantedPump.explanted_on.is_(None))
                ).all()
            )
            latest_trial = (
                select(ScreeningTrial.patient_id, func.max(ScreeningTrial.id).label("trial_id"))
                .group_by(ScreeningTrial.patient_id)
                .subquery()
            )
            trials = dict(
                session.execute(
                    select(ScreeningTrial.patient_id, ScreeningTrial.status).join(
                        latest_trial, latest_trial.c.trial_id == ScreeningTrial.id
                    )
                ).all()
            )
            rows = []
            for p in session.scalars(
                select(Patient).order_by(Patient.family_name, Patient.given_name)
            ):
                if p.id in pumps:
                    status = pumps[p.id]
                elif p.id in trials:
                    status = _TRIAL_LABELS[TrialStatus(trials[p.id])]
                else:
                    status = "No pump"
                rows.append(
                    PatientRow(
                        id=p.id,
                        mrn=p.mrn,
                        family_name=p.family_name,
                        given_name=p.given_name,
                        date_of_birth=p.date_of_birth,
                        age_years=age_in_years(p.date_of_birth, today),
                        spasticity_origin=SpasticityOrigin(p.spasticity_origin),
                        diagnosis=p.diagnosis,
                        pump_status=status,
                        risk_flags=tuple(
                            label for key, label in RISK_FLAG_LABELS.items() if getattr(p, key)
                        ),
                    )
                )
            return rows

    def get_patient(self, actor: Actor, patient_id: int) -> PatientRecord:
        require(actor, Permission.VIEW_PATIENTS)
        with self._ctx.unit_of_work() as session:
            return _record(self._load(session, patient_id))

    def warnings(self, data: PatientInput) -> list[PatientWarning]:
        """What the form must show while the user edits (no database access)."""
        leaflet = self._ctx.reference.leaflet
        labels = {i.id: i.label for i in leaflet.interacting_medicines}
        labels.update({i.id: i.label for i in leaflet.cns_depressant_classes})
        with self._ctx.unit_of_work() as session:
            today = self.today_in_clinic(session)
        return patient_warnings(
            data.date_of_birth,
            data.medicine_codes,
            labels,
            today,
            pregnant=data.pregnant,
            breastfeeding=data.breastfeeding,
        )

    def create_patient(self, actor: Actor, data: PatientInput) -> PatientRecord:
        require(actor, Permission.EDIT_PATIENTS)
        data = data.normalized()
        with self._ctx.unit_of_work() as session:
            self._validate(session, data, patient_id=None)
            now = self._ctx.now()
            patient = Patient(created_at=now, updated_at=now)
            _apply(patient, data)
            session.add(patient)
            session.flush()
            audit.record(
                session,
                actor=actor,
                at=now,
                action=AuditAction.CREATE,
                entity="patient",
                entity_id=patient.id,
                patient_id=patient.id,
                after=_audit_view(patient),
            )
            return _record(patient)

    def update_patient(
        self, actor: Actor, patient_id: int, expected_version: int, data: PatientInput
    ) -> PatientRecord:
        require(actor, Permission.EDIT_PATIENTS)
        data = data.normalized()
        with self._ctx.unit_of_work() as session:
            patient = self._load(session, patient_id)
            if patient.version != expected_version:
                raise StaleRecord(
                    audit.stale_message(
                        session,
                        f"Patient {patient.mrn}",
                        "patient",
                        patient.id,
                        clinic_zone(session),
                    )
                )
            self._validate(session, data, patient_id=patient_id)
            before = _audit_view(patient)
            _apply(patient, data)
            patient.updated_at = self._ctx.now()
            session.flush()
            audit.record(
                session,
                actor=actor,
                at=patient.updated_at,
                action=AuditAction.UPDATE,
                entity="patient",
                entity_id=patient.id,
                patient_id=patient.id,
                before=before,
                after=_audit_view(patient),
            )
            return _record(patient)

    # --- helpers ------------------------------------------------------------------------

    def _load(self, session: Session, patient_id: int) -> Patient:
        patient = session.scalar(
            select(Patient)
            .where(Patient.id == patient_id)
            .options(
                selectinload(Patient.conditions),
                selectinload(Patient.medicines),
                selectinload(Patient.contacts),
            )
        )
        if patient is None:
            raise NotFound(f"Patient {patient_id} does not exist.")
        return patient

    def _validate(self, session: Session, data: PatientInput, patient_id: int | None) -> None:
        leaflet = self._ctx.reference.leaflet
        medicine_codes = {i.id for i in leaflet.interacting_medicines} | {
            i.id for i in leaflet.cns_depressant_classes
        }
        errors = validate_patient(
            data,
            self.today_in_clinic(session),
            {i.id for i in leaflet.precaution_conditions},
            medicine_codes,
        )
        clash = session.scalar(
            select(Patient.id).where(func.upper(Patient.mrn) == data.mrn.upper())
        )
        if clash is not None and clash != patient_id:
            errors.append(FieldError("mrn", f"MRN {data.mrn} is already used by another patient."))
        if errors:
            raise ValidationFailed(errors)


def _apply(patient: Patient, data: PatientInput) -> None:
    for name in (
        "mrn",
        "family_name",
        "given_name",
        "date_of_birth",
        "sex",
        "spasticity_origin",
        "diagnosis",
        "sci_at_or_above_t6",
        "communication_difficulties",
        "previous_withdrawal",
        "allergies",
        "other_medicines",
        "pregnant",
        "breastfeeding",
        "phone",
        "email",
        "address",
        "notes",
    ):
        setattr(patient, name, getattr(data, name))
    have = {c.code for c in patient.conditions}
    patient.conditions = [c for c in patient.conditions if c.code in data.condition_codes] + [
        PatientCondition(code=code) for code in sorted(data.condition_codes - have)
    ]
    have = {m.code for m in patient.medicines}
    patient.medicines = [m for m in patient.medicines if m.code in data.medicine_codes] + [
        PatientMedicine(code=code) for code in sorted(data.medicine_codes - have)
    ]
    primary = next((c for c in patient.contacts if c.is_primary), None)
    if data.contact_name:
        if primary is None:
            primary = PatientContact(is_primary=True)
            patient.contacts.append(primary)
        primary.name = data.contact_name
        primary.relationship_to_patient = data.contact_relationship
        primary.phone = data.contact_phone
    elif primary is not None:
        patient.contacts.remove(primary)


def _record(patient: Patient) -> PatientRecord:
    primary = next((c for c in patient.contacts if c.is_primary), None)
    return PatientRecord(
        id=patient.id,
        version=patient.version,
        updated_at=patient.updated_at,
        data=PatientInput(
            mrn=patient.mrn,
            family_name=patient.family_name,
            given_name=patient.given_name,
            date_of_birth=patient.date_of_birth,
            sex=patient.sex,
            spasticity_origin=patient.spasticity_origin,
            diagnosis=patient.diagnosis,
            sci_at_or_above_t6=patient.sci_at_or_above_t6,
            communication_difficulties=patient.communication_difficulties,
            previous_withdrawal=patient.previous_withdrawal,
            allergies=patient.allergies,
            other_medicines=patient.other_medicines,
            pregnant=patient.pregnant,
            breastfeeding=patient.breastfeeding,
            phone=patient.phone,
            email=patient.email,
            address=patient.address,
            notes=patient.notes,
            contact_name=primary.name if primary else "",
            contact_relationship=primary.relationship_to_patient if primary else "",
            contact_phone=primary.phone if primary else "",
            condition_codes=frozenset(c.code for c in patient.conditions),
            medicine_codes=frozenset(m.code for m in patient.medicines),
        ),
    )


def _audit_view(patient: Patient) -> dict[str, object]:
    view = audit.snapshot(patient)
    view["conditions"] = sorted(c.code for c in patient.conditions)
    view["medicines"] = sorted(m.code for m in patient.medicines)
    view["contacts"] = [audit.snapshot(c) for c in patient.contacts]
    return view
