"""The ``pumpclinic`` command: with no subcommand it opens the GUI; subcommands are the
headless tools. Errors a user can fix are one clear line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import threading
from collections.abc import Sequence
from importlib import import_module
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import platformdirs

from pumpclinic.commands import CommandError
from pumpclinic.services.errors import ServiceError

if TYPE_CHECKING:
    from pumpclinic.domain.reference import Reference
    from pumpclinic.services.clinic import Services

# The database layer (SQLAlchemy, Alembic) and the headless commands are imported where they
# are used: the GUI puts its first window on screen before it needs them.

APP_NAME = "PumpClinic"
EXIT_USAGE = 2


class CliError(CommandError):
    """A problem with the command line or its inputs; the message is shown as is."""


class ArgumentParser(argparse.ArgumentParser):
    """Usage errors as one ``error: ...`` line on stderr and exit status 2, like all others."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see: {self.prog} --help)\n")


# Modules that add headless subcommands (see pumpclinic.commands).
COMMAND_MODULES: tuple[str, ...] = (
    "pumpclinic.commands.screening",
    "pumpclinic.commands.refills",
    "pumpclinic.commands.importing",
    "pumpclinic.commands.audit",
    "pumpclinic.commands.backups",
    "pumpclinic.commands.alerts",
)


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_db_path(demo: bool) -> Path:
    return data_dir() / ("demo-clinic.sqlite3" if demo else "pumpclinic.sqlite3")


def log_path() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)) / "pumpclinic.log"


def _setup_logging() -> Path | None:
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = RotatingFileHandler(
            path, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
        )
    except OSError:
        handler = logging.StreamHandler(sys.stderr)
        path_or_none = None
    else:
        path_or_none = path
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("pumpclinic")
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    return path_or_none


def _add_database_options(parser: argparse.ArgumentParser, *, subcommand: bool) -> None:
    # On a subcommand the options default to "absent", so `pumpclinic --db X init` and
    # `pumpclinic init --db X` mean the same.
    default = argparse.SUPPRESS if subcommand else None
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--db", type=Path, metavar="PATH", default=default, help="SQLite database file"
    )
    where.add_argument(
        "--database-url",
        metavar="URL",
        default=default,
        help="SQLAlchemy URL of a database server, e.g. postgresql+psycopg://user@host/clinic",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="pumpclinic",
        description="PumpClinic: intrathecal baclofen pump clinic. "
        "With no command, opens the application.",
    )
    _add_database_options(parser, subcommand=False)
    parser.add_argument(
        "--demo",
        action="store_true",
        help="open the demo clinic (created on first use in its own database file)",
    )
    # Start-up timing (tests/benchmarks): sign in as USERNAME without the dialog, with the
    # password from $PUMPCLINIC_BENCHMARK_PASSWORD; at the main window's first paint print
    # one JSON line (seconds since the process started, resident memory) and quit.
    parser.add_argument("--benchmark-startup", metavar="USERNAME", help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)

    init = commands.add_parser("init", help="create or upgrade a clinic database")
    _add_database_options(init, subcommand=True)

    demo = commands.add_parser("demo", help="create a demo clinic database")
    _add_database_options(demo, subcommand=True)
    demo.add_argument("--patients", type=int, default=36, help="number of patients (default 36)")
    demo.add_argument("--years", type=int, default=2, help="years of history (default 2)")

    check = commands.add_parser(
        "check-resources", help="validate the reference data files (pumps, drugs, leaflet)"
    )
    check.add_argument("--resources", type=Path, metavar="DIR", help="folder to check")
    for module in COMMAND_MODULES:
        import_module(module).add_parsers(commands)
    return parser


