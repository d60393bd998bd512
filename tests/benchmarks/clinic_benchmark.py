"""How PumpClinic performs at clinic scale, against its budgets. A benchmark, not a test
(pytest does not collect this module): run it from the repository root,

    python -m tests.benchmarks [--patients 10000] [--years 5] [--db PATH] [--runs 5]
                               [--only GROUP ...]

It generates the demo clinic at that size into a temporary folder (``--db`` reuses a
database instead: it is copied there and never written), logs a morning's contact
attempts, measures everything (or the ``--only`` groups) ``--runs`` times and prints one
JSON object: for each measurement its median (with min and max), the baseline measured in
the same run where the budget has one, the budget, the ratios and whether the budget is
met; the machine; and the clinic's size. The README's "Performance" section says what each
measurement is.

Set ``PUMPCLINIC_AUDIT_KEY_FILE`` to the database's audit key with ``--db`` to keep the
copy's audit chain verifiable; otherwise a new key is used for the copy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

BARE_WINDOW_SCRIPT = Path(__file__).resolve().with_name("bare_window.py")
STARTED_AT_ENV = "PUMPCLINIC_STARTED_AT"  # pumpclinic.ui.startup.STARTED_AT_ENV
PASSWORD_ENV = "PUMPCLINIC_BENCHMARK_PASSWORD"  # pumpclinic.ui.startup.PASSWORD_ENV
SUBPROCESS_TIMEOUT_S = 300
# What --only can pick; the clinic's generation (or copy) and its size are always measured.
MEASUREMENT_GROUPS = ("cold_start", "alerts_cli", "alerts", "refills", "gui")

# What read_alerts asks of the database, written by hand: the alerts' baseline.
LATEST_EVENTS_SQL = """
SELECT p.id, p.patient_id, p.pump_model_id, p.reservoir_ml, p.low_reservoir_alarm_ml,
       p.battery_replace_by, f.id, f.performed_at, f.volume_after_ml, f.drug_product_id,
       k.inputs, k.daily_volume_ml, k.alarm_at, k.empty_at, k.stability_limit_at,
       k.refill_due, k.days_to_alarm, dp.id, dp.effective_from, dp.concentration_mcg_per_ml,
       dp.dose_mcg_per_day,
       dp.bolus_dose_mcg, dp.max_boluses_per_day, fs.starts_at_minute, fs.rate_mcg_per_day
FROM implanted_pumps p
LEFT JOIN refills f ON f.id = (
    SELECT r.id FROM refills r
    WHERE r.pump_id = p.id AND r.performed_at <= :as_of
      AND NOT EXISTS (SELECT 1 FROM refills c WHERE c.corrects_refill_id = r.id)
    ORDER BY r.performed_at DESC, r.id DESC LIMIT 1)
LEFT JOIN pump_forecasts k ON k.pump_id = p.id
LEFT JOIN dose_programs dp ON dp.pump_id = p.id AND dp.effective_from <= :as_of
  AND dp.effective_from >= (
    SELECT d.effective_from FROM dose_programs d
    WHERE d.pump_id = p.id AND d.effective_from <= f.performed_at
      AND (d.refill_id IS NULL
           OR NOT EXISTS (SELECT 1 FROM refills c WHERE c.corrects_refill_id = d.refill_id))
    ORDER BY d.effective_from DESC LIMIT 1)
  AND (dp.refill_id IS NULL
       OR NOT EXISTS (SELECT 1 FROM refills c WHERE c.corrects_refill_id = dp.refill_id))
LEFT JOIN flex_steps fs ON fs.program_id = dp.id
WHERE p.explanted_on IS NULL
ORDER BY p.id, dp.effective_from, fs.step_number
"""
BOOKINGS_SQL = """
SELECT patient_id, min(starts_at) FROM appointments
WHERE kind = 'refill' AND status IN ('booked', 'arrived') AND starts_at >= :day_start
GROUP BY patient_id
"""
CONTACTS_SQL = """
SELECT c.patient_id, c.at, c.method, c.outcome, c.promised_date, u.full_name
FROM contact_attempts c JOIN users u ON u.id = c.by_user_id
JOIN (SELECT id, row_number() OVER (PARTITION BY patient_id ORDER BY at DESC, id DESC) AS n
      FROM contact_attempts WHERE at <= :as_of) ranked ON ranked.id = c.id
