"""``pumpclinic import-csv``: bring a clinic's existing patient spreadsheet in."""

from __future__ import annotations

import argparse
import csv
import sys
import zoneinfo
from pathlib import Path
from typing import Any

from pumpclinic.commands import CommandError
from pumpclinic.domain.clinic import ClinicSettingsData, is_valid_time_zone
from pumpclinic.domain.importing import ImportRow, RowProblem, missing_columns, parse_row
from pumpclinic.reference_files import load_reference
from pumpclinic.services.clinic import open_clinic
from pumpclinic.services.importer import ImportRejected, import_rows

EXIT_INVALID = 2


def add_parsers(commands: Any) -> None:
    parser = commands.add_parser(
        "import-csv",
        help="import patients, pumps and last refills from a CSV spreadsheet (all or nothing)",
    )
    parser.add_argument("--db", type=Path, required=True, metavar="PATH", help="SQLite file")
    parser.add_argument(
        "--tz", metavar="ZONE", help="clinic time zone for a new database (default Europe/London)"
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the CSV file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.tz is not None and not is_valid_time_zone(args.tz):
        raise CommandError(f"--tz: '{args.tz}' is not an IANA time zone such as Europe/London")
    path: Path = args.file
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = missing_columns(header)
            if missing:
                raise CommandError(f"{path}: missing column(s): {', '.join(missing)}")
            raw_rows = [(reader.line_num, dict(row)) for row in reader]
    except FileNotFoundError as exc:
        raise CommandError(f"FILE {path}: no such file") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CommandError(f"FILE {path}: cannot read it as UTF-8 CSV ({exc})") from exc
    if not raw_rows:
        raise CommandError(f"FILE {path}: no rows to import")

    db: Path = args.db.expanduser().resolve()
    is_new = not db.exists()
    if db.is_dir():
        raise CommandError(f"--db {db}: is a folder, not a database file")
    db.parent.mkdir(parents=True, exist_ok=True)
    reference = load_reference()
    services = open_clinic(
        f"sqlite+pysqlite:///{db}",
        reference,
        database_label=str(db),
        default_settings=ClinicSettingsData(time_zone=args.tz) if args.tz else None,
    )
    try:
        settings, _version = services.settings.get()
        if args.tz and not is_new and settings.time_zone != args.tz:
            print(
                f"note: --tz ignored: {db} already has the clinic zone {settings.time_zone}",
                file=sys.stderr,
            )
        zone = zoneinfo.ZoneInfo(settings.time_zone)
        now = services.context.now()
        rows: list[ImportRow] = []
        problems: list[RowProblem] = []
        for line, raw in raw_rows:
            parsed = parse_row(
                line,
                raw,
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
            if isinstance(parsed, ImportRow):
                rows.append(parsed)
            else:
                problems.extend(parsed)
        if not problems:
            try:
                count = import_rows(services.context, rows)
            except ImportRejected as rejected:
                problems.extend(rejected.problems)
        if problems:
            for problem in problems:
                print(f"error: {path.name} {problem}", file=sys.stderr)
            print(
                f"error: {len(problems)} problem(s) in {path.name}; nothing was imported",
                file=sys.stderr,
            )
            return EXIT_INVALID
    finally:
        services.close()
    print(f"Imported {count} patients into {db}")
    return 0
