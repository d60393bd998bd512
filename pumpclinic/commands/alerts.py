"""``pumpclinic alerts``: the overdue-refill worklist, headless.

    pumpclinic alerts --db PATH [--as-of T] [--json]

Most urgent first (most severe, then soonest deadline). ``--json`` prints one JSON list, each
item with at least ``mrn``, ``name``, ``kind``, ``severity``, ``refill_due`` (YYYY-MM-DD or
null), ``alarm_at``, ``empty_at`` and ``booked_at`` (ISO 8601 in the clinic's zone, or null);
without it, a table for the printed morning list.

Reading never creates, changes or migrates a database: the file is opened read-only, and a
missing file, a folder, or a database of another schema version is an ``error:`` line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import sys
import textwrap
import zoneinfo
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from pumpclinic.commands import CommandError
from pumpclinic.commands.options import iso_in, parse_time
from pumpclinic.db.engine import current_revision, head_revision
from pumpclinic.db.models import ClinicSettings
from pumpclinic.domain.alerts import SEVERITIES_MOST_SEVERE_FIRST
from pumpclinic.reference_files import load_reference
from pumpclinic.services.alerts import AlertList, AlertRow, read_alerts

# The printed list: columns that fit a landscape page.
_COLUMNS = (("SEVERITY", 11), ("PATIENT", 24), ("MRN", 12), ("DEADLINE", 25), ("BOOKED", 17))
_WHAT_WIDTH = 54


def add_parsers(commands: Any) -> None:
    parser = commands.add_parser(
        "alerts",
        help="the overdue-refill worklist, most urgent first (reads the database only)",
        description="Every implanted pump's alerts as of a time, most severe first, then"
        " soonest deadline: refill due soon, overdue, past the low-reservoir alarm, projected"
        " empty, booked late, drug stability passed, battery replacement, screening doses.",
    )
    parser.add_argument(
        "--db",
        type=Path,
        required=True,
        metavar="PATH",
        help="the clinic's SQLite file (opened read-only; never created)",
    )
    parser.add_argument(
        "--as-of",
        metavar="T",
        help="ISO 8601 time to evaluate at (default: now); without an offset, the clinic's"
        " wall-clock time",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON list")
    parser.set_defaults(handler=alerts_command)


def alerts_command(args: argparse.Namespace) -> int:
    path: Path = args.db.expanduser()
    if not path.exists():
        raise CommandError(f"--db {path}: no such database file (reading never creates one)")
    if path.is_dir():
        raise CommandError(f"--db {path}: is a folder, not a database file")
    reference = load_reference()
    engine = read_only_engine(path)
    try:
        _require_current_schema(engine, path)
        with Session(engine) as session:
            zone_name = session.scalar(select(ClinicSettings.time_zone))
            if zone_name is None:
                raise CommandError(f"--db {path}: has no clinic settings (not a clinic database)")
            zone = zoneinfo.ZoneInfo(zone_name)
            as_of = (
                dt.datetime.now(dt.UTC)
                if args.as_of is None
                else parse_time("--as-of", args.as_of, zone, zone_name)
            )
            result = read_alerts(session, reference, as_of)
    except SQLAlchemyError as error:
        reason = getattr(error, "orig", None) or error
        raise CommandError(f"--db {path}: cannot read it as a clinic database ({reason})") from None
    finally:
        engine.dispose()
    if result.unforecastable:
        who = ", ".join(f"{mrn} (pump {pump})" for pump, _p, _name, mrn in result.unforecastable)
        print(
            f"note: {len(result.unforecastable)} implanted pump(s) have no forecast (no fill or"
            f" no program in force at it), so no alert can be worked out: {who}",
            file=sys.stderr,
        )
    try:
        if args.json:
            rows = [alert_json(row, result.zone) for row in result.rows]
            print(json.dumps(rows, ensure_ascii=False))
        else:
            print_table(result)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. piped into `head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


def read_only_engine(path: Path) -> Engine:
    """An engine on the SQLite file that cannot write to it (nor create it)."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    engine = create_engine(
        "sqlite+pysqlite://",
        creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False),
    )

    def on_connect(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        try:
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.execute("PRAGMA query_only=ON")
            # Read through memory-mapped pages: one pass over the latest events, no copies.
            cursor.execute("PRAGMA mmap_size=268435456")
        finally:
            cursor.close()

    event.listen(engine, "connect", on_connect)
    return engine


def _require_current_schema(engine: Engine, path: Path) -> None:
    try:
        revision = current_revision(engine)
    except SQLAlchemyError as error:
        reason = getattr(error, "orig", None) or error
        raise CommandError(f"--db {path}: cannot open it as a database ({reason})") from None
    head = head_revision()
    if revision is None:
        raise CommandError(f"--db {path}: not a PumpClinic database (no schema version)")
    if revision != head:
        raise CommandError(
            f"--db {path}: its schema is version {revision}, this PumpClinic reads {head};"
            f" open it once in the application (or run `pumpclinic init --db {path}`) to"
            " upgrade it"
        )


def alert_json(row: AlertRow, zone: zoneinfo.ZoneInfo) -> dict[str, object]:
    alert = row.alert
    last = row.last_contact
    return {
        "mrn": row.mrn,
        "name": row.patient_name,
        "kind": alert.kind.value,
        "severity": alert.severity.value,
        "refill_due": alert.refill_due.isoformat() if alert.refill_due else None,
        "alarm_at": iso_in(alert.alarm_at, zone),
        "empty_at": iso_in(alert.empty_at, zone),
        "booked_at": iso_in(alert.booked_at, zone),
        "description": alert.description,
        "deadline": iso_in(alert.deadline, zone),
        "deadline_label": alert.deadline_label,
        "base_severity": alert.base_severity.value,
        "raised_by": [flag.value for flag in alert.raised_by],
        "also": [kind.value for kind in alert.also],
        "stability_limit_at": iso_in(alert.stability_limit_at, zone),
        "patient_id": alert.patient_id,
        "pump_id": alert.pump_id,
        "trial_id": alert.trial_id,
        "do_not_contact": row.do_not_contact,
        "last_contact_at": iso_in(last.at, zone) if last else None,
        "last_contact_outcome": last.outcome.value if last else None,
    }


def print_table(result: AlertList) -> None:
    zone = result.zone
    as_of = result.as_of.astimezone(zone)
    print(f"{result.clinic_name} — alerts as of {as_of:%a %d %b %Y %H:%M} ({zone.key})")
    counts = result.counts
    summary = " · ".join(f"{counts[s]} {s.value}" for s in SEVERITIES_MOST_SEVERE_FIRST)
    print(f"{result.pumps_checked} implanted pumps checked: {summary}")
    if not result.rows:
        print("\nNo alerts: every pump is refilled in time.")
        return
    print()
    header = "".join(name.ljust(width) for name, width in _COLUMNS) + "WHAT IS WRONG"
    print(header)
    print("-" * (sum(width for _name, width in _COLUMNS) + _WHAT_WIDTH))
    indent = " " * sum(width for _name, width in _COLUMNS)
    for row in result.rows:
        alert = row.alert
        severity = alert.severity.value.upper() + ("↑" if alert.raised_by else "")
        deadline = "—"
        if alert.deadline is not None:
            local = alert.deadline.astimezone(zone)
            when = f"{local:%a %d %b}" if alert.deadline_is_day else f"{local:%a %d %b %H:%M}"
            deadline = f"{alert.deadline_label} {when}"
        booked = f"{alert.booked_at.astimezone(zone):%a %d %b %H:%M}" if alert.booked_at else "—"
        cells = (severity, row.patient_name, row.mrn, deadline, booked)
        line = "".join(
            _fit(text, width) for text, (_name, width) in zip(cells, _COLUMNS, strict=True)
        )
        what = alert.description
        if row.do_not_contact:
            what += f" [DO NOT CONTACT: {row.do_not_contact_reason}]"
        wrapped = textwrap.wrap(what, _WHAT_WIDTH) or [""]
        print(line + wrapped[0])
        for more in wrapped[1:]:
            print(indent + more)
    if any(row.alert.raised_by for row in result.rows):
        print("\n↑ raised one level: spinal cord injury at/above T6, communication difficulties")
        print("  or a previous withdrawal (ITB-FACTS §6).")


def _fit(text: str, width: int) -> str:
    if len(text) >= width:
        text = text[: width - 2] + "…"
    return text.ljust(width)
