"""Reservoir arithmetic (ITB-FACTS §3–§5): volume over time, forecast, reconciliation.

Pumping is elapsed time. Every instant is converted to UTC before any arithmetic: Python
subtracts and adds aware datetimes that share a ``ZoneInfo`` on the wall clock, which is
wrong by an hour across a daylight-saving change. Results are aware datetimes in UTC; the
clinic's zone is used only where a rule is about the wall clock (flex step times, the local
date of a due day).

A program is a sequence of ``ProgramPeriod``s, each in force from its ``effective_from``
until the next one. Only the period in force at the fill and the ones after it matter.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from statistics import fmean
from typing import Literal

from pumpclinic.domain.calendar import ClinicCalendar
from pumpclinic.domain.reference import PumpModelSpec

MINUTES_PER_DAY = 24 * 60
SECONDS_PER_DAY = 86_400.0
# SynchroMed II: up to 13 flex steps a day (ITB-FACTS §3).
MAX_FLEX_STEPS = 13
# The database's CHECK constraint on dose_programs.max_boluses_per_day.
MAX_BOLUSES_PER_DAY = 24
DEFAULT_FLOW_ACCURACY_PCT = 14.5
DISCREPANCY_LIMIT_ML = 2.0
# A forecast further away than this is no forecast: the alarm is reported as never.
MAX_FORECAST_DAYS = 36_525
DEFAULT_SERIES_HORIZON_DAYS = 365
# The CLI contract names the flags after the default limits, whatever a pump's accuracy.
FLAG_DISCREPANCY = "discrepancy_over_2ml"
FLAG_DELIVERY_ERROR = "delivery_error_over_14_5_pct"
# Float noise allowed when comparing with a limit (2.0 mL must not flag as 2.0000000001).
_LIMIT_EPSILON = 1e-9


# --- Simple arithmetic (kept for the demo generator) ---------------------------------------


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
        elapsed_days = max(0.0, _elapsed_days(self.filled_at, at))
        return max(0.0, self.volume_ml - elapsed_days * self.daily_volume_ml)


def constant_rate_forecast(
    filled_at: dt.datetime, volume_ml: float, alarm_volume_ml: float, daily_volume_ml: float
) -> ConstantRateForecast:
    """When a pump filled to ``volume_ml`` reaches its alarm volume and runs empty.

    The times are in ``filled_at``'s zone, computed in UTC (elapsed time).
    """
    if filled_at.tzinfo is None:
        raise ValueError("filled_at must be timezone-aware")
    if volume_ml < 0 or alarm_volume_ml < 0 or daily_volume_ml < 0:
        raise ValueError("volumes and daily volume must be >= 0")
    if daily_volume_ml == 0:
        return ConstantRateForecast(filled_at, volume_ml, 0.0, None, None)
    to_alarm_days = max(0.0, (volume_ml - alarm_volume_ml) / daily_volume_ml)
    start = filled_at.astimezone(dt.UTC)
    return ConstantRateForecast(
        filled_at=filled_at,
        volume_ml=volume_ml,
        daily_volume_ml=daily_volume_ml,
        alarm_at=(start + dt.timedelta(days=to_alarm_days)).astimezone(filled_at.tzinfo),
        empty_at=(start + dt.timedelta(days=volume_ml / daily_volume_ml)).astimezone(
            filled_at.tzinfo
        ),
    )


# --- Programs and pumps --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlexStep:
    """From ``starts_at_minute`` after local midnight (clinic zone), this rate until the next
    step; the day's last step holds until the next day's first."""

    starts_at_minute: int
    rate_mcg_per_day: float

    def __post_init__(self) -> None:
        if not 0 <= self.starts_at_minute < MINUTES_PER_DAY:
            raise ValueError(
                f"starts_at_minute must be between 0 and {MINUTES_PER_DAY - 1}"
                f" ({self.starts_at_minute})"
            )
        _require_number("rate_mcg_per_day", self.rate_mcg_per_day, at_least=0)


@dataclass(frozen=True, slots=True)
class ProgramPeriod:
    """A program in force from ``effective_from`` until the next period starts.

    With ``flex_steps`` the steps decide the delivery and ``dose_mcg_per_day`` is the
    prescribed total shown to people. Permitted boluses are counted at their maximum
    (``bolus_dose_mcg × max_boluses_per_day`` a day), as the Prometra controller plans.
    """

    effective_from: dt.datetime
    concentration_mcg_per_ml: float
    dose_mcg_per_day: float
    flex_steps: tuple[FlexStep, ...] = ()
    bolus_dose_mcg: float | None = None
    max_boluses_per_day: int = 0

    def __post_init__(self) -> None:
        _require_aware("effective_from", self.effective_from)
        _require_number("concentration_mcg_per_ml", self.concentration_mcg_per_ml, above=0)
        _require_number("dose_mcg_per_day", self.dose_mcg_per_day, at_least=0)
        if len(self.flex_steps) > MAX_FLEX_STEPS:
            raise ValueError(
                f"flex_steps: at most {MAX_FLEX_STEPS} steps a day ({len(self.flex_steps)})"
            )
        minutes = [step.starts_at_minute for step in self.flex_steps]
        for earlier, later in pairwise(minutes):
            if later <= earlier:
                raise ValueError(
                    "flex_steps must be in increasing order of starts_at_minute, each time"
                    f" once ({earlier} then {later})"
                )
        if self.bolus_dose_mcg is not None:
            _require_number("bolus_dose_mcg", self.bolus_dose_mcg, above=0)
        if not 0 <= self.max_boluses_per_day <= MAX_BOLUSES_PER_DAY:
            raise ValueError(
                f"max_boluses_per_day must be between 0 and {MAX_BOLUSES_PER_DAY}"
                f" ({self.max_boluses_per_day})"
            )
        if self.max_boluses_per_day > 0 and self.bolus_dose_mcg is None:
            raise ValueError("bolus_dose_mcg is required when max_boluses_per_day is above 0")

    @property
    def is_flex(self) -> bool:
        return bool(self.flex_steps)

    @property
    def basal_mcg_per_day(self) -> float:
        """The day's programmed basal dose: the steps' time-weighted mean for a flex program."""
        if not self.flex_steps:
            return self.dose_mcg_per_day
        total = 0.0
        for index, step in enumerate(self.flex_steps):
            following = self.flex_steps[(index + 1) % len(self.flex_steps)].starts_at_minute
            minutes = (following - step.starts_at_minute) % MINUTES_PER_DAY or MINUTES_PER_DAY
            total += step.rate_mcg_per_day * minutes
        return total / MINUTES_PER_DAY

    @property
    def bolus_mcg_per_day(self) -> float:
        """Permitted boluses at their maximum."""
        return (self.bolus_dose_mcg or 0.0) * self.max_boluses_per_day

    @property
    def planned_mcg_per_day(self) -> float:
        """Basal plus every permitted bolus: what a refill is planned on."""
        return self.basal_mcg_per_day + self.bolus_mcg_per_day


@dataclass(frozen=True, slots=True)
class PumpSpec:
    """What the arithmetic needs to know about an implanted pump.

    ``constant_flow_ml_per_day`` set: a gas-driven pump whose daily volume is fixed; the
    program's concentration only decides the dose delivered.
    """

    reservoir_ml: float
    low_reservoir_alarm_ml: float
    flow_accuracy_pct: float = DEFAULT_FLOW_ACCURACY_PCT
    constant_flow_ml_per_day: float | None = None
    pocket_fill_warning_ml: float = 1.0

    def __post_init__(self) -> None:
        _require_number("reservoir_ml", self.reservoir_ml, above=0)
        _require_number("low_reservoir_alarm_ml", self.low_reservoir_alarm_ml, at_least=0)
        if self.low_reservoir_alarm_ml >= self.reservoir_ml:
            raise ValueError(
                f"low_reservoir_alarm_ml must be less than reservoir_ml ({self.reservoir_ml})"
                f" ({self.low_reservoir_alarm_ml})"
            )
        _require_number("flow_accuracy_pct", self.flow_accuracy_pct, above=0)
        if self.constant_flow_ml_per_day is not None:
            _require_number("constant_flow_ml_per_day", self.constant_flow_ml_per_day, above=0)
        _require_number("pocket_fill_warning_ml", self.pocket_fill_warning_ml, above=0)

    @classmethod
    def from_model(cls, model: PumpModelSpec) -> PumpSpec:
        return cls(
            reservoir_ml=model.reservoir_ml,
            low_reservoir_alarm_ml=model.low_reservoir_alarm_ml,
            flow_accuracy_pct=model.flow_accuracy_pct,
            constant_flow_ml_per_day=model.constant_flow_ml_per_day,
            pocket_fill_warning_ml=model.pocket_fill_warning_ml,
        )


def program_daily_volume_ml(program: ProgramPeriod, pump: PumpSpec) -> float:
    """mL/day a program empties from the reservoir on a 24-hour day, boluses at maximum."""
    if pump.constant_flow_ml_per_day is not None:
        return pump.constant_flow_ml_per_day
    volume_ml = program.planned_mcg_per_day / program.concentration_mcg_per_ml
    if not math.isfinite(volume_ml):
        raise ValueError(
            "dose_mcg_per_day / concentration_mcg_per_ml is too large to compute"
            f" ({program.planned_mcg_per_day} / {program.concentration_mcg_per_ml})"
        )
    return volume_ml


def delivered_dose_mcg_per_day(program: ProgramPeriod, pump: PumpSpec) -> float:
    """The dose a pump delivers: a constant-flow pump's follows from the concentration."""
    if pump.constant_flow_ml_per_day is not None:
        return pump.constant_flow_ml_per_day * program.concentration_mcg_per_ml
    return program.planned_mcg_per_day


