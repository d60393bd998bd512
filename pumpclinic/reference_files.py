"""Reads the reference data files (pump catalog, drugs, screening protocols, leaflet lists).

The files live in the top-level ``resources/`` folder; the ``PUMPCLINIC_RESOURCES``
environment variable points PumpClinic at another folder (a clinic's edited copy, a test).
Parsing and validation are in ``pumpclinic.domain.reference``.
"""

from __future__ import annotations

import json
from pathlib import Path

from pumpclinic.domain.reference import (
    DRUGS_FILE_NAME,
    LEAFLET_FILE_NAME,
    PUMPS_FILE_NAME,
    SCREENING_PROTOCOLS_FILE_NAME,
    Reference,
    ReferenceDataError,
    parse_drug_products,
    parse_leaflet,
    parse_pump_catalog,
    parse_screening_protocols,
)
from pumpclinic.resource_paths import RESOURCES_DIR, RESOURCES_ENV_VAR, resources_dir

__all__ = ["RESOURCES_DIR", "RESOURCES_ENV_VAR", "load_reference", "resources_dir"]


def load_reference(directory: Path | None = None) -> Reference:
    """Read and check the four reference files in ``directory`` (default: ``resources_dir()``).

    Raises ReferenceDataError naming the file for a missing or unreadable file, invalid JSON,
    or a value the domain rejects.
    """
    folder = resources_dir() if directory is None else directory
    return Reference(
        pump_models=parse_pump_catalog(_read_json(folder, PUMPS_FILE_NAME), PUMPS_FILE_NAME),
        drug_products=parse_drug_products(_read_json(folder, DRUGS_FILE_NAME), DRUGS_FILE_NAME),
        screening_protocols=parse_screening_protocols(
            _read_json(folder, SCREENING_PROTOCOLS_FILE_NAME), SCREENING_PROTOCOLS_FILE_NAME
        ),
        leaflet=parse_leaflet(_read_json(folder, LEAFLET_FILE_NAME), LEAFLET_FILE_NAME),
    )


def _read_json(folder: Path, file_name: str) -> object:
    path = folder / file_name
    try:
        # utf-8-sig: tolerate the byte-order mark some Windows editors write.
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ReferenceDataError(file_name, None, f"file not found: {path}") from None
    except UnicodeDecodeError as error:
        raise ReferenceDataError(
            file_name, None, f"{path} is not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    except OSError as error:
        raise ReferenceDataError(
            file_name, None, f"cannot read {path}: {error.strerror or error}"
        ) from None
    try:
        return json.loads(text, object_pairs_hook=_object_without_duplicate_keys)
    except json.JSONDecodeError as error:
        raise ReferenceDataError(
            file_name,
            None,
            f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}",
        ) from None
    except ValueError as error:  # from _object_without_duplicate_keys
        raise ReferenceDataError(file_name, None, str(error)) from None


def _object_without_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # json.loads would keep the last of two equal keys silently; a duplicate is a typo.
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f'invalid JSON: the key "{key}" appears twice in one object')
        result[key] = value
    return result
