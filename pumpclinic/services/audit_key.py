"""The audit key: a secret kept apart from the database, so that nobody who can only edit
the database file can forge the audit chain."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import platformdirs

KEY_FILE_ENV = "PUMPCLINIC_AUDIT_KEY_FILE"
KEY_BYTES = 32


def default_key_path() -> Path:
    override = os.environ.get(KEY_FILE_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir("PumpClinic", appauthor=False)) / "audit.key"


def load_or_create_key(path: Path | None = None) -> bytes:
    """Read the key, creating it (readable by its owner only) on first use."""
    path = path or default_key_path()
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(KEY_BYTES)
        # O_EXCL: two programs starting at once cannot both write a different key.
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_key(path)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(key.hex() + "\n")
        return key
    except ValueError as exc:
        raise ValueError(f"audit key file {path} is damaged: it must hold a hex key") from exc
    if len(key) < 16:
        raise ValueError(f"audit key file {path} holds a key that is too short")
    return key
