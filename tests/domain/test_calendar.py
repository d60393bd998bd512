from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pumpclinic.domain.calendar import ClinicCalendar
from pumpclinic.domain.clinic import ClinicSettingsData

LONDON = zoneinfo.ZoneInfo("Europe/London")
CHRISTMAS = dt.date(2026, 12, 25)
BOXING = dt.date(2026, 12, 28)  # substitute day, a Monday


@pytest.fixture
def calendar() -> ClinicCalendar:
    return ClinicCalendar(zone=LONDON, holidays=frozenset({CHRISTMAS, BOXING}))


def test_weekends_and_holidays_are_closed(calendar: ClinicCalendar) -> None:
    assert calendar.is_open_day(dt.date(2026, 11, 27))  # Friday
    assert not calendar.is_open_day(dt.date(2026, 11, 28))  # Saturday
    assert not calendar.is_open_day(CHRISTMAS)


def test_latest_open_day_moves_back_over_weekend_and_holidays(calendar: ClinicCalendar) -> None:
    assert calendar.latest_open_day_on_or_before(dt.date(2026, 11, 29)) == dt.date(2026, 11, 27)
    assert calendar.latest_open_day_on_or_before(dt.date(2026, 11, 27)) == dt.date(2026, 11, 27)
    # Mon 28 Dec (holiday), weekend, Fri 25 Dec (holiday) -> Thu 24 Dec.
    assert calendar.latest_open_day_on_or_before(BOXING) == dt.date(2026, 12, 24)


def test_next_open_day(calendar: ClinicCalendar) -> None:
    assert calendar.next_open_day_on_or_after(dt.date(2026, 12, 25)) == dt.date(2026, 12, 29)


def test_open_days_in_a_range(calendar: ClinicCalendar) -> None:
    days = list(calendar.open_days(dt.date(2026, 12, 21), dt.date(2026, 12, 31)))
    assert days == [
        dt.date(2026, 12, 21),
        dt.date(2026, 12, 22),
        dt.date(2026, 12, 23),
        dt.date(2026, 12, 24),
        dt.date(2026, 12, 29),
        dt.date(2026, 12, 30),
        dt.date(2026, 12, 31),
    ]


def test_opening_window_follows_the_wall_clock_across_dst(calendar: ClinicCalendar) -> None:
    summer = calendar.opening_window(dt.date(2026, 3, 30))  # after the spring change
    winter = calendar.opening_window(dt.date(2026, 3, 27))
    assert summer is not None and winter is not None
    assert summer[0].astimezone(dt.UTC).time() == dt.time(7, 0)
    assert winter[0].astimezone(dt.UTC).time() == dt.time(8, 0)
    assert calendar.opening_window(dt.date(2026, 3, 28)) is None


def test_is_open_at(calendar: ClinicCalendar) -> None:
    assert calendar.is_open_at(dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC))
    assert not calendar.is_open_at(dt.datetime(2026, 11, 27, 18, 0, tzinfo=dt.UTC))
    assert not calendar.is_open_at(dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC))


def test_from_settings() -> None:
    settings = ClinicSettingsData(
        time_zone="America/Chicago",
        open_weekdays=frozenset({2, 4}),
        holidays=((dt.date(2026, 11, 26), "Thanksgiving"),),
    )
    calendar = ClinicCalendar.from_settings(settings)
    assert calendar.latest_open_day_on_or_before(dt.date(2026, 11, 27)) == dt.date(2026, 11, 24)


def test_refuses_impossible_calendars() -> None:
    with pytest.raises(ValueError, match="weekdays"):
        ClinicCalendar(zone=LONDON, open_weekdays=frozenset())
    with pytest.raises(ValueError, match="closes_at"):
        ClinicCalendar(zone=LONDON, opens_at=dt.time(18), closes_at=dt.time(8))


@given(
    day=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 1, 1)),
    weekdays=st.frozensets(st.integers(1, 7), min_size=1),
)
def test_latest_open_day_is_open_and_never_later(day: dt.date, weekdays: frozenset[int]) -> None:
    calendar = ClinicCalendar(zone=LONDON, open_weekdays=weekdays)
    found = calendar.latest_open_day_on_or_before(day)
    assert found is not None
    assert found <= day
    assert calendar.is_open_day(found)
    assert (day - found).days < 7
    # no open day was skipped in between
    assert all(
        not calendar.is_open_day(found + dt.timedelta(days=k))
        for k in range(1, (day - found).days + 1)
    )
