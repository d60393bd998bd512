"""Headless screening commands: the trial's dose plan, the starting dose, the titration range.

    pumpclinic screening-plan --first-dose-at T [--tz ZONE] [--protocol ID] [--json]
    pumpclinic starting-dose --screening-dose-mcg N --effect-hours H [--json]
    pumpclinic titration-range --dose-mcg-per-day N --origin spinal|cerebral [--child] [--json]

Numbers and names are read as text and checked here, so every bad value is one
``error: --option ...`` line naming the option and its limit (exit status 2).
"""

from __future__ import annotations

import argparse
import zoneinfo
from typing import Any

from pumpclinic.commands import CommandError
from pumpclinic.commands.options import (
    fmt_number,
    iso_in,
    parse_number,
    parse_time,
    parse_zone,
    print_json,
)
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
# Doses in the output: to 0.01 mcg, which hides float noise such as 110.00000000000001.
DECIMALS = 2


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
    zone = parse_zone(args.tz)
    first_dose_at = parse_time("--first-dose-at", args.first_dose_at, zone, args.tz)
    reference = load_reference()
    known = [protocol.id for protocol in reference.screening_protocols]
    if args.protocol not in known:
        raise CommandError(
            f"--protocol: no screening protocol {args.protocol!r}; known: {', '.join(known)}"
        )
    protocol = reference.screening_protocol(args.protocol)
    doses = plan_doses(protocol, first_dose_at)
    if args.json:
        print_json({"doses": [_dose_json(dose, zone) for dose in doses]})
        return 0
    print(f"{protocol.name} (times in {args.tz}):")
    for dose in doses:
        amount = f"{fmt_number(dose.dose_mcg)} mcg = {fmt_number(dose.volume_ml)} mL"
        strength = f"{fmt_number(dose.concentration_mcg_per_ml)} mcg/mL"
        print(
            f"  Dose {dose.number}: {amount} of {strength}, from {iso_in(dose.earliest_at, zone)};"
            f" assess from {iso_in(dose.assess_from, zone)},"
            f" observe until {iso_in(dose.observe_until, zone)}"
        )
    print("Each dose only if the one before had an inadequate response; never earlier.")
    return 0


def starting_dose(args: argparse.Namespace) -> int:
    dose_mcg = _number("--screening-dose-mcg", args.screening_dose_mcg, MAX_SCREENING_DOSE_MCG)
    effect_hours = _number("--effect-hours", args.effect_hours, MAX_EFFECT_HOURS)
    daily = starting_dose_mcg_per_day(dose_mcg, effect_hours)
    if args.json:
        print_json({"dose_mcg_per_day": round(daily, DECIMALS)})
        return 0
    factor = "1 ×" if effect_hours > LONG_EFFECT_HOURS else "2 ×"
    longer = "more" if effect_hours > LONG_EFFECT_HOURS else "not more"
    print(
        f"Starting dose: {fmt_number(daily)} mcg/day"
        f" ({fmt_number(mcg_per_hour(daily), 3)} mcg/hour) ="
        f" {factor} {fmt_number(dose_mcg)} mcg; the effect lasted {fmt_number(effect_hours)} h,"
        f" {longer} than {fmt_number(LONG_EFFECT_HOURS)} h. No increase in the first 24 h."
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
        print_json(
            {
                "min_mcg_per_day": round(bounds.min_mcg_per_day, DECIMALS),
                "max_mcg_per_day": round(bounds.max_mcg_per_day, DECIMALS),
            }
        )
        return 0
    low, high = increase_bounds(origin, args.child)
    who = "child" if args.child else "adult"
    print(
        f"Next increase ({origin.value} origin, {who}: {low * 100:g}–{high * 100:g} % per 24 h):"
        f" {fmt_number(bounds.min_mcg_per_day)}–{fmt_number(bounds.max_mcg_per_day)} mcg/day"
        f" ({fmt_number(mcg_per_hour(bounds.min_mcg_per_day), 3)}–"
        f"{fmt_number(mcg_per_hour(bounds.max_mcg_per_day), 3)} mcg/hour), at most once per 24 h."
    )
    return 0


# --- Input ---------------------------------------------------------------------------------


def _number(option: str, text: str, high: float) -> float:
    return parse_number(option, text, above=0, at_most=high)


# --- Output --------------------------------------------------------------------------------


def _dose_json(dose: PlannedDose, zone: zoneinfo.ZoneInfo) -> dict[str, object]:
    return {
        "number": dose.number,
        "dose_mcg": dose.dose_mcg,
        "volume_ml": dose.volume_ml,
        "concentration_mcg_per_ml": dose.concentration_mcg_per_ml,
        "earliest_at": iso_in(dose.earliest_at, zone),
        "assess_from": iso_in(dose.assess_from, zone),
        "observe_until": iso_in(dose.observe_until, zone),
    }