# --- Volume over time ----------------------------------------------------------------------


def volume_at(
    filled_at: dt.datetime,
    volume_ml: float,
    programs: Sequence[ProgramPeriod],
    pump: PumpSpec,
    at: dt.datetime,
    zone: dt.tzinfo,
) -> float:
    """Volume left at ``at``: the fill minus the programmed delivery, never below 0."""
    _require_fill(volume_ml, pump)
    _require_aware("at", at)
    _require_aware("filled_at", filled_at)
    if at.astimezone(dt.UTC) < filled_at.astimezone(dt.UTC):
        raise ValueError(f"at ({at.isoformat()}) must not be before filled_at")
    left_ml = volume_ml - delivered_ml(filled_at, programs, pump, filled_at, at, zone)
    return min(pump.reservoir_ml, max(0.0, left_ml))


def delivered_ml(
    filled_at: dt.datetime,
    programs: Sequence[ProgramPeriod],
    pump: PumpSpec,
    start: dt.datetime,
    end: dt.datetime,
    zone: dt.tzinfo,
) -> float:
    """Programmed delivery from ``start`` to ``end`` (not limited by what is in the pump)."""
    for name, value in (("start", start), ("end", end)):
        _require_aware(name, value)
    _require_aware("filled_at", filled_at)
    start_utc, end_utc = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    if start_utc < filled_at.astimezone(dt.UTC):
        raise ValueError(f"start ({start.isoformat()}) must not be before filled_at")
    if end_utc < start_utc:
        raise ValueError(f"end ({end.isoformat()}) must not be before start")
    total_ml = 0.0
    for segment in _segments(filled_at, programs, pump, zone):
        if segment.start >= end_utc:
            break
        overlap_start = max(segment.start, start_utc)
        overlap_end = end_utc if segment.end is None else min(segment.end, end_utc)
        if overlap_end > overlap_start:
            total_ml += segment.ml_per_day * _elapsed_days(overlap_start, overlap_end)
    return total_ml


