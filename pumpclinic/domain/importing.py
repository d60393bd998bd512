"""Rows of a clinic's existing patient spreadsheet, checked before anything is written."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from pumpclinic.domain.enums import SpasticityOrigin
from pumpclinic.domain.patients import MRN_PATTERN
from pumpclinic.domain.reference import PumpModelSpec

CSV_COLUMNS = (
    "mrn",
    "family_name",
    "given_name",
    "date_of_birth",
    "origin",
    "pump_model",
    "concentration_mcg_per_ml",
    "dose_mcg_per_day",
    "last_refill_at",
    "volume_after_refill_ml",
)
MAX_DOSE_MCG_PER_DAY = 3000.0


@dataclass(frozen=True, slots=True)
class ImportRow:
    line: int
    mrn: str
    family_name: str
    given_name: str
    date_of_birth: dt.date
    origin: SpasticityOrigin
    pump_model_id: str
    concentration_mcg_per_ml: float
    dose_mcg_per_day: float
    last_refill_at: dt.datetime
    volume_after_refill_ml: float


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def missing_columns(header: Collection[str]) -> list[str]:
    return [c for c in CSV_COLUMNS if c not in header]


def parse_row(
    line: int,
    raw: Mapping[str, str | None],
    *,
    today: dt.date,
    zone: dt.tzinfo,
    now: dt.datetime,
    pump_models: Mapping[str, PumpModelSpec],
    concentrations: Collection[float],
) -> ImportRow | list[RowProblem]:
    """The row, or every problem with it (each naming the column and the limit)."""
    problems: list[str] = []

    def text(column: str) -> str:
        return (raw.get(column) or "").strip()

    def number(column: str) -> float | None:
        value = text(column)
        try:
            parsed = float(value)
        except ValueError:
            problems.append(f"{column} must be a number ({value!r})")
            return None
        if not math.isfinite(parsed):
            problems.append(f"{column} must be a finite number ({value!r})")
            return None
        return parsed

    mrn = text("mrn").upper()
    if not MRN_PATTERN.match(mrn):
        problems.append(f"mrn must be 1 to 32 letters, digits, '-' or '/' ({text('mrn')!r})")
    for column in ("family_name", "given_name"):
        if not text(column):
            problems.append(f"{column} is required")
        elif len(text(column)) > 100:
            problems.append(f"{column} must be at most 100 characters")
    born: dt.date | None = None
    try:
        born = dt.date.fromisoformat(text("date_of_birth"))
    except ValueError:
        problems.append(
            f"date_of_birth must be a real date as YYYY-MM-DD ({text('date_of_birth')!r})"
        )
    else:
        if born > today:
            problems.append(f"date_of_birth cannot be in the future ({born.isoformat()})")
        elif born.year < 1900:
            problems.append("date_of_birth must be in 1900 or later")
    origin_text = text("origin").lower()
    origin = None
    if origin_text in {o.value for o in SpasticityOrigin}:
        origin = SpasticityOrigin(origin_text)
    else:
        problems.append(f"origin must be spinal or cerebral ({text('origin')!r})")
    model = pump_models.get(text("pump_model"))
    if model is None:
        problems.append(
            f"pump_model must be a catalog id such as {', '.join(sorted(pump_models)[:3])}"
            f" ({text('pump_model')!r})"
        )
    concentration = number("concentration_mcg_per_ml")
    if concentration is not None:
        if concentration not in concentrations:
            problems.append(
                "concentration_mcg_per_ml must be one of "
                f"{', '.join(f'{c:g}' for c in sorted(concentrations))} ({concentration:g})"
            )
        elif (
            model is not None
            and model.allowed_concentrations_mcg_per_ml
            and concentration not in model.allowed_concentrations_mcg_per_ml
        ):
            problems.append(
                f"concentration_mcg_per_ml {concentration:g} is not approved for {model.name}"
            )
    dose = number("dose_mcg_per_day")
    if dose is not None and not 0 <= dose <= MAX_DOSE_MCG_PER_DAY:
        problems.append(
            f"dose_mcg_per_day must be between 0 and {MAX_DOSE_MCG_PER_DAY:g} ({dose:g})"
        )
    refill_at: dt.datetime | None = None
    try:
        refill_at = dt.datetime.fromisoformat(text("last_refill_at"))
    except ValueError:
        problems.append(
            "last_refill_at must be a date and time as YYYY-MM-DDTHH:MM "
            f"({text('last_refill_at')!r})"
        )
    else:
        if refill_at.tzinfo is None:
            refill_at = refill_at.replace(tzinfo=zone)
        if refill_at > now:
            problems.append("last_refill_at cannot be in the future")
        elif born is not None and refill_at.date() < born:
            problems.append("last_refill_at is before date_of_birth")
    volume = number("volume_after_refill_ml")
    if volume is not None:
        if volume <= 0:
            problems.append(f"volume_after_refill_ml must be more than 0 ({volume:g})")
        elif model is not None and volume > model.reservoir_ml:
            problems.append(
                f"volume_after_refill_ml cannot exceed the {model.name} reservoir, "
                f"{model.reservoir_ml:g} mL ({volume:g})"
            )
    if problems:
        return [RowProblem(line, p) for p in problems]
    assert born and origin and model and refill_at is not None
    assert concentration is not None and dose is not None and volume is not None
    return ImportRow(
        line=line,
        mrn=mrn,
        family_name=text("family_name"),
        given_name=text("given_name"),
        date_of_birth=born,
        origin=origin,
        pump_model_id=model.id,
        concentration_mcg_per_ml=concentration,
        dose_mcg_per_day=dose,
        last_refill_at=refill_at,
        volume_after_refill_ml=volume,
    )
