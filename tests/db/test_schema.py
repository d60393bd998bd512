"""The schema: migrations match the models, SQLite pragmas, aware datetimes, CHECKs.

On the test database of the run: a SQLite file, or a fresh schema on the PostgreSQL server
of ``PUMPCLINIC_TEST_DATABASE_URL``.
"""

from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError, StatementError

from pumpclinic.db.engine import (
    current_revision,
    head_revision,
    make_engine,
    make_session_factory,
    upgrade_schema,
)
from pumpclinic.db.models import Base, ClinicSettings, DoseProgram, ImplantedPump, Patient, User
from pumpclinic.db.types import NaiveDatetimeError

NOW = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def engine(database_url: str):
    engine = make_engine(database_url)
    upgrade_schema(engine)
    yield engine
    engine.dispose()


def test_empty_database_migrates_to_head_and_matches_the_models(engine) -> None:
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_upgrade_is_idempotent(engine) -> None:
    upgrade_schema(engine)
    assert current_revision(engine) == head_revision()


@pytest.mark.sqlite_only
def test_sqlite_uses_wal_and_foreign_keys(engine) -> None:
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def _patient(mrn: str = "MRN-1") -> Patient:
    return Patient(
        mrn=mrn,
        family_name="Doe",
        given_name="Jan",
        date_of_birth=dt.date(1970, 5, 1),
        spasticity_origin="spinal",
        diagnosis="Spinal cord injury",
        created_at=NOW,
        updated_at=NOW,
    )


def test_naive_datetimes_are_refused(engine) -> None:
    factory = make_session_factory(engine)
    with factory() as session:
        patient = _patient()
        patient.created_at = dt.datetime(2026, 1, 1, 9, 0)  # naive
        session.add(patient)
        with pytest.raises(StatementError) as caught:
            session.flush()
        assert isinstance(caught.value.orig, NaiveDatetimeError)


def test_aware_datetimes_round_trip_as_utc(engine) -> None:
    factory = make_session_factory(engine)
    paris = dt.timezone(dt.timedelta(hours=1))
    with factory.begin() as session:
        patient = _patient()
        patient.created_at = dt.datetime(2026, 3, 29, 9, 30, tzinfo=paris)
        session.add(patient)
    with factory() as session:
        stored = session.query(Patient).one().created_at
    assert stored.tzinfo is not None
    assert stored.utcoffset() == dt.timedelta(0)
    assert stored == dt.datetime(2026, 3, 29, 8, 30, tzinfo=dt.UTC)


def test_foreign_keys_are_enforced(engine) -> None:
    factory = make_session_factory(engine)
    with factory() as session:
        session.add(
            ImplantedPump(
                patient_id=999,
                pump_model_id="nope",
                serial_number="X",
                implanted_on=dt.date(2020, 1, 1),
                reservoir_ml=20,
                low_reservoir_alarm_ml=2,
            )
        )
        with pytest.raises(IntegrityError):
            session.flush()


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        (
            "INSERT INTO pump_models (id, manufacturer, name, model_number, kind, reservoir_ml, "
            "low_reservoir_alarm_ml, flow_accuracy_pct, max_flex_steps, pocket_fill_warning_ml, "
            "plans_refill_with_boluses, active) VALUES ('p', 'm', 'n', '', 'programmable', 20, "
            "2, 150, 13, 1, FALSE, TRUE)",
            "accuracy_range",
        ),
        (
            "INSERT INTO pump_models (id, manufacturer, name, model_number, kind, reservoir_ml, "
            "low_reservoir_alarm_ml, flow_accuracy_pct, max_flex_steps, pocket_fill_warning_ml, "
            "plans_refill_with_boluses, active) VALUES ('p', 'm', 'n', '', 'programmable', 20, "
            "25, 14.5, 13, 1, FALSE, TRUE)",
            "alarm_within_reservoir",
        ),
        (
            "INSERT INTO drug_products (id, name, concentration_mcg_per_ml, screening_only, "
            "stability_days, active) VALUES ('d', 'n', 0, FALSE, 77, TRUE)",
            "concentration_positive",
        ),
    ],
)
def test_check_constraints_refuse_impossible_values(engine, sql: str, constraint: str) -> None:
    with engine.connect() as connection:
        with pytest.raises(IntegrityError) as caught:
            connection.execute(text(sql))
        assert constraint in str(caught.value)


