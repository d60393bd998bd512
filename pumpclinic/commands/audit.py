"""``pumpclinic audit-verify``: is the audit chain intact, do the clinical rows match it, and
do the kept forecasts the alert list would reuse match their pumps' rows?"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from pumpclinic.commands import CommandError
from pumpclinic.commands.options import parse_time
from pumpclinic.db.engine import current_revision
from pumpclinic.db.models import AuditChainHead, AuditEntry
from pumpclinic.reference_files import load_reference
from pumpclinic.services.audit import verify_chain
from pumpclinic.services.audit_key import default_key_path, load_or_create_key
from pumpclinic.services.integrity import (
    FORECASTS_KEPT_FROM_REVISION,
    ROWS_CHECKED_FROM_REVISION,
    ForecastCheck,
    RowCheck,
    check_kept_forecasts,
    check_rows,
)
from pumpclinic.services.row_seals import ROW_SEALS_FROM_REVISION, heads_state
from pumpclinic.services.settings import clinic_zone

EXIT_BROKEN = 1
MAX_PROBLEM_LINES = 200


def add_parsers(commands: Any) -> None:
    parser = commands.add_parser(
        "audit-verify",
        help=(
            "check that no audit entry, and no clinical row, was changed, deleted or inserted"
            " outside PumpClinic"
        ),
    )
    parser.add_argument("--db", type=Path, required=True, metavar="PATH", help="SQLite file")
    parser.add_argument(
        "--key-file",
        type=Path,
        metavar="PATH",
        help=f"the audit key (default {default_key_path()})",
    )
    parser.add_argument(
        "--as-of",
        metavar="T",
        help="check the kept forecasts the alert list would reuse at this ISO 8601 time"
        " (default: now); without an offset, the clinic's wall-clock time",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    db: Path = args.db.expanduser().resolve()
    if not db.is_file():
        raise CommandError(f"--db {db}: no such database file")
    key_path: Path = args.key_file or default_key_path()
    if not key_path.is_file():
        raise CommandError(f"--key-file {key_path}: no audit key there")
    key = load_or_create_key(key_path)
    # Read-only: verifying never changes (or creates, or migrates) the database.
    engine = create_engine(f"sqlite+pysqlite:///file:{db}?mode=ro&uri=true")
    rows: RowCheck | None = None
    forecasts: ForecastCheck | None = None
    try:
        revision = current_revision(engine)
        with Session(engine) as session:
            as_of = dt.datetime.now(dt.UTC)
            if args.as_of is not None:
                zone = clinic_zone(session)
                as_of = parse_time("--as-of", args.as_of, zone, zone.key)
            entries = session.scalars(
                select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=2000)
            )
            head = session.get(AuditChainHead, 1)
            sealed = revision is not None and revision >= ROW_SEALS_FROM_REVISION
            tables = heads_state(session.connection()) if sealed else ""
            result = verify_chain(key, entries, head, tables)
            if revision is not None and revision >= ROWS_CHECKED_FROM_REVISION:
                # Seals and their heads from row seals on (a database not yet opened by
                # this version has none: its rows are checked against the log alone).
                rows = check_rows(session, key if sealed else None)
            if revision is not None and revision >= FORECASTS_KEPT_FROM_REVISION:
                forecasts = check_kept_forecasts(session, load_reference(), as_of)
    except SQLAlchemyError as exc:
        raise CommandError(
            f"--db {db}: cannot read its audit log ({exc.__class__.__name__})"
        ) from exc
    finally:
        engine.dispose()
    if result.ok:
        print(f"Audit chain intact: {result.checked} entries in {db}")
    else:
        print(
            f"Audit chain BROKEN at entry {result.broken_entry_id}: {result.reason} "
            f"({result.checked} entries before it are intact)"
        )
    if rows is None:
        print(
            "Clinical rows not checked: the database was last opened by a version of"
            " PumpClinic that did not audit them in full; open it once with this version."
        )
    elif rows.ok:
        print(
            f"Clinical rows match the audit trail: {rows.rows_checked} rows in"
            f" {rows.tables_checked} tables"
        )
    else:
        for problem in rows.problems[:MAX_PROBLEM_LINES]:
            print(problem.describe())
        more = len(rows.problems) - MAX_PROBLEM_LINES
        if more > 0:
            print(f"... and {more} more rows that differ from the audit trail")
        print(
            f"Clinical rows DIFFER from the audit trail: {len(rows.problems)} of"
            f" {rows.rows_checked} rows in {rows.tables_checked} tables"
        )
    if forecasts is not None:
        _print_forecasts(forecasts)
    if result.ok and (rows is None or rows.ok) and (forecasts is None or forecasts.ok):
        return 0
    return EXIT_BROKEN


def _print_forecasts(check: ForecastCheck) -> None:
    if check.missing_triggers:
        print(
            f"Kept-forecast triggers MISSING: {', '.join(check.missing_triggers)}. Without"
            " them a kept forecast cannot be trusted: the alert list computes every forecast"
            " and keeps none until they are back."
        )
        return
    for problem in check.problems[:MAX_PROBLEM_LINES]:
        print(problem.describe())
    more = len(check.problems) - MAX_PROBLEM_LINES
    if more > 0:
        print(f"... and {more} more kept forecasts that differ from their pumps' rows")
    checked = (
        f"{check.checked} checked, every one the alert list would reuse as of"
        f" {check.as_of.isoformat(timespec='minutes')}"
    )
    others = check.kept - check.checked
    if others:
        checked += f"; {others} others would not be reused (computed again at the next read)"
    if check.problems:
        print(f"Kept forecasts DIFFER from their pumps' rows: {len(check.problems)} of {checked}")
    else:
        print(f"Kept forecasts match their pumps' rows: {checked}")
