"""Bookings take turns: a lock row per clinic day's refill slots, one for the observation beds.

Booking checks that a slot or bed is free and then inserts. Two workstations doing that at
the same instant would both see it free and both insert (PostgreSQL's READ COMMITTED lets
each transaction see only what was committed before its statement). So a booking first
writes its lock row, before it reads what is booked:

- PostgreSQL: the row stays locked until the transaction ends; the other workstation waits
  at the same write, and its check (a new statement, a new snapshot) then sees the booking.
- SQLite: the write takes the database's write lock, which the other workstation waits for
  (``busy_timeout``); its check, after that, sees the booking too.

Take the lock before anything else of the transaction that writes: another lock taken first
(the audit log's, for instance) could make two workstations wait on each other.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pumpclinic.db.models import ScheduleLock

OBSERVATION_BEDS = "observation-beds"


def refill_day(day: dt.date) -> str:
    """The lock of one clinic day's refill slots."""
    return f"refill-day:{day.isoformat()}"


def take(session: Session, name: str) -> None:
    """Wait for the lock ``name`` and hold it until the session's transaction ends."""
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # One statement whether the row exists or not: no race to create it.
        session.execute(
            insert(ScheduleLock)
            .values(name=name, times_taken=1)
            .on_conflict_do_update(
                index_elements=[ScheduleLock.name],
                set_={"times_taken": ScheduleLock.times_taken + 1},
            )
        )
        return
    taken = session.execute(
        update(ScheduleLock)
        .where(ScheduleLock.name == name)
        .values(times_taken=ScheduleLock.times_taken + 1)
    )
    if getattr(taken, "rowcount", 0) == 0:
        session.add(ScheduleLock(name=name, times_taken=1))
        session.flush()