def test_dose_program_refuses_negative_dose(engine) -> None:
    factory = make_session_factory(engine)
    with factory() as session:
        session.add(
            DoseProgram(
                pump_id=1,
                effective_from=NOW,
                concentration_mcg_per_ml=500,
                dose_mcg_per_day=-1,
                created_at=NOW,
            )
        )
        with pytest.raises(IntegrityError):
            session.flush()


def test_unknown_role_is_refused(engine) -> None:
    factory = make_session_factory(engine)
    with factory() as session:
        session.add(
            User(
                username="x",
                full_name="X",
                role="superuser",
                password_hash="h",
                created_at=NOW,
            )
        )
        with pytest.raises(IntegrityError):
            session.flush()


def test_settings_are_a_single_row(engine) -> None:
    with engine.connect() as connection, pytest.raises(IntegrityError):
        connection.execute(
            text(
                "INSERT INTO clinic_settings (id, clinic_name, time_zone, opens_at, closes_at,"
                " open_weekdays, refill_safety_margin_days, due_soon_horizon_days,"
                " observation_beds, refill_slot_minutes, idle_lock_minutes, version)"
                " VALUES (2, 'c', 'UTC', '08:00:00', '18:00:00', '1', 7, 14, 2, 30, 15, 1)"
            )
        )
    assert ClinicSettings.__table__.name == "clinic_settings"


def test_a_database_at_the_first_revision_upgrades_keeping_its_data(database_url: str) -> None:
    from alembic import command

    from pumpclinic.db.engine import alembic_config

    engine = make_engine(database_url)
    command.upgrade(alembic_config(engine), "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO clinic_settings (id, clinic_name, time_zone, opens_at, closes_at,"
                " open_weekdays, refill_safety_margin_days, due_soon_horizon_days,"
                " observation_beds, refill_slot_minutes, idle_lock_minutes, version)"
                " VALUES (1, 'Old Clinic', 'UTC', '08:00:00', '18:00:00', '1,2', 5, 10, 1, 30,"
                " 15, 3)"
            )
        )
    upgrade_schema(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT clinic_name, clinic_phone, refill_safety_margin_days FROM clinic_settings")
        ).one()
    assert tuple(row) == ("Old Clinic", "", 5)
    engine.dispose()


def test_the_active_refill_index_condition_names_the_booked_states() -> None:
    from pumpclinic.db.models import ACTIVE_REFILL_BOOKING
    from pumpclinic.domain.enums import AppointmentKind, AppointmentStatus

    assert (
        f"kind = '{AppointmentKind.REFILL.value}' AND status IN "
        f"('{AppointmentStatus.BOOKED.value}', '{AppointmentStatus.ARRIVED.value}')"
    ) == ACTIVE_REFILL_BOOKING


@pytest.mark.sqlite_only
def test_the_alert_list_reads_by_its_partial_indexes(engine) -> None:
    """The next booked refill per patient and the corrections are found through the small
    partial indexes, not by scanning years of visits and refills."""
    from pumpclinic.services.alerts import _ClinicReader, latest_events_statement

    factory = make_session_factory(engine)
    with factory() as session:
        connection = session.connection()
        captured: list[str] = []

        def plan(statement: object) -> str:
            compiled = statement.compile(connection)  # type: ignore[attr-defined]
            rows = connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {compiled}", tuple(compiled.params.values())
            ).all()
            return "\n".join(str(row[-1]) for row in rows)

        def capture(conn, cursor, statement, parameters, context, executemany) -> None:
            if "min(appointments.starts_at)" in statement:
                captured.append(statement)

        from sqlalchemy import event

        event.listen(engine, "before_cursor_execute", capture)
        try:
            reader = _ClinicReader.__new__(_ClinicReader)
            reader.connection = connection
            reader.day_start = NOW
            reader.next_bookings()
        finally:
            event.remove(engine, "before_cursor_execute", capture)
        assert captured
        bookings_plan = "\n".join(
            str(row[-1])
            for row in connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {captured[0]}", ("2026-11-26",)
            ).all()
        )
        assert "ix_appointments_active_refill" in bookings_plan, bookings_plan
        assert "ix_refills_corrects_refill_id" in plan(latest_events_statement(NOW))