def _database(args: argparse.Namespace, demo: bool) -> tuple[str, str]:
    """The URL and a label for the status bar and messages."""
    if args.db is not None and args.database_url:
        raise CliError("give either --db or --database-url, not both")
    if args.database_url:
        return args.database_url, _redact(args.database_url)
    path: Path = args.db if args.db is not None else default_db_path(demo)
    path = path.expanduser().resolve()
    if path.exists() and path.is_dir():
        raise CliError(f"--db {path}: is a folder, not a database file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"--db {path}: cannot create its folder ({exc.strerror})") from exc
    return f"sqlite+pysqlite:///{path}", str(path)  # pumpclinic.db.engine.sqlite_url


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "the database server"


def _open(args: argparse.Namespace, reference: Reference, demo: bool) -> Services:
    from pumpclinic.services.clinic import open_clinic

    url, label = _database(args, demo)
    return open_clinic(url, reference, database_label=label)


class _GuiOptionsOnly(Exception):
    pass


class _GuiParser(ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _GuiOptionsOnly(message)


def _gui_arguments(argv: Sequence[str] | None) -> argparse.Namespace | None:
    """The options when ``argv`` opens the application (no command, no --help), else None.

    The application needs only the global options: it starts without importing the headless
    commands (and the database layer they load). Anything else, errors included, goes to the
    full parser.
    """
    parser = _GuiParser(prog="pumpclinic", add_help=False)
    _add_database_options(parser, subcommand=False)
    parser.add_argument("--demo", action="store_true")
    parser.add_argument("--benchmark-startup", metavar="USERNAME")
    try:
        args, rest = parser.parse_known_args(argv)
    except _GuiOptionsOnly:
        return None
    if rest:
        return None
    args.command = None
    return args


def _positive(name: str, value: int, high: int) -> int:
    if not 1 <= value <= high:
        raise CliError(f"{name} must be between 1 and {high} (got {value})")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _gui_arguments(argv)
    if args is None:
        args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (CommandError, ServiceError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as error:
        if not _is_reference_data_error(error):
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _is_reference_data_error(error: BaseException) -> bool:
    # Imported only when needed: the GUI's first window comes before the reference data.
    from pumpclinic.domain.reference import ReferenceDataError

    return isinstance(error, ReferenceDataError)


def _run(args: argparse.Namespace) -> int:
    from pumpclinic.reference_files import load_reference, resources_dir

    if args.command == "check-resources":
        folder = args.resources or resources_dir()
        reference = load_reference(folder)
        print(
            f"{folder}: ok — {len(reference.pump_models)} pump models, "
            f"{len(reference.drug_products)} drug products, "
            f"{len(reference.screening_protocols)} screening protocols, "
            f"{len(reference.leaflet.interacting_medicines)} interacting medicines"
        )
        return 0

    if args.command is None:
        return _run_gui(args)
    handler = getattr(args, "handler", None)
    if handler is not None:
        return int(handler(args))
    reference = load_reference()
    if args.command == "init":
        services = _open(args, reference, demo=False)
        print(f"Database ready: {services.context.database_label}")
        services.close()
        return 0
    if args.command == "demo":
        from pumpclinic.services.demo import create_demo_clinic

        _positive("--patients", args.patients, 100_000)
        _positive("--years", args.years, 30)
        services = _open(args, reference, demo=True)
        try:
            summary = create_demo_clinic(services.context, patients=args.patients, years=args.years)
        finally:
            services.close()
        print(f"Demo clinic created in {services.context.database_label}: {summary}")
        return 0
    raise CliError(f"unknown command {args.command}")


def _daily_backup(db: Path) -> None:
    """At most once a day: a rotated copy beside the database."""
    from pumpclinic.services.backup import automatic_backup

    log = logging.getLogger("pumpclinic")
    try:
        made = automatic_backup(db, db.parent / "backups" / db.stem, dt.date.today())
    except (ServiceError, OSError) as error:
        # A failed backup must not keep the clinic from working; it must be seen in the log.
        log.warning("automatic backup failed: %s", error)
        print(f"warning: automatic backup failed: {error}", file=sys.stderr)
    except Exception as error:  # a bug: logged with its traceback, the clinic goes on
        log.exception("automatic backup failed")
        print(f"warning: automatic backup failed: {error!r}", file=sys.stderr)
    else:
        if made is not None:
            log.info("automatic backup written to %s", made)


def start_daily_backup(db: Path) -> threading.Thread:
    """The daily backup in the background, on its own SQLite connections.

    Not a daemon thread: quitting PumpClinic during a backup waits for it to finish rather
    than leave half a copy behind.
    """
    thread = threading.Thread(target=_daily_backup, args=(db,), name="daily-backup")
    thread.start()
    return thread


def _run_gui(args: argparse.Namespace) -> int:
    from pumpclinic.ui.startup import PASSWORD_ENV, StartupReport

    report = StartupReport() if args.benchmark_startup else None
    if report is not None:
        report.mark("pyside6_imported")
    from pumpclinic.ui.app import (
        OpenedClinic,
        make_application,
        run_gui,
        run_timed_start,
        show_startup_error,
    )
    from pumpclinic.ui.errors import set_log_path

    if report is not None:
        report.mark("gui_imported")
    set_log_path(_setup_logging())
    try:
        url, label = _database(args, args.demo)
    except CliError as error:
        make_application()
        show_startup_error(str(error))
        raise
    opened: list[Services] = []

    def open_clinic() -> OpenedClinic:
        """Runs once the first window is on screen."""
        from pumpclinic.domain.reference import ReferenceDataError
        from pumpclinic.reference_files import load_reference
        from pumpclinic.services.clinic import open_clinic

        try:
            services = open_clinic(url, load_reference(), database_label=label)
        except (ServiceError, ReferenceDataError) as error:
            # Started from a desktop there is no terminal to read: say it in a window too.
            show_startup_error(str(error))
            raise
        opened.append(services)
        if not args.demo:
            return OpenedClinic(services)
        from pumpclinic.services.demo import DEMO_USERS, create_demo_clinic, is_demo_populated
        from pumpclinic.ui.login import demo_note

        if not is_demo_populated(services.context):
            create_demo_clinic(services.context)
        nurse = next(u for u in DEMO_USERS if u.role.value == "nurse")
        return OpenedClinic(services, (nurse.username, nurse.password), demo_note(DEMO_USERS))

    try:
        if report is not None:
            # No backup here: it would start after the measured moment, and this run ends
            # there.
            password = os.environ.get(PASSWORD_ENV, "")
            return run_timed_start(open_clinic, args.benchmark_startup, password, label, report)
        # The daily backup copies the whole database: it starts once the main window is on
        # screen, so that it never delays the clinic's first sight of its patients.
        backup_db = None if args.database_url else Path(label)
        return run_gui(
            open_clinic,
            when_painted=(lambda: start_daily_backup(backup_db)) if backup_db else None,
        )
    finally:
        for services in opened:
            services.close()


if __name__ == "__main__":
    sys.exit(main())
