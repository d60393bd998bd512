"""pumpclinic import-csv: all rows or none, every bad row reported with its line."""

from __future__ import annotations

import csv
import datetime as dt
import io
import sqlite3
import zoneinfo
from pathlib import Path

import pytest

from pumpclinic.cli import main
from pumpclinic.domain.enums import Role
from pumpclinic.domain.importing import ImportRow, parse_row
from pumpclinic.reference_files import load_reference
from pumpclinic.services.clinic import open_clinic
from pumpclinic.services.context import Actor
from pumpclinic.services.importer import ImportRejected, import_rows

HEADER = (
    "mrn,family_name,given_name,date_of_birth,origin,pump_model,concentration_mcg_per_ml,"
    "dose_mcg_per_day,last_refill_at,volume_after_refill_ml\n"
)
GOOD = [
    "RIV-1,Okafor,Ada,1975-04-03,spinal,synchromed-ii-20,2000,400,2026-10-01T09:30,20\n",
    "RIV-2,Lindqvist,Maja,1988-02-14,cerebral,prometra-ii-40,500,300,2026-11-02T14:00+00:00,40\n",
]


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "patients.csv"
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    return path


def count_patients(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT count(*) FROM patients").fetchone()[0]


@pytest.mark.sqlite_only  # import-csv --db PATH writes a SQLite file
def test_imports_every_row_and_forecasts_them(tmp_path: Path, capsys) -> None:
    db = tmp_path / "new" / "clinic.sqlite3"
    assert (
        main(
            ["import-csv", "--db", str(db), "--tz", "America/Chicago", str(write(tmp_path, *GOOD))]
        )
        == 0
    )
    assert "Imported 2 patients" in capsys.readouterr().out
    services = open_clinic(
        f"sqlite+pysqlite:///{db}",
        load_reference(),
        clock=lambda: dt.datetime(2026, 11, 26, 15, 0, tzinfo=dt.UTC),
    )
    try:
        settings, _ = services.settings.get()
        assert settings.time_zone == "America/Chicago"
        viewer = Actor(0, "viewer", "Viewer", Role.NURSE)
        rows = {r.mrn: r for r in services.patients.list_patients(viewer)}
        assert rows["RIV-1"].pump_status == "SynchroMed II 20 mL"
        overview = services.refills.overview(viewer, rows["RIV-1"].id)
        assert overview.reservoir is not None
        # 09:30 Chicago (CDT, UTC−5) on 1 Oct; 0.2 mL/day; alarm after 90 days.
        filled = dt.datetime(2026, 10, 1, 14, 30, tzinfo=dt.UTC)
        assert overview.reservoir.forecast.alarm_at == filled + dt.timedelta(days=90)
    finally:
        services.close()


@pytest.mark.sqlite_only  # import-csv --db PATH writes a SQLite file
def test_one_bad_row_means_nothing_is_imported(tmp_path: Path, capsys) -> None:
    db = tmp_path / "clinic.sqlite3"
    bad = [
        *GOOD,
        "RIV-3,Bad,Date,1980-02-30,spinal,synchromed-ii-20,2000,400,2026-10-01T09:30,20\n",
        "RIV-4,Too,Full,1980-02-01,spinal,synchromed-ii-20,2000,400,2026-10-01T09:30,25\n",
        "RIV-1,Dup,Mrn,1980-02-01,martian,nope,750,-5,tomorrow,20\n",
    ]
    assert main(["import-csv", "--db", str(db), str(write(tmp_path, *bad))]) == 2
    err = capsys.readouterr().err.splitlines()
    assert all(line.startswith("error:") for line in err)
    text = "\n".join(err)
    assert "line 4: date_of_birth must be a real date" in text
    assert "line 5: volume_after_refill_ml cannot exceed the SynchroMed II 20 mL reservoir" in text
    assert "line 6: origin must be spinal or cerebral" in text
    assert "line 6: pump_model must be a catalog id" in text
    assert "line 6: dose_mcg_per_day must be between 0 and 3000" in text
    assert "line 6: last_refill_at must be a date and time" in text
    assert "nothing was imported" in err[-1]
    assert count_patients(db) == 0


@pytest.mark.sqlite_only  # import-csv --db PATH writes a SQLite file
def test_duplicate_mrns_in_file_or_database_are_refused(tmp_path: Path, capsys) -> None:
    db = tmp_path / "clinic.sqlite3"
    assert main(["import-csv", "--db", str(db), str(write(tmp_path, GOOD[0]))]) == 0
    again = write(tmp_path, GOOD[1], GOOD[1], GOOD[0].replace("RIV-1", "riv-1"))
    assert main(["import-csv", "--db", str(db), str(again)]) == 2
    text = capsys.readouterr().err
    assert "line 3: mrn RIV-2 is repeated (first on line 2)" in text
    assert "line 4: mrn RIV-1 is already in the database" in text
    assert count_patients(db) == 1


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--tz", "Mars/Base"], "--tz"),
        ([], "no such file"),
    ],
)
def test_command_errors(tmp_path: Path, capsys, args: list[str], words: str) -> None:
    target = str(tmp_path / "missing.csv") if not args else str(write(tmp_path, *GOOD))
    code = main(["import-csv", "--db", str(tmp_path / "c.sqlite3"), *args, target])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and words in err


def test_missing_columns_are_named(tmp_path: Path, capsys) -> None:
    path = tmp_path / "short.csv"
    path.write_text("mrn,family_name\nRIV-1,Okafor\n", encoding="utf-8")
    assert main(["import-csv", "--db", str(tmp_path / "c.sqlite3"), str(path)]) == 2
    assert "missing column(s): given_name" in capsys.readouterr().err


def test_import_rows_on_the_test_database(services, reference) -> None:
    """The import itself (what import-csv calls) on either engine: all rows, then none."""
    zone = zoneinfo.ZoneInfo("Europe/London")
    now = services.context.now()

    def parse(*lines: str) -> list[ImportRow]:
        reader = csv.DictReader(io.StringIO(HEADER + "".join(lines)))
        rows = [
            parse_row(
                reader.line_num,
                dict(raw),
                today=now.astimezone(zone).date(),
                zone=zone,
                now=now,
                pump_models={m.id: m for m in reference.pump_models},
                concentrations=[
                    d.concentration_mcg_per_ml
                    for d in reference.drug_products
                    if not d.screening_only
                ],
            )
            for raw in reader
        ]
        assert all(isinstance(row, ImportRow) for row in rows), rows
        return rows  # type: ignore[return-value]

    assert import_rows(services.context, parse(*GOOD)) == 2
    with pytest.raises(ImportRejected, match="1 problem"):
        import_rows(services.context, parse(GOOD[0]))
    viewer = Actor(0, "viewer", "Viewer", Role.NURSE)
    mrns = sorted(r.mrn for r in services.patients.list_patients(viewer))
    assert mrns == ["RIV-1", "RIV-2"]
