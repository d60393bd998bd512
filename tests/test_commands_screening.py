"""Headless screening commands: screening-plan, starting-dose, titration-range."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pumpclinic.cli import main


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    document = json.loads(captured.out)
    assert isinstance(document, dict)
    return document


def run_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ")
    assert captured.err.count("\n") == 1
    assert "Traceback" not in captured.err
    return captured.err


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as caught:
        main(list(argv))
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    return err


# --- screening-plan -------------------------------------------------------------------------


def test_screening_plan_shape(capsys: pytest.CaptureFixture[str]) -> None:
    document = run_json(capsys, "screening-plan", "--first-dose-at", "2026-11-23T09:00")
    assert list(document) == ["doses"]
    doses = document["doses"]
    assert isinstance(doses, list) and len(doses) == 3
    assert doses[0] == {
        "number": 1,
        "dose_mcg": 50,
        "volume_ml": 1.0,
        "concentration_mcg_per_ml": 50,
        "earliest_at": "2026-11-23T09:00:00+00:00",
        "assess_from": "2026-11-23T13:00:00+00:00",
        "observe_until": "2026-11-23T17:00:00+00:00",
    }
    assert [(d["number"], d["dose_mcg"], d["volume_ml"]) for d in doses] == [
        (1, 50, 1.0),
        (2, 75, 1.5),
        (3, 100, 2.0),
    ]
    assert [d["earliest_at"] for d in doses] == [
        "2026-11-23T09:00:00+00:00",
        "2026-11-24T09:00:00+00:00",
        "2026-11-25T09:00:00+00:00",
    ]


def test_screening_plan_across_the_spring_change(capsys: pytest.CaptureFixture[str]) -> None:
    document = run_json(
        capsys, "screening-plan", "--first-dose-at", "2026-03-28T09:00", "--tz", "Europe/London"
    )
    doses = document["doses"]
    assert isinstance(doses, list)
    assert [d["earliest_at"] for d in doses] == [
        "2026-03-28T09:00:00+00:00",
        "2026-03-29T10:00:00+01:00",
        "2026-03-30T10:00:00+01:00",
    ]
    assert doses[1]["observe_until"] == "2026-03-29T18:00:00+01:00"
    times = [dt.datetime.fromisoformat(d["earliest_at"]) for d in doses]
    assert times[1] - times[0] == dt.timedelta(hours=24)  # different offsets: real time


def test_screening_plan_across_the_autumn_change(capsys: pytest.CaptureFixture[str]) -> None:
    document = run_json(
        capsys, "screening-plan", "--first-dose-at", "2026-10-24T09:00", "--tz", "Europe/London"
    )
    doses = document["doses"]
    assert isinstance(doses, list)
    assert [d["earliest_at"] for d in doses] == [
        "2026-10-24T09:00:00+01:00",
        "2026-10-25T08:00:00+00:00",
        "2026-10-26T08:00:00+00:00",
    ]


def test_an_offset_is_converted_to_the_zone(capsys: pytest.CaptureFixture[str]) -> None:
    document = run_json(
        capsys,
        "screening-plan",
        "--first-dose-at",
        "2026-07-01T08:00Z",
        "--tz",
        "America/New_York",
    )
    doses = document["doses"]
    assert isinstance(doses, list)
    assert doses[0]["earliest_at"] == "2026-07-01T04:00:00-04:00"


def test_small_child_protocol(capsys: pytest.CaptureFixture[str]) -> None:
    document = run_json(
        capsys,
        "screening-plan",
        "--first-dose-at",
        "2026-11-23T09:00",
        "--protocol",
        "small-child",
    )
    doses = document["doses"]
    assert isinstance(doses, list)
    assert [(d["dose_mcg"], d["volume_ml"]) for d in doses] == [(25, 0.5), (50, 1.0), (75, 1.5)]


def test_screening_plan_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["screening-plan", "--first-dose-at", "2026-03-28T09:00", "--tz", "Europe/London"])
        == 0
    )
    out = capsys.readouterr().out
    assert "Dose 2: 75 mcg = 1.5 mL of 50 mcg/mL, from 2026-03-29T10:00:00+01:00" in out
    assert not out.lstrip().startswith("{")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--first-dose-at", "tomorrow"], "--first-dose-at: 'tomorrow' is not an ISO 8601"),
        (["--first-dose-at", "2026-13-01T09:00"], "--first-dose-at"),
        (["--first-dose-at", "9999-12-31T23:00"], "--first-dose-at: the year must be between"),
        (
            ["--first-dose-at", "2026-03-29T01:30", "--tz", "Europe/London"],
            "--first-dose-at: 2026-03-29T01:30 does not exist in Europe/London",
        ),
        (
            ["--first-dose-at", "2026-10-25T01:30", "--tz", "Europe/London"],
            "--first-dose-at: 2026-10-25T01:30 happens twice in Europe/London",
        ),
        (["--first-dose-at", "2026-11-23T09:00", "--tz", "Mars/Olympus"], "--tz: 'Mars/Olympus'"),
        (["--first-dose-at", "2026-11-23T09:00", "--tz", "Europe"], "--tz: 'Europe'"),
        (["--first-dose-at", "2026-11-23T09:00", "--tz", ""], "--tz: ''"),
        (
            ["--first-dose-at", "2026-11-23T09:00", "--protocol", "huge"],
            "--protocol: no screening protocol 'huge'; known: standard, small-child",
        ),
    ],
)
def test_screening_plan_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    assert words in run_error(capsys, "screening-plan", *argv, "--json")


def test_screening_plan_needs_the_first_dose_time(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, "screening-plan", "--json")
    assert "--first-dose-at" in err


# --- starting-dose --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dose", "hours", "expected"),
    [("50", "6", 100), ("50", "8", 100), ("50", "8.5", 50), ("75", "4", 150)],
)
def test_starting_dose(
    capsys: pytest.CaptureFixture[str], dose: str, hours: str, expected: float
) -> None:
    document = run_json(
        capsys, "starting-dose", "--screening-dose-mcg", dose, "--effect-hours", hours
    )
    assert document == {"dose_mcg_per_day": expected}


def test_starting_dose_as_text_shows_both_units(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["starting-dose", "--screening-dose-mcg", "50", "--effect-hours", "6"]) == 0
    out = capsys.readouterr().out
    assert "100 mcg/day" in out and "4.167 mcg/hour" in out and "2 × 50 mcg" in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--screening-dose-mcg", "0", "--effect-hours", "6"], "--screening-dose-mcg must be"),
        (["--screening-dose-mcg", "-5", "--effect-hours", "6"], "--screening-dose-mcg must be"),
        (["--screening-dose-mcg", "fifty", "--effect-hours", "6"], "got 'fifty'"),
        (["--screening-dose-mcg", "nan", "--effect-hours", "6"], "--screening-dose-mcg"),
        (["--screening-dose-mcg", "500", "--effect-hours", "6"], "at most 200"),
        (["--screening-dose-mcg", "50", "--effect-hours", "0"], "--effect-hours must be"),
        (["--screening-dose-mcg", "50", "--effect-hours", "inf"], "--effect-hours"),
        (["--screening-dose-mcg", "50", "--effect-hours", "72"], "--effect-hours"),
    ],
)
def test_starting_dose_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    assert words in run_error(capsys, "starting-dose", *argv, "--json")


def test_starting_dose_needs_both_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--effect-hours" in usage_error(capsys, "starting-dose", "--screening-dose-mcg", "50")
    assert "--screening-dose-mcg" in usage_error(capsys, "starting-dose", "--effect-hours", "5")


# --- titration-range ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--origin", "spinal"], {"min_mcg_per_day": 110, "max_mcg_per_day": 130}),
        (["--origin", "cerebral"], {"min_mcg_per_day": 105, "max_mcg_per_day": 115}),
        (["--origin", "spinal", "--child"], {"min_mcg_per_day": 105, "max_mcg_per_day": 115}),
    ],
)
def test_titration_range(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: dict[str, float]
) -> None:
    document = run_json(capsys, "titration-range", "--dose-mcg-per-day", "100", *argv)
    assert document == expected


def test_titration_range_rounds_float_noise(capsys: pytest.CaptureFixture[str]) -> None:
    document = run_json(
        capsys, "titration-range", "--dose-mcg-per-day", "333", "--origin", "spinal"
    )
    assert document == {"min_mcg_per_day": 366.3, "max_mcg_per_day": 432.9}


def test_titration_range_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["titration-range", "--dose-mcg-per-day", "240", "--origin", "spinal"]) == 0
    out = capsys.readouterr().out
    assert "264–312 mcg/day" in out and "11–13 mcg/hour" in out and "10–30 %" in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--dose-mcg-per-day", "0", "--origin", "spinal"], "--dose-mcg-per-day must be"),
        (["--dose-mcg-per-day", "abc", "--origin", "spinal"], "--dose-mcg-per-day"),
        (["--dose-mcg-per-day", "5000", "--origin", "spinal"], "at most 3000"),
        (["--dose-mcg-per-day", "100", "--origin", "spine"], "--origin must be one of spinal"),
    ],
)
def test_titration_range_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    assert words in run_error(capsys, "titration-range", *argv, "--json")


def test_titration_range_needs_the_origin(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--origin" in usage_error(capsys, "titration-range", "--dose-mcg-per-day", "100")