def volume_series(
    filled_at: dt.datetime,
    volume_ml: float,
    programs: Sequence[ProgramPeriod],
    pump: PumpSpec,
    zone: dt.tzinfo,
    *,
    until: dt.datetime | None = None,
) -> tuple[tuple[dt.datetime, float], ...]:
    """(time, mL) points for a chart, straight lines between them: from the fill to empty,
    or to ``until`` if that is earlier (a year when the pump never empties). Points fall on
    every rate change (program changes, flex steps) and on the alarm and empty times."""
    _require_fill(volume_ml, pump)
    start = filled_at.astimezone(dt.UTC)
    (empty_at,) = _crossings(filled_at, volume_ml, programs, pump, zone, (0.0,))
    end = empty_at
    if until is not None:
        _require_aware("until", until)
        end = until.astimezone(dt.UTC) if end is None else min(end, until.astimezone(dt.UTC))
    if end is None:
        end = _add_days(start, DEFAULT_SERIES_HORIZON_DAYS) or dt.datetime.max.replace(
            tzinfo=dt.UTC
        )
    if end < start:
        raise ValueError(f"until ({end.isoformat()}) must not be before filled_at")
    points = [(start, volume_ml)]
    left_ml = volume_ml
    for segment in _segments(filled_at, programs, pump, zone):
        segment_end = end if segment.end is None else min(segment.end, end)
        if segment_end > segment.start:
            left_ml -= segment.ml_per_day * _elapsed_days(segment.start, segment_end)
            alarm_ml = pump.low_reservoir_alarm_ml
            if points[-1][1] > alarm_ml > left_ml and segment.ml_per_day > 0:
                days = (points[-1][1] - alarm_ml) / segment.ml_per_day
                points.append((segment.start + dt.timedelta(days=days), alarm_ml))
            points.append((segment_end, max(0.0, left_ml)))
        if segment_end >= end:
            break
    return tuple(points)


