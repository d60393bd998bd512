"""SQLite backups through SQLite's online backup API: safe while the clinic is working."""

from __future__ import annotations

import datetime as dt
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from pumpclinic.services.errors import ServiceError

log = logging.getLogger("pumpclinic.backup")
KEEP_DEFAULT = 14
# A backup must hold these tables, or it is not a PumpClinic database.
REQUIRED_TABLES = frozenset({"alembic_version", "patients", "audit_log", "users"})
NAME_PREFIX = "pumpclinic-"


class BackupError(ServiceError):
    pass


@dataclass(frozen=True, slots=True)
class BackupInfo:
    path: Path
    patients: int
    schema_revision: str


def verify_backup(path: Path) -> BackupInfo:
    """Check a backup before trusting it: readable, intact, and a PumpClinic database."""
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"{path}: cannot open it ({exc})") from exc
    try:
        check = connection.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"{path}: damaged (integrity check: {check})")
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        missing = REQUIRED_TABLES - tables
        if missing:
            raise BackupError(
                f"{path}: not a PumpClinic database (missing {', '.join(sorted(missing))})"
            )
        revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        patients = connection.execute("SELECT count(*) FROM patients").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: not a readable SQLite database ({exc})") from exc
    finally:
        connection.close()
    return BackupInfo(path, int(patients), revision[0] if revision else "")


def backup(db_path: Path, to_path: Path) -> BackupInfo:
    """Copy the live database to ``to_path`` (written beside it, then renamed into place)."""
    if not db_path.is_file():
        raise BackupError(f"{db_path}: no such database file")
    to_path.parent.mkdir(parents=True, exist_ok=True)
    partial = to_path.with_name(to_path.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        target = sqlite3.connect(partial)
        try:
            source.backup(target)
            # A backup is one self-contained file: no write-ahead log beside it.
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
            source.close()
        verify_backup(partial)
        os.replace(partial, to_path)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"Backup of {db_path} to {to_path} failed: {exc}") from exc
    except BackupError:
        partial.unlink(missing_ok=True)
        raise
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"Backup to {to_path} failed: {exc.strerror}") from exc
    return verify_backup(to_path)


def restore(from_path: Path, db_path: Path, *, force: bool = False) -> BackupInfo:
    """Replace the database with a verified backup (through the backup API, WAL-safe)."""
    info = verify_backup(from_path)
    if db_path.exists() and not force:
        raise BackupError(f"{db_path} exists: restoring would overwrite it; add --force to do so")
    db_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        source = sqlite3.connect(f"file:{from_path}?mode=ro", uri=True)
        target = sqlite3.connect(db_path)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
    except sqlite3.Error as exc:
        raise BackupError(f"Restore into {db_path} failed: {exc}") from exc
    verify_backup(db_path)
    return info


def automatic_backup(
    db_path: Path, backup_dir: Path, today: dt.date, keep: int = KEEP_DEFAULT
) -> Path | None:
    """At most one backup a day, the newest ``keep`` kept. Returns the new file, if any."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    target = backup_dir / f"{NAME_PREFIX}{today:%Y%m%d}.sqlite3"
    made = None
    if not target.exists():
        backup(db_path, target)
        made = target
    backups = sorted(backup_dir.glob(f"{NAME_PREFIX}[0-9]*.sqlite3"))
    for old in backups[:-keep]:
        for path in (old, old.with_name(old.name + "-wal"), old.with_name(old.name + "-shm")):
            path.unlink(missing_ok=True)
        log.info("removed old backup %s", old)
    return made
