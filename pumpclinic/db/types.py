"""Column types shared by the models."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class NaiveDatetimeError(TypeError):
    """A datetime without a time zone reached the database layer."""


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware datetime, stored as UTC.

    Naive datetimes are refused: a wall-clock time without a zone is ambiguous across a
    daylight-saving change, and pumping is elapsed time.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError(
                f"naive datetime {value.isoformat()} refused: give a time zone"
            )
        utc = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            # SQLite has no zone type: store the UTC wall time, restored as UTC on read.
            return utc.replace(tzinfo=None)
        return utc

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], dt.datetime | None] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        # SQLite returns the stored text: parse it in one step (this runs for every datetime
        # read, hundreds of thousands of times when a whole clinic's history is read).
        parse = dt.datetime.fromisoformat
        utc = dt.UTC

        def process(value: Any) -> dt.datetime | None:
            if value is None:
                return None
            parsed = parse(value) if isinstance(value, str) else value
            if not isinstance(parsed, dt.datetime):
                raise TypeError(f"expected a stored datetime, got {value!r}")
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=utc)
            return parsed.astimezone(utc)

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
