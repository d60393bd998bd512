"""A process killed with SIGKILL in the middle of a write leaves the database exactly as
before that write (or, if it finished, exactly after it), and intact."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pumpclinic.cli import main

# SIGKILL during a write to a SQLite file, then PRAGMA integrity_check on that file.
pytestmark = pytest.mark.sqlite_only

ROWS = 1500
HEADER = (
    "mrn,family_name,given_name,date_of_birth,origin,pump_model,concentration_mcg_per_ml,"
    "dose_mcg_per_day,last_refill_at,volume_after_refill_ml\n"
)


def snapshot(db: Path) -> tuple[str, int, int, int]:
    with sqlite3.connect(db) as connection:
        integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
        counts = tuple(
            connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("patients", "implanted_pumps", "refills")
        )
    return (integrity, *counts)


@pytest.mark.slow
def test_sigkill_during_a_large_import_never_half_writes(tmp_path: Path) -> None:
    csv_file = tmp_path / "big.csv"
    lines = [
        f"RIV-{n:06d},Family{n},Given,1970-01-01,spinal,synchromed-ii-40,1000,300,"
        "2026-10-01T09:00+00:00,40\n"
        for n in range(ROWS)
    ]
    csv_file.write_text(HEADER + "".join(lines), encoding="utf-8")
    base = tmp_path / "base.sqlite3"
    seed = tmp_path / "seed.csv"
    seed.write_text(
        HEADER + "SEED-1,Seed,Patient,1960-05-05,cerebral,synchromed-ii-20,2000,"
        "400,2026-11-01T09:00+00:00,20\n",
        encoding="utf-8",
    )
    assert main(["import-csv", "--db", str(base), str(seed)]) == 0
    before = snapshot(base)
    assert before == ("ok", 1, 1, 1)
    after = ("ok", 1 + ROWS, 1 + ROWS, 1 + ROWS)

    rng = random.Random(20261126)
    outcomes = []
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    for attempt in range(12):
        db = tmp_path / f"attempt{attempt}.sqlite3"
        shutil.copy(base, db)
        process = subprocess.Popen(
            [sys.executable, "-m", "pumpclinic.cli", "import-csv", "--db", str(db), str(csv_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        time.sleep(rng.uniform(0.2, 4.0))
        finished = process.poll() is not None
        if not finished:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        state = snapshot(db)
        assert state in (before, after), (attempt, state)
        outcomes.append((finished, state == after))
    # The kills must really have landed mid-import, not only before or after it.
    assert any(not finished for finished, _ in outcomes)