# --- Forecast ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Forecast:
    """Times are aware, in UTC. ``days_to_alarm`` counts from the fill."""

    daily_volume_ml: float
    alarm_at: dt.datetime | None
    empty_at: dt.datetime | None
    stability_limit_at: dt.datetime | None
    refill_due: dt.date | None
    days_to_alarm: float | None


def forecast(
    filled_at: dt.datetime,
    volume_ml: float,
    programs: Sequence[ProgramPeriod],
    pump: PumpSpec,
    calendar: ClinicCalendar,
    *,
    margin_days: int,
    stability_days: int | None,
    zone: dt.tzinfo | None = None,
) -> Forecast:
    """When the pump alarms and runs empty, and the day it must be refilled by.

    ``refill_due`` is the latest open day on or before the earlier of the local dates of
    (alarm − ``margin_days`` × 24 h) and the stability limit (the drug's maximum time in the
    pump). ``zone`` defaults to the calendar's.
    """
    local_zone = calendar.zone if zone is None else zone
    _require_fill(volume_ml, pump)
    if margin_days < 0:
        raise ValueError(f"margin_days must be >= 0 ({margin_days})")
    if stability_days is not None and stability_days < 1:
        raise ValueError(f"stability_days must be >= 1 ({stability_days})")
    start = filled_at.astimezone(dt.UTC)
    periods = _periods_since(filled_at, programs)
    alarm_at, empty_at = _crossings(
        filled_at, volume_ml, programs, pump, local_zone, (pump.low_reservoir_alarm_ml, 0.0)
    )
    stability_limit_at = None
    if stability_days is not None:
        stability_limit_at = _add_days(start, stability_days)
    latest_days: list[dt.date] = []
    if alarm_at is not None:
        latest = _add_days(alarm_at, -margin_days)
        if latest is None:
            raise ValueError("alarm_at − margin_days is before the first representable date")
        latest_days.append(latest.astimezone(local_zone).date())
    if stability_limit_at is not None:
        latest_days.append(stability_limit_at.astimezone(local_zone).date())
    elif stability_days is not None:
        raise ValueError(
            f"filled_at + stability_days ({stability_days}) is past the last representable date"
        )
    refill_due = calendar.latest_open_day_on_or_before(min(latest_days)) if latest_days else None
    return Forecast(
        daily_volume_ml=program_daily_volume_ml(periods[-1][2], pump),
        alarm_at=alarm_at,
        empty_at=empty_at,
        stability_limit_at=stability_limit_at,
        refill_due=refill_due,
        days_to_alarm=None if alarm_at is None else _elapsed_days(start, alarm_at),
    )