WHERE ranked.n = 1
"""


@dataclass
class Measurement:
    """Samples of one measurement, its budget and, where the budget has one, its baseline."""

    unit: str
    samples: list[float]
    budget: float | None = None
    budget_below: bool = False  # "< budget" rather than "<= budget"
    baseline_of: str = ""
    baseline: list[float] = field(default_factory=list)
    max_times_baseline: float | None = None
    note: str = ""

    def report(self) -> dict[str, Any]:
        median = _round(statistics.median(self.samples)) if self.samples else None
        base = _round(statistics.median(self.baseline)) if self.baseline else None
        ratio = round(median / base, 2) if median is not None and base else None
        of_budget = round(median / self.budget, 2) if median is not None and self.budget else None
        met: bool | None = None
        if median is not None and self.budget is not None:
            met = median < self.budget if self.budget_below else median <= self.budget
            if self.max_times_baseline is not None:
                met = met and ratio is not None and ratio <= self.max_times_baseline
        out: dict[str, Any] = {
            "unit": self.unit,
            "median": median,
            "min": _round(min(self.samples)) if self.samples else None,
            "max": _round(max(self.samples)) if self.samples else None,
            "n": len(self.samples),
        }
        if self.baseline_of:
            out["baseline"] = base
        out["budget"] = self.budget
        if self.max_times_baseline is not None:
            out["max_times_baseline"] = self.max_times_baseline
        if self.baseline_of:
            out["ratio_to_baseline"] = ratio
        out["ratio_to_budget"] = of_budget
        out["met"] = met
        if self.note:
            out["note"] = self.note
        return out


def _round(value: float) -> float:
    # Tenths, but sub-millisecond figures keep their first significant digits.
    return round(value, 1) if abs(value) >= 1 else round(value, 3)


def timed_ms(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def sample_ms(action: Callable[[], object], runs: int) -> list[float]:
    return [timed_ms(action) for _ in range(runs)]


# --- the clinic ---------------------------------------------------------------------------


def prepare_clinic(args: argparse.Namespace, workdir: Path) -> tuple[Path, float | None]:
    """The working database in ``workdir``: a copy of ``--db``, or a new demo clinic
    (returning the seconds its generation took)."""
    from pumpclinic.reference_files import load_reference
    from pumpclinic.services.clinic import open_clinic
    from pumpclinic.services.demo import create_demo_clinic

    path = workdir / "clinic.sqlite3"
    if args.db is not None:
        source: Path = args.db.expanduser().resolve()
        if not source.is_file():
            raise SystemExit(f"error: --db {source}: no such database file")
        # A reader's view of the file, write-ahead log included.
        reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        target = sqlite3.connect(path)
        try:
            reader.backup(target)
        finally:
            target.close()
            reader.close()
        return path, None
    start = time.perf_counter()
    services = open_clinic(f"sqlite+pysqlite:///{path}", load_reference(), database_label=str(path))
    try:
        create_demo_clinic(services.context, patients=args.patients, years=args.years)
    finally:
        services.close()
    return path, time.perf_counter() - start


def database_size_mb(path: Path) -> float:
    """The file and its write-ahead log after a checkpoint, in MB (10^6 bytes)."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    wal = path.with_name(path.name + "-wal")
    return (path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)) / 1e6


