"""Shared fixtures: a real clinic database per test, a fixed clock, signed-in actors.

The database is a SQLite file in tmp_path, or — when ``PUMPCLINIC_TEST_DATABASE_URL`` names
a PostgreSQL server, e.g. ``postgresql+psycopg://user:pass@127.0.0.1:55432/db`` — a fresh
schema of its own on that server, which the test's migrations fill and its teardown drops.
Tests marked ``sqlite_only`` (they read or write SQLite files themselves) are skipped there.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

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


TEST_DATABASE_URL_ENV = "PUMPCLINIC_TEST_DATABASE_URL"
SERVER_URL = os.environ.get(TEST_DATABASE_URL_ENV, "").strip()


def pytest_configure(config: pytest.Config) -> None:
    if not SERVER_URL:
        return
    try:
        backend = make_url(SERVER_URL).get_backend_name()
    except Exception as exc:
        raise pytest.UsageError(f"{TEST_DATABASE_URL_ENV} is not a database URL: {exc}") from exc
    if backend != "postgresql":
        raise pytest.UsageError(
            f"{TEST_DATABASE_URL_ENV} must name a PostgreSQL server"
            " (postgresql+psycopg://user:password@host:port/database); unset it for SQLite"
        )


def pytest_report_header() -> str:
    if not SERVER_URL:
        return "database: SQLite files in tmp_path"
    shown = make_url(SERVER_URL).render_as_string(hide_password=True)
    return f"database: a fresh schema per test on {shown} ({TEST_DATABASE_URL_ENV})"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not SERVER_URL:
        return
    skip = pytest.mark.skip(
        reason=f"works on SQLite files itself; this run is on the server in {TEST_DATABASE_URL_ENV}"
    )
    for item in items:
        if item.get_closest_marker("sqlite_only"):
            item.add_marker(skip)


class TestDatabases:
    """Fresh, empty clinic databases: SQLite files, or schemas on the test server."""

    __test__ = False  # not a pytest test class

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self._admin: Engine | None = None
        self._names = (f"pumpclinic_test_{os.getpid()}_{n}" for n in itertools.count(1))
        self._schemas: dict[str, str] = {}  # URL -> schema

    @property
    def on_server(self) -> bool:
        return bool(self.server_url)

    def _admin_engine(self) -> Engine:
        if self._admin is None:
            self._admin = create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        return self._admin

    def new(self, sqlite_path: Path) -> str:
        """The URL of an empty database: ``sqlite_path``, or a new schema on the server."""
        if not self.on_server:
            return f"sqlite+pysqlite:///{sqlite_path}"
        schema = next(self._names)
        with self._admin_engine().connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(self.server_url)
        # libpq's options: every connection of the app (and of alembic) lives in the schema.
        options = " ".join(filter(None, [url.query.get("options", ""), f"-csearch_path={schema}"]))
        rendered = url.update_query_dict({"options": options}).render_as_string(hide_password=False)
        self._schemas[rendered] = schema
        return rendered

    def drop(self, url: str) -> None:
        schema = self._schemas.pop(url, None)
        if schema is None:
            return
        try:
            with self._admin_engine().connect() as connection:
                # A connection a test left open would block the drop: give up quickly, and
                # try again at the end of the session.
                connection.execute(text("SET lock_timeout = '2s'"))
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        except SQLAlchemyError:
            self._schemas[url] = schema

    def close(self) -> None:
        for url in list(self._schemas):
            self.drop(url)
        if self._admin is not None:
            self._admin.dispose()


@pytest.fixture(scope="session")
def test_databases() -> Iterator[TestDatabases]:
    databases = TestDatabases(SERVER_URL)
    yield databases
    databases.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "clinic.sqlite3"


@pytest.fixture
def database_url(test_databases: TestDatabases, db_path: Path) -> Iterator[str]:
    """An empty database for this test: ``db_path`` on SQLite, a fresh schema on a server."""
    url = test_databases.new(db_path)
    yield url
    test_databases.drop(url)


def database_label(url: str) -> str:
    """What the status bar shows: the file, or the server URL without its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return str(parsed.database)
    return parsed.render_as_string(hide_password=True)


@pytest.fixture
def services(database_url: str, reference: Reference, clock: FixedClock) -> Iterator[Services]:
    clinic = open_clinic(
        database_url, reference, clock=clock, database_label=database_label(database_url)
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
