"""Backups: taken safely, verified, restored only on purpose, rotated daily."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from pumpclinic.cli import main
from pumpclinic.domain.patients import PatientInput
from pumpclinic.services.backup import BackupError, automatic_backup, verify_backup

# Backups are SQLite's online backup of the clinic file (a PostgreSQL server has pg_dump).
pytestmark = pytest.mark.sqlite_only

TABLES = ("patients", "users", "audit_log", "clinic_settings", "pump_models")


def dump(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(db) as connection:
        return {
            table: connection.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in TABLES
        }


@pytest.fixture
def clinic_file(services, nurse, db_path: Path) -> Path:
    for number in range(3):
        services.patients.create_patient(
            nurse,
            PatientInput(
                mrn=f"RIV-{number}",
                family_name=f"Family{number}",
                given_name="Given",
                date_of_birth=dt.date(1970, 1, 1 + number),
                spasticity_origin="cerebral",
                diagnosis="Cerebral palsy",
            ),
        )
    return db_path


def test_backup_then_restore_gives_the_same_data(clinic_file: Path, services, tmp_path, capsys):
    copy = tmp_path / "copy.sqlite3"
    assert main(["backup", "--db", str(clinic_file), "--to", str(copy)]) == 0
    assert "Backed up 3 patients" in capsys.readouterr().out
    before = dump(clinic_file)
    restored = tmp_path / "restored.sqlite3"
    assert main(["restore", "--from", str(copy), "--db", str(restored)]) == 0
    assert dump(restored) == before


def test_restore_refuses_to_overwrite_without_force(clinic_file: Path, services, tmp_path, capsys):
    copy = tmp_path / "copy.sqlite3"
    assert main(["backup", "--db", str(clinic_file), "--to", str(copy)]) == 0
    services.patients.create_patient(
        services.users.authenticate("nina", "nurse-pass-1"),
        PatientInput(
            mrn="RIV-LATE",
            family_name="Late",
            given_name="Added",
            date_of_birth=dt.date(1990, 1, 1),
            spasticity_origin="spinal",
            diagnosis="Stroke",
        ),
    )
    services.close()
    capsys.readouterr()
    assert main(["restore", "--from", str(copy), "--db", str(clinic_file)]) == 2
    assert "add --force" in capsys.readouterr().err
    assert len(dump(clinic_file)["patients"]) == 4
    assert main(["restore", "--from", str(copy), "--db", str(clinic_file), "--force"]) == 0
    assert len(dump(clinic_file)["patients"]) == 3
    with sqlite3.connect(clinic_file) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_restore_verifies_the_file_first(clinic_file: Path, tmp_path, capsys) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    before = dump(clinic_file)
    assert main(["restore", "--from", str(junk), "--db", str(clinic_file), "--force"]) == 2
    assert "not a readable SQLite database" in capsys.readouterr().err
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(BackupError, match="not a PumpClinic database"):
        verify_backup(other)
    assert dump(clinic_file) == before


def test_automatic_backup_once_a_day_keeping_fourteen(clinic_file: Path, tmp_path) -> None:
    folder = tmp_path / "backups"
    start = dt.date(2026, 11, 1)
    assert automatic_backup(clinic_file, folder, start) is not None
    assert automatic_backup(clinic_file, folder, start) is None  # same day: nothing new
    for day in range(1, 20):
        automatic_backup(clinic_file, folder, start + dt.timedelta(days=day))
    kept = sorted(p.name for p in folder.iterdir())
    assert len(kept) == 14
    assert kept[0] == "pumpclinic-20261107.sqlite3"  # 20 days taken, the 6 oldest removed
    assert kept[-1] == "pumpclinic-20261120.sqlite3"
    assert verify_backup(folder / kept[-1]).patients == 3