@pytest.mark.sqlite_only
def test_sqlite_keeps_datetimes_as_exact_integer_microseconds(engine) -> None:
    at = dt.datetime(2026, 3, 29, 0, 59, 59, 999_999, tzinfo=dt.UTC)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        session.add(
            User(username="u", full_name="U", role="nurse", password_hash="x", created_at=at)
        )
    with engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT created_at, typeof(created_at) FROM users")
        assert tuple(stored.one()) == (1_774_745_999_999_999, "integer")
    with factory() as session:
        user = session.query(User).one()
        assert user.created_at == at and user.created_at.tzinfo is not None


@pytest.mark.sqlite_only
def test_text_datetimes_of_an_older_sqlite_database_become_integers_and_back(
    database_url: str,
) -> None:
    from alembic import command

    from pumpclinic.db.engine import alembic_config

    engine = make_engine(database_url)
    config = alembic_config(engine)
    command.upgrade(config, "0006")
    texts = ["2026-11-26 10:00:00.000000", "1999-12-31 23:59:59.123456", "2026-03-29 01:00:00"]
    with engine.begin() as connection:
        for number, stored in enumerate(texts):
            connection.exec_driver_sql(
                "INSERT INTO users (username, full_name, role, password_hash, active,"
                " failed_login_count, must_change_password, created_at, version)"
                f" VALUES ('u{number}', 'U', 'nurse', 'x', 1, 0, 0, '{stored}', 1)"
            )
    upgrade_schema(engine)
    factory = make_session_factory(engine)
    with factory() as session:
        read = [u.created_at for u in session.query(User).order_by(User.id)]
    assert read == [dt.datetime.fromisoformat(t).replace(tzinfo=dt.UTC) for t in texts]
    command.downgrade(config, "0006")
    with engine.connect() as connection:
        back = [
            r[0] for r in connection.exec_driver_sql("SELECT created_at FROM users ORDER BY id")
        ]
    assert back == [t if "." in t else f"{t}.000000" for t in texts]
    engine.dispose()


def _triggers(engine) -> dict[str, str]:
    """Each trigger (and, on PostgreSQL, trigger function) by name, as the database
    describes it."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            rows = connection.execute(
                text(
                    "SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t"
                    " JOIN pg_class c ON c.oid = t.tgrelid"
                    " WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
                    " UNION ALL SELECT p.proname, p.prosrc FROM pg_proc p"
                    " WHERE p.pronamespace = current_schema()::regnamespace"
                )
            ).all()
        else:
            rows = connection.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            ).all()
    return dict(rows)  # type: ignore[arg-type]


def test_the_migrations_make_the_triggers_the_models_declare(
    engine, test_databases, tmp_path
) -> None:
    """The kept-forecast triggers: those of the migrations are those ``create_all`` makes
    from the models (pumpclinic.db.triggers), every one is in place — and a migration that
    rebuilds one of their tables (SQLite's batch mode drops its triggers) is caught here."""
    from pumpclinic.db import triggers

    other_url = test_databases.new(tmp_path / "from-the-models.sqlite3")
    other = make_engine(other_url)
    try:
        Base.metadata.create_all(other)
        from_models = _triggers(other)
    finally:
        other.dispose()
        test_databases.drop(other_url)
    migrated = _triggers(engine)
    assert migrated == from_models
    assert set(triggers.trigger_names(engine.dialect.name)) <= set(migrated)
    with engine.connect() as connection:
        assert triggers.in_place(connection)
