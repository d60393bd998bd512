"""Reservoir arithmetic (ITB-FACTS §4): constant-rate volume, alarm and empty times.

Pumping is elapsed time, so every result is ``filled_at`` plus a timedelta; converting to
the clinic's wall clock is the caller's business.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


def daily_volume_ml(dose_mcg_per_day: float, concentration_mcg_per_ml: float) -> float:
    """mL/day = (mcg/day) / (mcg/mL)."""
    if concentration_mcg_per_ml <= 0:
        raise ValueError(f"concentration must be > 0 mcg/mL ({concentration_mcg_per_ml})")
    if dose_mcg_per_day < 0:
        raise ValueError(f"dose must be >= 0 mcg/day ({dose_mcg_per_day})")
    return dose_mcg_per_day / concentration_mcg_per_ml


def mcg_per_hour(dose_mcg_per_day: float) -> float:
    return dose_mcg_per_day / 24.0


@dataclass(frozen=True, slots=True)
class ConstantRateForecast:
    filled_at: dt.datetime
    volume_ml: float
    daily_volume_ml: float
    alarm_at: dt.datetime | None
    empty_at: dt.datetime | None

    def volume_at(self, at: dt.datetime) -> float:
        """Volume left at ``at`` (never negative; the fill volume before ``filled_at``)."""
        elapsed_days = max(0.0, (at - self.filled_at).total_seconds() / 86400)
        return max(0.0, self.volume_ml - elapsed_days * self.daily_volume_ml)


def constant_rate_forecast(
    filled_at: dt.datetime, volume_ml: float, alarm_volume_ml: float, daily_volume_ml: float
) -> ConstantRateForecast:
    """When a pump filled to ``volume_ml`` reaches its alarm volume and runs empty."""
    if filled_at.tzinfo is None:
        raise ValueError("filled_at must be timezone-aware")
    if volume_ml < 0 or alarm_volume_ml < 0 or daily_volume_ml < 0:
        raise ValueError("volumes and daily volume must be >= 0")
    if daily_volume_ml == 0:
        return ConstantRateForecast(filled_at, volume_ml, 0.0, None, None)
    to_alarm_days = max(0.0, (volume_ml - alarm_volume_ml) / daily_volume_ml)
    return ConstantRateForecast(
        filled_at=filled_at,
        volume_ml=volume_ml,
        daily_volume_ml=daily_volume_ml,
        alarm_at=filled_at + dt.timedelta(days=to_alarm_days),
        empty_at=filled_at + dt.timedelta(days=volume_ml / daily_volume_ml),
    )
