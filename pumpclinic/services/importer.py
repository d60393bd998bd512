"""Bringing a clinic's existing patient spreadsheet in: all rows or none."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from pumpclinic.db.models import (
    DrugProduct,
    Patient,
    PumpModel,
    User,
)
from pumpclinic.domain.enums import AuditAction, Role
from pumpclinic.domain.importing import ImportRow, RowProblem
from pumpclinic.services import audit
from pumpclinic.services.context import Actor, ServiceContext
from pumpclinic.services.errors import ServiceError
from pumpclinic.services.refills import NewPump, add_pump_with_fill, pump_audit_view

IMPORT_USERNAME = "import"


class ImportRejected(ServiceError):
    """Some rows are invalid; nothing was imported."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__(f"{len(self.problems)} problem(s); nothing was imported")


def _import_actor(session: Session, now: dt.datetime) -> Actor:
    """A system account that owns imported records; it can never sign in."""
    user = session.scalar(select(User).where(User.username == IMPORT_USERNAME))
    if user is None:
        user = User(
            username=IMPORT_USERNAME,
            full_name="Spreadsheet import (system)",
            role=Role.NURSE.value,
            password_hash="!no-password",  # not an argon2 hash: verification always fails
            active=False,
            must_change_password=False,
            failed_login_count=0,
            created_at=now,
        )
        session.add(user)
        session.flush()
    return Actor(user.id, user.username, user.full_name, Role(user.role))


def import_rows(context: ServiceContext, rows: Sequence[ImportRow]) -> int:
    """Write every row in one transaction, or raise ImportRejected and write nothing."""
    with context.unit_of_work() as session:
        problems: list[RowProblem] = []
        seen: dict[str, int] = {}
        existing = set(
            session.scalars(select(Patient.mrn).where(Patient.mrn.in_([r.mrn for r in rows])))
        )
        for row in rows:
            if row.mrn in seen:
                problems.append(
                    RowProblem(
                        row.line, f"mrn {row.mrn} is repeated (first on line {seen[row.mrn]})"
                    )
                )
            seen.setdefault(row.mrn, row.line)
            if row.mrn in existing:
                problems.append(RowProblem(row.line, f"mrn {row.mrn} is already in the database"))
        if problems:
            raise ImportRejected(problems)
        now = context.now()
        actor = _import_actor(session, now)
        models = {m.id: m for m in session.scalars(select(PumpModel))}
        drugs = {
            d.concentration_mcg_per_ml: d
            for d in session.scalars(
                select(DrugProduct).where(DrugProduct.screening_only.is_(False))
            )
        }
        for row in rows:
            patient = Patient(
                mrn=row.mrn,
                family_name=row.family_name,
                given_name=row.given_name,
                date_of_birth=row.date_of_birth,
                spasticity_origin=row.origin.value,
                diagnosis="Not recorded (imported)",
                notes=f"Imported from a spreadsheet (line {row.line}).",
                created_at=now,
                updated_at=now,
            )
            session.add(patient)
            session.flush()
            pump, fill, program = add_pump_with_fill(
                session,
                NewPump(
                    patient_id=patient.id,
                    model=models[row.pump_model_id],
                    serial_number=f"IMPORTED-{row.mrn}",
                    # No implant date in the spreadsheet: the last refill stands in.
                    implanted_on=row.last_refill_at.date(),
                    battery_replace_by=None,
                    filled_at=row.last_refill_at,
                    drug=drugs[row.concentration_mcg_per_ml],
                    lot_number="",
                    volume_ml=row.volume_after_refill_ml,
                    dose_mcg_per_day=row.dose_mcg_per_day,
                    by_user_id=actor.user_id,
                    checked_by_user_id=None,
                    pump_notes="Implant date and serial number not in the import.",
                    fill_notes="Imported: last refill from the spreadsheet",
                    program_reason="Imported",
                ),
                now,
            )
            audit.record(
                session,
                actor=actor,
                at=now,
                action=AuditAction.CREATE,
                entity="patient",
                entity_id=patient.id,
                patient_id=patient.id,
                after={"imported_from_line": row.line, **audit.snapshot(patient)},
            )
            audit.record(
                session,
                actor=actor,
                at=now,
                action=AuditAction.CREATE,
                entity="pump",
                entity_id=pump.id,
                patient_id=patient.id,
                after={"imported_from_line": row.line, **pump_audit_view(pump, fill, program)},
            )
        return len(rows)
