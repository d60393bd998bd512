"""The daily dose after implant (ITB-FACTS §2): the starting dose and how fast it may rise.

- Starting daily dose = 2 × the effective screening dose, or 1 × when the screening effect
  lasted more than 8 hours; no increase in the first 24 hours after implant.
- Increases at most once per 24 hours: spinal origin 10–30 %, cerebral origin and children
  5–15 %. Decreases are not limited here: lowering a dose for side effects is always allowed.

Doses are mcg/day; ``mcg_per_hour`` (in ``reservoir``) gives the other unit to show beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pumpclinic.domain.enums import SpasticityOrigin

# An effect lasting more than this keeps the starting dose at 1 × the screening dose.
LONG_EFFECT_HOURS = 8.0
MIN_HOURS_BETWEEN_INCREASES = 24.0
# Sanity limits for typed numbers. The screening doses are 25–100 mcg (the database allows
# up to 200); the highest reported maintenance dose is 2,000 mcg/day.
MAX_SCREENING_DOSE_MCG = 200.0
MAX_EFFECT_HOURS = 48.0
MAX_DOSE_MCG_PER_DAY = 3000.0

# (lowest, highest) increase per 24 h, as fractions of the current daily dose.
SPINAL_INCREASE = (0.10, 0.30)
CEREBRAL_OR_CHILD_INCREASE = (0.05, 0.15)

# Floating-point slack when comparing a typed dose with a computed bound (mcg/day).
_TOLERANCE_MCG = 1e-9


@dataclass(frozen=True, slots=True)
class TitrationRange:
    """The next daily dose after one increase: current × (1 + lowest) .. × (1 + highest)."""

    min_mcg_per_day: float
    max_mcg_per_day: float


def starting_dose_mcg_per_day(effective_screening_dose_mcg: float, effect_hours: float) -> float:
    """2 × the effective screening dose; 1 × when its effect lasted more than 8 hours.

    Exactly 8 hours is not "more than 8 hours": 2 ×.
    """
    _require_range(
        "effective screening dose (mcg)", effective_screening_dose_mcg, MAX_SCREENING_DOSE_MCG
    )
    if not math.isfinite(effect_hours) or not 0 < effect_hours <= MAX_EFFECT_HOURS:
        raise ValueError(
            f"effect duration must be more than 0 and at most {MAX_EFFECT_HOURS:g} hours"
            f" (got {effect_hours:g})"
        )
    factor = 1.0 if effect_hours > LONG_EFFECT_HOURS else 2.0
    return factor * effective_screening_dose_mcg


def increase_bounds(origin: SpasticityOrigin, child: bool) -> tuple[float, float]:
    """(lowest, highest) increase per 24 h as fractions: spinal adults 10–30 %, else 5–15 %."""
    if child or origin is SpasticityOrigin.CEREBRAL:
        return CEREBRAL_OR_CHILD_INCREASE
    return SPINAL_INCREASE


def titration_range(
    current_dose_mcg_per_day: float, origin: SpasticityOrigin, child: bool
) -> TitrationRange:
    """The smallest and largest next daily dose after one increase (per 24 h)."""
    _require_range("current dose (mcg/day)", current_dose_mcg_per_day, MAX_DOSE_MCG_PER_DAY)
    low, high = increase_bounds(origin, child)
    return TitrationRange(
        min_mcg_per_day=current_dose_mcg_per_day * (1 + low),
        max_mcg_per_day=current_dose_mcg_per_day * (1 + high),
    )


def check_titration(
    old_dose_mcg_per_day: float,
    new_dose_mcg_per_day: float,
    origin: SpasticityOrigin,
    child: bool,
    hours_since_last_change: float,
) -> str | None:
    """A warning for the clinician when an increase breaks the titration rules, else None.

    ``hours_since_last_change``: since the last dose change, or since the implant when the
    dose has not changed yet (no increase in the first 24 hours after implant either).
    """
    _require_range("old dose (mcg/day)", old_dose_mcg_per_day, MAX_DOSE_MCG_PER_DAY)
    _require_range("new dose (mcg/day)", new_dose_mcg_per_day, MAX_DOSE_MCG_PER_DAY)
    if not math.isfinite(hours_since_last_change) or hours_since_last_change < 0:
        raise ValueError(
            f"hours since the last change must be 0 or more (got {hours_since_last_change:g})"
        )
    if new_dose_mcg_per_day <= old_dose_mcg_per_day:
        return None
    warnings: list[str] = []
    bounds = titration_range(old_dose_mcg_per_day, origin, child)
    low, high = increase_bounds(origin, child)
    increase_pct = (new_dose_mcg_per_day / old_dose_mcg_per_day - 1) * 100
    if new_dose_mcg_per_day > bounds.max_mcg_per_day + _TOLERANCE_MCG:
        who = _patient_group(origin, child)
        warnings.append(
            f"An increase of {increase_pct:.1f} % ({_fmt(old_dose_mcg_per_day)} → "
            f"{_fmt(new_dose_mcg_per_day)} mcg/day) is more than the {high * 100:.0f} % allowed "
            f"per 24 h for {who} ({low * 100:.0f}–{high * 100:.0f} %: at most "
            f"{_fmt(bounds.max_mcg_per_day)} mcg/day)."
        )
    if hours_since_last_change < MIN_HOURS_BETWEEN_INCREASES:
        warnings.append(
            f"The dose was last changed (or the pump implanted) {_hours(hours_since_last_change)}"
            f" ago: increase at most once per {MIN_HOURS_BETWEEN_INCREASES:g} hours, and not in"
            f" the first {MIN_HOURS_BETWEEN_INCREASES:g} hours after implant."
        )
    return " ".join(warnings) if warnings else None


def _patient_group(origin: SpasticityOrigin, child: bool) -> str:
    if child:
        return "children"
    return f"spasticity of {origin.value} origin"


def _require_range(name: str, value: float, high: float) -> None:
    if not math.isfinite(value) or not 0 < value <= high:
        raise ValueError(f"{name} must be more than 0 and at most {high:g} (got {value:g})")


def _fmt(dose: float) -> str:
    return f"{dose:.2f}".rstrip("0").rstrip(".")


def _hours(hours: float) -> str:
    whole_hours, rest = divmod(round(hours * 60), 60)
    return f"{whole_hours} h {rest:02d} min"