# --- Reconciliation at a refill ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """Expected vs aspirated residual. ``discrepancy_ml`` = aspirated − expected (negative:
    less left, over-infusion); ``delivery_error_pct`` > 0 is over-infusion, None when
    nothing was to be delivered."""

    at: dt.datetime
    expected_residual_ml: float
    aspirated_ml: float
    discrepancy_ml: float
    delivered_expected_ml: float
    delivered_actual_ml: float
    delivery_error_pct: float | None
    flags: frozenset[str]
    next_steps: tuple[str, ...]

    @property
    def flagged(self) -> bool:
        return bool(self.flags)


_CHECK_MEASUREMENT = (
    "Check the measurement first: was the reservoir fully aspirated, and was the volume read"
    " correctly? Compare the pump's own log (interrogate the pump) with the programs recorded"
    " here."
)
_OVER_INFUSION_STEPS = (
    "Less drug was left than expected: the pump may have delivered more than programmed"
    " (over-infusion).",
    _CHECK_MEASUREMENT,
    "Check the patient now for signs of overdose: drowsiness, dizziness, confusion, slow or"
    " shallow breathing, low blood pressure, weakness or floppiness.",
    "Inform the clinician before the patient leaves; do not increase the dose today.",
    "Consider a pump problem (a flow error or an unrecorded bolus) and record the finding.",
)
_UNDER_DELIVERY_STEPS = (
    "More drug was left than expected: the pump may have delivered less than programmed"
    " (under-delivery).",
    _CHECK_MEASUREMENT,
    "Check the patient now for signs of withdrawal: itching, low blood pressure, pins and"
    " needles, sweating, blurred vision, confusion, weakness, faintness, a return of"
    " spasticity or a fever.",
    "Consider a catheter problem (kinked, blocked, disconnected or moved) or a pump problem"
    " (a stalled motor); the clinician may order imaging or a catheter access port study.",
    "Inform the clinician before the patient leaves; do not increase the dose to make up for it"
    " until the cause is known.",
)


def reconcile(
    volume_after_last_fill_ml: float,
    filled_at: dt.datetime,
    programs: Sequence[ProgramPeriod],
    pump: PumpSpec,
    aspirated_ml: float,
    at: dt.datetime,
    zone: dt.tzinfo,
    *,
    discrepancy_limit_ml: float = DISCREPANCY_LIMIT_ML,
) -> Reconciliation:
    """Compare the aspirated residual with the programmed delivery since the last fill.

    Flags ``discrepancy_over_2ml`` when |aspirated − expected| > ``discrepancy_limit_ml``
    and ``delivery_error_over_14_5_pct`` when the delivered volume differs from the
    programmed by more than the pump's ``flow_accuracy_pct``.
    """
    _require_fill(volume_after_last_fill_ml, pump, name="volume_after_last_fill_ml")
    _require_number("aspirated_ml", aspirated_ml, at_least=0)
    if aspirated_ml > pump.reservoir_ml:
        raise ValueError(
            f"aspirated_ml must be at most the reservoir, {pump.reservoir_ml} mL ({aspirated_ml})"
        )
    _require_aware("at", at)
    _require_aware("filled_at", filled_at)
    if at.astimezone(dt.UTC) < filled_at.astimezone(dt.UTC):
        raise ValueError(f"at ({at.isoformat()}) must not be before filled_at")
    programmed_ml = delivered_ml(filled_at, programs, pump, filled_at, at, zone)
    # The pump cannot deliver more than it held.
    delivered_expected_ml = min(programmed_ml, volume_after_last_fill_ml)
    expected_residual_ml = volume_after_last_fill_ml - delivered_expected_ml
    delivered_actual_ml = volume_after_last_fill_ml - aspirated_ml
    discrepancy_ml = aspirated_ml - expected_residual_ml
    delivery_error_pct = None
    if delivered_expected_ml > 0:
        delivery_error_pct = (delivered_actual_ml / delivered_expected_ml - 1.0) * 100.0
    flags: set[str] = set()
    if abs(discrepancy_ml) > discrepancy_limit_ml + _LIMIT_EPSILON:
        flags.add(FLAG_DISCREPANCY)
    if (
        delivery_error_pct is not None
        and abs(delivery_error_pct) > pump.flow_accuracy_pct + _LIMIT_EPSILON
    ):
        flags.add(FLAG_DELIVERY_ERROR)
    next_steps: tuple[str, ...] = ()
    if flags:
        next_steps = _OVER_INFUSION_STEPS if discrepancy_ml < 0 else _UNDER_DELIVERY_STEPS
    return Reconciliation(
        at=at.astimezone(dt.UTC),
        expected_residual_ml=expected_residual_ml,
        aspirated_ml=aspirated_ml,
        discrepancy_ml=discrepancy_ml,
        delivered_expected_ml=delivered_expected_ml,
        delivered_actual_ml=delivered_actual_ml,
        delivery_error_pct=delivery_error_pct,
        flags=frozenset(flags),
        next_steps=next_steps,
    )


TrendPoint = tuple[dt.datetime, float, float | None]
TrendDirection = Literal["less_left_than_expected", "more_left_than_expected"]
TREND_WINDOW = 3


@dataclass(frozen=True, slots=True)
class ReconciliationTrend:
    """Across refills, oldest first. ``consistent_direction``: the last three refills all
    found less (over-infusion) or all more (under-delivery) than expected."""

    count: int
    mean_discrepancy_ml: float | None
    mean_delivery_error_pct: float | None
    last_three: tuple[TrendPoint, ...]
    consistent_direction: TrendDirection | None


def reconciliation_trend(
    history: Sequence[Reconciliation | TrendPoint],
) -> ReconciliationTrend:
    points: list[TrendPoint] = [
        (item.at, item.discrepancy_ml, item.delivery_error_pct)
        if isinstance(item, Reconciliation)
        else item
        for item in history
    ]
    for at, _discrepancy, _error in points:
        _require_aware("at", at)
    points.sort(key=lambda point: point[0].astimezone(dt.UTC))
    errors = [error for _at, _discrepancy, error in points if error is not None]
    last_three = tuple(points[-TREND_WINDOW:])
    direction: TrendDirection | None = None
    if len(last_three) == TREND_WINDOW:
        if all(discrepancy < 0 for _at, discrepancy, _error in last_three):
            direction = "less_left_than_expected"
        elif all(discrepancy > 0 for _at, discrepancy, _error in last_three):
            direction = "more_left_than_expected"
    return ReconciliationTrend(
        count=len(points),
        mean_discrepancy_ml=fmean(p[1] for p in points) if points else None,
        mean_delivery_error_pct=fmean(errors) if errors else None,
        last_three=last_three,
        consistent_direction=direction,
    )


# --- Pocket fill ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PocketFillCheck:
    """``gap_ml`` = measured − expected after filling; flagged beyond ``limit_ml``."""

    injected_ml: float
    expected_after_ml: float
    measured_after_ml: float
    gap_ml: float
    limit_ml: float
    flagged: bool
    warning: str | None = None


def pocket_fill_check(
    injected_ml: float, expected_after_ml: float, measured_after_ml: float, pump: PumpSpec
) -> PocketFillCheck:
    """After a fill: did the injected drug reach the reservoir? (ITB-FACTS §5)"""
    _require_number("injected_ml", injected_ml, at_least=0)
    for name, value in (
        ("expected_after_ml", expected_after_ml),
        ("measured_after_ml", measured_after_ml),
    ):
        _require_number(name, value, at_least=0)
        if value > pump.reservoir_ml:
            raise ValueError(
                f"{name} must be at most the reservoir, {pump.reservoir_ml} mL ({value})"
            )
    gap_ml = measured_after_ml - expected_after_ml
    limit_ml = pump.pocket_fill_warning_ml
    flagged = abs(gap_ml) > limit_ml + _LIMIT_EPSILON
    warning = None
    if flagged and gap_ml < 0:
        warning = (
            f"Possible pocket fill: the reservoir holds {-gap_ml:.1f} mL less than expected"
            f" after injecting {injected_ml:.1f} mL (warning above {limit_ml:g} mL for this"
            " pump). The drug may have gone into the tissue pocket, not the pump. Stop, do"
            " not inject more, watch the patient closely for overdose signs (drowsiness,"
            " slow breathing, low blood pressure) and call the clinician now."
        )
    elif flagged:
        warning = (
            f"The reservoir holds {gap_ml:.1f} mL more than expected after injecting"
            f" {injected_ml:.1f} mL (warning above {limit_ml:g} mL for this pump). Re-check"
            " the volumes injected and measured before the patient leaves."
        )
    return PocketFillCheck(
        injected_ml=injected_ml,
        expected_after_ml=expected_after_ml,
        measured_after_ml=measured_after_ml,
        gap_ml=gap_ml,
        limit_ml=limit_ml,
        flagged=flagged,
        warning=warning,
    )


# --- The engine ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Segment:
    """A stretch at one rate; ``end`` None: it lasts for ever. Times in UTC."""

    start: dt.datetime
    end: dt.datetime | None
    ml_per_day: float


def _periods_since(
    filled_at: dt.datetime, programs: Sequence[ProgramPeriod]
) -> list[tuple[dt.datetime, dt.datetime | None, ProgramPeriod]]:
    """(start, end, program) in UTC from the fill on; the first is the one in force then."""
    _require_aware("filled_at", filled_at)
    fill = filled_at.astimezone(dt.UTC)
    ordered = sorted(programs, key=lambda program: program.effective_from.astimezone(dt.UTC))
    starts = [program.effective_from.astimezone(dt.UTC) for program in ordered]
    for earlier, later in pairwise(starts):
        if earlier == later:
            raise ValueError(f"programs: two start at the same time ({later.isoformat()})")
    in_force = [index for index, start in enumerate(starts) if start <= fill]
    if not in_force:
        raise ValueError(
            f"programs: none is in force at filled_at ({filled_at.isoformat()}); the first"
            f" starts {starts[0].isoformat()}"
            if starts
            else "programs: at least one program is required"
        )
    first = in_force[-1]
    spans: list[tuple[dt.datetime, dt.datetime | None, ProgramPeriod]] = []
    for index in range(first, len(ordered)):
        end = starts[index + 1] if index + 1 < len(ordered) else None
        spans.append((max(starts[index], fill), end, ordered[index]))
    return spans


def _segments(
    filled_at: dt.datetime,
    programs: Sequence[ProgramPeriod],
    pump: PumpSpec,
    zone: dt.tzinfo,
) -> Iterator[_Segment]:
    """Consecutive rate segments from the fill; endless when the last program is flex."""
    for start, end, program in _periods_since(filled_at, programs):
        if (
            pump.constant_flow_ml_per_day is not None
            or len({step.rate_mcg_per_day for step in program.flex_steps}) <= 1
        ):
            yield _Segment(start, end, program_daily_volume_ml(program, pump))
        else:
            yield from _flex_segments(program, start, end, zone)


def _flex_segments(
    program: ProgramPeriod, start: dt.datetime, end: dt.datetime | None, zone: dt.tzinfo
) -> Iterator[_Segment]:
    bolus_ml_per_day = program.bolus_mcg_per_day / program.concentration_mcg_per_ml
    concentration = program.concentration_mcg_per_ml
    day = start.astimezone(zone).date() - dt.timedelta(days=1)
    rate_mcg_per_day: float | None = None
    cursor = start
    while True:  # the caller stops at the end or a horizon
        for step in program.flex_steps:
            step_at = _wall_clock_instant(day, step.starts_at_minute, zone)
            if step_at > start:
                if rate_mcg_per_day is None:  # pragma: no cover - yesterday's steps came first
                    raise AssertionError("no flex step before the period start")
                segment_end = step_at if end is None else min(step_at, end)
                if segment_end > cursor:
                    ml_per_day = rate_mcg_per_day / concentration + bolus_ml_per_day
                    yield _Segment(cursor, segment_end, ml_per_day)
                    cursor = segment_end
                if end is not None and step_at >= end:
                    return
            rate_mcg_per_day = step.rate_mcg_per_day
        if day >= dt.date.max - dt.timedelta(days=1):
            return  # the end of the calendar
        day += dt.timedelta(days=1)


def _wall_clock_instant(day: dt.date, minute: int, zone: dt.tzinfo) -> dt.datetime:
    """When the clinic's wall clock shows ``minute`` after midnight on ``day``, in UTC.

    Twice (clocks go back): the first time. Never (clocks go forward): the moment the clock
    jumps past it.
    """
    naive = dt.datetime.combine(day, dt.time(minute // 60, minute % 60))
    first = naive.replace(tzinfo=zone).astimezone(dt.UTC)
    if first.astimezone(zone).replace(tzinfo=None) == naive:
        return first
    # In the gap, fold=0 uses the offset before the jump and fold=1 the one after, so the
    # jump lies between the two readings; find it to the second.
    low = naive.replace(tzinfo=zone, fold=1).astimezone(dt.UTC)
    high = first
    if low > high:
        low, high = high, low
    after_offset = high.astimezone(zone).utcoffset()
    while (high - low) > dt.timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    # Offsets change on whole seconds: the one in (low, high].
    return high.replace(microsecond=0)


def _crossings(
    filled_at: dt.datetime,
    volume_ml: float,
    programs: Sequence[ProgramPeriod],
    pump: PumpSpec,
    zone: dt.tzinfo,
    thresholds_ml: Sequence[float],
) -> list[dt.datetime | None]:
    """When the volume falls to each threshold (UTC), in one walk; None if never (within
    ``MAX_FORECAST_DAYS``)."""
    start = filled_at.astimezone(dt.UTC)
    to_deliver_ml = [volume_ml - threshold_ml for threshold_ml in thresholds_ml]
    found: list[dt.datetime | None] = [start if ml <= 0 else None for ml in to_deliver_ml]
    pending = [index for index, ml in enumerate(to_deliver_ml) if ml > 0]
    horizon = _add_days(start, MAX_FORECAST_DAYS) or dt.datetime.max.replace(tzinfo=dt.UTC)
    delivered_ml = 0.0
    for segment in _segments(filled_at, programs, pump, zone):
        if not pending or segment.start >= horizon:
            break
        segment_ml = None
        if segment.end is not None:
            segment_ml = segment.ml_per_day * _elapsed_days(segment.start, segment.end)
        for index in list(pending):
            remaining_ml = to_deliver_ml[index] - delivered_ml
            if segment.ml_per_day <= 0 or (segment_ml is not None and segment_ml < remaining_ml):
                continue
            days = remaining_ml / segment.ml_per_day
            if _elapsed_days(start, segment.start) + days > MAX_FORECAST_DAYS:
                continue
            crossing = _add_days(segment.start, days)
            if crossing is not None and segment.end is not None:
                crossing = min(crossing, segment.end)
            found[index] = crossing
            pending.remove(index)
        if segment_ml is None:
            break
        delivered_ml += segment_ml
    return found


# --- Small helpers -------------------------------------------------------------------------


def _elapsed_days(start: dt.datetime, end: dt.datetime) -> float:
    return (end.astimezone(dt.UTC) - start.astimezone(dt.UTC)).total_seconds() / SECONDS_PER_DAY


def _add_days(at: dt.datetime, days: float) -> dt.datetime | None:
    try:
        return at.astimezone(dt.UTC) + dt.timedelta(days=days)
    except OverflowError:
        return None


def _require_aware(name: str, value: dt.datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware ({value.isoformat()})")


def _require_number(
    name: str, value: float, *, above: float | None = None, at_least: float | None = None
) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number ({value})")
    if above is not None and not value > above:
        raise ValueError(f"{name} must be > {above:g} ({value})")
    if at_least is not None and not value >= at_least:
        raise ValueError(f"{name} must be >= {at_least:g} ({value})")


def _require_fill(volume_ml: float, pump: PumpSpec, name: str = "volume_ml") -> None:
    _require_number(name, volume_ml, at_least=0)
    if volume_ml > pump.reservoir_ml:
        raise ValueError(
            f"{name} must be at most the reservoir, {pump.reservoir_ml:g} mL ({volume_ml})"
        )
