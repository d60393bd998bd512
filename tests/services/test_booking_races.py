"""Two workstations take the same refill slot or the last observation bed at the same instant.

Each workstation is its own ``open_clinic`` (engine, connections, clock) on the run's test
database — a SQLite file, or the PostgreSQL schema of ``PUMPCLINIC_TEST_DATABASE_URL``,
where READ COMMITTED lets two transactions that checked at the same time both insert.

The interleaving is forced, not left to luck: workstation A has checked that the slot is
free and is about to write its booking (its session's ``before_flush``) when workstation B,
on a thread, books the same slot; A waits for B to finish, or for a while if something holds
B back, and then writes and commits. Without the schedule lock both bookings succeed (the
``unprotected`` cases show that the race is real and that these tests would catch it); with
it B waits for A's commit, then finds the slot taken and is told so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import zoneinfo
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from pumpclinic.db.models import Appointment, AuditEntry, RowSealHead, ScreeningTrial
from pumpclinic.domain.enums import AppointmentKind, AppointmentStatus, DoseResponse, Role
from pumpclinic.domain.reference import Reference
from pumpclinic.services import schedule_locks
from pumpclinic.services.clinic import Services, open_clinic
from pumpclinic.services.context import Actor
from pumpclinic.services.errors import ValidationFailed
from tests.conftest import PASSWORDS, FixedClock, database_label
from tests.services.refill_fixtures import implanted_patient
from tests.services.test_screening import new_patient, plan

LONDON = zoneinfo.ZoneInfo("Europe/London")
SLOT = dt.datetime(2026, 12, 1, 9, 0, tzinfo=LONDON)  # Tue 1 Dec, before the refill-due date
EARLIER_SLOT = dt.datetime(2026, 11, 30, 14, 0, tzinfo=LONDON)
# Long enough for B to finish when nothing holds it back; a lock holding B is let go when A
# commits, after this.
PATIENCE_SECONDS = 2.0


@pytest.fixture
def second_workstation(
    database_url: str, reference: Reference, services: Services, clock: FixedClock
) -> Iterator[tuple[Services, FixedClock]]:
    """Another PumpClinic on the same database, its clock a minute behind the first's."""
    other_clock = FixedClock(clock.current + dt.timedelta(minutes=1))
    other = open_clinic(
        database_url, reference, clock=other_clock, database_label=database_label(database_url)
    )
    yield other, other_clock
    other.close()


