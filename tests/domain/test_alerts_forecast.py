"""The alert list's fast forecast gives the reservoir engine's answer; the calendar's quick
open-day lookups give the rrule's."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pumpclinic.domain.alerts import fast_forecast
from pumpclinic.domain.calendar import ClinicCalendar
from pumpclinic.domain.reservoir import FlexStep, Forecast, ProgramPeriod, PumpSpec, forecast

ZONES = [
    zoneinfo.ZoneInfo(name)
    for name in (
        "Europe/London",
        "America/New_York",
        "Australia/Lord_Howe",  # a 30-minute daylight-saving change
        "Africa/Casablanca",  # changes around Ramadan, weeks apart
        "UTC",
    )
]
# The fast walk takes whole days at a time: the float sums differ from the step-by-step ones
# in the last bits, far below the microsecond a datetime holds.
TOLERANCE = dt.timedelta(milliseconds=1)


def _same(fast: Forecast, slow: Forecast) -> None:
    for name in ("alarm_at", "empty_at", "stability_limit_at"):
        a, b = getattr(fast, name), getattr(slow, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert abs(a - b) <= TOLERANCE, (name, a, b)
    assert fast.refill_due == slow.refill_due
    assert fast.daily_volume_ml == pytest.approx(slow.daily_volume_ml)
    if slow.days_to_alarm is None:
        assert fast.days_to_alarm is None
    else:
        assert fast.days_to_alarm == pytest.approx(slow.days_to_alarm, abs=1e-6)


@st.composite
def programs(draw: st.DrawFn, filled_at: dt.datetime) -> list[ProgramPeriod]:
    start = filled_at - dt.timedelta(minutes=draw(st.integers(0, 5 * 24 * 60)))
    periods: list[ProgramPeriod] = []
    for _ in range(draw(st.integers(1, 3))):
        steps: tuple[FlexStep, ...] = ()
        if draw(st.booleans()):
            minutes = sorted(draw(st.sets(st.integers(0, 24 * 4 - 1), min_size=2, max_size=6)))
            steps = tuple(
                FlexStep(minute * 15, draw(st.sampled_from([0.0, 150.0, 300.0, 450.0, 800.0])))
                for minute in minutes
            )
        bolus = draw(st.sampled_from([None, 20.0, 50.0]))
        periods.append(
            ProgramPeriod(
                effective_from=start,
                concentration_mcg_per_ml=draw(st.sampled_from([500.0, 1000.0, 2000.0])),
                dose_mcg_per_day=draw(st.sampled_from([150.0, 400.0, 900.0])),
                flex_steps=steps,
                bolus_dose_mcg=bolus,
                max_boluses_per_day=0 if bolus is None else draw(st.integers(1, 4)),
            )
        )
        start += dt.timedelta(minutes=draw(st.integers(1, 90 * 24 * 60)))
    return periods


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_fast_forecast_equals_the_reservoir_engine(data: st.DataObject) -> None:
    zone = data.draw(st.sampled_from(ZONES))
    filled_at = dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
        minutes=data.draw(st.integers(0, 3 * 365 * 24 * 60))
    )
    periods = data.draw(programs(filled_at))
    constant = data.draw(st.sampled_from([None, 0.5]))
    pump = PumpSpec(reservoir_ml=40, low_reservoir_alarm_ml=2, constant_flow_ml_per_day=constant)
    volume_ml = data.draw(st.floats(0, 40))
    stability_days = data.draw(st.sampled_from([None, 77, 180]))
    calendar = ClinicCalendar(zone=zone, holidays=frozenset({dt.date(2026, 12, 25)}))
    kwargs = {"margin_days": 7, "stability_days": stability_days, "zone": zone}
    try:
        slow = forecast(filled_at, volume_ml, periods, pump, calendar, **kwargs)  # type: ignore[arg-type]
    except ValueError as error:
        with pytest.raises(ValueError, match=re.escape(str(error)[:20])):
            fast_forecast(filled_at, volume_ml, periods, pump, calendar, **kwargs)  # type: ignore[arg-type]
        return
    _same(fast_forecast(filled_at, volume_ml, periods, pump, calendar, **kwargs), slow)  # type: ignore[arg-type]


def test_fast_forecast_across_the_autumn_clock_change_with_flex_steps() -> None:
    london = zoneinfo.ZoneInfo("Europe/London")
    filled = dt.datetime(2026, 10, 1, 9, 0, tzinfo=dt.UTC)
    program = ProgramPeriod(
        filled,
        2000,
        400,
        flex_steps=(FlexStep(0, 300), FlexStep(90, 500), FlexStep(1200, 400)),  # 01:30 repeats
    )
    calendar = ClinicCalendar(zone=london)
    pump = PumpSpec(reservoir_ml=20, low_reservoir_alarm_ml=2)
    slow = forecast(filled, 20, [program], pump, calendar, margin_days=7, stability_days=None)
    fast = fast_forecast(filled, 20, [program], pump, calendar, margin_days=7, stability_days=None)
    _same(fast, slow)
    assert slow.alarm_at is not None and slow.alarm_at > dt.datetime(2026, 10, 25, tzinfo=dt.UTC)


def test_bad_input_is_refused_with_the_engine_message() -> None:
    calendar = ClinicCalendar(zone=zoneinfo.ZoneInfo("UTC"))
    filled = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    pump = PumpSpec(reservoir_ml=20, low_reservoir_alarm_ml=2)
    with pytest.raises(ValueError, match="volume_ml must be at most the reservoir"):
        fast_forecast(
            filled, 25, [ProgramPeriod(filled, 500, 100)], pump, calendar,
            margin_days=7, stability_days=None,
        )  # fmt: skip
    with pytest.raises(ValueError, match="none is in force"):
        fast_forecast(
            filled, 10, [ProgramPeriod(filled + dt.timedelta(days=1), 500, 100)], pump, calendar,
            margin_days=7, stability_days=None,
        )  # fmt: skip


# --- the calendar's open-day lookups -------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    weekdays=st.sets(st.integers(1, 7), min_size=1),
    holidays=st.sets(st.dates(dt.date(2026, 1, 1), dt.date(2027, 12, 31)), max_size=40),
    day=st.dates(dt.date(2026, 1, 1), dt.date(2027, 12, 31)),
)
def test_open_day_lookups_match_the_rrule(
    weekdays: set[int], holidays: set[dt.date], day: dt.date
) -> None:
    calendar = ClinicCalendar(
        zone=zoneinfo.ZoneInfo("Europe/London"),
        open_weekdays=frozenset(weekdays),
        holidays=frozenset(holidays),
    )
    year = dt.timedelta(days=366)
    before = list(calendar.open_days(day - year, day))
    after = list(calendar.open_days(day, day + year))
    assert calendar.latest_open_day_on_or_before(day) == (before[-1] if before else None)
    assert calendar.next_open_day_on_or_after(day) == (after[0] if after else None)
