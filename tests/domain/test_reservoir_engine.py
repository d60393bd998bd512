"""The reservoir engine: piecewise volume, forecast, refill due day, reconciliation
(ITB-FACTS §3–§5 and their worked examples)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pumpclinic.domain.calendar import ClinicCalendar
from pumpclinic.domain.reference import Reference
from pumpclinic.domain.reservoir import (
    FLAG_DELIVERY_ERROR,
    FLAG_DISCREPANCY,
    FlexStep,
    ProgramPeriod,
    PumpSpec,
    Reconciliation,
    delivered_dose_mcg_per_day,
    delivered_ml,
    forecast,
    pocket_fill_check,
    program_daily_volume_ml,
    reconcile,
    reconciliation_trend,
    volume_at,
    volume_series,
)

UTC = dt.UTC
LONDON = zoneinfo.ZoneInfo("Europe/London")
# A Monday.
FILLED = dt.datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PUMP_20 = PumpSpec(reservoir_ml=20, low_reservoir_alarm_ml=2)
PUMP_40 = PumpSpec(reservoir_ml=40, low_reservoir_alarm_ml=2, pocket_fill_warning_ml=2)
WEEKDAYS_UTC = ClinicCalendar(zone=zoneinfo.ZoneInfo("UTC"))
BEFORE_FILL = FILLED - dt.timedelta(days=10)


def days(n: float) -> dt.timedelta:
    return dt.timedelta(days=n)


def program(
    dose_mcg_per_day: float,
    concentration_mcg_per_ml: float = 2000,
    effective_from: dt.datetime = BEFORE_FILL,
    **extra: object,
) -> ProgramPeriod:
    return ProgramPeriod(effective_from, concentration_mcg_per_ml, dose_mcg_per_day, **extra)  # type: ignore[arg-type]


def elapsed_days(start: dt.datetime, end: dt.datetime | None) -> float:
    assert end is not None
    return (end - start) / days(1)


# --- ITB-FACTS §4 worked examples -----------------------------------------------------------


def test_20_ml_at_2000_mcg_per_ml_and_400_mcg_per_day_alarms_after_90_days() -> None:
    result = forecast(
        FILLED, 20, [program(400)], PUMP_20, WEEKDAYS_UTC, margin_days=7, stability_days=None
    )
    assert result.daily_volume_ml == pytest.approx(0.2)
    assert result.days_to_alarm == pytest.approx(90)
    assert result.alarm_at == FILLED + days(90)
    assert result.empty_at == FILLED + days(100)
    assert result.stability_limit_at is None


def test_40_ml_at_500_mcg_per_ml_and_300_mcg_per_day_alarms_after_63_and_a_third_days() -> None:
    result = forecast(
        FILLED, 40, [program(300, 500)], PUMP_40, WEEKDAYS_UTC, margin_days=7, stability_days=None
    )
    assert result.daily_volume_ml == pytest.approx(0.6)
    assert result.days_to_alarm == pytest.approx(63 + 1 / 3)
    assert elapsed_days(FILLED, result.empty_at) == pytest.approx(66 + 2 / 3)


# --- Refill due day -----------------------------------------------------------------------


def test_refill_due_is_moved_back_from_a_sunday_to_the_friday() -> None:
    # Alarm Sunday 5 April; minus 7 days is Sunday 29 March -> Friday 27 March.
    result = forecast(
        FILLED, 20, [program(400)], PUMP_20, WEEKDAYS_UTC, margin_days=7, stability_days=None
    )
    assert result.alarm_at is not None and result.alarm_at.date() == dt.date(2026, 4, 5)
    assert result.refill_due == dt.date(2026, 3, 27)


def test_refill_due_skips_a_holiday() -> None:
    calendar = ClinicCalendar(
        zone=zoneinfo.ZoneInfo("UTC"), holidays=frozenset({dt.date(2026, 3, 27)})
    )
    result = forecast(
        FILLED, 20, [program(400)], PUMP_20, calendar, margin_days=7, stability_days=None
    )
    assert result.refill_due == dt.date(2026, 3, 26)


def test_the_stability_limit_comes_first_when_it_is_earlier() -> None:
    result = forecast(
        FILLED, 20, [program(400)], PUMP_20, WEEKDAYS_UTC, margin_days=7, stability_days=61
    )
    assert result.stability_limit_at == FILLED + days(61)  # Saturday 7 March
    assert result.refill_due == dt.date(2026, 3, 6)


def test_the_alarm_comes_first_when_the_stability_limit_is_later() -> None:
    result = forecast(
        FILLED, 20, [program(400)], PUMP_20, WEEKDAYS_UTC, margin_days=7, stability_days=180
    )
    assert result.refill_due == dt.date(2026, 3, 27)


def test_zero_dose_never_alarms_and_only_the_stability_limit_decides() -> None:
    result = forecast(
        FILLED, 20, [program(0)], PUMP_20, WEEKDAYS_UTC, margin_days=7, stability_days=60
    )
    assert (result.alarm_at, result.empty_at, result.days_to_alarm) == (None, None, None)
    assert result.daily_volume_ml == 0
    assert result.refill_due == dt.date(2026, 3, 6)
    without = forecast(
        FILLED, 20, [program(0)], PUMP_20, WEEKDAYS_UTC, margin_days=7, stability_days=None
    )
    assert without.refill_due is None


def test_a_fill_at_or_below_the_alarm_volume_alarms_at_once() -> None:
    result = forecast(
        FILLED, 1.5, [program(400)], PUMP_20, WEEKDAYS_UTC, margin_days=0, stability_days=None
    )
    assert result.alarm_at == FILLED
    assert result.days_to_alarm == 0
    assert result.empty_at == FILLED + days(7.5)


# --- Piecewise programs ---------------------------------------------------------------------


def test_a_program_change_mid_way_is_followed_piecewise() -> None:
    programs = [
        program(1000, effective_from=FILLED - days(100)),  # replaced before the fill
        program(800, effective_from=FILLED + days(30)),  # given out of order on purpose
        program(400, effective_from=FILLED - days(10)),  # in force at the fill
    ]
    # 30 days at 0.2 mL/day = 6 mL, then 0.4 mL/day: 12 mL more to the alarm = 30 days.
    assert volume_at(FILLED, 20, programs, PUMP_20, FILLED + days(30), UTC) == pytest.approx(14)
    assert volume_at(FILLED, 20, programs, PUMP_20, FILLED + days(45), UTC) == pytest.approx(8)
    result = forecast(
        FILLED, 20, programs, PUMP_20, WEEKDAYS_UTC, margin_days=7, stability_days=None
    )
    assert result.daily_volume_ml == pytest.approx(0.4)
    assert result.days_to_alarm == pytest.approx(60)
    assert elapsed_days(FILLED, result.empty_at) == pytest.approx(65)
    assert delivered_ml(
        FILLED, programs, PUMP_20, FILLED + days(20), FILLED + days(40), UTC
    ) == pytest.approx(10 * 0.2 + 10 * 0.4)


def test_a_concentration_change_changes_the_daily_volume() -> None:
    programs = [program(400), program(400, 1000, effective_from=FILLED + days(10))]
    assert volume_at(FILLED, 20, programs, PUMP_20, FILLED + days(20), UTC) == pytest.approx(
        20 - 10 * 0.2 - 10 * 0.4
    )


def test_volume_never_goes_below_zero_after_the_pump_is_empty() -> None:
    assert volume_at(FILLED, 20, [program(400)], PUMP_20, FILLED + days(500), UTC) == 0


def test_volume_series_runs_from_the_fill_to_empty_with_the_breakpoints() -> None:
    programs = [program(400), program(800, effective_from=FILLED + days(30))]
    points = volume_series(FILLED, 20, programs, PUMP_20, UTC)
    assert points[0] == (FILLED, 20)
    times = [at for at, _ in points]
    assert times == sorted(times)
    assert FILLED + days(30) in times  # the program change
    assert dict(points)[FILLED + days(60)] == pytest.approx(2)  # the alarm
    assert points[-1][0] == FILLED + days(65)
    assert points[-1][1] == pytest.approx(0, abs=1e-9)
    for at, volume_ml in points:
        assert volume_ml == pytest.approx(volume_at(FILLED, 20, programs, PUMP_20, at, UTC))


def test_volume_series_stops_at_until_and_has_a_horizon_when_nothing_is_pumped() -> None:
    points = volume_series(FILLED, 20, [program(400)], PUMP_20, UTC, until=FILLED + days(10))
    assert points[-1][0] == FILLED + days(10)
    assert points[-1][1] == pytest.approx(18)
    idle = volume_series(FILLED, 20, [program(0)], PUMP_20, UTC)
    assert idle[-1] == (FILLED + days(365), 20)


# --- Flex programs, boluses, constant flow --------------------------------------------------


def test_a_flex_program_of_two_steps_averages_over_the_day() -> None:
    steps = (FlexStep(0, 300), FlexStep(12 * 60, 500))
    flex = program(400, flex_steps=steps)
    assert flex.basal_mcg_per_day == pytest.approx(400)
    assert program_daily_volume_ml(flex, PUMP_20) == pytest.approx(0.2)
    midnight = dt.datetime(2026, 1, 6, tzinfo=UTC)
    morning = delivered_ml(FILLED, [flex], PUMP_20, midnight, midnight + days(0.5), UTC)
    afternoon = delivered_ml(FILLED, [flex], PUMP_20, midnight + days(0.5), midnight + days(1), UTC)
    assert morning == pytest.approx(300 / 2 / 2000)
    assert afternoon == pytest.approx(500 / 2 / 2000)


def test_the_last_flex_step_holds_past_midnight_until_the_first() -> None:
    flex = program(400, flex_steps=(FlexStep(6 * 60, 600), FlexStep(18 * 60, 200)))
    midnight = dt.datetime(2026, 1, 6, tzinfo=UTC)
    early = delivered_ml(FILLED, [flex], PUMP_20, midnight, midnight + dt.timedelta(hours=6), UTC)
    assert early == pytest.approx(200 / 4 / 2000)
    assert flex.basal_mcg_per_day == pytest.approx(400)


def test_flex_steps_are_on_the_clinic_wall_clock() -> None:
    flex = program(400, flex_steps=(FlexStep(0, 300), FlexStep(12 * 60, 500)))
    # 00:00 in New York is 05:00 UTC: 05:00 to 17:00 UTC runs at 300 mcg/day.
    new_york = zoneinfo.ZoneInfo("America/New_York")
    start = dt.datetime(2026, 1, 6, 5, 0, tzinfo=UTC)
    delivered = delivered_ml(FILLED, [flex], PUMP_20, start, start + days(0.5), new_york)
    assert delivered == pytest.approx(300 / 2 / 2000)


def test_a_flex_program_forecast_matches_its_mean_rate() -> None:
    flex = program(400, flex_steps=(FlexStep(0, 300), FlexStep(12 * 60, 500)))
    midnight = dt.datetime(2026, 1, 5, tzinfo=UTC)
    result = forecast(
        midnight, 20, [flex], PUMP_20, WEEKDAYS_UTC, margin_days=7, stability_days=None
    )
    # Whole days at 0.2 mL/day: 18 mL after exactly 90 days.
    assert result.alarm_at == midnight + days(90)
    assert result.daily_volume_ml == pytest.approx(0.2)


def test_permitted_boluses_are_counted_at_their_maximum() -> None:
    with_boluses = program(400, bolus_dose_mcg=50, max_boluses_per_day=4)
    assert with_boluses.planned_mcg_per_day == 600
    result = forecast(
        FILLED, 20, [with_boluses], PUMP_20, WEEKDAYS_UTC, margin_days=7, stability_days=None
    )
    assert result.daily_volume_ml == pytest.approx(0.3)
    assert result.days_to_alarm == pytest.approx(60)
    flex = program(
        400,
        flex_steps=(FlexStep(0, 300), FlexStep(720, 500)),
        bolus_dose_mcg=100,
        max_boluses_per_day=2,
    )
    assert program_daily_volume_ml(flex, PUMP_20) == pytest.approx(0.3)


def test_a_constant_flow_pump_empties_at_its_fixed_rate_whatever_the_program() -> None:
    pump = PumpSpec(reservoir_ml=30, low_reservoir_alarm_ml=2, constant_flow_ml_per_day=1.0)
    concentrated = program(100, 500)
    assert delivered_dose_mcg_per_day(concentrated, pump) == 500
    assert delivered_dose_mcg_per_day(program(100, 1000), pump) == 1000
    result = forecast(
        FILLED, 20, [concentrated], pump, WEEKDAYS_UTC, margin_days=0, stability_days=None
    )
    assert result.daily_volume_ml == 1.0
    assert result.alarm_at == FILLED + days(18)
    assert forecast(
        FILLED, 20, [program(0, 500)], pump, WEEKDAYS_UTC, margin_days=0, stability_days=None
    ).alarm_at == FILLED + days(18)


def test_pump_spec_from_the_catalog(reference: Reference) -> None:
    pump = PumpSpec.from_model(reference.pump_model("synchromed-ii-40"))
    assert (pump.reservoir_ml, pump.low_reservoir_alarm_ml) == (40, 2)
    assert pump.pocket_fill_warning_ml == 2
    assert PumpSpec.from_model(reference.pump_model("codman-3000-30")).constant_flow_ml_per_day


# --- Daylight saving ------------------------------------------------------------------------


def test_the_alarm_moves_on_the_wall_clock_when_the_clocks_go_forward() -> None:
    filled_at = dt.datetime(2026, 3, 20, 9, 0, tzinfo=LONDON)  # GMT
    calendar = ClinicCalendar(zone=LONDON)
    result = forecast(
        filled_at, 20, [program(400)], PUMP_20, calendar, margin_days=7, stability_days=None
    )
    assert result.days_to_alarm == pytest.approx(90)
    assert result.alarm_at is not None
    assert result.alarm_at.astimezone(LONDON).replace(tzinfo=None) == dt.datetime(
        2026, 6, 18, 10, 0
    )


def test_the_alarm_moves_on_the_wall_clock_when_the_clocks_go_back() -> None:
    filled_at = dt.datetime(2026, 10, 20, 9, 0, tzinfo=LONDON)  # BST
    calendar = ClinicCalendar(zone=LONDON)
    result = forecast(
        filled_at, 20, [program(400)], PUMP_20, calendar, margin_days=7, stability_days=None
    )
    assert result.alarm_at is not None
    assert result.alarm_at.astimezone(LONDON).replace(tzinfo=None) == dt.datetime(2027, 1, 18, 8, 0)


def test_volume_counts_elapsed_hours_not_wall_clock_hours() -> None:
    # 00:00 to 12:00 local on 29 March 2026 is 11 hours: the clocks went forward at 01:00.
    start = dt.datetime(2026, 3, 29, 0, 0, tzinfo=LONDON)
    noon = dt.datetime(2026, 3, 29, 12, 0, tzinfo=LONDON)
    programs = [program(480, 1000, effective_from=start)]
    assert delivered_ml(start, programs, PUMP_20, start, noon, LONDON) == pytest.approx(
        0.48 * 11 / 24
    )


@pytest.mark.parametrize(
    ("day", "expected_mcg"),
    [(dt.date(2026, 3, 29), 220.0), (dt.date(2026, 10, 25), 260.0), (dt.date(2026, 6, 1), 240.0)],
)
def test_a_flex_morning_step_lasts_the_local_morning(day: dt.date, expected_mcg: float) -> None:
    # 480 mcg/day from 00:00, nothing from 12:00: 11, 13 or 12 hours of it.
    start = dt.datetime.combine(day, dt.time(), tzinfo=LONDON)
    end = dt.datetime.combine(day + days(1), dt.time(), tzinfo=LONDON)
    flex = program(240, 1000, effective_from=start, flex_steps=(FlexStep(0, 480), FlexStep(720, 0)))
    delivered_mcg = delivered_ml(start, [flex], PUMP_20, start, end, LONDON) * 1000
    assert delivered_mcg == pytest.approx(expected_mcg)


def test_a_flex_step_in_the_skipped_hour_starts_when_the_clock_jumps() -> None:
    start = dt.datetime(2026, 3, 29, 0, 0, tzinfo=LONDON)
    # 01:30 does not exist that night: the step starts at 01:00 GMT = 02:00 BST.
    flex = program(240, 1000, effective_from=start, flex_steps=(FlexStep(0, 0), FlexStep(90, 480)))
    jump = dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert delivered_ml(start, [flex], PUMP_20, start, jump, LONDON) == 0
    one_hour_ml = 0.48 / 24
    assert delivered_ml(
        start, [flex], PUMP_20, start, jump + dt.timedelta(hours=1), LONDON
    ) == pytest.approx(one_hour_ml)


# --- Validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: program(400, 0), "concentration_mcg_per_ml must be > 0"),
        (lambda: program(400, -500), "concentration_mcg_per_ml must be > 0"),
        (lambda: program(-1), "dose_mcg_per_day must be >= 0"),
        (lambda: program(float("nan")), "dose_mcg_per_day must be a finite number"),
        (lambda: ProgramPeriod(dt.datetime(2026, 1, 1), 2000, 400), "effective_from must be"),
        (
            lambda: program(400, flex_steps=tuple(FlexStep(i * 60, 400) for i in range(14))),
            "at most 13 steps",
        ),
        (
            lambda: program(400, flex_steps=(FlexStep(600, 400), FlexStep(0, 400))),
            "increasing order of starts_at_minute",
        ),
        (
            lambda: program(400, flex_steps=(FlexStep(0, 400), FlexStep(0, 300))),
            "each time once",
        ),
        (lambda: FlexStep(1440, 400), "starts_at_minute must be between 0 and 1439"),
        (lambda: FlexStep(0, -1), "rate_mcg_per_day must be >= 0"),
        (lambda: program(400, max_boluses_per_day=2), "bolus_dose_mcg is required"),
        (lambda: program(400, bolus_dose_mcg=0), "bolus_dose_mcg must be > 0"),
        (
            lambda: program(400, bolus_dose_mcg=10, max_boluses_per_day=25),
            "max_boluses_per_day must be between 0 and 24",
        ),
        (lambda: PumpSpec(20, 20), "low_reservoir_alarm_ml must be less than reservoir_ml"),
        (lambda: PumpSpec(0, 0), "reservoir_ml must be > 0"),
        (lambda: PumpSpec(20, 2, constant_flow_ml_per_day=0), "constant_flow_ml_per_day"),
    ],
)
def test_bad_programs_and_pumps_are_refused(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_bad_volumes_and_times_are_refused() -> None:
    programs = [program(400)]
    with pytest.raises(ValueError, match="volume_ml must be >= 0"):
        volume_at(FILLED, -1, programs, PUMP_20, FILLED, UTC)
    with pytest.raises(ValueError, match="volume_ml must be at most the reservoir, 20 mL"):
        volume_at(FILLED, 21, programs, PUMP_20, FILLED, UTC)
    with pytest.raises(ValueError, match="at must be timezone-aware"):
        volume_at(FILLED, 20, programs, PUMP_20, dt.datetime(2026, 2, 1), UTC)
    with pytest.raises(ValueError, match="filled_at must be timezone-aware"):
        volume_at(dt.datetime(2026, 1, 1), 20, programs, PUMP_20, FILLED, UTC)
    with pytest.raises(ValueError, match="must not be before filled_at"):
        volume_at(FILLED, 20, programs, PUMP_20, FILLED - days(1), UTC)
    with pytest.raises(ValueError, match="none is in force at filled_at"):
        volume_at(FILLED, 20, [program(400, effective_from=FILLED + days(1))], PUMP_20, FILLED, UTC)
    with pytest.raises(ValueError, match="two start at the same time"):
        volume_at(FILLED, 20, [program(400), program(500)], PUMP_20, FILLED, UTC)
    with pytest.raises(ValueError, match="at least one program"):
        volume_at(FILLED, 20, [], PUMP_20, FILLED, UTC)
    with pytest.raises(ValueError, match="margin_days must be >= 0"):
        forecast(FILLED, 20, programs, PUMP_20, WEEKDAYS_UTC, margin_days=-1, stability_days=None)
    with pytest.raises(ValueError, match="stability_days must be >= 1"):
        forecast(FILLED, 20, programs, PUMP_20, WEEKDAYS_UTC, margin_days=7, stability_days=0)


# --- Reconciliation (ITB-FACTS §5) ----------------------------------------------------------


def reconcile_60_days(aspirated_ml: float, pump: PumpSpec = PUMP_20) -> Reconciliation:
    return reconcile(20, FILLED, [program(400)], pump, aspirated_ml, FILLED + days(60), UTC)


def test_the_worked_example_trips_both_rules_as_over_infusion() -> None:
    result = reconcile_60_days(5.5)
    assert result.expected_residual_ml == pytest.approx(8.0)
    assert result.discrepancy_ml == pytest.approx(-2.5)
    assert result.delivered_expected_ml == pytest.approx(12.0)
    assert result.delivered_actual_ml == pytest.approx(14.5)
    assert result.delivery_error_pct == pytest.approx(20.8333, abs=1e-4)
    assert result.flags == {FLAG_DISCREPANCY, FLAG_DELIVERY_ERROR}
    assert FLAG_DISCREPANCY == "discrepancy_over_2ml"
    assert FLAG_DELIVERY_ERROR == "delivery_error_over_14_5_pct"
    steps = " ".join(result.next_steps).lower()
    assert "over-infusion" in steps and "overdose" in steps and "clinician" in steps


def test_more_left_than_expected_is_under_delivery() -> None:
    result = reconcile_60_days(10.5)
    assert result.discrepancy_ml == pytest.approx(2.5)
    assert result.delivery_error_pct == pytest.approx(-20.8333, abs=1e-4)
    assert result.flags == {FLAG_DISCREPANCY, FLAG_DELIVERY_ERROR}
    steps = " ".join(result.next_steps).lower()
    assert "under-delivery" in steps and "withdrawal" in steps and "catheter" in steps


def test_within_limits_there_are_no_flags_and_no_next_steps() -> None:
    result = reconcile_60_days(8.3)
    assert result.flags == frozenset()
    assert not result.flagged and result.next_steps == ()


def test_exactly_2_ml_is_not_flagged() -> None:
    result = reconcile(40, FILLED, [program(600)], PUMP_40, 12.0, FILLED + days(60), UTC)
    assert result.expected_residual_ml == pytest.approx(22)
    assert result.discrepancy_ml == pytest.approx(-10)
    assert FLAG_DISCREPANCY in result.flags
    borderline = reconcile(40, FILLED, [program(600)], PUMP_40, 20.0, FILLED + days(60), UTC)
    assert borderline.discrepancy_ml == pytest.approx(-2)
    assert FLAG_DISCREPANCY not in borderline.flags


def test_each_rule_can_trip_alone() -> None:
    # Small delivery (3 mL expected): a 0.6 mL gap is 20 % of it.
    small = reconcile(20, FILLED, [program(100)], PUMP_20, 16.4, FILLED + days(60), UTC)
    assert small.flags == {FLAG_DELIVERY_ERROR}
    # Large delivery (36 mL expected): a 2.2 mL gap is only 6 % of it.
    large = reconcile(40, FILLED, [program(300, 500)], PUMP_40, 1.8, FILLED + days(60), UTC)
    assert large.flags == {FLAG_DISCREPANCY}


def test_the_delivery_rule_uses_the_pumps_accuracy() -> None:
    # 1.75 mL more delivered than 12 mL expected: +14.6 %.
    assert reconcile_60_days(6.25).flags == {FLAG_DELIVERY_ERROR}
    prometra = PumpSpec(reservoir_ml=20, low_reservoir_alarm_ml=3, flow_accuracy_pct=15)
    assert reconcile_60_days(6.25, prometra).flags == frozenset()


def test_reconciliation_follows_program_changes() -> None:
    programs = [program(400), program(800, effective_from=FILLED + days(30))]
    result = reconcile(20, FILLED, programs, PUMP_20, 2.0, FILLED + days(40), UTC)
    assert result.expected_residual_ml == pytest.approx(20 - 6 - 4)


def test_a_pump_that_ran_dry_expects_nothing_left() -> None:
    result = reconcile(20, FILLED, [program(400)], PUMP_20, 0.0, FILLED + days(150), UTC)
    assert result.expected_residual_ml == 0
    assert result.delivered_expected_ml == 20
    assert result.flags == frozenset()


def test_nothing_to_deliver_has_no_delivery_error() -> None:
    result = reconcile(20, FILLED, [program(0)], PUMP_20, 20, FILLED + days(30), UTC)
    assert result.delivery_error_pct is None
    assert result.flags == frozenset()


def test_reconcile_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match=r"at \(.*\) must not be before filled_at"):
        reconcile(20, FILLED, [program(400)], PUMP_20, 5, FILLED - days(1), UTC)
    with pytest.raises(ValueError, match="aspirated_ml must be >= 0"):
        reconcile(20, FILLED, [program(400)], PUMP_20, -1, FILLED + days(1), UTC)
    with pytest.raises(ValueError, match="volume_after_last_fill_ml must be at most"):
        reconcile(25, FILLED, [program(400)], PUMP_20, 5, FILLED + days(1), UTC)


def test_the_trend_across_refills() -> None:
    history = []
    for i, aspirated_ml in enumerate((8.5, 7.4, 7.0, 6.6)):
        filled_at = FILLED + days(60 * i)
        history.append(
            reconcile(
                20, filled_at, [program(400)], PUMP_20, aspirated_ml, filled_at + days(60), UTC
            )
        )
    trend = reconciliation_trend(history)
    assert trend.count == 4
    assert trend.mean_discrepancy_ml == pytest.approx((0.5 - 0.6 - 1.0 - 1.4) / 4)
    assert [point[1] for point in trend.last_three] == pytest.approx([-0.6, -1.0, -1.4])
    assert trend.consistent_direction == "less_left_than_expected"
    mixed = reconciliation_trend(
        [(FILLED + days(i), gap, None) for i, gap in enumerate((0.5, -0.2, 0.4))]
    )
    assert mixed.consistent_direction is None
    assert mixed.mean_delivery_error_pct is None
    short = reconciliation_trend([(FILLED, 1.0, -5.0), (FILLED + days(1), 1.0, -5.0)])
    assert short.consistent_direction is None
    assert reconciliation_trend([]).mean_discrepancy_ml is None


# --- Pocket fill ----------------------------------------------------------------------------


def test_pocket_fill_warning_above_1_ml_on_a_20_ml_pump() -> None:
    check = pocket_fill_check(18, 20, 18.5, PUMP_20)
    assert check.flagged and check.gap_ml == pytest.approx(-1.5)
    assert check.warning is not None and "pocket fill" in check.warning.lower()
    assert "clinician" in check.warning
    assert not pocket_fill_check(18, 20, 19.2, PUMP_20).flagged
    assert not pocket_fill_check(18, 20, 19.0, PUMP_20).flagged  # exactly 1 mL


def test_pocket_fill_warning_above_2_ml_on_a_40_ml_pump() -> None:
    assert not pocket_fill_check(36, 40, 38.5, PUMP_40).flagged
    flagged = pocket_fill_check(36, 40, 37.5, PUMP_40)
    assert flagged.flagged and flagged.limit_ml == 2


def test_more_than_expected_after_filling_asks_for_a_recheck() -> None:
    check = pocket_fill_check(10, 15, 16.5, PUMP_20)
    assert check.flagged and check.warning is not None and "Re-check" in check.warning


def test_pocket_fill_refuses_bad_volumes() -> None:
    with pytest.raises(ValueError, match="measured_after_ml must be at most the reservoir"):
        pocket_fill_check(18, 20, 21, PUMP_20)
    with pytest.raises(ValueError, match="injected_ml must be >= 0"):
        pocket_fill_check(-1, 20, 20, PUMP_20)


# --- Properties -----------------------------------------------------------------------------

ZONES = st.sampled_from(
    [UTC, LONDON, zoneinfo.ZoneInfo("America/New_York"), zoneinfo.ZoneInfo("Australia/Sydney")]
)
DOSES = st.floats(0, 2000)
CONCENTRATIONS = st.sampled_from([500.0, 1000.0, 2000.0])
FILL_TIMES = st.datetimes(
    min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 12, 31), timezones=ZONES
)
FLEX_STEPS = st.lists(
    st.tuples(st.integers(0, 1439), st.floats(10, 2000)), min_size=2, max_size=13
).map(lambda raw: tuple(FlexStep(m, r) for m, r in sorted(dict(raw).items())))


@st.composite
def fills(draw: st.DrawFn) -> tuple[dt.datetime, float, list[ProgramPeriod], PumpSpec]:
    pump = draw(st.sampled_from([PUMP_20, PUMP_40]))
    filled_at = draw(FILL_TIMES)
    # Arithmetic on a ZoneInfo datetime is wall-clock arithmetic (and drops fold): use UTC.
    utc_fill = filled_at.astimezone(UTC)
    volume_ml = draw(st.floats(0, pump.reservoir_ml))
    programs = [
        ProgramPeriod(utc_fill - days(draw(st.floats(0, 30))), draw(CONCENTRATIONS), draw(DOSES))
    ]
    # Whole minutes, so two changes never land on the same microsecond.
    for offset_minutes in sorted(set(draw(st.lists(st.integers(1, 200 * 24 * 60), max_size=3)))):
        flex = draw(st.one_of(st.just(()), FLEX_STEPS))
        programs.append(
            ProgramPeriod(
                utc_fill + dt.timedelta(minutes=offset_minutes),
                draw(CONCENTRATIONS),
                draw(DOSES),
                flex_steps=flex,
            )
        )
    return filled_at, volume_ml, programs, pump


@settings(max_examples=80, deadline=None)
@given(fill=fills(), zone=ZONES, later_days=st.floats(0, 400))
def test_volume_is_never_negative_nor_above_the_reservoir_and_never_rises(
    fill: tuple[dt.datetime, float, list[ProgramPeriod], PumpSpec],
    zone: dt.tzinfo,
    later_days: float,
) -> None:
    filled_at, volume_ml, programs, pump = fill
    at = filled_at.astimezone(UTC) + days(later_days)
    left_ml = volume_at(filled_at, volume_ml, programs, pump, at, zone)
    assert 0 <= left_ml <= min(volume_ml, pump.reservoir_ml)
    later_ml = volume_at(filled_at, volume_ml, programs, pump, at + days(1), zone)
    assert later_ml <= left_ml


@settings(max_examples=80, deadline=None)
@given(
    fill=fills(),
    zone=ZONES,
    margin_days=st.integers(0, 30),
    stability_days=st.one_of(st.none(), st.integers(1, 200)),
    holidays=st.frozensets(st.dates(dt.date(2025, 1, 1), dt.date(2028, 12, 31)), max_size=40),
    open_weekdays=st.frozensets(st.integers(1, 7), min_size=1),
)
def test_refill_due_is_an_open_day_never_after_alarm_minus_margin_nor_the_stability_limit(
    fill: tuple[dt.datetime, float, list[ProgramPeriod], PumpSpec],
    zone: zoneinfo.ZoneInfo,
    margin_days: int,
    stability_days: int | None,
    holidays: frozenset[dt.date],
    open_weekdays: frozenset[int],
) -> None:
    filled_at, volume_ml, programs, pump = fill
    calendar = ClinicCalendar(zone=zone, open_weekdays=open_weekdays, holidays=holidays)
    result = forecast(
        filled_at,
        volume_ml,
        programs,
        pump,
        calendar,
        margin_days=margin_days,
        stability_days=stability_days,
    )
    if result.refill_due is None:
        assert result.alarm_at is None and stability_days is None
        return
    assert calendar.is_open_day(result.refill_due)
    if result.alarm_at is not None:
        latest = (result.alarm_at - days(margin_days)).astimezone(zone).date()
        assert result.refill_due <= latest
    if result.stability_limit_at is not None:
        assert result.refill_due <= result.stability_limit_at.astimezone(zone).date()
    if result.alarm_at is not None and result.empty_at is not None:
        assert result.alarm_at <= result.empty_at


@settings(max_examples=80, deadline=None)
@given(
    fill=fills(),
    zone=ZONES,
    change_days=st.floats(0.01, 300),
    factor=st.floats(0, 5),
)
def test_a_program_change_never_moves_the_alarm_the_wrong_way(
    fill: tuple[dt.datetime, float, list[ProgramPeriod], PumpSpec],
    zone: zoneinfo.ZoneInfo,
    change_days: float,
    factor: float,
) -> None:
    filled_at, volume_ml, programs, pump = fill
    base = [programs[0]]  # a constant program from before the fill
    in_force = base[0]
    change_at = filled_at.astimezone(UTC) + days(change_days)
    changed = [
        *base,
        ProgramPeriod(
            change_at, in_force.concentration_mcg_per_ml, in_force.dose_mcg_per_day * factor
        ),
    ]
    assume(in_force.dose_mcg_per_day * factor <= 1e6)
    calendar = ClinicCalendar(zone=zone)

    def alarm(programs: list[ProgramPeriod]) -> dt.datetime | None:
        return forecast(
            filled_at, volume_ml, programs, pump, calendar, margin_days=7, stability_days=None
        ).alarm_at

    before, after = alarm(base), alarm(changed)
    tolerance = dt.timedelta(milliseconds=1)
    if factor >= 1:  # a higher dose: never later
        if before is not None:
            assert after is not None and after <= before + tolerance
    elif after is not None:  # a lower dose: never earlier
        assert before is not None and after >= before - tolerance
