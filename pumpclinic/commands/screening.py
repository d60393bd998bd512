"""Headless screening commands: the trial's dose plan, the starting dose, the titration range.

    pumpclinic screening-plan --first-dose-at T [--tz ZONE] [--protocol ID] [--json]
    pumpclinic starting-dose --screening-dose-mcg N --effect-hours H [--json]
    pumpclinic titration-range --dose-mcg-per-day N --origin spinal|cerebral [--child] [--json]

Numbers and names are read as text and checked here, so every bad value is one
``error: --option ...`` line naming the option and its limit (exit status 2).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import zoneinfo
from typing import Any

from pumpclinic.commands import CommandError
from pumpclinic.domain.enums import SpasticityOrigin
from pumpclinic.domain.reservoir import mcg_per_hour
from pumpclinic.domain.screening import PlannedDose, plan_doses
from pumpclinic.domain.titration import (
    LONG_EFFECT_HOURS,
    MAX_DOSE_MCG_PER_DAY,
    MAX_EFFECT_HOURS,
    MAX_SCREENING_DOSE_MCG,
    increase_bounds,
    starting_dose_mcg_per_day,
    titration_range,
)
from pumpclinic.reference_files import load_reference

DEFAULT_PROTOCOL = "standard"
DEFAULT_TIME_ZONE = "UTC"
# Keeps time arithmetic away from datetime's limits (year 1 and 9999) and local mean time.
FIRST_YEAR = 1900
LAST_YEAR = 2999
# Doses in the output: to 0.01 mcg, which hides float noise such as 110.00000000000001.
_DECIMALS = 2


def add_parsers(subcommands: Any) -> None:
    plan = subcommands.add_parser(
        "screening-plan",
        help="the screening trial's test doses, each 24 h (elapsed) after the one before",
    )
    plan.add_argument(
        "--first-dose-at",
        required=True,
        metavar="T",
        help="ISO 8601 time of the first dose, e.g. 2026-03-28T09:00 (taken in --tz"
        " without an offset)",
    )
    plan.add_argument(
        "--tz",
        default=DEFAULT_TIME_ZONE,
        metavar="ZONE",
        help=f"IANA time zone for input and output (default {DEFAULT_TIME_ZONE})",
    )
    plan.add_argument(
        "--protocol",
        default=DEFAULT_PROTOCOL,
        metavar="ID",
        help=f"screening protocol id, e.g. standard or small-child (default {DEFAULT_PROTOCOL})",
    )
    plan.add_argument("--json", action="store_true", help="print one JSON document")
    plan.set_defaults(handler=screening_plan)

    start = subcommands.add_parser(
        "starting-dose",
        help="the starting daily dose after implant: 2 × the effective screening dose"
        " (1 × if its effect lasted more than 8 h)",
    )
    start.add_argument("--screening-dose-mcg", required=True, metavar="N")
    start.add_argument("--effect-hours", required=True, metavar="H")
    start.add_argument("--json", action="store_true", help="print one JSON document")
    start.set_defaults(handler=starting_dose)

    titration = subcommands.add_parser(
        "titration-range",
        help="the next daily dose after one increase: spinal 10–30 %%, cerebral and children"
        " 5–15 %% per 24 h",
    )
    titration.add_argument("--dose-mcg-per-day", required=True, metavar="N")
    titration.add_argument(
        "--origin", required=True, metavar="spinal|cerebral", help="origin of the spasticity"
    )
    titration.add_argument("--child", action="store_true", help="the patient is a child")
    titration.add_argument("--json", action="store_true", help="print one JSON document")
    titration.set_defaults(handler=titration_range_command)


# --- Handlers ------------------------------------------------------------------------------


def screening_plan(args: argparse.Namespace) -> int:
    zone = _zone(args.tz)
    first_dose_at = _time("--first-dose-at", args.first_dose_at, zone, args.tz)
    reference = load_reference()
    known = [protocol.id for protocol in reference.screening_protocols]
    if args.protocol not in known:
        raise CommandError(
            f"--protocol: no screening protocol {args.protocol!r}; known: {', '.join(known)}"
        )
    protocol = reference.screening_protocol(args.protocol)
    doses = plan_doses(protocol, first_dose_at)
    if args.json:
        _print_json({"doses": [_dose_json(dose) for dose in doses]})
        return 0
    print(f"{protocol.name} (times in {args.tz}):")
    for dose in doses:
        print(
            f"  Dose {dose.number}: {_num(dose.dose_mcg)} mcg = {_num(dose.volume_ml)} mL of"
            f" {_num(dose.concentration_mcg_per_ml)} mcg/mL, from {_iso(dose.earliest_at)};"
            f" assess from {_iso(dose.assess_from)}, observe until {_iso(dose.observe_until)}"
        )
    print("Each dose only if the one before had an inadequate response; never earlier.")
    return 0


def starting_dose(args: argparse.Namespace) -> int:
    dose_mcg = _number("--screening-dose-mcg", args.screening_dose_mcg, MAX_SCREENING_DOSE_MCG)
    effect_hours = _number("--effect-hours", args.effect_hours, MAX_EFFECT_HOURS)
    daily = starting_dose_mcg_per_day(dose_mcg, effect_hours)
    if args.json:
        _print_json({"dose_mcg_per_day": round(daily, _DECIMALS)})
        return 0
    factor = "1 ×" if effect_hours > LONG_EFFECT_HOURS else "2 ×"
    longer = "more" if effect_hours > LONG_EFFECT_HOURS else "not more"
    print(
        f"Starting dose: {_num(daily)} mcg/day ({_num(mcg_per_hour(daily), 3)} mcg/hour) ="
        f" {factor} {_num(dose_mcg)} mcg; the effect lasted {_num(effect_hours)} h,"
        f" {longer} than {_num(LONG_EFFECT_HOURS)} h. No increase in the first 24 h."
    )
    return 0


def titration_range_command(args: argparse.Namespace) -> int:
    dose = _number("--dose-mcg-per-day", args.dose_mcg_per_day, MAX_DOSE_MCG_PER_DAY)
    origins = [origin.value for origin in SpasticityOrigin]
    if args.origin not in origins:
        raise CommandError(f"--origin must be one of {', '.join(origins)} (got {args.origin!r})")
    origin = SpasticityOrigin(args.origin)
    bounds = titration_range(dose, origin, args.child)
    if args.json:
        _print_json(
            {
                "min_mcg_per_day": round(bounds.min_mcg_per_day, _DECIMALS),
                "max_mcg_per_day": round(bounds.max_mcg_per_day, _DECIMALS),
            }
        )
        return 0
    low, high = increase_bounds(origin, args.child)
    who = "child" if args.child else "adult"
    print(
        f"Next increase ({origin.value} origin, {who}: {low * 100:g}–{high * 100:g} % per 24 h):"
        f" {_num(bounds.min_mcg_per_day)}–{_num(bounds.max_mcg_per_day)} mcg/day"
        f" ({_num(mcg_per_hour(bounds.min_mcg_per_day), 3)}–"
        f"{_num(mcg_per_hour(bounds.max_mcg_per_day), 3)} mcg/hour), at most once per 24 h."
    )
    return 0


# --- Input ---------------------------------------------------------------------------------


def _zone(name: str) -> zoneinfo.ZoneInfo:
    if not name or name != name.strip():
        raise CommandError(f"--tz: {name!r} is not an IANA time zone name (e.g. Europe/London)")
    try:
        return zoneinfo.ZoneInfo(name)
    # A folder name such as 'Europe' raises IsADirectoryError.
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise CommandError(
            f"--tz: {name!r} is not an IANA time zone name (e.g. Europe/London)"
        ) from None


def _time(option: str, text: str, zone: zoneinfo.ZoneInfo, zone_name: str) -> dt.datetime:
    """An ISO 8601 time; one without an offset is a wall-clock time in ``zone``."""
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandError(
            f"{option}: {text!r} is not an ISO 8601 date and time (e.g. 2026-03-28T09:00"
            " or 2026-03-28T09:00+00:00)"
        ) from None
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise CommandError(
            f"{option}: the year must be between {FIRST_YEAR} and {LAST_YEAR}, got {parsed.year}"
        )
    if parsed.tzinfo is not None:
        return parsed.astimezone(zone)
    first = parsed.replace(tzinfo=zone, fold=0)
    second = parsed.replace(tzinfo=zone, fold=1)
    if first.utcoffset() != second.utcoffset():
        # Ambiguous (the clocks go back) or missing (they go forward) on the wall clock.
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
    return first


def _number(option: str, text: str, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 < value <= high:
        raise CommandError(
            f"{option} must be a number more than 0 and at most {high:g}, got {text!r}"
        )
    return value


# --- Output --------------------------------------------------------------------------------


def _dose_json(dose: PlannedDose) -> dict[str, object]:
    return {
        "number": dose.number,
        "dose_mcg": dose.dose_mcg,
        "volume_ml": dose.volume_ml,
        "concentration_mcg_per_ml": dose.concentration_mcg_per_ml,
        "earliest_at": _iso(dose.earliest_at),
        "assess_from": _iso(dose.assess_from),
        "observe_until": _iso(dose.observe_until),
    }


def _iso(at: dt.datetime) -> str:
    return at.isoformat(timespec="seconds")


def _num(value: float, decimals: int = _DECIMALS) -> str:
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def _print_json(document: dict[str, object]) -> None:
    print(json.dumps(document, ensure_ascii=False))
