"""Shared fixtures: a real SQLite clinic in tmp_path, a fixed clock, signed-in actors."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from pumpclinic.domain.enums import Role
from pumpclinic.domain.reference import Reference
from pumpclinic.reference_files import load_reference
from pumpclinic.services.clinic import Services, open_clinic
from pumpclinic.services.context import Actor

NOW = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)
PASSWORDS = {
    Role.ADMIN: "admin-pass-1",
    Role.NURSE: "nurse-pass-1",
    Role.CLINICIAN: "clinician-pass-1",
    Role.STAFF: "staff-pass-1",
}


class FixedClock:
    """An aware clock the test moves by hand."""

    def __init__(self, now: dt.datetime = NOW) -> None:
        self.current = now

    def __call__(self) -> dt.datetime:
        return self.current

    def advance(self, **kwargs: float) -> None:
        self.current += dt.timedelta(**kwargs)


@pytest.fixture(scope="session")
def reference() -> Reference:
    return load_reference()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "clinic.sqlite3"


@pytest.fixture
def services(db_path: Path, reference: Reference, clock: FixedClock) -> Iterator[Services]:
    clinic = open_clinic(
        f"sqlite+pysqlite:///{db_path}", reference, clock=clock, database_label=str(db_path)
    )
    yield clinic
    clinic.close()


@pytest.fixture
def admin(services: Services) -> Actor:
    return services.users.create_first_admin(
        "admin", "Ada Admin", PASSWORDS[Role.ADMIN], PASSWORDS[Role.ADMIN]
    )


def _user(services: Services, admin: Actor, role: Role, username: str, name: str) -> Actor:
    services.users.create_user(admin, username, name, role, PASSWORDS[role])
    return services.users.authenticate(username, PASSWORDS[role])


@pytest.fixture
def nurse(services: Services, admin: Actor) -> Actor:
    return _user(services, admin, Role.NURSE, "nina", "Nina Nurse")


@pytest.fixture
def clinician(services: Services, admin: Actor) -> Actor:
    return _user(services, admin, Role.CLINICIAN, "carl", "Dr Carl Clinician")


@pytest.fixture
def staff(services: Services, admin: Actor) -> Actor:
    return _user(services, admin, Role.STAFF, "stef", "Stef Frontdesk")


@pytest.fixture(autouse=True, scope="session")
def _audit_key_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tests (and the programs they start) never touch the user's real audit key."""
    from pumpclinic.services.audit_key import KEY_FILE_ENV

    previous = os.environ.get(KEY_FILE_ENV)
    os.environ[KEY_FILE_ENV] = str(tmp_path_factory.mktemp("audit") / "audit.key")
    yield
    if previous is None:
        os.environ.pop(KEY_FILE_ENV, None)
    else:
        os.environ[KEY_FILE_ENV] = previous


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashing() -> Iterator[None]:
    """Argon2 at the lowest cost in tests: same code path, a fraction of the time."""
    from argon2 import PasswordHasher

    from pumpclinic.services import users

    production = users._hasher
    users._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    users._hasher = production


@pytest.fixture(autouse=True)
def _non_blocking_message_boxes() -> Iterator[None]:
    from pumpclinic.ui.errors import set_non_blocking_messages

    set_non_blocking_messages(True)
    yield
    set_non_blocking_messages(False)
