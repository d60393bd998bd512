"""Column types shared by the models."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECONDS_PER_SECOND = 1_000_000


class NaiveDatetimeError(TypeError):
    """A datetime without a time zone reached the database layer."""


def _checked_utc(value: Any) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(f"naive datetime {value.isoformat()} refused: give a time zone")
    return value.astimezone(dt.UTC)


def to_stored_microseconds(value: dt.datetime) -> int:
    """An aware datetime as SQLite keeps it: whole microseconds since 1970-01-01 UTC."""
    delta = _checked_utc(value) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * _MICROSECONDS_PER_SECOND + delta.microseconds


def from_stored(value: object) -> dt.datetime:
    """A stored datetime as the driver returns it → aware UTC: microseconds since the epoch
    (SQLite), ISO text (SQLite databases written before 0006, or a literal), or a datetime
    (PostgreSQL)."""
    if type(value) is int:
        return _EPOCH + dt.timedelta(microseconds=value)
    parsed = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(parsed, dt.datetime):
        raise TypeError(f"expected a stored datetime, got {value!r}")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware datetime, stored as UTC.

    Naive datetimes are refused: a wall-clock time without a zone is ambiguous across a
    daylight-saving change, and pumping is elapsed time.

    PostgreSQL keeps a ``timestamptz``. SQLite has no datetime type: there the value is an
    integer, whole microseconds since 1970-01-01 UTC — exact, ordered, 8 bytes instead of
    26 characters of text in every row and index (a clinic's years of refills and visits
    hold millions of them).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: Any) -> int | None:
            return None if value is None else to_stored_microseconds(value)

        return process

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else _checked_utc(value)

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], dt.datetime | None] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: Any) -> dt.datetime | None:
            return None if value is None else from_stored(value)

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else from_stored(value)
