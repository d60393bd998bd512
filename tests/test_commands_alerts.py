"""``pumpclinic alerts``: the JSON contract, the printed list, and reading that never creates
or changes a database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from pumpclinic.cli import main
from pumpclinic.db.engine import current_revision, head_revision, make_engine, sqlite_url
from pumpclinic.services.clinic import Services
from pumpclinic.services.context import Actor
from tests.services.refill_fixtures import implanted_patient

pytestmark = pytest.mark.sqlite_only  # the command reads SQLite files

CONTRACT_KEYS = {
    "mrn",
    "name",
    "kind",
    "severity",
    "refill_due",
    "alarm_at",
    "empty_at",
    "booked_at",
}


@pytest.fixture
def clinic(services: Services, nurse: Actor, clinician: Actor, db_path: Path) -> Path:
    """Two pumps filled Sun 27 Sep 2026: 400 mcg/day (due Fri 11 Dec) and 800 mcg/day (alarm
    after 45 days, empty after 50: empty since Mon 16 Nov)."""
    implanted_patient(services, nurse, clinician, mrn="RIV-000100")
    implanted_patient(services, nurse, clinician, mrn="RIV-000200", dose_mcg_per_day=800)
    return db_path


def run(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["alerts", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_json_list_most_urgent_first(clinic: Path, capsys) -> None:
    status, out, err = run(capsys, "--db", str(clinic), "--as-of", "2026-12-01T09:00", "--json")
    assert status == 0, err
    items = json.loads(out)
    assert isinstance(items, list)
    assert [(i["mrn"], i["kind"], i["severity"]) for i in items] == [
        ("RIV-000200", "pump_empty", "critical"),
        ("RIV-000100", "refill_due_soon", "info"),
    ]
    for item in items:
        assert set(item) >= CONTRACT_KEYS
    empty, soon = items
    assert soon["name"] == "OKAFOR, Ada"
    assert soon["refill_due"] == "2026-12-11"
    assert soon["alarm_at"] == "2026-12-26T10:00:00+00:00"
    assert soon["empty_at"] == "2027-01-05T10:00:00+00:00"
    assert soon["booked_at"] is None
    assert empty["empty_at"] == "2026-11-16T10:00:00+00:00"
    assert empty["description"].startswith("Pump empty since Mon 16 Nov")


def test_booked_at_is_the_next_booked_refill(
    clinic: Path, services: Services, nurse: Actor, capsys
) -> None:
    import datetime as dt

    patient_id = services.patients.list_patients(nurse)[0].id
    settings, _version = services.settings.get()
    starts = dt.datetime(2026, 12, 14, 9, 0, tzinfo=settings.zone)
    services.booking.book_refill(nurse, patient_id, starts, late_reason="Travelling")
    status, out, _err = run(capsys, "--db", str(clinic), "--as-of", "2026-12-01T09:00", "--json")
    assert status == 0
    by_mrn = {item["mrn"]: item for item in json.loads(out)}
    booked = by_mrn[services.patients.list_patients(nurse)[0].mrn]
    assert booked["kind"] == "refill_booked_late"
    assert booked["booked_at"] == "2026-12-14T09:00:00+00:00"


def test_as_of_defaults_to_now(clinic: Path, capsys) -> None:
    status, out, _err = run(capsys, "--db", str(clinic), "--json")
    assert status == 0
    # The 800 mcg/day pump has been empty since Mon 16 Nov 2026: so it is now, whenever now is.
    first = json.loads(out)[0]
    assert (first["mrn"], first["kind"]) == ("RIV-000200", "pump_empty")


def test_printed_morning_list(clinic: Path, capsys) -> None:
    status, out, _err = run(capsys, "--db", str(clinic), "--as-of", "2026-12-01T09:00")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "ITB Clinic — alerts as of Tue 01 Dec 2026 09:00 (Europe/London)"
    assert "1 critical · 0 urgent · 0 warning · 1 info" in lines[1]
    assert "WHAT IS WRONG" in out
    body = out[out.index("WHAT IS WRONG") :]
    assert body.index("RIV-000200") < body.index("RIV-000100")
    assert "CRITICAL" in out and "empty Mon 16 Nov 10:00" in out


def test_no_alerts(clinic: Path, capsys) -> None:
    status, out, _err = run(capsys, "--db", str(clinic), "--as-of", "2026-09-27T12:00")
    assert status == 0
    assert "No alerts" in out


def test_a_missing_database_is_an_error_and_is_not_created(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "none.sqlite3"
    status, out, err = run(capsys, "--db", str(missing), "--json")
    assert status == 2 and out == ""
    assert err.startswith("error: --db") and "no such database file" in err
    assert len(err.strip().splitlines()) == 1
    assert not missing.exists()
    assert list(tmp_path.iterdir()) == []


def test_bad_as_of_is_one_error_line(clinic: Path, capsys) -> None:
    status, _out, err = run(capsys, "--db", str(clinic), "--as-of", "tomorrow")
    assert status == 2
    assert err.startswith("error: --as-of") and len(err.strip().splitlines()) == 1


def test_an_older_schema_is_refused_and_left_alone(tmp_path: Path, capsys) -> None:
    from alembic import command

    from pumpclinic.db.engine import alembic_config

    path = tmp_path / "old.sqlite3"
    engine = make_engine(sqlite_url(path))
    command.upgrade(alembic_config(engine), "0003")
    status, _out, err = run(capsys, "--db", str(path))
    assert status == 2
    assert "schema is version 0003" in err and head_revision() in err
    assert current_revision(engine) == "0003"
    with engine.connect() as connection:
        tables = connection.execute(text("SELECT name FROM sqlite_master")).scalars().all()
    assert "contact_attempts" not in tables
    engine.dispose()


def test_not_a_database(tmp_path: Path, capsys) -> None:
    path = tmp_path / "notes.sqlite3"
    path.write_text("hello")
    status, _out, err = run(capsys, "--db", str(path))
    assert status == 2 and err.startswith("error: --db")
    assert path.read_text() == "hello"