def database_size_by_part(path: Path) -> dict[str, Any]:
    """Where the bytes are, in MB (10^6 bytes): the audit log with its indexes, and the rest
    (clinical tables, catalogs, settings and their indexes), from SQLite's page statistics."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
        ).fetchall()
        audit_objects = {
            str(name)
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_schema WHERE tbl_name = 'audit_log'"
            )
        }
    finally:
        connection.close()
    audit_bytes = sum(int(size) for name, size in rows if name in audit_objects)
    other_bytes = sum(int(size) for name, size in rows if name not in audit_objects)
    largest = {str(name): round(int(size) / 1e6, 1) for name, size in rows[:8]}
    return {
        "audit_log_with_indexes": round(audit_bytes / 1e6, 1),
        "everything_else": round(other_bytes / 1e6, 1),
        "largest_objects": largest,
    }


def clinic_size(path: Path) -> dict[str, int]:
    tables = {
        "patients": "patients",
        "pumps": "implanted_pumps",
        "refills": "refills",
        "dose_programs": "dose_programs",
        "appointments": "appointments",
        "audit_entries": "audit_log",
        "contact_attempts": "contact_attempts",
    }
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        size = {
            name: int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for name, table in tables.items()
        }
        size["implanted_pumps"] = int(
            connection.execute(
                "SELECT count(*) FROM implanted_pumps WHERE explanted_on IS NULL"
            ).fetchone()[0]
        )
    finally:
        connection.close()
    return size


def machine() -> dict[str, Any]:
    import PySide6
    import sqlalchemy
    from PySide6.QtCore import qVersion

    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "pyside6": PySide6.__version__,
        "qt": qVersion(),
        "sqlalchemy": sqlalchemy.__version__,
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "qt_platform": os.environ.get("QT_QPA_PLATFORM", ""),
    }


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# --- processes ----------------------------------------------------------------------------


def child_environment(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = os.environ.get("QT_QPA_PLATFORM", "offscreen")
    # The child's log goes to the work folder, not to the user's log.
    env["XDG_STATE_HOME"] = str(workdir / "state")
    return env


def first_paint(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Start ``command`` and read the JSON line it prints at its window's first paint."""
    env = {**env, STARTED_AT_ENV: repr(time.time())}
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{command[1:3]} failed ({done.returncode}): {done.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(lines[-1])
    return report


def measure_cold_start(
    path: Path, runs: int, env: dict[str, str], username: str, password: str
) -> tuple[Measurement, Measurement, Measurement, Measurement, dict[str, float]]:
    """The application started as ``pumpclinic --benchmark-startup``, alternating with the
    bare window: its first paint (budgeted), when its first page has its data, its
    resident memory once start-up is over, and the median of each step."""
    app = [
        sys.executable,
        "-m",
        "pumpclinic.cli",
        "--db",
        str(path),
        "--benchmark-startup",
        username,
    ]
    bare = [sys.executable, str(BARE_WINDOW_SCRIPT)]
    app_env = {**env, PASSWORD_ENV: password}
    app_reports, bare_reports = [], []
    for _ in range(runs):  # alternated, so that a busy moment spreads over both
        bare_reports.append(first_paint(bare, env))
        app_reports.append(first_paint(app, app_env))
    cold = Measurement(
        "ms",
        [r["painted_s"] * 1000 for r in app_reports],
        budget=1500,
        baseline_of="a bare PySide6 QMainWindow process, started the same way",
        baseline=[r["painted_s"] * 1000 for r in bare_reports],
        max_times_baseline=2,
    )
    content = Measurement(
        "ms",
        [r["content_ready_s"] * 1000 for r in app_reports],
        note="process start -> the first page (Patients for a nurse) painted with its data",
    )
    memory = Measurement(
        "MB",
        [r["vm_rss_mb"] for r in app_reports],
        budget=250,
        note="once start-up is over: first page loaded, alert count on the navigation",
    )
    bare_memory = Measurement("MB", [r["vm_rss_mb"] for r in bare_reports])
    steps: dict[str, float] = {}
    for step in app_reports[0]["steps_s"]:
        values = [r["steps_s"][step] for r in app_reports if step in r["steps_s"]]
        steps[step] = round(statistics.median(values) * 1000, 1)
    return cold, content, memory, bare_memory, steps


def measure_cli_alerts(path: Path, runs: int, env: dict[str, str]) -> Measurement:
    command = [sys.executable, "-m", "pumpclinic.cli", "alerts", "--db", str(path), "--json"]

    def process() -> None:
        done = subprocess.run(
            command, env=env, capture_output=True, timeout=SUBPROCESS_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr.decode(errors="replace")[-2000:])

    return Measurement("ms", sample_ms(process, runs), budget=2000)


# --- in process ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5, help="repetitions of each measurement")
    parser.add_argument(
        "--db", type=Path, metavar="PATH", help="measure a copy of this clinic database"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=MEASUREMENT_GROUPS,
        metavar="GROUP",
        help="measure only this group (repeatable): " + ", ".join(MEASUREMENT_GROUPS),
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    args.only = tuple(args.only or MEASUREMENT_GROUPS)

    workdir = Path(tempfile.mkdtemp(prefix="pumpclinic-benchmark-"))
    os.environ.setdefault("PUMPCLINIC_AUDIT_KEY_FILE", str(workdir / "audit.key"))
    load_at_start = load_average()
    try:
        report = run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report["machine"]["load_average_at_start"] = load_at_start
    report["machine"]["load_average_at_end"] = load_average()
    print(render(report))
    return 0


def render(report: dict[str, Any]) -> str:
    """One JSON object, readable: a line per top-level entry and per measurement."""
    lines = []
    for key, value in report.items():
        if isinstance(value, dict) and key == "measurements":
            inner = [f"  {json.dumps(name)}: {json.dumps(m)}" for name, m in value.items()]
            lines.append(f" {json.dumps(key)}: {{\n" + ",\n".join(inner) + "\n }")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}"


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from pumpclinic.reference_files import load_reference
    from pumpclinic.services.alerts import ContactInput
    from pumpclinic.services.clinic import open_clinic
    from pumpclinic.services.demo import DEMO_USERS

    measurements: dict[str, Measurement] = {}
    path, generated_s = prepare_clinic(args, workdir)
    measurements["generation"] = Measurement(
        "s",
        [generated_s] if generated_s is not None else [],
        budget=120,
        budget_below=True,
        note="" if generated_s is not None else "not measured: --db reuses a clinic",
    )
    measurements["database_size"] = Measurement(
        "MB",
        [database_size_mb(path)],
        budget=150,
    )
    size_by_part = database_size_by_part(path)
    size = clinic_size(path)

    reference = load_reference()
    services = open_clinic(f"sqlite+pysqlite:///{path}", reference, database_label=str(path))
    users = {u.role.value: u for u in DEMO_USERS}
    nurse = services.users.authenticate(users["nurse"].username, users["nurse"].password)
    staff = services.users.authenticate(users["staff"].username, users["staff"].password)
    now = services.context.now()
    # A morning's work: a call to every tenth patient on the list.
    for row in services.alerts.alerts(nurse, now).rows[::10]:
        services.alerts.log_contact(staff, ContactInput(row.patient_id, now, "phone", "no-answer"))
    size["contact_attempts"] = clinic_size(path)["contact_attempts"]

    env = child_environment(workdir)
    steps: dict[str, float] = {}
    if "cold_start" in args.only:
        cold, content, memory, bare_memory, steps = measure_cold_start(
            path, args.runs, env, users["nurse"].username, users["nurse"].password
        )
        measurements["cold_start"] = cold
        measurements["cold_start_content_ready"] = content
        measurements["resident_memory_after_start"] = memory
        measurements["bare_window_resident_memory"] = bare_memory
    if "alerts_cli" in args.only:
        measurements["alerts_cli_json_process"] = measure_cli_alerts(path, args.runs, env)
    alerts_info: dict[str, Any] = {}
    if "alerts" in args.only:
        alerts_info = measure_alerts(services, nurse, path, args.runs, measurements)
    if "refills" in args.only:
        measure_refills(services, nurse, users["clinician"].password, path, args.runs, measurements)
    if "gui" in args.only:
        measure_gui(services, nurse, path, args.runs, measurements)
    services.close()

    return {
        "benchmark": "PumpClinic at clinic scale",
        "date": dt.date.today().isoformat(),
        "command": "python -m tests.benchmarks " + " ".join(_argv_text(args)),
        "runs": args.runs,
        "machine": machine(),
        "clinic": {
            "database": str(args.db) if args.db else "generated (temporary, removed)",
            "patients_requested": None if args.db else args.patients,
            "years_requested": None if args.db else args.years,
            **size,
            **alerts_info,
        },
        "measurements": {name: m.report() for name, m in measurements.items()},
        "baselines": {name: m.baseline_of for name, m in measurements.items() if m.baseline_of},
        "cold_start_steps_median_ms": steps,
        "database_size_by_part_mb": size_by_part,
    }


def _argv_text(args: argparse.Namespace) -> list[str]:
    words = [f"--runs {args.runs}"]
    if args.only != MEASUREMENT_GROUPS:
        words += [f"--only {group}" for group in args.only]
    if args.db:
        words.insert(0, f"--db {args.db}")
    else:
        words[:0] = [f"--patients {args.patients}", f"--years {args.years}"]
    return words


def measure_alerts(
    services: Any, nurse: Any, path: Path, runs: int, measurements: dict[str, Measurement]
) -> dict[str, Any]:
    from pumpclinic.services.alerts import AlertService, read_alerts

    now = services.context.now()

    def cold() -> object:
        with services.context.unit_of_work() as session:
            return read_alerts(session, services.context.reference, now)

    warm_service = AlertService(services.context)
    warm_service.alerts(nurse, now)
    result = warm_service.alerts(nurse, now)

    from pumpclinic.db.types import to_stored_microseconds

    def sql() -> int:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            # SQLite keeps datetimes as integer microseconds since the epoch.
            as_of = to_stored_microseconds(now)
            local = now.astimezone(result.zone).replace(hour=0, minute=0, second=0, microsecond=0)
            day_start = to_stored_microseconds(local)
            rows = connection.execute(LATEST_EVENTS_SQL, {"as_of": as_of}).fetchall()
            rows += connection.execute(BOOKINGS_SQL, {"day_start": day_start}).fetchall()
            rows += connection.execute(CONTACTS_SQL, {"as_of": as_of}).fetchall()
            return len(rows)
        finally:
            connection.close()

    sql_ms = sample_ms(sql, runs)
    baseline = "hand-written SQL for the same latest-event rows (sqlite3, no ORM)"
    measurements["alerts_in_process_cold"] = Measurement(
        "ms",
        sample_ms(cold, runs),
        budget=200,
        baseline_of=baseline,
        baseline=sql_ms,
        max_times_baseline=5,
    )
    measurements["alerts_in_process_warm"] = Measurement(
        "ms",
        sample_ms(lambda: warm_service.alerts(nurse, now), runs),
        budget=200,
        baseline_of=baseline,
        baseline=sql_ms,
        max_times_baseline=5,
    )
    return {
        "alerts": len(result.rows),
        "alerts_by_severity": {s.value: n for s, n in result.counts.items()},
    }


def measure_refills(
    services: Any,
    nurse: Any,
    clinician_password: str,
    path: Path,
    runs: int,
    measurements: dict[str, Measurement],
) -> None:
    """The refill visit as the GUI saves it: preview, the second person's double check
    verified (argon2), then the refill recorded with its token, each time on another pump."""
    from pumpclinic.services.errors import ValidationFailed
    from pumpclinic.services.refills import DoubleCheck, RefillInput

    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        pump_ids = [
            row[0]
            for row in connection.execute(
                "SELECT id FROM implanted_pumps WHERE explanted_on IS NULL ORDER BY id"
            )
        ]
    finally:
        connection.close()
    previews: list[float] = []
    checks: list[float] = []
    records: list[float] = []
    clicks: list[float] = []
    step = max(1, len(pump_ids) // (runs * 4))
    for pump_id in pump_ids[::step]:
        if len(records) == runs:
            break
        overview = services.refills.overview_for_pump(nurse, pump_id)
        card = overview.card
        now = services.context.now()
        if card is None or card.program is None or card.last_fill_at is None:
            continue
        if card.last_fill_at > now - dt.timedelta(days=1) or card.program.dose_mcg_per_day <= 0:
            continue
        program = card.program
        drug_id = next(
            (
                product_id
                for product_id, _name, concentration in services.refills.drug_products(
                    nurse, pump_id
                )
                if concentration == program.concentration_mcg_per_ml
            ),
            None,
        )
        expected_ml = services.refills.expected_residual_ml(nurse, pump_id, now) or 0.0
        if drug_id is None:
            continue
        data = RefillInput(
            pump_id=pump_id,
            performed_at=now,
            aspirated_residual_ml=round(min(max(expected_ml, 0.0), card.reservoir_ml), 1),
            drug_product_id=drug_id,
            lot_number="BENCH-LOT-1",
            volume_added_ml=card.reservoir_ml,
            dose_mcg_per_day=program.dose_mcg_per_day,
        )
        check = DoubleCheck(
            "clinician",
            clinician_password,
            program.concentration_mcg_per_ml,
            program.dose_mcg_per_day,
        )
        try:
            start = time.perf_counter()
            preview = services.refills.preview(nurse, data)
            previews.append((time.perf_counter() - start) * 1000)
            if preview.needs_clinician:
                continue
            start = time.perf_counter()
            token = services.refills.verify_double_check(nurse, pump_id, check)
            checks.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            services.refills.record_refill(nurse, data, token)
            records.append((time.perf_counter() - start) * 1000)
            clicks.append(checks[-1] + records[-1])
        except ValidationFailed:
            continue
    if len(records) < runs:
        raise RuntimeError(f"only {len(records)} pumps could take a benchmark refill")
    measurements["record_refill"] = Measurement("ms", records, budget=50)
    measurements["refill_preview"] = Measurement("ms", previews)
    # The step before record_refill: the second person's password (argon2), the token.
    measurements["refill_password_check"] = Measurement("ms", checks)
    # What the nurse waits for on Save: both steps, one after the other.
    measurements["refill_save_click"] = Measurement(
        "ms",
        clicks,
        note="refill_password_check + record_refill of the same run: the Save click",
    )


def measure_gui(
    services: Any, nurse: Any, path: Path, runs: int, measurements: dict[str, Measurement]
) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from pumpclinic.ui.alerts import AlertsPage, AlertTableModel
    from pumpclinic.ui.app import make_application
    from pumpclinic.ui.bus import DataBus
    from pumpclinic.ui.patient_page import PatientPage
    from pumpclinic.ui.patients import PatientsPage

    existing = QApplication.instance()
    previous_look = (
        (existing.styleSheet(), existing.style().name())
        if isinstance(existing, QApplication)
        else None
    )
    app = make_application()  # the application's own style and style sheet
    bus = DataBus()
    now = services.context.now()
    widgets: list[Any] = []

    # The Patients page: type a surname letter by letter, then delete it.
    patients_page = PatientsPage(services, nurse, bus)
    widgets.append(patients_page)
    patients_page.resize(1280, 800)
    patients_page.show()
    app.processEvents()
    rows = patients_page.model.rowCount()
    surname = patients_page.model.row_at(rows // 2).family_name
    keystrokes: list[float] = []

    def keystroke(key: Any) -> None:
        QTest.keyClick(patients_page.search, key)
        app.processEvents()  # the filter's layout changes
        patients_page.repaint()  # and the page on screen, now

    for _ in range(runs):
        for letter in surname:
            keystrokes.append(timed_ms(lambda letter=letter: keystroke(letter)))
        for _letter in surname:
            keystrokes.append(timed_ms(lambda: keystroke(Qt.Key.Key_Backspace)))
    if patients_page.search.text():
        raise RuntimeError("the patient search was not emptied by the backspaces")
    measurements["patient_list_filter_keystroke"] = Measurement(
        "ms",
        keystrokes,
        budget=30,
        note=f"{rows} rows; typed {surname!r} and deleted it; max = slowest keystroke",
    )

    # A patient's page: the patients whose pumps have the longest history.
    patient_page = PatientPage(services, nurse, bus)
    widgets.append(patient_page)
    patient_page.resize(1280, 800)
    patient_page.show()
    app.processEvents()
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        patient_ids = [
            row[0]
            for row in connection.execute(
                "SELECT p.patient_id FROM implanted_pumps p JOIN refills r ON r.pump_id = p.id "
                "WHERE p.explanted_on IS NULL GROUP BY p.id ORDER BY count(*) DESC, p.id LIMIT ?",
                (runs,),
            )
        ]
    finally:
        connection.close()

    def open_patient(patient_id: int) -> None:
        patient_page.show_patient(patient_id)
        app.processEvents()  # layout
        patient_page.repaint()  # painted, chart included

    measurements["open_patient_page"] = Measurement(
        "ms",
        [timed_ms(lambda p=p: open_patient(p)) for p in patient_ids],
        budget=150,
    )

    # The Alerts page (no budget: for comparison between runs).
    alert_pages: list[AlertsPage] = []

    def build_alerts_page() -> None:
        page = AlertsPage(services, nurse, bus, clock=lambda: now)
        page.resize(1280, 800)
        page.show()
        app.processEvents()
        alert_pages.append(page)

    measurements["alerts_page_build"] = Measurement(
        "ms",
        sample_ms(build_alerts_page, max(1, min(runs, 3))),
    )
    alerts_page = alert_pages[-1]
    measurements["alerts_page_refresh"] = Measurement(
        "ms",
        sample_ms(lambda: (alerts_page.refresh(), app.processEvents()), runs),
    )
    result = services.alerts.alerts(nurse, now)

    def load_model() -> int:
        model = AlertTableModel()
        model.set_rows(result.rows, result.zone)
        return model.rowCount()

    measurements["alerts_model_load"] = Measurement("ms", sample_ms(load_model, runs))

    for page in alert_pages:
        page.timer.stop()
    for widget in [*widgets, *alert_pages]:
        widget.close()
        widget.deleteLater()
    app.processEvents()
    if previous_look is not None:  # leave a shared application (pytest's) as it was
        app.setStyleSheet(previous_look[0])
        app.setStyle(previous_look[1])
