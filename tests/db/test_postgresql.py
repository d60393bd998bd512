"""The schema on a real PostgreSQL server (``PUMPCLINIC_TEST_DATABASE_URL``; skipped without).

Each test gets a fresh, empty schema of its own on that server (the ``database_url``
fixture): the migrations, the column types and the time zones are PostgreSQL's own here.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import StatementError

from pumpclinic.db.engine import (
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    make_session_factory,
    upgrade_schema,
)
from pumpclinic.db.models import Base, ClinicSettings, Patient
from pumpclinic.db.types import NaiveDatetimeError
from tests.conftest import SERVER_URL, TEST_DATABASE_URL_ENV

pytestmark = pytest.mark.skipif(
    not SERVER_URL.startswith("postgresql"),
    reason=f"needs a PostgreSQL server in {TEST_DATABASE_URL_ENV}",
)

NOW = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)


def with_session_time_zone(url: str, zone: str) -> str:
    """The same database, every connection in ``zone`` (the server's zone may be anything)."""
    parsed = make_url(url)
    options = f"{parsed.query.get('options', '')} -ctimezone={zone}".strip()
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _patient(created_at: dt.datetime) -> Patient:
    return Patient(
        mrn="PG-1",
        family_name="Doe",
        given_name="Jan",
        date_of_birth=dt.date(1970, 5, 1),
        spasticity_origin="spinal",
        diagnosis="Spinal cord injury",
        created_at=created_at,
        updated_at=created_at,
    )


def test_an_empty_database_migrates_to_head_and_matches_the_models(engine: Engine) -> None:
    assert engine.dialect.name == "postgresql"
    assert current_revision(engine) is None
    upgrade_schema(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    inspector = inspect(engine)
    assert set(Base.metadata.tables) <= set(inspector.get_table_names())
    # The CHECK constraints were made by the migrations too (autogenerate does not see them).
    for table in Base.metadata.sorted_tables:
        expected = {c.name for c in table.constraints if c.__visit_name__ == "check_constraint"}
        found = {c["name"] for c in inspector.get_check_constraints(table.name)}
        assert expected <= found, table.name


def test_downgrade_to_the_first_revision_and_up_again(engine: Engine) -> None:
    """The migrations' PostgreSQL branches (alembic operations, no SQLite batch copies)."""
    upgrade_schema(engine)
    command.downgrade(alembic_config(engine), "0001")
    assert current_revision(engine) == "0001"
    upgrade_schema(engine)
    assert current_revision(engine) == head_revision()


def test_datetimes_are_timestamptz_naive_refused_aware_back_as_utc(database_url: str) -> None:
    engine = make_engine(with_session_time_zone(database_url, "Pacific/Auckland"))
    try:
        upgrade_schema(engine)
        columns = {c["name"]: c["type"] for c in inspect(engine).get_columns("patients")}
        assert getattr(columns["created_at"], "timezone", False) is True
        factory = make_session_factory(engine)
        with factory() as session:
            session.add(_patient(dt.datetime(2026, 1, 1, 9, 0)))  # naive
            with pytest.raises(StatementError) as caught:
                session.flush()
            assert isinstance(caught.value.orig, NaiveDatetimeError)
        paris = dt.timezone(dt.timedelta(hours=1))
        with factory.begin() as session:
            session.add(_patient(dt.datetime(2026, 3, 29, 9, 30, tzinfo=paris)))
        with factory() as session:
            stored = session.scalars(select(Patient.created_at)).one()
            # The server's own view, in UTC: the instant, whatever the session's zone.
            as_utc = session.execute(
                text(
                    "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')"
                    " FROM patients"
                )
            ).scalar_one()
        assert stored.utcoffset() == dt.timedelta(0)
        assert stored == dt.datetime(2026, 3, 29, 8, 30, tzinfo=dt.UTC)
        assert as_utc == "2026-03-29 08:30"
    finally:
        engine.dispose()


def test_opening_hours_are_wall_clock_times(database_url: str) -> None:
    """The settings' Time columns hold the clinic's wall clock, untouched by any zone."""
    engine = make_engine(with_session_time_zone(database_url, "America/Chicago"))
    try:
        upgrade_schema(engine)
        factory = make_session_factory(engine)
        with factory.begin() as session:
            session.add(
                ClinicSettings(
                    id=1,
                    clinic_name="Riverside",
                    time_zone="Europe/London",
                    opens_at=dt.time(8, 0),
                    closes_at=dt.time(17, 30),
                    open_weekdays="1,2,3,4,5",
                    refill_safety_margin_days=7,
                    due_soon_horizon_days=14,
                    observation_beds=2,
                    refill_slot_minutes=30,
                    idle_lock_minutes=15,
                )
            )
        with factory() as session:
            settings = session.get(ClinicSettings, 1)
            assert settings is not None
            assert (settings.opens_at, settings.closes_at) == (dt.time(8, 0), dt.time(17, 30))
    finally:
        engine.dispose()


def test_workstations_starting_together_upgrade_once(database_url: str) -> None:
    """Several workstations opening a new schema at the same moment: one migrates, the
    others wait for it and find the schema at head (no 'relation already exists')."""
    script = (
        "import sys, time\n"
        "from pumpclinic.db.engine import make_engine, upgrade_schema\n"
        "engine = make_engine(sys.argv[1])\n"
        "engine.connect().close()\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "upgrade_schema(engine)\n"
    )
    # Each waits until the same moment (after its imports and its first connection).
    at = str(time.time() + 3)
    workstations = [
        subprocess.Popen(
            [sys.executable, "-c", script, database_url, at],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [(w.wait(timeout=120), w.communicate()[1]) for w in workstations]
    assert [code for code, _ in results] == [0, 0, 0], [err[-800:] for _, err in results]
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
