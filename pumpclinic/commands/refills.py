"""Headless refill commands: the reservoir forecast and the reconciliation at a refill.

    pumpclinic forecast --volume-ml V --concentration-mcg-per-ml C --dose-mcg-per-day D
        --filled-at T [--alarm-ml A] [--reservoir-ml R] [--margin-days M]
        [--stability-days S] [--tz ZONE] [--json]
    pumpclinic reconcile --volume-ml V --filled-at T --concentration-mcg-per-ml C
        --dose-mcg-per-day D --aspirated-ml X --at T [--reservoir-ml R] [--tz ZONE] [--json]

Numbers, times and zones are read as text and checked here, so every bad value is one
``error: --option ...`` line naming the option and its limit (exit status 2). Times in the
output are ISO 8601 in ``--tz`` with its offset; open days are Monday to Friday.
"""

from __future__ import annotations

import argparse
import zoneinfo
from typing import Any

from pumpclinic.commands import CommandError
from pumpclinic.commands.options import (
    DECIMALS,
    fmt_number,
    iso_in,
    parse_number,
    parse_time,
    parse_zone,
    print_json,
)
from pumpclinic.domain.calendar import ClinicCalendar
from pumpclinic.domain.clinic import REFILL_SAFETY_MARGIN_DAYS_RANGE
from pumpclinic.domain.reservoir import (
    DEFAULT_FLOW_ACCURACY_PCT,
    Forecast,
    ProgramPeriod,
    PumpSpec,
    Reconciliation,
    forecast,
    mcg_per_hour,
    reconcile,
)

DEFAULT_TIME_ZONE = "UTC"
DEFAULT_ALARM_ML = 2.0
DEFAULT_RESERVOIR_ML = 40.0
DEFAULT_MARGIN_DAYS = 7
MAX_STABILITY_DAYS = 3650


def add_parsers(subcommands: Any) -> None:
    forecast_parser = subcommands.add_parser(
        "forecast",
        help="when a pump alarms and runs empty, and the day it must be refilled by",
        description="Reservoir forecast (ITB-FACTS §4): daily volume = dose ÷ concentration;"
        " refill due = the latest weekday on or before the earlier of (alarm − margin) and the"
        " stability limit.",
    )
    _fill_options(forecast_parser)
    forecast_parser.add_argument(
        "--alarm-ml",
        default=str(DEFAULT_ALARM_ML),
        metavar="A",
        help=f"the pump's low-reservoir alarm volume, mL (default {DEFAULT_ALARM_ML:g})",
    )
    _reservoir_option(forecast_parser)
    forecast_parser.add_argument(
        "--margin-days",
        default=str(DEFAULT_MARGIN_DAYS),
        metavar="M",
        help=f"days of safety margin before the alarm (default {DEFAULT_MARGIN_DAYS})",
    )
    forecast_parser.add_argument(
        "--stability-days",
        metavar="S",
        help="the drug's maximum days in the pump (default: no limit)",
    )
    _common_options(forecast_parser)
    forecast_parser.set_defaults(handler=forecast_command)

    reconcile_parser = subcommands.add_parser(
        "reconcile",
        help="expected vs aspirated residual at a refill, with the investigation flags",
        description="Reconciliation (ITB-FACTS §5): flags a gap over 2 mL and a delivery"
        f" error over the pump's accuracy (±{DEFAULT_FLOW_ACCURACY_PCT:g} %).",
    )
    _fill_options(reconcile_parser)
    reconcile_parser.add_argument(
        "--aspirated-ml", required=True, metavar="X", help="residual volume aspirated, mL"
    )
    reconcile_parser.add_argument(
        "--at", required=True, metavar="T", help="ISO 8601 time of the aspiration"
    )
    _reservoir_option(reconcile_parser)
    _common_options(reconcile_parser)
    reconcile_parser.set_defaults(handler=reconcile_command)


def _fill_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--volume-ml", required=True, metavar="V", help="volume in the pump after the fill, mL"
    )
    parser.add_argument(
        "--concentration-mcg-per-ml", required=True, metavar="C", help="drug concentration"
    )
    parser.add_argument(
        "--dose-mcg-per-day", required=True, metavar="D", help="programmed daily dose"
    )
    parser.add_argument(
        "--filled-at",
        required=True,
        metavar="T",
        help="ISO 8601 time of the fill, e.g. 2026-01-05T09:00+00:00 (taken in --tz without"
        " an offset)",
    )


