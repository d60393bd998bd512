"""Booking refills: slots in opening hours, the latest safe slot, late and after-alarm rules."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from pumpclinic.domain.enums import AppointmentStatus, Role
from pumpclinic.services.errors import PermissionDenied, StaleRecord, ValidationFailed
from tests.conftest import PASSWORDS
from tests.services.refill_fixtures import implanted_patient

LONDON = zoneinfo.ZoneInfo("Europe/London")


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=LONDON)


@pytest.fixture
def patient(services, nurse, clinician):
    return implanted_patient(services, nurse, clinician)


def test_day_schedule_has_slots_within_opening_hours(services, staff) -> None:
    day = services.booking.day_schedule(staff, dt.date(2026, 11, 27))
    assert day.closed_reason is None
    assert len(day.slots) == 20  # 08:00–18:00 in 30-minute slots
    assert day.slots[0].starts_at == at(dt.date(2026, 11, 27), 8)
    assert day.slots[-1].ends_at == at(dt.date(2026, 11, 27), 18)
    weekend = services.booking.day_schedule(staff, dt.date(2026, 11, 28))
    assert weekend.slots == () and weekend.closed_reason == "Closed on Saturdays"


def test_proposes_the_latest_free_slot_on_or_before_refill_due(services, staff, patient) -> None:
    patient_id, _pump = patient
    proposal = services.booking.propose_slot(staff, patient_id)
    assert proposal.starts_at == at(dt.date(2026, 12, 11), 17, 30)
    assert not proposal.check.after_due
    booked = services.booking.book_refill(staff, patient_id, proposal.starts_at)
    again = services.booking.propose_slot(staff, patient_id)
    assert again.starts_at == at(dt.date(2026, 12, 11), 17, 0)
    day = services.booking.day_schedule(staff, dt.date(2026, 12, 11))
    assert day.slots[-1].appointment is not None
    assert day.slots[-1].appointment.id == booked.id
    assert booked.booked_by == "stef"


def test_a_taken_slot_is_refused(services, staff, nurse, clinician, patient) -> None:
    patient_id, _pump = patient
    other_id, _ = implanted_patient(services, nurse, clinician, mrn="RIV-000200")
    start = at(dt.date(2026, 12, 1), 9)
    services.booking.book_refill(staff, patient_id, start)
    with pytest.raises(ValidationFailed, match="taken by OKAFOR"):
        services.booking.book_refill(staff, other_id, start)


@pytest.mark.parametrize(
    ("start", "words"),
    [
        (at(dt.date(2026, 11, 28), 9), "Closed on Saturdays"),
        (at(dt.date(2026, 12, 1), 7, 30), "within opening hours"),
        (at(dt.date(2026, 12, 1), 9, 10), "within opening hours"),
        (at(dt.date(2026, 11, 26), 8), "in the past"),
    ],
)
def test_impossible_times_are_refused(services, staff, patient, start, words: str) -> None:
    patient_id, _pump = patient
    with pytest.raises(ValidationFailed, match=words):
        services.booking.book_refill(staff, patient_id, start)


def test_after_refill_due_needs_a_reason(services, staff, patient) -> None:
    patient_id, _pump = patient
    late = at(dt.date(2026, 12, 14), 10)
    check = services.booking.check(staff, patient_id, late)
    assert check.after_due and not check.after_alarm
    with pytest.raises(ValidationFailed) as caught:
        services.booking.book_refill(staff, patient_id, late)
    assert "after the refill-due date" in caught.value.for_field("late_reason")[0]
    row = services.booking.book_refill(
        staff, patient_id, late, late_reason="Patient travelling until 13 Dec"
    )
    assert row.late_reason == "Patient travelling until 13 Dec"


def test_after_the_alarm_needs_a_clinician(services, staff, clinician, patient) -> None:
    patient_id, _pump = patient
    after_alarm = at(dt.date(2026, 12, 29), 10)  # alarm: Sat 26 Dec 10:00 UTC
    with pytest.raises(ValidationFailed) as caught:
        services.booking.book_refill(staff, patient_id, after_alarm, late_reason="Holidays")
    assert "A clinician must approve" in caught.value.for_field("override")[0]
    with pytest.raises(ValidationFailed, match="cannot override"):
        services.booking.authorize_override("stef", PASSWORDS[Role.STAFF])
    approver = services.booking.authorize_override("carl", PASSWORDS[Role.CLINICIAN])
    row = services.booking.book_refill(
        staff, patient_id, after_alarm, late_reason="Holidays", override_by=approver
    )
    assert row.override_by == "carl"


def test_reschedule_and_cancel_keep_history(services, staff, patient) -> None:
    patient_id, _pump = patient
    first = services.booking.book_refill(staff, patient_id, at(dt.date(2026, 12, 2), 9))
    moved = services.booking.reschedule(
        staff, first.id, first.version, at(dt.date(2026, 12, 3), 11)
    )
    assert moved.rescheduled_from_id == first.id
    history = {a.id: a for a in services.booking.appointments_for_patient(staff, patient_id)}
    assert history[first.id].status is AppointmentStatus.CANCELLED
    assert history[first.id].cancel_reason.startswith("Rescheduled to Thu 03 Dec 2026 11:00")
    with pytest.raises(StaleRecord):
        services.booking.cancel(staff, first.id, first.version, "typo")
    with pytest.raises(ValidationFailed, match="Reason for cancelling"):
        services.booking.cancel(staff, moved.id, moved.version, " ")
    cancelled = services.booking.cancel(staff, moved.id, moved.version, "Admitted to hospital")
    assert cancelled.status is AppointmentStatus.CANCELLED
    assert len(services.booking.appointments_for_patient(staff, patient_id)) == 2


def test_status_lifecycle(services, staff, patient) -> None:
    patient_id, _pump = patient
    row = services.booking.book_refill(staff, patient_id, at(dt.date(2026, 12, 2), 9))
    arrived = services.booking.set_status(staff, row.id, row.version, AppointmentStatus.ARRIVED)
    with pytest.raises(ValidationFailed, match="cannot become no-show"):
        services.booking.set_status(staff, row.id, arrived.version, AppointmentStatus.NO_SHOW)


def test_admin_cannot_book(services, admin, patient) -> None:
    patient_id, _pump = patient
    with pytest.raises(PermissionDenied):
        services.booking.book_refill(admin, patient_id, at(dt.date(2026, 12, 2), 9))
