"""``pumpclinic audit-verify``: is the audit chain intact, and do the clinical rows match it?"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from pumpclinic.commands import CommandError
from pumpclinic.db.engine import current_revision
from pumpclinic.db.models import AuditChainHead, AuditEntry
from pumpclinic.services.audit import verify_chain
from pumpclinic.services.audit_key import default_key_path, load_or_create_key
from pumpclinic.services.integrity import ROWS_CHECKED_FROM_REVISION, RowCheck, check_rows

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
    try:
        revision = current_revision(engine)
        with Session(engine) as session:
            entries = session.scalars(
                select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=2000)
            )
            head = session.get(AuditChainHead, 1)
            result = verify_chain(key, entries, head)
            if revision is not None and revision >= ROWS_CHECKED_FROM_REVISION:
                rows = check_rows(session)
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
    if result.ok and (rows is None or rows.ok):
        return 0
    return EXIT_BROKEN
