"""Kept forecasts edited behind PumpClinic's back are named by ``pumpclinic audit-verify``:
each kept forecast the alert list would reuse is computed again from its pump's rows and
compared field by field, and missing triggers are reported. The tampering is done with
sqlite3 on the file, as someone with the file and no key would."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from pumpclinic.cli import main
from pumpclinic.db.types import from_stored, to_stored_microseconds
from pumpclinic.services.demo import create_demo_clinic
from tests.conftest import NOW

pytestmark = pytest.mark.sqlite_only

DAY_US = 86_400 * 1_000_000


def verify(db: Path, capsys, as_of: dt.datetime = NOW) -> tuple[int, str]:
    code = main(["audit-verify", "--db", str(db), "--as-of", as_of.isoformat()])
    return code, capsys.readouterr().out


def sql(db: Path, statement: str, *params: object) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute(statement, params)


def one(db: Path, query: str, *params: object) -> tuple:
    with sqlite3.connect(db) as connection:
        row = connection.execute(query, params).fetchone()
    assert row is not None, query
    return row


def shown(stored_microseconds: int) -> str:
    return from_stored(stored_microseconds).isoformat()


@pytest.fixture
def demo_clinic(services, db_path: Path) -> Path:
    """The demo clinic, its forecasts kept as of ``NOW`` (the clinic's clock)."""
    create_demo_clinic(services.context)
    services.close()
    return db_path


@pytest.fixture
def kept_pump(demo_clinic: Path) -> int:
    """An implanted pump whose kept forecast has an empty time and a refill-due date."""
    (pump_id,) = one(
        demo_clinic,
        "SELECT pump_id FROM pump_forecasts WHERE empty_at IS NOT NULL"
        " AND refill_due IS NOT NULL ORDER BY pump_id LIMIT 1",
    )
    return int(pump_id)


def test_an_untouched_clinic_checks_every_kept_forecast(demo_clinic: Path, capsys) -> None:
    (kept,) = one(demo_clinic, "SELECT count(*) FROM pump_forecasts")
    assert kept > 30
    code, out = verify(demo_clinic, capsys)
    assert code == 0, out
    assert (
        f"Kept forecasts match their pumps' rows: {kept} checked, every one the alert list"
        f" would reuse as of {NOW.isoformat(timespec='minutes')}\n"
    ) in out


def test_a_later_empty_time_written_with_sqlite3_is_named(
    demo_clinic: Path, kept_pump: int, capsys
) -> None:
    (empty_at,) = one(
        demo_clinic, "SELECT empty_at FROM pump_forecasts WHERE pump_id = ?", kept_pump
    )
    later = empty_at + 40 * DAY_US
    sql(demo_clinic, "UPDATE pump_forecasts SET empty_at = ? WHERE pump_id = ?", later, kept_pump)
    code, out = verify(demo_clinic, capsys)
    assert code == 1
    assert "Audit chain intact" in out and "Clinical rows match the audit trail" in out
    assert (
        f"pump_forecasts for pump #{kept_pump} CHANGED outside PumpClinic: empty_at"
        f" (kept {shown(later)}, recomputed {shown(empty_at)})\n"
    ) in out
    assert "Kept forecasts DIFFER from their pumps' rows: 1 of " in out


def test_a_later_refill_due_date_written_with_sqlite3_is_named(
    demo_clinic: Path, kept_pump: int, capsys
) -> None:
    (due,) = one(demo_clinic, "SELECT refill_due FROM pump_forecasts WHERE pump_id = ?", kept_pump)
    later = (dt.date.fromisoformat(due) + dt.timedelta(days=30)).isoformat()
    sql(demo_clinic, "UPDATE pump_forecasts SET refill_due = ? WHERE pump_id = ?", later, kept_pump)
    code, out = verify(demo_clinic, capsys)
    assert code == 1
    assert (
        f"pump_forecasts for pump #{kept_pump} CHANGED outside PumpClinic: refill_due"
        f" (kept {later}, recomputed {due})\n"
    ) in out


def test_a_smaller_daily_volume_and_more_days_to_alarm_are_named(
    demo_clinic: Path, kept_pump: int, capsys
) -> None:
    daily_ml, days = one(
        demo_clinic,
        "SELECT daily_volume_ml, days_to_alarm FROM pump_forecasts WHERE pump_id = ?",
        kept_pump,
    )
    sql(
        demo_clinic,
        "UPDATE pump_forecasts SET daily_volume_ml = ?, days_to_alarm = ? WHERE pump_id = ?",
        daily_ml / 2,
        days + 20,
        kept_pump,
    )
    code, out = verify(demo_clinic, capsys)
    assert code == 1
    line = next(
        x for x in out.splitlines() if x.startswith(f"pump_forecasts for pump #{kept_pump} ")
    )
    assert (
        f"CHANGED outside PumpClinic: daily_volume_ml (kept {daily_ml / 2},"
        f" recomputed {daily_ml}); days_to_alarm (kept {days + 20}, recomputed {days})"
    ) in line


def test_a_forecast_the_alert_list_would_not_reuse_is_counted_not_reported(
    demo_clinic: Path, kept_pump: int, capsys
) -> None:
    # A stale revision: the alert list computes this pump's forecast again at its next read.
    sql(
        demo_clinic,
        "UPDATE pump_forecasts SET input_revision = input_revision + 7,"
        " empty_at = empty_at + ? WHERE pump_id = ?",
        40 * DAY_US,
        kept_pump,
    )
    (kept,) = one(demo_clinic, "SELECT count(*) FROM pump_forecasts")
    code, out = verify(demo_clinic, capsys)
    assert code == 0, out
    assert (
        f"Kept forecasts match their pumps' rows: {kept - 1} checked, every one the alert list"
        f" would reuse as of {NOW.isoformat(timespec='minutes')}; 1 others would not be"
        " reused (computed again at the next read)"
    ) in out


def test_a_kept_forecast_outside_its_span_is_named_once_its_span_is_widened(
    demo_clinic: Path, kept_pump: int, capsys
) -> None:
    # Made to hold from long before its fill: reused for times another fill was in force.
    (inputs_from,) = one(
        demo_clinic, "SELECT inputs_from FROM pump_forecasts WHERE pump_id = ?", kept_pump
    )
    earlier = inputs_from - 400 * DAY_US
    sql(
        demo_clinic,
        "UPDATE pump_forecasts SET inputs_from = ? WHERE pump_id = ?",
        earlier,
        kept_pump,
    )
    code, out = verify(demo_clinic, capsys)
    assert code == 1
    assert (
        f"pump_forecasts for pump #{kept_pump} CHANGED outside PumpClinic: inputs_from"
        f" (kept {shown(earlier)}, recomputed {shown(inputs_from)})\n"
    ) in out


def test_a_kept_forecast_for_a_pump_whose_rows_give_none_is_named(
    demo_clinic: Path, kept_pump: int, capsys
) -> None:
    with sqlite3.connect(demo_clinic) as connection:
        kept = connection.execute(
            "SELECT * FROM pump_forecasts WHERE pump_id = ?", (kept_pump,)
        ).fetchone()
        # No program in force any more (the triggers delete the kept forecast) ...
        connection.execute(
            "UPDATE dose_programs SET effective_from = ? WHERE pump_id = ?",
            (to_stored_microseconds(NOW + dt.timedelta(days=365)), kept_pump),
        )
        (revision,) = connection.execute(
            "SELECT revision FROM pump_input_revisions WHERE pump_id = ?", (kept_pump,)
        ).fetchone()
        # ... and the kept forecast put back, stamped with the pump's new revision.
        connection.execute(
            f"INSERT INTO pump_forecasts VALUES ({', '.join('?' * len(kept))})", kept
        )
        connection.execute(
            "UPDATE pump_forecasts SET input_revision = ? WHERE pump_id = ?", (revision, kept_pump)
        )
    code, out = verify(demo_clinic, capsys)
    assert code == 1
    assert (
        f"pump_forecasts for pump #{kept_pump} CHANGED outside PumpClinic: kept a forecast"
        " where the pump's rows give none (no fill, or no program in force at it)\n"
    ) in out


def test_a_dropped_trigger_is_reported(demo_clinic: Path, capsys) -> None:
    sql(demo_clinic, "DROP TRIGGER refills_insert_revises_pump_inputs")
    code, out = verify(demo_clinic, capsys)
    assert code == 1
    assert "Clinical rows match the audit trail" in out
    assert "Kept-forecast triggers MISSING: refills_insert_revises_pump_inputs." in out


def test_a_trigger_replaced_by_one_that_does_nothing_is_reported(demo_clinic: Path, capsys) -> None:
    sql(demo_clinic, "DROP TRIGGER dose_programs_update_revises_pump_inputs")
    sql(
        demo_clinic,
        "CREATE TRIGGER dose_programs_update_revises_pump_inputs AFTER UPDATE ON dose_programs"
        " FOR EACH ROW BEGIN SELECT 1; END",
    )
    code, out = verify(demo_clinic, capsys)
    assert code == 1
    assert "Kept-forecast triggers MISSING: dose_programs_update_revises_pump_inputs." in out


def test_a_bad_as_of_is_named(demo_clinic: Path, capsys) -> None:
    code = main(["audit-verify", "--db", str(demo_clinic), "--as-of", "yesterday"])
    assert code == 2
    assert "--as-of: 'yesterday' is not an ISO 8601 date and time" in capsys.readouterr().err
