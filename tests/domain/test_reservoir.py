"""The refill arithmetic's worked examples (ITB-FACTS §4)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pumpclinic.domain.reservoir import constant_rate_forecast, daily_volume_ml, mcg_per_hour

FILLED = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def test_20_ml_at_2000_mcg_per_ml_and_400_mcg_per_day() -> None:
    rate = daily_volume_ml(400, 2000)
    assert rate == pytest.approx(0.2)
    forecast = constant_rate_forecast(FILLED, 20, 2, rate)
    assert forecast.alarm_at == FILLED + dt.timedelta(days=90)
    assert forecast.empty_at == FILLED + dt.timedelta(days=100)


def test_40_ml_at_500_mcg_per_ml_and_300_mcg_per_day() -> None:
    forecast = constant_rate_forecast(FILLED, 40, 2, daily_volume_ml(300, 500))
    assert forecast.alarm_at is not None
    days = (forecast.alarm_at - FILLED) / dt.timedelta(days=1)
    assert days == pytest.approx(63 + 1 / 3)


def test_both_units_for_a_dose() -> None:
    assert mcg_per_hour(60) == pytest.approx(2.5)


def test_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="concentration"):
        daily_volume_ml(100, 0)
    with pytest.raises(ValueError, match="aware"):
        constant_rate_forecast(dt.datetime(2026, 1, 1), 20, 2, 0.2)


@given(
    volume=st.floats(0, 40),
    rate=st.floats(0.001, 5),
    days=st.floats(-10, 400),
)
def test_volume_is_never_negative_nor_above_the_fill(
    volume: float, rate: float, days: float
) -> None:
    forecast = constant_rate_forecast(FILLED, volume, 2, rate)
    left = forecast.volume_at(FILLED + dt.timedelta(days=days))
    assert 0 <= left <= volume
