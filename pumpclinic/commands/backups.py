"""``pumpclinic backup`` and ``pumpclinic restore`` for SQLite clinic databases."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pumpclinic.services.backup import backup, restore


def add_parsers(commands: Any) -> None:
    make = commands.add_parser("backup", help="copy a clinic database safely, even while in use")
    make.add_argument("--db", type=Path, required=True, metavar="PATH", help="SQLite file")
    make.add_argument("--to", type=Path, required=True, metavar="FILE", help="backup file")
    make.set_defaults(handler=run_backup)

    back = commands.add_parser("restore", help="replace a clinic database with a verified backup")
    back.add_argument("--from", dest="source", type=Path, required=True, metavar="FILE")
    back.add_argument("--db", type=Path, required=True, metavar="PATH", help="SQLite file")
    back.add_argument("--force", action="store_true", help="overwrite an existing database")
    back.set_defaults(handler=run_restore)


def run_backup(args: argparse.Namespace) -> int:
    info = backup(args.db.expanduser().resolve(), args.to.expanduser().resolve())
    print(f"Backed up {info.patients} patients to {info.path} (schema {info.schema_revision})")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    info = restore(
        args.source.expanduser().resolve(), args.db.expanduser().resolve(), force=args.force
    )
    print(f"Restored {info.patients} patients from {info.path} into {args.db}")
    return 0
