"""Where the reference data files and icons live: the top-level ``resources/`` folder, or
the folder ``PUMPCLINIC_RESOURCES`` names (a clinic's edited copy, a test).

Kept apart from the file parsing (``pumpclinic.reference_files``) so that the GUI's look can
find its icons without loading the reference data's rules.
"""

from __future__ import annotations

import os
from pathlib import Path

RESOURCES_ENV_VAR = "PUMPCLINIC_RESOURCES"
# The shipped folder; resources_dir() applies the environment override.
RESOURCES_DIR: Path = Path(__file__).resolve().parent.parent / "resources"


def resources_dir() -> Path:
    """``$PUMPCLINIC_RESOURCES`` if set and not empty, else the shipped ``RESOURCES_DIR``."""
    override = os.environ.get(RESOURCES_ENV_VAR, "")
    return Path(override) if override else RESOURCES_DIR