def _reservoir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reservoir-ml",
        default=str(DEFAULT_RESERVOIR_ML),
        metavar="R",
        help=f"the pump's reservoir, mL (default {DEFAULT_RESERVOIR_ML:g})",
    )


def _common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tz",
        default=DEFAULT_TIME_ZONE,
        metavar="ZONE",
        help=f"the clinic's IANA time zone for input, output and open days"
        f" (default {DEFAULT_TIME_ZONE})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")


# --- Handlers ------------------------------------------------------------------------------


def forecast_command(args: argparse.Namespace) -> int:
    zone = parse_zone(args.tz)
    reservoir_ml = parse_number("--reservoir-ml", args.reservoir_ml, above=0)
    alarm_ml = parse_number("--alarm-ml", args.alarm_ml, at_least=0)
    if alarm_ml >= reservoir_ml:
        raise CommandError(
            f"--alarm-ml must be less than --reservoir-ml ({fmt_number(reservoir_ml)} mL),"
            f" got {args.alarm_ml!r}"
        )
    volume_ml = _fill_volume(args.volume_ml, reservoir_ml)
    concentration = parse_number(
        "--concentration-mcg-per-ml", args.concentration_mcg_per_ml, above=0
    )
    dose = parse_number("--dose-mcg-per-day", args.dose_mcg_per_day, at_least=0)
    filled_at = parse_time("--filled-at", args.filled_at, zone, args.tz)
    low, high = REFILL_SAFETY_MARGIN_DAYS_RANGE
    margin_days = _integer("--margin-days", args.margin_days, low, high)
    stability_days = None
    if args.stability_days is not None:
        stability_days = _integer("--stability-days", args.stability_days, 1, MAX_STABILITY_DAYS)
    pump = PumpSpec(reservoir_ml=reservoir_ml, low_reservoir_alarm_ml=alarm_ml)
    programs = [ProgramPeriod(filled_at, concentration, dose)]
    try:
        result = forecast(
            filled_at,
            volume_ml,
            programs,
            pump,
            ClinicCalendar(zone=zone),
            margin_days=margin_days,
            stability_days=stability_days,
        )
    except ValueError as error:  # what the checks above cannot see, e.g. a volume overflow
        raise CommandError(f"forecast: {error}") from None
    if args.json:
        print_json(_forecast_json(result, zone))
        return 0
    _print_forecast(result, zone, volume_ml, alarm_ml, dose, concentration, margin_days)
    return 0


def reconcile_command(args: argparse.Namespace) -> int:
    zone = parse_zone(args.tz)
    reservoir_ml = parse_number("--reservoir-ml", args.reservoir_ml, above=0)
    volume_ml = _fill_volume(args.volume_ml, reservoir_ml)
    concentration = parse_number(
        "--concentration-mcg-per-ml", args.concentration_mcg_per_ml, above=0
    )
    dose = parse_number("--dose-mcg-per-day", args.dose_mcg_per_day, at_least=0)
    aspirated_ml = parse_number("--aspirated-ml", args.aspirated_ml, at_least=0)
    if aspirated_ml > reservoir_ml:
        raise CommandError(
            f"--aspirated-ml must be at most --reservoir-ml ({fmt_number(reservoir_ml)} mL),"
            f" got {args.aspirated_ml!r}"
        )
    filled_at = parse_time("--filled-at", args.filled_at, zone, args.tz)
    at = parse_time("--at", args.at, zone, args.tz)
    if at < filled_at:
        raise CommandError(
            f"--at ({iso_in(at, zone)}) must not be before --filled-at ({iso_in(filled_at, zone)})"
        )
    # No alarm matters here; the default 2 mL must only fit a small --reservoir-ml.
    pump = PumpSpec(
        reservoir_ml=reservoir_ml, low_reservoir_alarm_ml=min(DEFAULT_ALARM_ML, reservoir_ml / 2)
    )
    programs = [ProgramPeriod(filled_at, concentration, dose)]
    try:
        result = reconcile(volume_ml, filled_at, programs, pump, aspirated_ml, at, zone)
    except ValueError as error:
        raise CommandError(f"reconcile: {error}") from None
    if args.json:
        print_json(_reconciliation_json(result))
        return 0
    _print_reconciliation(result)
    return 0


# --- Input ---------------------------------------------------------------------------------


