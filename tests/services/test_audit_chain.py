"""The audit chain: intact after normal use; any change behind the app's back is named."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from pumpclinic.cli import main
from pumpclinic.domain.patients import PatientInput

# audit-verify reads a SQLite file (--db PATH); the tampering is done with sqlite3 on it.
pytestmark = pytest.mark.sqlite_only


@pytest.fixture
def used_clinic(services, admin, nurse, db_path: Path) -> Path:
    record = services.patients.create_patient(
        nurse,
        PatientInput(
            mrn="RIV-1",
            family_name="Okafor",
            given_name="Ada",
            date_of_birth=dt.date(1975, 4, 3),
            spasticity_origin="spinal",
            diagnosis="Multiple sclerosis",
        ),
    )
    services.patients.update_patient(
        nurse,
        record.id,
        record.version,
        PatientInput(
            mrn="RIV-1",
            family_name="Okafor",
            given_name="Ada",
            date_of_birth=dt.date(1975, 4, 3),
            spasticity_origin="spinal",
            diagnosis="Multiple sclerosis, secondary progressive",
        ),
    )
    services.close()
    return db_path


def verify(db: Path, capsys) -> tuple[int, str]:
    code = main(["audit-verify", "--db", str(db)])
    return code, capsys.readouterr().out


def sql(db: Path, statement: str, *params: object) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute(statement, params)


def entry_ids(db: Path) -> list[int]:
    with sqlite3.connect(db) as connection:
        return [row[0] for row in connection.execute("SELECT id FROM audit_log ORDER BY id")]


def test_intact_after_normal_use(used_clinic: Path, capsys) -> None:
    code, out = verify(used_clinic, capsys)
    assert code == 0, out
    assert f"intact: {len(entry_ids(used_clinic))} entries" in out


def test_a_changed_entry_is_named(used_clinic: Path, capsys) -> None:
    target = entry_ids(used_clinic)[-1]
    sql(
        used_clinic,
        "UPDATE audit_log SET after_json = replace(after_json, 'secondary', 'primary') "
        "WHERE id = ?",
        target,
    )
    code, out = verify(used_clinic, capsys)
    assert code == 1
    assert f"BROKEN at entry {target}: its contents were changed" in out


def test_a_changed_user_name_is_named(used_clinic: Path, capsys) -> None:
    target = entry_ids(used_clinic)[2]
    sql(used_clinic, "UPDATE audit_log SET username = 'someone-else' WHERE id = ?", target)
    code, out = verify(used_clinic, capsys)
    assert code == 1 and f"entry {target}:" in out


def test_a_deleted_entry_breaks_the_next(used_clinic: Path, capsys) -> None:
    ids = entry_ids(used_clinic)
    sql(used_clinic, "DELETE FROM audit_log WHERE id = ?", ids[1])
    code, out = verify(used_clinic, capsys)
    assert code == 1
    assert f"BROKEN at entry {ids[2]}: an entry before it was deleted" in out


def test_an_inserted_entry_is_named(used_clinic: Path, capsys) -> None:
    sql(
        used_clinic,
        "INSERT INTO audit_log (at, username, action, entity, entity_id) "
        "VALUES ('2026-11-26 09:00:00', 'intruder', 'update', 'patient', '1')",
    )
    inserted = entry_ids(used_clinic)[-1]
    code, out = verify(used_clinic, capsys)
    assert code == 1
    assert f"BROKEN at entry {inserted}: it was inserted outside PumpClinic" in out


def test_a_forged_link_without_the_key_is_named(used_clinic: Path, capsys) -> None:
    with sqlite3.connect(used_clinic) as connection:
        last_hash = connection.execute(
            "SELECT entry_hash FROM audit_log ORDER BY id DESC LIMIT 1"
        ).fetchone()[0]
        connection.execute(
            "INSERT INTO audit_log (at, username, action, entity, entity_id, previous_hash,"
            " entry_hash) VALUES ('2026-11-26 09:00:00', 'intruder', 'update', 'patient', '1',"
            " ?, ?)",
            (last_hash, "f" * 64),
        )
    code, out = verify(used_clinic, capsys)
    assert code == 1 and "contents were changed" in out


def test_verify_needs_an_existing_database(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "none.sqlite3"
    assert main(["audit-verify", "--db", str(missing)]) == 2
    assert "no such database file" in capsys.readouterr().err
    assert not missing.exists()


def test_deleting_the_newest_entries_is_named(used_clinic: Path, capsys) -> None:
    ids = entry_ids(used_clinic)
    sql(used_clinic, "DELETE FROM audit_log WHERE id >= ?", ids[-2])
    code, out = verify(used_clinic, capsys)
    assert code == 1
    assert f"BROKEN at entry {ids[-1]}: it was deleted, with every entry after #{ids[-3]}" in out


def test_deleting_the_sealed_head_is_named(used_clinic: Path, capsys) -> None:
    sql(used_clinic, "DELETE FROM audit_chain_head")
    code, out = verify(used_clinic, capsys)
    assert code == 1 and "sealed head is missing" in out


def test_moving_the_head_back_without_the_key_is_named(used_clinic: Path, capsys) -> None:
    ids = entry_ids(used_clinic)
    with sqlite3.connect(used_clinic) as connection:
        previous_hash = connection.execute(
            "SELECT entry_hash FROM audit_log WHERE id = ?", (ids[-2],)
        ).fetchone()[0]
        connection.execute("DELETE FROM audit_log WHERE id = ?", (ids[-1],))
        connection.execute(
            "UPDATE audit_chain_head SET last_entry_id = ?, last_entry_hash = ?",
            (ids[-2], previous_hash),
        )
    code, out = verify(used_clinic, capsys)
    assert code == 1 and "sealed head was changed" in out


def test_a_database_from_before_the_sealed_head_is_sealed_on_upgrade(
    used_clinic: Path, reference, capsys
) -> None:
    from alembic import command

    from pumpclinic.db.engine import alembic_config, make_engine
    from pumpclinic.services.clinic import open_clinic

    # Back to revision 0004 (the later migrations undone): no head table, entries written
    # by an older PumpClinic.
    engine = make_engine(f"sqlite+pysqlite:///{used_clinic}")
    command.downgrade(alembic_config(engine), "0004")
    engine.dispose()
    open_clinic(f"sqlite+pysqlite:///{used_clinic}", reference).close()
    code, out = verify(used_clinic, capsys)
    assert code == 0, out
