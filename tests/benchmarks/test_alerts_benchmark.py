"""The alert benchmark runs end to end on a small clinic (no timing is asserted)."""

from __future__ import annotations

import json

import pytest

from tests.benchmarks import alerts_benchmark

pytestmark = [pytest.mark.sqlite_only, pytest.mark.slow]


def test_the_benchmark_runs_on_a_small_clinic(capsys) -> None:
    assert alerts_benchmark.main(["--patients", "30", "--years", "1", "--runs", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["implanted_pumps"] > 20 and report["alerts"] > 0
    assert set(report["median_ms"]) == {
        "a_in_process_cold",
        "a_in_process_warm",
        "b_hand_written_sql",
        "c_cli_alerts_json_process",
        "d_page_build_first_page",
        "d_page_refresh",
        "d_model_load_first_page",
    }