def _integer(option: str, text: str, low: int, high: int) -> int:
    value: int | None
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise CommandError(
            f"{option} must be a whole number between {low} and {high}, got {text!r}"
        )
    return value


def _fill_volume(text: str, reservoir_ml: float) -> float:
    volume_ml = parse_number("--volume-ml", text, at_least=0)
    if volume_ml > reservoir_ml:
        raise CommandError(
            f"--volume-ml must be at most --reservoir-ml ({fmt_number(reservoir_ml)} mL),"
            f" got {text!r}"
        )
    return volume_ml


# --- Output --------------------------------------------------------------------------------


def _forecast_json(result: Forecast, zone: zoneinfo.ZoneInfo) -> dict[str, object]:
    return {
        "daily_volume_ml": _round(result.daily_volume_ml),
        "days_to_alarm": _round(result.days_to_alarm),
        "alarm_at": iso_in(result.alarm_at, zone),
        "empty_at": iso_in(result.empty_at, zone),
        "stability_limit_at": iso_in(result.stability_limit_at, zone),
        "refill_due": None if result.refill_due is None else result.refill_due.isoformat(),
    }


def _reconciliation_json(result: Reconciliation) -> dict[str, object]:
    return {
        "expected_residual_ml": _round(result.expected_residual_ml),
        "discrepancy_ml": _round(result.discrepancy_ml),
        "delivered_expected_ml": _round(result.delivered_expected_ml),
        "delivered_actual_ml": _round(result.delivered_actual_ml),
        "delivery_error_pct": _round(result.delivery_error_pct),
        "flags": sorted(result.flags),
        "next_steps": list(result.next_steps),
    }


def _print_forecast(
    result: Forecast,
    zone: zoneinfo.ZoneInfo,
    volume_ml: float,
    alarm_ml: float,
    dose: float,
    concentration: float,
    margin_days: int,
) -> None:
    print(
        f"Daily volume: {fmt_number(result.daily_volume_ml)} mL/day ({fmt_number(dose)} mcg/day ="
        f" {fmt_number(mcg_per_hour(dose))} mcg/hour at {fmt_number(concentration)} mcg/mL);"
        f" {fmt_number(volume_ml)} mL in the pump."
    )
    if result.alarm_at is None or result.days_to_alarm is None:
        print("Low-reservoir alarm: never at this dose.")
    else:
        print(
            f"Low-reservoir alarm ({fmt_number(alarm_ml)} mL): {iso_in(result.alarm_at, zone)},"
            f" {fmt_number(result.days_to_alarm, 1)} days after the fill."
        )
    print(f"Empty: {iso_in(result.empty_at, zone) or 'never at this dose'}.")
    if result.stability_limit_at is not None:
        print(f"Stability limit: {iso_in(result.stability_limit_at, zone)}.")
    if result.refill_due is None:
        print("Refill due: no date (nothing is pumped and no stability limit).")
    else:
        reasons = []
        if result.alarm_at is not None:
            reasons.append(f"{margin_days} days or more before the alarm")
        if result.stability_limit_at is not None:
            reasons.append("within the stability limit")
        print(
            f"Refill due by: {result.refill_due:%A %d %B %Y} ({result.refill_due.isoformat()}),"
            f" the latest weekday {' and '.join(reasons)}."
        )


def _print_reconciliation(result: Reconciliation) -> None:
    print(
        f"Expected residual: {fmt_number(result.expected_residual_ml)} mL"
        f" ({fmt_number(result.delivered_expected_ml)} mL programmed since the fill)."
    )
    print(
        f"Aspirated: {fmt_number(result.aspirated_ml)} mL; discrepancy"
        f" {_signed(result.discrepancy_ml)} mL (aspirated − expected)."
    )
    if result.delivery_error_pct is None:
        print("Delivery error: none to compare (nothing was programmed).")
    else:
        print(
            f"Delivery error: {_signed(result.delivery_error_pct, 1)} % against the program"
            " (positive = over-infusion)."
        )
    if not result.flags:
        print("Within limits: no flags.")
        return
    print(f"FLAGGED: {', '.join(sorted(result.flags))}")
    print("Next steps:")
    for step in result.next_steps:
        print(f"  - {step}")


def _round(value: float | None) -> float | None:
    if value is None:
        return None
    return round(value, DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def _signed(value: float, decimals: int = DECIMALS) -> str:
    text = fmt_number(abs(value), decimals)
    if text == "0":
        return "0"
    return ("+" if value > 0 else "−") + text
