"""Refill appointments: the day's slots, the latest safe slot, booking with its safeguards.

Booking after the refill-due date needs a reason; after the low-reservoir alarm, a
clinician's override. Rescheduling and cancelling keep the history: the old appointment is
cancelled with its reason and the new one points back at it.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from pumpclinic.db.models import Appointment, Patient, User
from pumpclinic.domain.calendar import ClinicCalendar
from pumpclinic.domain.clinic import ClinicSettingsData
from pumpclinic.domain.enums import (
    APPOINTMENT_TRANSITIONS,
    AppointmentKind,
    AppointmentStatus,
    AuditAction,
)
from pumpclinic.domain.reservoir import Forecast
from pumpclinic.domain.validation import FieldError, limit_text, require_text
from pumpclinic.services import audit, schedule_locks
from pumpclinic.services.context import Actor, ServiceContext
from pumpclinic.services.errors import NotFound, StaleRecord, ValidationFailed
from pumpclinic.services.permissions import Permission, can, require
from pumpclinic.services.refills import RefillService
from pumpclinic.services.settings import read_settings

ACTIVE_STATUSES = (AppointmentStatus.BOOKED.value, AppointmentStatus.ARRIVED.value)
OCCUPYING_STATUSES = (*ACTIVE_STATUSES, AppointmentStatus.COMPLETED.value)
MAX_TEXT_LENGTH = 2000  # a late reason, a cancel reason, notes
# A slot booked this recently by someone else was most likely taken while the dialog that
# showed it free was open.
JUST_TAKEN = dt.timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class AppointmentRow:
    id: int
    patient_id: int
    patient_name: str
    mrn: str
    pump_id: int | None
    kind: AppointmentKind
    status: AppointmentStatus
    starts_at: dt.datetime
    ends_at: dt.datetime
    booked_by: str
    booked_at: dt.datetime
    late_reason: str
    override_by: str
    rescheduled_from_id: int | None
    cancel_reason: str
    notes: str
    version: int


@dataclass(frozen=True, slots=True)
class Slot:
    starts_at: dt.datetime
    ends_at: dt.datetime
    appointment: AppointmentRow | None

    @property
    def free(self) -> bool:
        return self.appointment is None


@dataclass(frozen=True, slots=True)
class DaySchedule:
    day: dt.date
    zone: zoneinfo.ZoneInfo
    closed_reason: str | None
    slots: tuple[Slot, ...]
    appointments: tuple[AppointmentRow, ...]  # every refill appointment that day, any status


@dataclass(frozen=True, slots=True)
class BookingCheck:
    """What booking at ``starts_at`` would need: a reason, an override, or nothing."""

    refill_due: dt.date | None
    alarm_at: dt.datetime | None
    empty_at: dt.datetime | None
    after_due: bool
    after_alarm: bool
    message: str


@dataclass(frozen=True, slots=True)
class SlotProposal:
    starts_at: dt.datetime | None
    check: BookingCheck
    message: str


class BookingService:
    def __init__(self, context: ServiceContext) -> None:
        self._ctx = context
        self._refills = RefillService(context)

    # --- reading ----------------------------------------------------------------------

    def day_schedule(self, actor: Actor, day: dt.date) -> DaySchedule:
        require(actor, Permission.VIEW_SCHEDULE)
        with self._ctx.unit_of_work() as session:
            return self._day(session, read_settings(session), day)

    def appointments_for_patient(self, actor: Actor, patient_id: int) -> list[AppointmentRow]:
        require(actor, Permission.VIEW_SCHEDULE)
        with self._ctx.unit_of_work() as session:
            rows = session.scalars(
                select(Appointment)
                .where(Appointment.patient_id == patient_id)
                .order_by(Appointment.starts_at.desc())
            )
            return self._rows(session, list(rows))

    def check(self, actor: Actor, patient_id: int, starts_at: dt.datetime) -> BookingCheck:
        require(actor, Permission.VIEW_SCHEDULE)
        with self._ctx.unit_of_work() as session:
            settings = read_settings(session)
            return _booking_check(
                self._forecast(session, patient_id, settings), starts_at, settings
            )

    def propose_slot(self, actor: Actor, patient_id: int) -> SlotProposal:
        """The latest free slot on or before the refill-due date (never in the past)."""
        require(actor, Permission.VIEW_SCHEDULE)
        with self._ctx.unit_of_work() as session:
            settings = read_settings(session)
            outlook = self._forecast(session, patient_id, settings)
            calendar = ClinicCalendar.from_settings(settings)
            now = self._ctx.now()
            today = calendar.local_date(now)
            due = outlook.refill_due if outlook else None
            if due is not None and due >= today:
                for day in reversed(list(calendar.open_days(today, due))):
                    free = [
                        s
                        for s in self._day(session, settings, day).slots
                        if s.free and s.starts_at > now
                    ]
                    if free:
                        start = free[-1].starts_at
                        return SlotProposal(
                            start,
                            _booking_check(outlook, start, settings),
                            f"Latest free slot on or before the refill-due date {due:%a %d %b %Y}.",
                        )
            # Overdue, or nothing free in time: the earliest free slot from now.
            day = today
            for _ in range(60):
                if calendar.is_open_day(day):
                    free = [
                        s
                        for s in self._day(session, settings, day).slots
                        if s.free and s.starts_at > now
                    ]
                    if free:
                        start = free[0].starts_at
                        check = _booking_check(outlook, start, settings)
                        why = (
                            "No free slot before the refill-due date: earliest free slot."
                            if due is not None
                            else "No forecast for this pump: earliest free slot."
                        )
                        return SlotProposal(start, check, why)
                day += dt.timedelta(days=1)
            return SlotProposal(
                None,
                _booking_check(outlook, now, settings),
                "No free refill slot in the next 60 days.",
            )

    # --- writing ----------------------------------------------------------------------

    def authorize_override(self, username: str, password: str) -> Actor:
        """A clinician signs in to approve a booking after the alarm date."""
        from pumpclinic.services.users import UserService

        clinician = UserService(self._ctx).authenticate(username, password)
        if not can(clinician, Permission.OVERRIDE):
            raise ValidationFailed(
                [
                    FieldError(
                        "override",
                        f"{clinician.full_name} ({clinician.role.label}) cannot override: "
                        "a clinician must approve a booking after the alarm date.",
                    )
                ]
            )
        return clinician

    def book_refill(
        self,
        actor: Actor,
        patient_id: int,
        starts_at: dt.datetime,
        *,
        late_reason: str = "",
        override_by: Actor | None = None,
        notes: str = "",
        rescheduled_from_id: int | None = None,
    ) -> AppointmentRow:
        require(actor, Permission.BOOK_APPOINTMENTS)
        with self._ctx.unit_of_work() as session:
            row = self._book(
                session,
                actor,
                patient_id,
                starts_at,
                late_reason=late_reason,
                override_by=override_by,
                notes=notes,
                rescheduled_from_id=rescheduled_from_id,
            )
            return self._rows(session, [row])[0]

    def reschedule(
        self,
        actor: Actor,
        appointment_id: int,
        expected_version: int,
        starts_at: dt.datetime,
        *,
        late_reason: str = "",
        override_by: Actor | None = None,
    ) -> AppointmentRow:
        require(actor, Permission.BOOK_APPOINTMENTS)
        with self._ctx.unit_of_work() as session:
            settings = read_settings(session)
            # Before the cancel below writes (and audits): the day's lock comes first.
            self._take_day(session, settings, starts_at)
            old = self._load(session, appointment_id, expected_version)
            if old.status not in ACTIVE_STATUSES:
                raise ValidationFailed(
                    [FieldError("status", f"A {old.status} appointment cannot be rescheduled.")]
                )
            zone = settings.zone
            self._set_status(
                session,
                actor,
                old,
                AppointmentStatus.CANCELLED,
                reason=f"Rescheduled to {starts_at.astimezone(zone):%a %d %b %Y %H:%M}",
            )
            session.flush()
            new = self._book(
                session,
                actor,
                old.patient_id,
                starts_at,
                late_reason=late_reason,
                override_by=override_by,
                notes=old.notes,
                rescheduled_from_id=old.id,
            )
            return self._rows(session, [new])[0]

    def cancel(
        self, actor: Actor, appointment_id: int, expected_version: int, reason: str
    ) -> AppointmentRow:
        require(actor, Permission.BOOK_APPOINTMENTS)
        errors: list[FieldError] = []
        require_text(errors, "cancel_reason", "Reason for cancelling", reason, MAX_TEXT_LENGTH)
        if errors:
            raise ValidationFailed(errors)
        with self._ctx.unit_of_work() as session:
            row = self._load(session, appointment_id, expected_version)
            self._set_status(session, actor, row, AppointmentStatus.CANCELLED, reason=reason)
            return self._rows(session, [row])[0]

    def set_status(
        self, actor: Actor, appointment_id: int, expected_version: int, status: AppointmentStatus
    ) -> AppointmentRow:
        """Arrived, completed or no-show, along the lifecycle only."""
        require(actor, Permission.BOOK_APPOINTMENTS)
        with self._ctx.unit_of_work() as session:
            row = self._load(session, appointment_id, expected_version)
            self._set_status(session, actor, row, status, reason="")
            return self._rows(session, [row])[0]

    # --- helpers ----------------------------------------------------------------------

    def _take_day(
        self, session: Session, settings: ClinicSettingsData, starts_at: dt.datetime
    ) -> None:
        if starts_at.tzinfo is None:
            return  # refused by the caller's checks; there is no day to lock
        day = starts_at.astimezone(settings.zone).date()
        schedule_locks.take(session, schedule_locks.refill_day(day))

    def _forecast(
        self, session: Session, patient_id: int, settings: ClinicSettingsData
    ) -> Forecast | None:
        pump = self._refills.load_active_pump(session, patient_id)
        if pump is None:
            return None
        view = self._refills.reservoir_view(session, pump, settings)
        return view.forecast if view else None

    def _day(self, session: Session, settings: ClinicSettingsData, day: dt.date) -> DaySchedule:
        calendar = ClinicCalendar.from_settings(settings)
        zone = settings.zone
        start = dt.datetime.combine(day, dt.time(), tzinfo=zone)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
        booked = list(
            session.scalars(
                select(Appointment)
                .where(
                    Appointment.kind == AppointmentKind.REFILL.value,
                    Appointment.starts_at >= start,
                    Appointment.starts_at < end,
                )
                .order_by(Appointment.starts_at)
            )
        )
        rows = self._rows(session, booked)
        window = calendar.opening_window(day)
        closed_reason = None
        slots: list[Slot] = []
        if window is None:
            holiday = dict(settings.holidays).get(day)
            closed_reason = f"Closed: {holiday}" if holiday is not None else f"Closed on {day:%A}s"
        else:
            length = dt.timedelta(minutes=settings.refill_slot_minutes)
            occupying = [r for r in rows if r.status.value in OCCUPYING_STATUSES]
            moment = window[0]
            # Slot times are wall-clock times: step in local time, then make them aware.
            while moment + length <= window[1]:
                finish = moment + length
                taken = next(
                    (r for r in occupying if r.starts_at < finish and r.ends_at > moment), None
                )
                slots.append(Slot(moment, finish, taken))
                moment = finish
        return DaySchedule(day, zone, closed_reason, tuple(slots), tuple(rows))

    def _book(
        self,
        session: Session,
        actor: Actor,
        patient_id: int,
        starts_at: dt.datetime,
        *,
        late_reason: str,
        override_by: Actor | None,
        notes: str,
        rescheduled_from_id: int | None,
    ) -> Appointment:
        settings = read_settings(session)
        if starts_at.tzinfo is None:
            raise ValidationFailed([FieldError("starts_at", "Start time needs a time zone.")])
        # Another workstation booking the same day waits here until this one commits, and
        # then finds the slot taken below (the check reads after the lock).
        self._take_day(session, settings, starts_at)
        if session.get(Patient, patient_id) is None:
            raise NotFound(f"Patient {patient_id} does not exist.")
        pump = self._refills.load_active_pump(session, patient_id)
        errors: list[FieldError] = []
        now = self._ctx.now()
        if pump is None:
            errors.append(FieldError("patient_id", "This patient has no implanted pump to refill."))
        if starts_at < now:
            errors.append(FieldError("starts_at", "Start time is in the past."))
        day = starts_at.astimezone(settings.zone).date()
        schedule = self._day(session, settings, day)
        slot = next((s for s in schedule.slots if s.starts_at == starts_at), None)
        if schedule.closed_reason:
            errors.append(FieldError("starts_at", f"{schedule.closed_reason}: choose another day."))
        elif slot is None:
            errors.append(
                FieldError(
                    "starts_at", "Choose one of the day's refill slots within opening hours."
                )
            )
        elif not slot.free and slot.appointment is not None:
            errors.append(FieldError("starts_at", _taken_message(slot, actor, now, settings.zone)))
        outlook = self._forecast(session, patient_id, settings)
        check = _booking_check(outlook, starts_at, settings)
        if check.after_due and not late_reason.strip():
            errors.append(FieldError("late_reason", f"{check.message} Give the reason."))
        limit_text(errors, "late_reason", "Reason for booking late", late_reason, MAX_TEXT_LENGTH)
        limit_text(errors, "notes", "Notes", notes, MAX_TEXT_LENGTH)
        approver: Actor | None = None
        if check.after_alarm:
            if override_by is not None and can(override_by, Permission.OVERRIDE):
                approver = override_by
            elif can(actor, Permission.OVERRIDE):
                approver = actor
            else:
                errors.append(
                    FieldError("override", f"{check.message} A clinician must approve it.")
                )
        if errors:
            raise ValidationFailed(errors)
        assert pump is not None and slot is not None
        row = Appointment(
            patient_id=patient_id,
            pump_id=pump.id,
            kind=AppointmentKind.REFILL.value,
            status=AppointmentStatus.BOOKED.value,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            booked_by_id=actor.user_id,
            booked_at=now,
            late_reason=late_reason.strip(),
            override_by_id=approver.user_id if approver else None,
            rescheduled_from_id=rescheduled_from_id,
            notes=notes.strip(),
        )
        session.add(row)
        # The booking records its create in its own row (sealed at the flush, with who
        # booked it and when): pumpclinic.services.row_seals.
        session.flush()
        return row

    def _load(self, session: Session, appointment_id: int, expected_version: int) -> Appointment:
        row = session.get(Appointment, appointment_id)
        if row is None:
            raise NotFound(f"Appointment {appointment_id} does not exist.")
        if row.version != expected_version:
            raise StaleRecord(
                "This appointment was changed by someone else after you opened it. "
                "Reload the schedule; nothing was saved."
            )
        return row

    def _set_status(
        self,
        session: Session,
        actor: Actor,
        row: Appointment,
        status: AppointmentStatus,
        reason: str,
    ) -> None:
        current = AppointmentStatus(row.status)
        if status not in APPOINTMENT_TRANSITIONS[current]:
            raise ValidationFailed(
                [
                    FieldError(
                        "status", f"A {current.value} appointment cannot become {status.value}."
                    )
                ]
            )
        before = audit.snapshot(row)
        now = self._ctx.now()
        row.status = status.value
        row.status_changed_at = now
        row.status_changed_by_id = actor.user_id
        if status is AppointmentStatus.CANCELLED:
            row.cancel_reason = reason.strip()
        session.flush()
        audit.record(
            session,
            actor=actor,
            at=now,
            action=AuditAction.UPDATE,
            entity="appointment",
            entity_id=row.id,
            patient_id=row.patient_id,
            before=before,
            after=audit.snapshot(row),
        )

    def _rows(self, session: Session, rows: list[Appointment]) -> list[AppointmentRow]:
        if not rows:
            return []
        patient_ids = {r.patient_id for r in rows}
        patients = {
            p.id: p for p in session.scalars(select(Patient).where(Patient.id.in_(patient_ids)))
        }
        user_ids = {r.booked_by_id for r in rows} | {
            r.override_by_id for r in rows if r.override_by_id
        }
        names = dict(
            session.execute(select(User.id, User.username).where(User.id.in_(user_ids))).all()
        )
        return [
            AppointmentRow(
                id=r.id,
                patient_id=r.patient_id,
                patient_name=(
                    f"{patients[r.patient_id].family_name.upper()}, "
                    f"{patients[r.patient_id].given_name}"
                ),
                mrn=patients[r.patient_id].mrn,
                pump_id=r.pump_id,
                kind=AppointmentKind(r.kind),
                status=AppointmentStatus(r.status),
                starts_at=r.starts_at,
                ends_at=r.ends_at,
                booked_by=names.get(r.booked_by_id, ""),
                booked_at=r.booked_at,
                late_reason=r.late_reason,
                override_by=names.get(r.override_by_id or -1, ""),
                rescheduled_from_id=r.rescheduled_from_id,
                cancel_reason=r.cancel_reason,
                notes=r.notes,
                version=r.version,
            )
            for r in rows
        ]


def _taken_message(slot: Slot, actor: Actor, now: dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    taken = slot.appointment
    assert taken is not None
    local = slot.starts_at.astimezone(zone)
    when = f"{local:%H:%M} on {local:%a %d %b %Y}"
    if taken.booked_by != actor.username and now - JUST_TAKEN <= taken.booked_at:
        return (
            f"That slot was just taken by another workstation: {when} is now booked for"
            f" {taken.patient_name} (by {taken.booked_by} at"
            f" {taken.booked_at.astimezone(zone):%H:%M}). Choose another slot."
        )
    return f"That slot ({when}) is taken by {taken.patient_name}: choose another."


def _booking_check(
    outlook: Forecast | None, starts_at: dt.datetime, settings: ClinicSettingsData
) -> BookingCheck:
    if outlook is None:
        return BookingCheck(None, None, None, False, False, "")
    zone = settings.zone
    day = starts_at.astimezone(zone).date()
    after_alarm = outlook.alarm_at is not None and starts_at >= outlook.alarm_at
    after_due = outlook.refill_due is not None and day > outlook.refill_due
    if after_alarm and outlook.alarm_at is not None:
        message = (
            "This is after the low-reservoir alarm "
            f"({outlook.alarm_at.astimezone(zone):%a %d %b %Y %H:%M})."
        )
        if outlook.empty_at is not None and starts_at >= outlook.empty_at:
            message += (
                " The pump is projected EMPTY by then "
                f"({outlook.empty_at.astimezone(zone):%a %d %b %H:%M}): withdrawal risk."
            )
    elif after_due and outlook.refill_due is not None:
        message = f"This is after the refill-due date ({outlook.refill_due:%a %d %b %Y})."
    else:
        message = ""
    return BookingCheck(
        outlook.refill_due, outlook.alarm_at, outlook.empty_at, after_due, after_alarm, message
    )
