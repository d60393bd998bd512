"""What every service call needs, passed in: no global application object."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import UniqueConstraint
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from pumpclinic.db.models import Base
from pumpclinic.domain.enums import Role
from pumpclinic.domain.reference import Reference
from pumpclinic.domain.validation import FieldError
from pumpclinic.services import row_seals  # its flush listeners seal rows
from pumpclinic.services.errors import DatabaseUnavailable, StaleRecord, ValidationFailed

Clock = Callable[[], dt.datetime]

# The unique constraints a user can run into: the service checked that the value was free,
# and another workstation saved it between that check and this write. The field to mark,
# and what to say instead of "something went wrong".
UNIQUE_FIELD_ERRORS = {
    "uq_patients_mrn": FieldError(
        "mrn",
        "Another patient with this MRN was saved at another workstation a moment ago: an MRN"
        " belongs to one patient only. Check the MRN; nothing was saved.",
    ),
    "uq_users_username": FieldError(
        "username",
        "This username was taken at another workstation a moment ago: choose another."
        " Nothing was saved.",
    ),
    "uq_implanted_pumps_pump_model_id_serial_number": FieldError(
        "serial_number",
        "A pump of this model with this serial number was recorded at another workstation a"
        " moment ago. Check the serial number; nothing was saved.",
    ),
}


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class Actor:
    """The signed-in user on whose behalf a service acts."""

    user_id: int
    username: str
    full_name: str
    role: Role
    must_change_password: bool = False


@dataclass(frozen=True, slots=True)
class ServiceContext:
    session_factory: sessionmaker[Session]
    clock: Clock
    reference: Reference
    database_label: str
    # The audit chain's key, kept outside the database (pumpclinic.services.audit_key).
    audit_key: bytes

    def now(self) -> dt.datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the clock must return an aware datetime")
        return now

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back whole on any error."""
        session = self.session_factory()
        session.info[row_seals.SESSION_KEY] = self.audit_key
        try:
            with session.begin():
                yield session
        except OperationalError as exc:
            raise DatabaseUnavailable(_operational_message(exc, self.database_label)) from exc
        except IntegrityError as exc:
            refused = unique_field_error(exc)
            if refused is None:
                raise  # a CHECK or foreign key the services should have caught: a bug
            raise ValidationFailed([refused]) from exc
        except DataError as exc:
            # A value the server refuses where SQLite would store it (PostgreSQL: a NUL
            # character, a text longer than its column, a number out of the column's range).
            raise ValidationFailed([FieldError("", _data_message(exc))]) from exc
        except StaleDataError as exc:
            # Two workstations saved the same record at the same moment: the version check
            # in the UPDATE matched no row.
            raise StaleRecord(
                "Someone else saved this record at the same moment. Reload to see their"
                " changes; your edits were not saved."
            ) from exc
        finally:
            session.close()


def unique_field_error(exc: IntegrityError) -> FieldError | None:
    """What to tell the user when ``exc`` is a unique constraint of UNIQUE_FIELD_ERRORS."""
    name = _violated_unique_constraint(exc)
    return UNIQUE_FIELD_ERRORS.get(name) if name is not None else None


def _violated_unique_constraint(exc: IntegrityError) -> str | None:
    diag = getattr(exc.orig, "diag", None)
    if diag is not None:  # psycopg names the constraint
        if getattr(exc.orig, "sqlstate", None) != "23505":  # unique_violation
            return None
        name = getattr(diag, "constraint_name", None)
        return name if isinstance(name, str) else None
    # SQLite names the columns: "UNIQUE constraint failed: patients.mrn".
    text = str(exc.orig) if exc.orig is not None else ""
    prefix = "UNIQUE constraint failed: "
    if not text.startswith(prefix):
        return None
    columns = tuple(c.strip() for c in text[len(prefix) :].split(","))
    return _UNIQUE_BY_COLUMNS.get(columns)


def _unique_by_columns() -> dict[tuple[str, ...], str]:
    found: dict[tuple[str, ...], str] = {}
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint) and isinstance(constraint.name, str):
                columns = tuple(f"{table.name}.{c.name}" for c in constraint.columns)
                found[columns] = constraint.name
    return found


_UNIQUE_BY_COLUMNS = _unique_by_columns()


def _data_message(exc: DataError) -> str:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    first_line = text.strip().splitlines()[0] if text.strip() else "a value is not valid"
    return f"Not saved: the database refused a value ({first_line}). Nothing was changed."


def _operational_message(exc: OperationalError, database_label: str) -> str:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        why = "the database is locked by another program; try again in a moment"
    elif "readonly" in lowered or "read-only" in lowered:
        why = "the database file is read-only"
    elif "disk" in lowered and "full" in lowered:
        why = "the disk is full"
    else:
        why = text
    return f"Could not save or read {database_label}: {why}. Nothing was changed."
