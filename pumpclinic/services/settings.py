"""Clinic-wide settings, stored in the database (one row) with holidays."""

from __future__ import annotations

import zoneinfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pumpclinic.db.models import ClinicSettings, Holiday
from pumpclinic.domain.clinic import ClinicSettingsData, validate_settings
from pumpclinic.domain.enums import AuditAction
from pumpclinic.services import audit
from pumpclinic.services.context import Actor, ServiceContext
from pumpclinic.services.errors import StaleRecord, ValidationFailed
from pumpclinic.services.permissions import Permission, require


def ensure_settings(session: Session, defaults: ClinicSettingsData) -> ClinicSettings:
    row = session.get(ClinicSettings, 1)
    if row is None:
        row = ClinicSettings(id=1)
        apply_settings(row, defaults)
        session.add(row)
        session.flush()
    return row


def read_settings(session: Session) -> ClinicSettingsData:
    """The clinic's settings inside an open unit of work."""
    return _read(session, ensure_settings(session, ClinicSettingsData()))


def clinic_zone(session: Session) -> zoneinfo.ZoneInfo:
    name = session.scalar(select(ClinicSettings.time_zone).where(ClinicSettings.id == 1))
    return zoneinfo.ZoneInfo(name or ClinicSettingsData().time_zone)


def apply_settings(row: ClinicSettings, data: ClinicSettingsData) -> None:
    row.clinic_name = data.clinic_name.strip()
    row.clinic_phone = data.clinic_phone.strip()
    row.time_zone = data.time_zone
    row.opens_at = data.opens_at
    row.closes_at = data.closes_at
    row.open_weekdays = ",".join(str(d) for d in sorted(data.open_weekdays))
    row.refill_safety_margin_days = data.refill_safety_margin_days
    row.due_soon_horizon_days = data.due_soon_horizon_days
    row.observation_beds = data.observation_beds
    row.refill_slot_minutes = data.refill_slot_minutes
    row.idle_lock_minutes = data.idle_lock_minutes


def _read(session: Session, row: ClinicSettings) -> ClinicSettingsData:
    holidays = session.execute(select(Holiday.day, Holiday.name).order_by(Holiday.day)).all()
    return ClinicSettingsData(
        clinic_name=row.clinic_name,
        clinic_phone=row.clinic_phone,
        time_zone=row.time_zone,
        opens_at=row.opens_at,
        closes_at=row.closes_at,
        open_weekdays=frozenset(int(d) for d in row.open_weekdays.split(",") if d),
        refill_safety_margin_days=row.refill_safety_margin_days,
        due_soon_horizon_days=row.due_soon_horizon_days,
        observation_beds=row.observation_beds,
        refill_slot_minutes=row.refill_slot_minutes,
        idle_lock_minutes=row.idle_lock_minutes,
        holidays=tuple(holidays),
    )


class SettingsService:
    def __init__(self, context: ServiceContext) -> None:
        self._ctx = context

    def get(self) -> tuple[ClinicSettingsData, int]:
        """The settings and their version (for a later update)."""
        with self._ctx.unit_of_work() as session:
            row = ensure_settings(session, ClinicSettingsData())
            return _read(session, row), row.version

    def update(
        self, actor: Actor, data: ClinicSettingsData, expected_version: int
    ) -> tuple[ClinicSettingsData, int]:
        require(actor, Permission.MANAGE_SETTINGS)
        errors = validate_settings(data)
        if errors:
            raise ValidationFailed(errors)
        with self._ctx.unit_of_work() as session:
            row = ensure_settings(session, ClinicSettingsData())
            if row.version != expected_version:
                raise StaleRecord(
                    "The clinic settings were changed by someone else after you opened them. "
                    "Reload to see their changes; yours were not saved."
                )
            before = {**audit.snapshot(row), "holidays": _holiday_view(session)}
            apply_settings(row, data)
            session.execute(delete(Holiday))
            session.add_all(Holiday(day=day, name=name) for day, name in data.holidays)
            session.flush()
            audit.record(
                session,
                actor=actor,
                at=self._ctx.now(),
                action=AuditAction.UPDATE,
                entity="clinic_settings",
                entity_id=1,
                before=before,
                after={**audit.snapshot(row), "holidays": _holiday_view(session)},
            )
            return _read(session, row), row.version


def _holiday_view(session: Session) -> list[list[str]]:
    return [
        [day.isoformat(), name]
        for day, name in session.execute(select(Holiday.day, Holiday.name).order_by(Holiday.day))
    ]