@pytest.fixture(params=["protected", "unprotected"])
def protected(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """``unprotected``: the schedule lock taken away, to show what it prevents."""
    if request.param == "unprotected":
        monkeypatch.setattr(schedule_locks, "take", lambda session, name: None)
    return bool(request.param == "protected")


class Meanwhile:
    """Runs ``other_call`` on a thread when a session of ``factory`` is about to write a new
    appointment (its checks are done), and lets that session go on when the call has
    finished or PATIENCE_SECONDS have passed."""

    def __init__(self, factory: sessionmaker[Session], other_call: Callable[[], Any]) -> None:
        self._factory = factory
        self._other_call = other_call
        self._thread = threading.Thread(target=self._run, name="other workstation")
        self._done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.finished_before_we_wrote: bool | None = None

    def __enter__(self) -> Meanwhile:
        event.listen(self._factory, "before_flush", self._before_flush)
        return self

    def __exit__(self, *exc_info: object) -> None:
        event.remove(self._factory, "before_flush", self._before_flush)
        if self._thread.is_alive() or self._thread.ident is not None:
            self._thread.join(timeout=60)
            assert not self._thread.is_alive(), "the other workstation never finished"

    def _run(self) -> None:
        try:
            self.result = self._other_call()
        except BaseException as error:  # reported by the test
            self.error = error
        finally:
            self._done.set()

    def _before_flush(self, session: Session, _context: object, _instances: object) -> None:
        if self.finished_before_we_wrote is not None:
            return
        if not any(isinstance(obj, Appointment) for obj in session.new):
            return
        self._thread.start()
        self.finished_before_we_wrote = self._done.wait(PATIENCE_SECONDS)


def appointments_at(services: Services, kind: AppointmentKind, starts_at: dt.datetime) -> list:
    with services.context.unit_of_work() as session:
        rows = session.scalars(
            select(Appointment).where(
                Appointment.kind == kind.value,
                Appointment.starts_at == starts_at,
                Appointment.status.in_(
                    [AppointmentStatus.BOOKED.value, AppointmentStatus.ARRIVED.value]
                ),
            )
        ).all()
        session.expunge_all()
        return list(rows)


def audit_count(services: Services) -> int:
    with services.context.unit_of_work() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def sealed_appointments(services: Services) -> int:
    """Appointments written through PumpClinic (a booking records its create in its seal),
    as the sealed head counts them."""
    with services.context.unit_of_work() as session:
        head = session.get(RowSealHead, "appointments")
        assert head is not None
        return head.row_count


# --- refill slots -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a_does", "b_does"),
    [("book", "book"), ("reschedule", "book"), ("book", "reschedule")],
)
def test_two_workstations_take_the_same_refill_slot(
    services: Services,
    staff: Actor,
    nurse: Actor,
    clinician: Actor,
    second_workstation: tuple[Services, FixedClock],
    protected: bool,
    a_does: str,
    b_does: str,
) -> None:
    other, _clock = second_workstation
    dialect = services.context.session_factory.kw["bind"].dialect.name
    if not protected and b_does == "reschedule" and dialect == "postgresql":
        pytest.skip(
            "on PostgreSQL the reschedule's first write (cancelling the old booking) takes the"
            " audit lock, which A holds until it commits: B waits even without the schedule"
            " lock, so the race cannot be shown there"
        )
    nina_there = other.users.authenticate("nina", PASSWORDS[Role.NURSE])
    first, _ = implanted_patient(services, nurse, clinician, mrn="RIV-000100")
    second, _ = implanted_patient(services, nurse, clinician, mrn="RIV-000200")
    # Each has a booking to reschedule from, on another day.
    existing = {
        patient_id: services.booking.book_refill(staff, patient_id, EARLIER_SLOT + offset)
        for patient_id, offset in ((first, dt.timedelta()), (second, dt.timedelta(minutes=30)))
    }

    def take_slot(workstation: Services, actor: Actor, patient_id: int, does: str) -> Any:
        if does == "book":
            return workstation.booking.book_refill(actor, patient_id, SLOT)
        old = existing[patient_id]
        return workstation.booking.reschedule(actor, old.id, old.version, SLOT)

    audits_before = audit_count(services)
    sealed_before = sealed_appointments(services)
    with Meanwhile(
        services.context.session_factory,
        lambda: take_slot(other, nina_there, second, b_does),
    ) as meanwhile:
        a_booked = take_slot(services, staff, first, a_does)

    assert a_booked.starts_at == SLOT and a_booked.patient_id == first
    booked = appointments_at(services, AppointmentKind.REFILL, SLOT)
    if not protected:
        # The race: both checked before either wrote, and both bookings went in.
        assert meanwhile.error is None, meanwhile.error
        assert sorted(r.patient_id for r in booked) == sorted([first, second])
        return

    assert [r.id for r in booked] == [a_booked.id]
    # B waited for A's commit (it had not finished when A wrote) and then found it taken.
    assert meanwhile.finished_before_we_wrote is False
    assert isinstance(meanwhile.error, ValidationFailed), meanwhile.error
    assert meanwhile.error.for_field("starts_at") == [
        "That slot was just taken by another workstation: 09:00 on Tue 01 Dec 2026 is now"
        " booked for OKAFOR, Ada (by stef at 10:00). Choose another slot."
    ]
    # Nothing of B's attempt was written: its old booking stands, no audit entry of it, and
    # only A's booking is sealed (a booking's create is its seal; a reschedule also cancels
    # the old one, an audited change).
    assert audit_count(services) == audits_before + (1 if a_does == "reschedule" else 0)
    assert sealed_appointments(services) == sealed_before + 1
    b_old = existing[second]
    [still] = [
        r for r in services.booking.appointments_for_patient(staff, second) if r.id == b_old.id
    ]
    assert (still.status, still.version) == (AppointmentStatus.BOOKED, b_old.version)
    assert len(services.booking.appointments_for_patient(staff, second)) == 1


# --- observation beds -------------------------------------------------------------------


@pytest.fixture
def one_bed(services: Services, admin: Actor) -> None:
    current, version = services.settings.get()
    services.settings.update(admin, dataclasses.replace(current, observation_beds=1), version)


@pytest.fixture
def dana_there(
    services: Services, admin: Actor, second_workstation: tuple[Services, FixedClock]
) -> Actor:
    """Another clinician, signed in at the second workstation."""
    services.users.create_user(admin, "dana", "Dr Dana", Role.CLINICIAN, PASSWORDS[Role.CLINICIAN])
    return second_workstation[0].users.authenticate("dana", PASSWORDS[Role.CLINICIAN])


