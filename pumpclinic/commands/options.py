"""Reading command-line values: every bad value is a CommandError naming the option."""

from __future__ import annotations

import datetime as dt
import json
import math
import zoneinfo

from pumpclinic.commands import CommandError

# Keeps time arithmetic away from datetime's limits (year 1 and 9999) and local mean time.
FIRST_YEAR = 1900
LAST_YEAR = 2999
# Enough to show float noise away (0.6000000000000001) and keep every clinical digit.
DECIMALS = 4


def parse_zone(name: str, option: str = "--tz") -> zoneinfo.ZoneInfo:
    message = f"{option}: {name!r} is not an IANA time zone name (e.g. Europe/London)"
    if not name or name != name.strip():
        raise CommandError(message)
    try:
        return zoneinfo.ZoneInfo(name)
    # A folder name such as 'Europe' raises IsADirectoryError.
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise CommandError(message) from None


def parse_time(option: str, text: str, zone: zoneinfo.ZoneInfo, zone_name: str) -> dt.datetime:
    """An ISO 8601 time as an aware UTC datetime; one without an offset is a wall-clock
    time in ``zone`` (refused where the clocks skip it or repeat it)."""
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise CommandError(
            f"{option}: {text!r} is not an ISO 8601 date and time ({error}); e.g."
            " 2026-01-05T09:00 or 2026-01-05T09:00+00:00"
        ) from None
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise CommandError(
            f"{option}: the year must be between {FIRST_YEAR} and {LAST_YEAR}, got {parsed.year}"
        )
    if parsed.tzinfo is not None:
        return parsed.astimezone(dt.UTC)
    first = parsed.replace(tzinfo=zone, fold=0)
    second = parsed.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset():
        round_trip = first.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None)
        if round_trip != parsed:
            raise CommandError(
                f"{option}: {text} does not exist in {zone_name} (the clocks go forward then)"
            )
        raise CommandError(
            f"{option}: {text} happens twice in {zone_name} (the clocks go back then); add the"
            f" offset, e.g. {first.isoformat(timespec='minutes')} or"
            f" {second.isoformat(timespec='minutes')}"
        )
    return first.astimezone(dt.UTC)


def parse_number(
    option: str,
    text: str,
    *,
    above: float | None = None,
    at_least: float | None = None,
    at_most: float | None = None,
) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    finite = math.isfinite(value)
    if above is not None and not (finite and value > above):
        limit = f" and at most {at_most:g}" if at_most is not None else ""
        raise CommandError(f"{option} must be a number greater than {above:g}{limit}, got {text!r}")
    if at_least is not None and not (finite and value >= at_least):
        raise CommandError(f"{option} must be a number of {at_least:g} or more, got {text!r}")
    if at_most is not None and not (finite and value <= at_most):
        raise CommandError(f"{option} must be a number of at most {at_most:g}, got {text!r}")
    if not finite:
        raise CommandError(f"{option} must be a finite number, got {text!r}")
    return value


def iso_in(at: dt.datetime | None, zone: zoneinfo.ZoneInfo) -> str | None:
    """ISO 8601 in ``zone`` with its offset, to the nearest second."""
    if at is None:
        return None
    rounded = at.astimezone(dt.UTC) + dt.timedelta(microseconds=500_000)
    return rounded.replace(microsecond=0).astimezone(zone).isoformat(timespec="seconds")


def fmt_number(value: float, decimals: int = DECIMALS) -> str:
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def print_json(document: dict[str, object]) -> None:
    print(json.dumps(document, ensure_ascii=False))
