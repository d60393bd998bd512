"""The headless refill commands: `pumpclinic forecast` and `pumpclinic reconcile`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pumpclinic.cli import main

FORECAST_EXAMPLE = [
    "forecast",
    "--volume-ml",
    "20",
    "--concentration-mcg-per-ml",
    "2000",
    "--dose-mcg-per-day",
    "400",
    "--filled-at",
    "2026-01-05T09:00:00+00:00",
]
RECONCILE_EXAMPLE = [
    "reconcile",
    "--volume-ml",
    "20",
    "--filled-at",
    "2026-01-05T09:00",
    "--concentration-mcg-per-ml",
    "2000",
    "--dose-mcg-per-day",
    "400",
    "--aspirated-ml",
    "5.5",
    "--at",
    "2026-03-06T09:00",
]


def run(argv: list[str]) -> int:
    """main()'s exit status, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def with_option(argv: list[str], option: str, value: str) -> list[str]:
    """``argv`` with ``option`` set to ``value`` (replaced if present)."""
    if option in argv:
        index = argv.index(option)
        return [*argv[: index + 1], value, *argv[index + 2 :]]
    return [*argv, option, value]


def json_output(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert run([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    document: dict[str, Any] = json.loads(captured.out)
    return document


def assert_one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str], *names: str) -> str:
    assert run(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ")
    assert captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err
    for name in names:
        assert name in captured.err
    return captured.err


# --- forecast -------------------------------------------------------------------------------


def test_forecast_worked_example_20_ml(capsys: pytest.CaptureFixture[str]) -> None:
    document = json_output(FORECAST_EXAMPLE, capsys)
    assert document == {
        "daily_volume_ml": 0.2,
        "days_to_alarm": 90.0,
        "alarm_at": "2026-04-05T09:00:00+00:00",
        "empty_at": "2026-04-15T09:00:00+00:00",
        "stability_limit_at": None,
        # Alarm Sunday 5 April − 7 days = Sunday 29 March → Friday 27 March.
        "refill_due": "2026-03-27",
    }


def test_forecast_worked_example_40_ml(capsys: pytest.CaptureFixture[str]) -> None:
    argv = with_option(FORECAST_EXAMPLE, "--volume-ml", "40")
    argv = with_option(argv, "--concentration-mcg-per-ml", "500")
    argv = with_option(argv, "--dose-mcg-per-day", "300")
    document = json_output(argv, capsys)
    assert document["daily_volume_ml"] == 0.6
    assert document["days_to_alarm"] == 63.3333
    # 63⅓ days after 09:00 is 17:00, rounded to the second.
    assert document["alarm_at"] == "2026-03-09T17:00:00+00:00"


def test_forecast_stability_limit_and_margin(capsys: pytest.CaptureFixture[str]) -> None:
    argv = with_option(FORECAST_EXAMPLE, "--stability-days", "61")
    document = json_output(argv, capsys)
    assert document["stability_limit_at"] == "2026-03-07T09:00:00+00:00"  # a Saturday
    assert document["refill_due"] == "2026-03-06"
    later = json_output(with_option(FORECAST_EXAMPLE, "--margin-days", "0"), capsys)
    assert later["refill_due"] == "2026-04-03"  # Friday before Sunday's alarm


def test_forecast_alarm_and_reservoir_options(capsys: pytest.CaptureFixture[str]) -> None:
    argv = with_option(FORECAST_EXAMPLE, "--alarm-ml", "4")
    argv = with_option(argv, "--reservoir-ml", "20")
    assert json_output(argv, capsys)["days_to_alarm"] == 80.0


def test_forecast_zero_dose_has_no_alarm(capsys: pytest.CaptureFixture[str]) -> None:
    document = json_output(with_option(FORECAST_EXAMPLE, "--dose-mcg-per-day", "0"), capsys)
    assert document["alarm_at"] is None and document["empty_at"] is None
    assert document["days_to_alarm"] is None
    assert document["daily_volume_ml"] == 0
    assert document["refill_due"] is None
    with_limit = with_option(FORECAST_EXAMPLE, "--dose-mcg-per-day", "0")
    with_limit = with_option(with_limit, "--stability-days", "60")
    assert json_output(with_limit, capsys)["refill_due"] == "2026-03-06"


def test_forecast_times_carry_the_zone_offset_across_daylight_saving(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Filled 09:00 GMT; 90 days of pumping later the clocks are on BST: 10:00+01:00.
    argv = with_option(FORECAST_EXAMPLE, "--filled-at", "2026-03-20T09:00")
    argv = with_option(argv, "--tz", "Europe/London")
    document = json_output(argv, capsys)
    assert document["alarm_at"] == "2026-06-18T10:00:00+01:00"
    assert document["empty_at"] == "2026-06-28T10:00:00+01:00"
    # And back: filled 09:00 BST, the alarm is at 08:00 GMT.
    argv = with_option(argv, "--filled-at", "2026-10-20T09:00")
    assert json_output(argv, capsys)["alarm_at"] == "2027-01-18T08:00:00+00:00"


def test_forecast_offset_input_is_shown_in_the_clinic_zone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = with_option(FORECAST_EXAMPLE, "--tz", "America/New_York")
    document = json_output(argv, capsys)
    # 2026-04-05 09:00 UTC is 05:00 EDT.
    assert document["alarm_at"] == "2026-04-05T05:00:00-04:00"


def test_forecast_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(FORECAST_EXAMPLE) == 0
    out = capsys.readouterr().out
    assert "0.2 mL/day" in out and "16.6667 mcg/hour" in out
    assert "2026-04-05T09:00:00+00:00" in out
    assert "Friday 27 March 2026" in out


@pytest.mark.parametrize(
    ("option", "value", "names"),
    [
        ("--volume-ml", "45", ("--volume-ml", "--reservoir-ml", "40")),
        ("--volume-ml", "-1", ("--volume-ml", "0 or more")),
        ("--volume-ml", "lots", ("--volume-ml",)),
        ("--volume-ml", "nan", ("--volume-ml",)),
        ("--concentration-mcg-per-ml", "0", ("--concentration-mcg-per-ml", "greater than 0")),
        ("--concentration-mcg-per-ml", "-500", ("--concentration-mcg-per-ml",)),
        ("--concentration-mcg-per-ml", "inf", ("--concentration-mcg-per-ml",)),
        ("--dose-mcg-per-day", "-5", ("--dose-mcg-per-day", "0 or more")),
        ("--filled-at", "2026-02-30T09:00", ("--filled-at", "ISO 8601", "day is out of range")),
        ("--filled-at", "yesterday", ("--filled-at", "ISO 8601")),
        ("--filled-at", "9999-12-30T09:00+00:00", ("--filled-at", "year", "2999")),
        ("--filled-at", "2026-03-29T01:30", ("--filled-at", "does not exist")),
        ("--filled-at", "2026-10-25T01:30", ("--filled-at", "happens twice", "+01:00")),
        ("--tz", "Mars/Olympus_Mons", ("--tz", "IANA")),
        ("--tz", "Europe", ("--tz",)),
        ("--tz", "../etc/passwd", ("--tz",)),
        ("--alarm-ml", "40", ("--alarm-ml", "less than --reservoir-ml")),
        ("--alarm-ml", "-1", ("--alarm-ml",)),
        ("--reservoir-ml", "0", ("--reservoir-ml", "greater than 0")),
        ("--margin-days", "61", ("--margin-days", "between 0 and 60")),
        ("--margin-days", "2.5", ("--margin-days", "whole number")),
        ("--stability-days", "0", ("--stability-days", "between 1 and")),
    ],
)
def test_forecast_bad_input_is_one_error_line_naming_the_option(
    option: str, value: str, names: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = with_option(FORECAST_EXAMPLE, option, value)
    if option == "--filled-at" and "T01:30" in value:
        argv = with_option(argv, "--tz", "Europe/London")
    assert_one_line_error([*argv, "--json"], capsys, *names)


def test_forecast_missing_option_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    argv = FORECAST_EXAMPLE[:-2]  # no --filled-at
    assert_one_line_error(argv, capsys, "--filled-at")


def test_forecast_accepts_a_utc_z_suffix(capsys: pytest.CaptureFixture[str]) -> None:
    argv = with_option(FORECAST_EXAMPLE, "--filled-at", "2026-01-05T09:00:00Z")
    assert json_output(argv, capsys)["alarm_at"] == "2026-04-05T09:00:00+00:00"


# --- reconcile ------------------------------------------------------------------------------


def test_reconcile_worked_example_trips_both_flags(capsys: pytest.CaptureFixture[str]) -> None:
    document = json_output(RECONCILE_EXAMPLE, capsys)
    assert document["expected_residual_ml"] == 8.0
    assert document["discrepancy_ml"] == -2.5
    assert document["delivery_error_pct"] == 20.8333
    assert document["flags"] == ["delivery_error_over_14_5_pct", "discrepancy_over_2ml"]
    assert any("overdose" in step for step in document["next_steps"])


def test_reconcile_within_limits_has_no_flags(capsys: pytest.CaptureFixture[str]) -> None:
    document = json_output(with_option(RECONCILE_EXAMPLE, "--aspirated-ml", "7.5"), capsys)
    assert document["discrepancy_ml"] == -0.5
    assert document["flags"] == []
    assert document["next_steps"] == []


def test_reconcile_under_delivery(capsys: pytest.CaptureFixture[str]) -> None:
    document = json_output(with_option(RECONCILE_EXAMPLE, "--aspirated-ml", "10.5"), capsys)
    assert document["discrepancy_ml"] == 2.5
    assert document["delivery_error_pct"] == -20.8333
    assert set(document["flags"]) == {"discrepancy_over_2ml", "delivery_error_over_14_5_pct"}
    assert any("withdrawal" in step for step in document["next_steps"])


def test_reconcile_counts_elapsed_time_across_daylight_saving(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # 09:00 GMT to 09:00 BST is 60 days less one hour: a little more left than 8 mL.
    argv = with_option(RECONCILE_EXAMPLE, "--filled-at", "2026-03-06T09:00")
    argv = with_option(argv, "--at", "2026-05-05T09:00")
    argv = with_option(argv, "--tz", "Europe/London")
    document = json_output(argv, capsys)
    assert document["expected_residual_ml"] == round(8 + 0.2 / 24, 4)


def test_reconcile_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(RECONCILE_EXAMPLE) == 0
    out = capsys.readouterr().out
    assert "Expected residual: 8 mL" in out
    assert "FLAGGED" in out and "Next steps" in out


@pytest.mark.parametrize(
    ("option", "value", "names"),
    [
        ("--at", "2026-01-04T09:00", ("--at", "--filled-at", "before")),
        ("--at", "2026-13-01T09:00", ("--at", "ISO 8601")),
        ("--aspirated-ml", "-0.5", ("--aspirated-ml",)),
        ("--aspirated-ml", "41", ("--aspirated-ml", "--reservoir-ml")),
        ("--volume-ml", "41", ("--volume-ml", "--reservoir-ml")),
        ("--concentration-mcg-per-ml", "0", ("--concentration-mcg-per-ml",)),
        ("--dose-mcg-per-day", "-1", ("--dose-mcg-per-day",)),
        ("--filled-at", "2026-02-29T09:00", ("--filled-at",)),
        ("--tz", "Nowhere", ("--tz",)),
    ],
)
def test_reconcile_bad_input_is_one_error_line_naming_the_option(
    option: str, value: str, names: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = with_option(RECONCILE_EXAMPLE, option, value)
    assert_one_line_error([*argv, "--json"], capsys, *names)


def test_reconcile_missing_aspirated_volume_is_one_error_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    index = RECONCILE_EXAMPLE.index("--aspirated-ml")
    argv = RECONCILE_EXAMPLE[:index] + RECONCILE_EXAMPLE[index + 2 :]
    assert_one_line_error(argv, capsys, "--aspirated-ml")
