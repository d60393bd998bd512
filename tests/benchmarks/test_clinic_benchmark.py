"""The clinic benchmark runs end to end on a small clinic (no timing is asserted)."""

from __future__ import annotations

import json

import pytest

from tests.benchmarks import clinic_benchmark

pytestmark = [pytest.mark.sqlite_only, pytest.mark.slow]

BUDGETED = {
    "generation",
    "database_size",
    "cold_start",
    "resident_memory_after_start",
    "alerts_cli_json_process",
    "alerts_in_process_cold",
    "alerts_in_process_warm",
    "record_refill",
    "patient_list_filter_keystroke",
    "open_patient_page",
}
WITH_BASELINE = {"cold_start", "alerts_in_process_cold", "alerts_in_process_warm"}
FOR_INFORMATION = {
    "cold_start_content_ready",
    "bare_window_resident_memory",
    "refill_preview",
    "refill_password_check",
    "refill_save_click",
    "alerts_page_build",
    "alerts_page_refresh",
    "alerts_model_load",
}


def test_the_benchmark_runs_on_a_small_clinic(capsys) -> None:
    assert clinic_benchmark.main(["--patients", "100", "--years", "1", "--runs", "1"]) == 0
    report = json.loads(capsys.readouterr().out)

    assert report["machine"]["cpu_count"] >= 1
    assert report["machine"]["python"] and report["machine"]["pyside6"]
    assert report["machine"]["platform"]
    clinic = report["clinic"]
    assert clinic["patients"] == 100
    for count in ("pumps", "implanted_pumps", "refills", "appointments", "alerts"):
        assert clinic[count] > 0, count
    assert clinic["audit_entries"] >= 0

    measurements = report["measurements"]
    assert set(measurements) == BUDGETED | FOR_INFORMATION
    for name, measured in measurements.items():
        assert measured["median"] > 0, name
        assert measured["min"] <= measured["median"] <= measured["max"], name
        assert measured["unit"] in {"ms", "MB", "s"}, name
        if name in BUDGETED:
            assert measured["budget"] > 0 and isinstance(measured["met"], bool), name
            assert measured["ratio_to_budget"] >= 0, name
        else:
            assert measured["budget"] is None and measured["met"] is None, name
        if name in WITH_BASELINE:
            assert measured["baseline"] > 0 and measured["ratio_to_baseline"] > 0, name
            assert measured["max_times_baseline"] > 0, name
    assert measurements["patient_list_filter_keystroke"]["n"] == 2 * len(
        measurements["patient_list_filter_keystroke"]["note"].split("'")[1]
    )
    steps = report["cold_start_steps_median_ms"]
    assert list(steps.values()) == sorted(steps.values())
    assert steps["painted"] == measurements["cold_start"]["median"]
    assert steps["content_ready"] == measurements["cold_start_content_ready"]["median"]
    assert list(steps).index("painted") < list(steps).index("signed_in")


def test_the_benchmark_measures_only_the_groups_asked_for(capsys) -> None:
    argv = ["--patients", "30", "--years", "1", "--runs", "1", "--only", "cold_start"]
    assert clinic_benchmark.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["measurements"]) == {
        "generation",
        "database_size",
        "cold_start",
        "cold_start_content_ready",
        "resident_memory_after_start",
        "bare_window_resident_memory",
    }
    assert report["command"].endswith("--only cold_start")
