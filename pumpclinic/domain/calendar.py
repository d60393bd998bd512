"""The clinic's calendar: open weekdays minus holidays, opening hours in the clinic's zone.

Open days over a range come from dateutil's rrule (a daily rule over the open weekdays,
holidays excluded). The nearest open day before or after a date is asked once per pump when
the alert list is computed, so it is found by stepping day by day with ``is_open_day`` (the
same days the rule gives, without building a rule) and remembered per calendar. Opening hours
are wall-clock times in the clinic's zone, so a day's window is built with zoneinfo and is
right across daylight-saving changes.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from dateutil.rrule import DAILY, rrule, rruleset, weekday

from pumpclinic.domain.clinic import ClinicSettingsData

# ISO weekday (Monday = 1) -> dateutil weekday (Monday = 0).
_RRULE_WEEKDAYS = {iso: weekday(iso - 1) for iso in range(1, 8)}
SEARCH_LIMIT_DAYS = 366


@dataclass(frozen=True, slots=True)
class ClinicCalendar:
    zone: zoneinfo.ZoneInfo
    opens_at: dt.time = dt.time(8, 0)
    closes_at: dt.time = dt.time(18, 0)
    open_weekdays: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    holidays: frozenset[dt.date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.open_weekdays or not self.open_weekdays <= set(_RRULE_WEEKDAYS):
            raise ValueError("open_weekdays must be a non-empty set of ISO weekdays 1..7")
        if self.closes_at <= self.opens_at:
            raise ValueError("closes_at must be after opens_at")

    @classmethod
    def from_settings(cls, settings: ClinicSettingsData) -> ClinicCalendar:
        return cls(
            zone=settings.zone,
            opens_at=settings.opens_at,
            closes_at=settings.closes_at,
            open_weekdays=settings.open_weekdays,
            holidays=frozenset(day for day, _name in settings.holidays),
        )

    # --- days -------------------------------------------------------------------------

    def is_open_day(self, day: dt.date) -> bool:
        return day.isoweekday() in self.open_weekdays and day not in self.holidays

    def _rule(self, start: dt.date, end: dt.date) -> rruleset:
        rules = rruleset()
        rules.rrule(
            rrule(
                DAILY,
                dtstart=dt.datetime.combine(start, dt.time()),
                until=dt.datetime.combine(end, dt.time()),
                byweekday=[_RRULE_WEEKDAYS[d] for d in sorted(self.open_weekdays)],
            )
        )
        for holiday in self.holidays:
            if start <= holiday <= end:
                rules.exdate(dt.datetime.combine(holiday, dt.time()))
        return rules

    def open_days(self, start: dt.date, end: dt.date) -> Iterator[dt.date]:
        """Open days from ``start`` to ``end``, both included."""
        if end < start:
            return
        for moment in self._rule(start, end):
            yield moment.date()

    def latest_open_day_on_or_before(self, day: dt.date) -> dt.date | None:
        """``day`` itself if open, else the open day before it (None within a year)."""
        return _nearest_open_day(self, day, -1)

    def next_open_day_on_or_after(self, day: dt.date) -> dt.date | None:
        """``day`` itself if open, else the open day after it (None within a year)."""
        return _nearest_open_day(self, day, 1)

    # --- times ------------------------------------------------------------------------

    def local_date(self, at: dt.datetime) -> dt.date:
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        return at.astimezone(self.zone).date()

    def opening_window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """The day's opening and closing as aware datetimes, or None on a closed day."""
        if not self.is_open_day(day):
            return None
        return (
            dt.datetime.combine(day, self.opens_at, tzinfo=self.zone),
            dt.datetime.combine(day, self.closes_at, tzinfo=self.zone),
        )

    def is_open_at(self, at: dt.datetime) -> bool:
        window = self.opening_window(self.local_date(at))
        return window is not None and window[0] <= at < window[1]


@lru_cache(maxsize=8192)
def _nearest_open_day(calendar: ClinicCalendar, day: dt.date, step: int) -> dt.date | None:
    """The first open day from ``day`` on, going ``step`` (±1) days at a time, at most
    ``SEARCH_LIMIT_DAYS`` away. A calendar is frozen and hashable, so the answer is kept."""
    one = dt.timedelta(days=step)
    for _ in range(SEARCH_LIMIT_DAYS + 1):
        if calendar.is_open_day(day):
            return day
        try:
            day += one
        except OverflowError:  # the ends of the calendar
            return None
    return None
