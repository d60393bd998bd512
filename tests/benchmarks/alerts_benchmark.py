"""How fast is the alert list at clinic scale? A benchmark, not a test (pytest does not collect
this file): medians of several runs, printed as one JSON object.

    python -m tests.benchmarks.alerts_benchmark --patients 10000 --years 5 [--db PATH] [--runs 5]

Generates the demo clinic at that size into a temporary file (or reuses ``--db``, which is
created on first use), logs some contact attempts, then times:

(a) the in-process alert computation (``read_alerts``): cold (no forecast kept from an earlier
    evaluation) and warm (the GUI's once-a-minute re-evaluation);
(b) a hand-written SQL query reading the same latest-event rows (raw sqlite3, no ORM);
(c) ``pumpclinic alerts --json`` as a whole process;
(d) the Alerts page: building it (first evaluation, model load, first page) and its model load
    with the first page from a computed list.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# (b): what read_alerts asks of the database, written by hand.
LATEST_EVENTS_SQL = """
SELECT p.id, p.patient_id, p.pump_model_id, p.reservoir_ml, p.low_reservoir_alarm_ml,
       p.battery_replace_by, f.id, f.performed_at, f.volume_after_ml, f.drug_product_id,
       dp.id, dp.effective_from, dp.concentration_mcg_per_ml, dp.dose_mcg_per_day,
       dp.bolus_dose_mcg, dp.max_boluses_per_day, fs.starts_at_minute, fs.rate_mcg_per_day
FROM implanted_pumps p
LEFT JOIN refills f ON f.id = (
    SELECT r.id FROM refills r
    WHERE r.pump_id = p.id AND r.performed_at <= :as_of
      AND NOT EXISTS (SELECT 1 FROM refills c WHERE c.corrects_refill_id = r.id)
    ORDER BY r.performed_at DESC, r.id DESC LIMIT 1)
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


def median_ms(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--db", type=Path, help="reuse this demo database (made if missing)")
    args = parser.parse_args(argv)

    from pumpclinic.reference_files import load_reference
    from pumpclinic.services.alerts import AlertService, ContactInput, read_alerts
    from pumpclinic.services.clinic import open_clinic
    from pumpclinic.services.demo import DEMO_USERS, create_demo_clinic

    workdir = Path(tempfile.mkdtemp(prefix="alerts-benchmark-"))
    os.environ.setdefault("PUMPCLINIC_AUDIT_KEY_FILE", str(workdir / "audit.key"))
    path: Path = args.db or workdir / "demo.sqlite3"
    fresh = not path.exists()
    reference = load_reference()
    services = open_clinic(f"sqlite+pysqlite:///{path}", reference, database_label=str(path))
    generate_s = None
    if fresh:
        start = time.perf_counter()
        create_demo_clinic(services.context, patients=args.patients, years=args.years)
        generate_s = round(time.perf_counter() - start, 1)
    users = {u.role.value: u for u in DEMO_USERS}
    nurse = services.users.authenticate(users["nurse"].username, users["nurse"].password)
    staff = services.users.authenticate(users["staff"].username, users["staff"].password)
    now = services.context.now()
    if fresh:  # a morning's work: a call to every tenth patient on the list
        for row in services.alerts.alerts(nurse, now).rows[::10]:
            services.alerts.log_contact(
                staff, ContactInput(row.patient_id, now, "phone", "no-answer")
            )

    # (a) in process
    def cold() -> object:
        with services.context.unit_of_work() as session:
            return read_alerts(session, reference, now)

    warm_service = AlertService(services.context)
    warm_service.alerts(nurse, now)
    result = warm_service.alerts(nurse, now)
    in_process_cold = median_ms(cold, args.runs)
    in_process_warm = median_ms(lambda: warm_service.alerts(nurse, now), args.runs)

    # (b) the same latest-event rows by hand
    def sql() -> int:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            as_of = now.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ")
            local = now.astimezone(result.zone).replace(hour=0, minute=0, second=0, microsecond=0)
            day_start = local.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ")
            rows = connection.execute(LATEST_EVENTS_SQL, {"as_of": as_of}).fetchall()
            rows += connection.execute(BOOKINGS_SQL, {"day_start": day_start}).fetchall()
            rows += connection.execute(CONTACTS_SQL, {"as_of": as_of}).fetchall()
            return len(rows)
        finally:
            connection.close()

    sql_ms = median_ms(sql, args.runs)

    # (c) the headless command as a whole process
    command = [sys.executable, "-m", "pumpclinic.cli", "alerts", "--db", str(path), "--json"]

    def process() -> None:
        done = subprocess.run(command, capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.decode())

    cli_ms = median_ms(process, max(1, min(args.runs, 3)))

    # (d) the Alerts page
    from PySide6.QtWidgets import QApplication

    from pumpclinic.ui.alerts import AlertsPage, AlertTableModel
    from pumpclinic.ui.bus import DataBus

    app = QApplication.instance() or QApplication([])
    bus = DataBus()
    pages: list[AlertsPage] = []

    def build_page() -> None:
        page = AlertsPage(services, nurse, bus, clock=lambda: now)
        page.resize(1100, 700)
        page.show()
        app.processEvents()
        pages.append(page)

    page_ms = median_ms(build_page, max(1, min(args.runs, 3)))
    page = pages[-1]
    refresh_ms = median_ms(lambda: (page.refresh(), app.processEvents()), args.runs)

    def load_model() -> int:
        model = AlertTableModel()
        model.set_rows(result.rows, result.zone)
        return model.rowCount()

    model_ms = median_ms(load_model, args.runs)
    for built in pages:
        built.timer.stop()
        built.deleteLater()
    app.processEvents()
    services.close()
    if args.db is None:
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        json.dumps(
            {
                "patients": args.patients if fresh else None,
                "years": args.years if fresh else None,
                "database": str(path) if args.db else "(temporary, removed)",
                "generated_in_s": generate_s,
                "implanted_pumps": result.pumps_checked,
                "alerts": len(result.rows),
                "alerts_by_severity": {s.value: n for s, n in result.counts.items()},
                "runs": args.runs,
                "median_ms": {
                    "a_in_process_cold": in_process_cold,
                    "a_in_process_warm": in_process_warm,
                    "b_hand_written_sql": sql_ms,
                    "c_cli_alerts_json_process": cli_ms,
                    "d_page_build_first_page": page_ms,
                    "d_page_refresh": refresh_ms,
                    "d_model_load_first_page": model_ms,
                },
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