def screening_at(services: Services, starts_at: dt.datetime) -> list[int]:
    return sorted(
        r.patient_id for r in appointments_at(services, AppointmentKind.SCREENING, starts_at)
    )


def trials_of(services: Services, patient_id: int) -> int:
    with services.context.unit_of_work() as session:
        return len(
            session.scalars(
                select(ScreeningTrial.id).where(ScreeningTrial.patient_id == patient_id)
            ).all()
        )


def test_two_workstations_plan_a_trial_into_the_last_bed(
    services: Services,
    nurse: Actor,
    clinician: Actor,
    one_bed: None,
    second_workstation: tuple[Services, FixedClock],
    dana_there: Actor,
    protected: bool,
) -> None:
    other, _clock = second_workstation
    first = new_patient(services, nurse, "SCR-000001")
    second = new_patient(services, nurse, "SCR-000002")
    monday = dt.datetime(2026, 11, 30, 9, 0, tzinfo=LONDON)
    checks = other.screening.start_checks(dana_there, second, False)

    with Meanwhile(
        services.context.session_factory,
        lambda: other.screening.plan_trial(dana_there, second, "standard", monday, False, checks),
    ) as meanwhile:
        plan(services, clinician, first, monday)

    if not protected:
        assert meanwhile.error is None, meanwhile.error
        assert screening_at(services, monday) == [first, second]  # two patients, one bed
        return

    assert screening_at(services, monday) == [first]
    assert meanwhile.finished_before_we_wrote is False
    assert isinstance(meanwhile.error, ValidationFailed), meanwhile.error
    assert meanwhile.error.for_field("first_dose_at") == [
        "The last free observation bed at Mon 30 Nov 09:00 was just taken by another"
        " workstation: it is now booked for MENSAH, Kofi (by carl at 10:00). Choose another"
        " time, or press Propose times."
    ]
    assert trials_of(services, second) == 0


def test_a_late_dose_moves_the_next_into_the_bed_another_workstation_is_planning(
    services: Services,
    clock: FixedClock,
    nurse: Actor,
    clinician: Actor,
    one_bed: None,
    second_workstation: tuple[Services, FixedClock],
    dana_there: Actor,
    protected: bool,
) -> None:
    """Dose 2 given late pushes dose 3 from Thu 09:00 to Fri 08:00, the bed the other
    workstation is giving a new trial's first dose at that moment."""
    other, other_clock = second_workstation
    first = new_patient(services, nurse, "SCR-000001")
    second = new_patient(services, nurse, "SCR-000002")
    tuesday = dt.datetime(2026, 12, 1, 9, 0, tzinfo=LONDON)
    trial = plan(services, clinician, first, tuesday)
    clock.current = tuesday
    trial = services.screening.give_dose(clinician, trial.id, trial.version, 1, tuesday, "L1")
    clock.current = tuesday + dt.timedelta(hours=4)
    trial = services.screening.record_response(
        clinician, trial.id, trial.version, 1, DoseResponse.INADEQUATE, clock.current, None, ""
    )
    assert trial.dose(3) is not None
    assert trial.dose(3).planned_at == dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
    late = dt.datetime(2026, 12, 2, 10, 30, tzinfo=LONDON)
    clock.current = other_clock.current = late + dt.timedelta(minutes=15)
    friday = dt.datetime(2026, 12, 4, 8, 0, tzinfo=LONDON)
    checks = other.screening.start_checks(dana_there, second, False)

    with Meanwhile(
        services.context.session_factory,
        lambda: other.screening.plan_trial(dana_there, second, "standard", friday, False, checks),
    ) as meanwhile:
        moved = services.screening.give_dose(clinician, trial.id, trial.version, 2, late, "L2")

    assert moved.dose(3) is not None and moved.dose(3).planned_at == friday
    if not protected:
        assert meanwhile.error is None, meanwhile.error
        assert screening_at(services, friday) == [first, second]  # two patients, one bed
        return

    assert screening_at(services, friday) == [first]
    assert meanwhile.finished_before_we_wrote is False
    assert isinstance(meanwhile.error, ValidationFailed), meanwhile.error
    [message] = meanwhile.error.for_field("first_dose_at")
    assert message.startswith(
        "The last free observation bed at Fri 04 Dec 08:00 was just taken by another"
        " workstation: it is now booked for MENSAH, Kofi (by carl at 10:45)."
    )
    assert trials_of(services, second) == 0
