"""``pumpclinic audit-verify``: is the audit chain intact?"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from pumpclinic.commands import CommandError
from pumpclinic.db.models import AuditChainHead, AuditEntry
from pumpclinic.services.audit import verify_chain
from pumpclinic.services.audit_key import default_key_path, load_or_create_key

EXIT_BROKEN = 1


def add_parsers(commands: Any) -> None:
    parser = commands.add_parser(
        "audit-verify",
        help="check that no audit entry was changed, deleted or inserted outside PumpClinic",
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
    try:
        with Session(engine) as session:
            entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id))
            head = session.get(AuditChainHead, 1)
            result = verify_chain(key, entries, head)
    except SQLAlchemyError as exc:
        raise CommandError(
            f"--db {db}: cannot read its audit log ({exc.__class__.__name__})"
        ) from exc
    finally:
        engine.dispose()
    if result.ok:
        print(f"Audit chain intact: {result.checked} entries in {db}")
        return 0
    print(
        f"Audit chain BROKEN at entry {result.broken_entry_id}: {result.reason} "
        f"({result.checked} entries before it are intact)"
    )
    return EXIT_BROKEN
