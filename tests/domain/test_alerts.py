"""The alert engine: one patient walked through every alert kind as ``as_of`` advances, every
risk escalation, the order of the list and the words it uses."""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo

import pytest

from pumpclinic.domain.alerts import (
    Alert,
    AlertKind,
    AlertSettings,
    PumpSituation,
    RiskFlag,
    ScreeningDoseSituation,
    Severity,
    apply_risk_flags,
    count_by_kind,
    count_by_severity,
    evaluate,
    pump_alerts,
    relative_days,
    screening_alert,
)
from pumpclinic.domain.calendar import ClinicCalendar
from pumpclinic.domain.reservoir import Forecast, ProgramPeriod, PumpSpec, forecast

LONDON = zoneinfo.ZoneInfo("Europe/London")
SETTINGS = AlertSettings(zone=LONDON, due_soon_horizon_days=14)
CALENDAR = ClinicCalendar(zone=LONDON)
SYNCHROMED_20 = PumpSpec(reservoir_ml=20, low_reservoir_alarm_ml=2)
# ITB-FACTS §4: 20 mL of 2,000 mcg/mL at 400 mcg/day = 0.2 mL/day: alarm after 90 days, empty
# after 100. Filled Sun 27 Sep 2026 10:00 UTC: stability (77 days) ends Sun 13 Dec 10:00 UTC,
# so the refill is due Fri 11 Dec; the alarm sounds Sat 26 Dec 10:00 UTC, empty Tue 5 Jan.
FILLED_AT = dt.datetime(2026, 9, 27, 10, 0, tzinfo=dt.UTC)
PATIENT_ID = 7
PUMP_ID = 70
TRIAL_ID = 700


def at(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    """A wall-clock time in London."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=LONDON)


def outlook(filled_at: dt.datetime = FILLED_AT, stability_days: int | None = 77) -> Forecast:
    return forecast(
        filled_at,
        20.0,
        [ProgramPeriod(filled_at, 2000, 400)],
        SYNCHROMED_20,
        CALENDAR,
        margin_days=7,
        stability_days=stability_days,
    )


_DEFAULT = outlook()


def pump(
    *,
    forecast_: Forecast | None = _DEFAULT,
    booked: dt.datetime | None = None,
    battery: dt.date | None = None,
    flags: frozenset[RiskFlag] = frozenset(),
) -> PumpSituation:
    return PumpSituation(
        patient_id=PATIENT_ID,
        pump_id=PUMP_ID,
        forecast=forecast_,
        next_booked_refill_at=booked,
        battery_replace_by=battery,
        battery_notice_days=90,
        risk_flags=flags,
    )


def only(alerts: tuple[Alert, ...] | list[Alert]) -> Alert:
    assert len(alerts) == 1, alerts
    return alerts[0]


def refill_alerts(situation: PumpSituation, as_of: dt.datetime) -> list[Alert]:
    return [a for a in pump_alerts(situation, as_of, SETTINGS) if a.pump_id == PUMP_ID]


def test_the_worked_example_forecast() -> None:
    f = outlook()
    assert f.refill_due == dt.date(2026, 12, 11)
    assert f.alarm_at == dt.datetime(2026, 12, 26, 10, 0, tzinfo=dt.UTC)
    assert f.empty_at == dt.datetime(2027, 1, 5, 10, 0, tzinfo=dt.UTC)
    assert f.stability_limit_at == dt.datetime(2026, 12, 13, 10, 0, tzinfo=dt.UTC)


def test_one_patient_through_every_alert_kind() -> None:
    """Screened in January, implanted, then left without a refill until the pump is empty;
    meanwhile the battery nears its end. Each step names the one alert the list shows."""
    seen: list[tuple[AlertKind, Severity]] = []

    def step(
        as_of: dt.datetime,
        *,
        pumps: list[PumpSituation] = (),  # type: ignore[assignment]
        doses: list[ScreeningDoseSituation] = (),  # type: ignore[assignment]
    ) -> Alert | None:
        alerts = evaluate(pumps, doses, as_of, SETTINGS)
        assert len(alerts) <= 1, alerts
        if alerts:
            seen.append((alerts[0].kind, alerts[0].severity))
            return alerts[0]
        return None

    # --- screening: dose 1 planned Mon 12 Jan 09:00 ----------------------------------------
    planned = ScreeningDoseSituation(
        PATIENT_ID, TRIAL_ID, 1, 50.0, planned_at=at(2026, 1, 12, 9, 0)
    )
    assert step(at(2026, 1, 11, 18, 0), doses=[planned]) is None  # not its day yet
    due = step(at(2026, 1, 12, 8, 0), doses=[planned])
    assert due is not None and due.kind is AlertKind.SCREENING_DOSE_DUE
    assert due.severity is Severity.INFO
    assert due.description == "Screening dose 1 (50 mcg) due today 09:00"
    late = step(at(2026, 1, 12, 10, 0), doses=[planned])
    assert late is not None and late.severity is Severity.WARNING
    assert late.description == "Screening dose 1 (50 mcg) planned today 09:00 — not given, 1 h ago"

    given_at = at(2026, 1, 12, 10, 15)
    observing = ScreeningDoseSituation(
        PATIENT_ID,
        TRIAL_ID,
        1,
        50.0,
        given_at=given_at,
        assess_from=given_at + dt.timedelta(hours=4),
        observe_until=given_at + dt.timedelta(hours=8),
    )
    assert step(at(2026, 1, 12, 13, 0), doses=[observing]) is None  # too early to assess
    ending = step(at(2026, 1, 12, 15, 0), doses=[observing])
    assert ending is not None and ending.kind is AlertKind.OBSERVATION_ENDING
    assert ending.severity is Severity.INFO
    assert "ends today 18:15 (in 3 h 15 min)" in ending.description
    last_hour = step(at(2026, 1, 12, 17, 45), doses=[observing])
    assert last_hour is not None and last_hour.severity is Severity.WARNING
    ended = step(at(2026, 1, 12, 19, 0), doses=[observing])
    assert ended is not None and ended.severity is Severity.WARNING
    assert "ended today 18:15 (45 min ago): response not recorded" in ended.description
    answered = dataclasses.replace(observing, response_recorded=True)
    assert step(at(2026, 1, 12, 19, 0), doses=[answered]) is None

    # --- implanted; filled Sun 27 Sep; refill due Fri 11 Dec ------------------------------
    assert step(at(2026, 11, 26), pumps=[pump()]) is None  # 15 days before the due date
    soon = step(at(2026, 11, 27), pumps=[pump()])
    assert soon is not None and soon.kind is AlertKind.REFILL_DUE_SOON
    assert soon.severity is Severity.INFO
    assert (
        soon.description
        == "Refill due Fri 11 Dec (in 14 days); alarm in 29 days (Sat 26 Dec); not booked"
    )
    assert soon.deadline_label == "refill due" and soon.deadline_is_day
    assert soon.summary == "Refill due in 14 days; not booked"
    # Booked on the due date: nothing to do.
    assert step(at(2026, 11, 27), pumps=[pump(booked=at(2026, 12, 11, 9, 30))]) is None
    booked_late = step(at(2026, 11, 27), pumps=[pump(booked=at(2026, 12, 15, 9, 30))])
    assert booked_late is not None and booked_late.kind is AlertKind.REFILL_BOOKED_LATE
    assert booked_late.severity is Severity.WARNING
    assert booked_late.also == (AlertKind.REFILL_DUE_SOON,)
    assert booked_late.description.startswith("Booked Tue 15 Dec 09:30, after the refill-due date")
    after_alarm = step(at(2026, 11, 27), pumps=[pump(booked=at(2026, 12, 29, 9, 30))])
    assert after_alarm is not None and after_alarm.kind is AlertKind.REFILL_BOOKED_AFTER_ALARM
    assert after_alarm.severity is Severity.URGENT
    assert (
        after_alarm.description
        == "Booked Tue 29 Dec 09:30, after the alarm (in 29 days (Sat 26 Dec))"
    )

    overdue = step(at(2026, 12, 12, 9, 0), pumps=[pump()])
    assert overdue is not None and overdue.kind is AlertKind.REFILL_OVERDUE
    assert overdue.severity is Severity.WARNING
    assert overdue.deadline == outlook().alarm_at and overdue.deadline_label == "alarm"
    assert overdue.summary == "Refill 1 day overdue; alarm in 14 days"
    stale = step(at(2026, 12, 13, 12, 0), pumps=[pump()])
    assert stale is not None and stale.kind is AlertKind.STABILITY_LIMIT_PASSED
    assert stale.severity is Severity.WARNING
    assert stale.also == (AlertKind.REFILL_OVERDUE,)
    assert "refill due Fri 11 Dec — 2 days overdue" in stale.description

    alarming = step(at(2026, 12, 26, 10, 30), pumps=[pump()])
    assert alarming is not None and alarming.kind is AlertKind.PAST_ALARM
    assert alarming.severity is Severity.URGENT
    assert alarming.deadline == outlook().empty_at and alarming.deadline_label == "empty"
    assert alarming.summary == "Alarming since today 10:00; empty in 10 days"
    empty = step(at(2027, 1, 6, 9, 0), pumps=[pump()])
    assert empty is not None and empty.kind is AlertKind.PUMP_EMPTY
    assert empty.severity is Severity.CRITICAL
    assert empty.also == (AlertKind.PAST_ALARM, AlertKind.STABILITY_LIMIT_PASSED)
    assert empty.description.startswith("Pump empty since yesterday 10:00 — withdrawal risk")
    assert empty.summary == "Empty since yesterday 10:00"

    # --- the refill is recorded: the refill alert closes by itself -------------------------
    refilled = pump(forecast_=outlook(filled_at=at(2027, 1, 6, 11, 0)))
    assert step(at(2027, 1, 6, 11, 5), pumps=[refilled]) is None

    # --- the battery: replacement-indicator window, then end of life ----------------------
    battery = dt.date(2027, 4, 1)
    # 90 days' notice (the catalog's replacement-indicator lead time): from Fri 1 Jan.
    assert step(at(2026, 12, 31), pumps=[pump(forecast_=None, battery=battery)]) is None
    window = step(at(2027, 1, 2), pumps=[pump(forecast_=None, battery=battery)])
    assert window is not None and window.kind is AlertKind.BATTERY_REPLACEMENT_DUE
    assert window.severity is Severity.WARNING
    assert window.description.endswith("replace the pump by Thu 1 Apr, in 89 days")
    end = step(at(2027, 4, 1), pumps=[pump(forecast_=None, battery=battery)])
    assert end is not None and end.kind is AlertKind.BATTERY_END_OF_LIFE
    assert end.severity is Severity.URGENT

    assert {kind for kind, _severity in seen} == set(AlertKind)


def test_only_the_most_severe_refill_alert_per_pump() -> None:
    # Past the alarm with a booking after it: the one alert is "past alarm".
    alerts = refill_alerts(pump(booked=at(2026, 12, 29, 9, 0)), at(2026, 12, 27))
    assert [a.kind for a in alerts] == [AlertKind.PAST_ALARM]
    assert AlertKind.STABILITY_LIMIT_PASSED in alerts[0].also


def test_no_forecast_no_refill_alert_but_the_battery_still_counts() -> None:
    alerts = pump_alerts(
        pump(forecast_=None, battery=dt.date(2026, 12, 1)), at(2026, 12, 2), SETTINGS
    )
    assert [a.kind for a in alerts] == [AlertKind.BATTERY_END_OF_LIFE]


# --- risk escalation -----------------------------------------------------------------------


@pytest.mark.parametrize("flag", list(RiskFlag))
def test_each_risk_flag_alone_raises_one_level(flag: RiskFlag) -> None:
    base = only(refill_alerts(pump(), at(2026, 11, 27)))
    raised = only(refill_alerts(pump(flags=frozenset({flag})), at(2026, 11, 27)))
    assert base.severity is Severity.INFO
    assert raised.severity is Severity.WARNING
    assert raised.raised_by == (flag,)
    assert raised.kind is base.kind and raised.base_severity is Severity.INFO


@pytest.mark.parametrize(
    ("as_of", "base", "raised"),
    [
        (at(2026, 12, 12, 9, 0), Severity.WARNING, Severity.URGENT),  # overdue
        (at(2026, 12, 27), Severity.URGENT, Severity.CRITICAL),  # past the alarm
    ],
)
def test_flags_raise_every_refill_severity(
    as_of: dt.datetime, base: Severity, raised: Severity
) -> None:
    flags = frozenset({RiskFlag.PREVIOUS_WITHDRAWAL})
    assert only(refill_alerts(pump(), as_of)).severity is base
    assert only(refill_alerts(pump(flags=flags), as_of)).severity is raised


def test_several_flags_still_raise_one_level() -> None:
    alert = only(refill_alerts(pump(flags=frozenset(RiskFlag)), at(2026, 11, 27)))
    assert alert.severity is Severity.WARNING  # info + 1, not + 3
    assert alert.raised_by == (
        RiskFlag.SCI_AT_OR_ABOVE_T6,
        RiskFlag.COMMUNICATION_DIFFICULTIES,
        RiskFlag.PREVIOUS_WITHDRAWAL,
    )


def test_raising_stops_at_critical() -> None:
    alert = only(refill_alerts(pump(flags=frozenset(RiskFlag)), at(2027, 1, 6, 9, 0)))
    assert alert.kind is AlertKind.PUMP_EMPTY
    assert alert.severity is Severity.CRITICAL
    assert Severity.CRITICAL.raised() is Severity.CRITICAL


def test_battery_alerts_are_raised_too() -> None:
    flags = frozenset({RiskFlag.SCI_AT_OR_ABOVE_T6})
    situation = pump(forecast_=None, battery=dt.date(2027, 4, 1), flags=flags)
    alert = only(pump_alerts(situation, at(2027, 4, 2), SETTINGS))
    assert alert.kind is AlertKind.BATTERY_END_OF_LIFE
    assert alert.severity is Severity.CRITICAL


def test_screening_alerts_are_not_raised_by_pump_risk_flags() -> None:
    dose = ScreeningDoseSituation(PATIENT_ID, TRIAL_ID, 2, 75.0, planned_at=at(2026, 1, 13, 9, 0))
    alert = screening_alert(dose, at(2026, 1, 13, 8, 0), SETTINGS)
    assert alert is not None
    raised = apply_risk_flags([alert], {PATIENT_ID: frozenset(RiskFlag)})
    assert raised[0].severity is Severity.INFO and raised[0].raised_by == ()


def test_applying_flags_afterwards_equals_evaluating_with_them() -> None:
    flags = frozenset({RiskFlag.COMMUNICATION_DIFFICULTIES})
    as_of = at(2026, 12, 12, 9, 0)
    with_flags = evaluate([pump(flags=flags)], [], as_of, SETTINGS)
    afterwards = apply_risk_flags(evaluate([pump()], [], as_of, SETTINGS), {PATIENT_ID: flags})
    assert afterwards == with_flags


# --- the list ------------------------------------------------------------------------------


def test_most_severe_first_then_soonest_deadline() -> None:
    def situation(pump_id: int, filled_days_ago: float, flags: frozenset[RiskFlag] = frozenset()):
        filled = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC) - dt.timedelta(
            days=filled_days_ago
        )
        return PumpSituation(
            patient_id=pump_id,
            pump_id=pump_id,
            forecast=outlook(filled_at=filled, stability_days=None),
            risk_flags=flags,
        )

    pumps = [
        situation(1, 70),  # due soon (alarm in 20 days)
        situation(2, 101),  # empty a day ago
        situation(3, 84),  # overdue, alarm in 6 days
        situation(4, 92),  # past alarm
        situation(5, 103),  # empty three days ago
        situation(6, 86),  # overdue, alarm in 4 days
        situation(7, 70, frozenset({RiskFlag.SCI_AT_OR_ABOVE_T6})),  # due soon, raised
    ]
    alerts = evaluate(pumps, [], dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC), SETTINGS)
    assert [(a.pump_id, a.severity) for a in alerts] == [
        (5, Severity.CRITICAL),
        (2, Severity.CRITICAL),
        (4, Severity.URGENT),
        (6, Severity.WARNING),
        (3, Severity.WARNING),
        (7, Severity.WARNING),
        (1, Severity.INFO),
    ]
    assert count_by_severity(alerts) == {
        Severity.CRITICAL: 2,
        Severity.URGENT: 1,
        Severity.WARNING: 3,
        Severity.INFO: 1,
    }
    assert count_by_kind(alerts) == {
        AlertKind.PUMP_EMPTY: 2,
        AlertKind.PAST_ALARM: 1,
        AlertKind.REFILL_OVERDUE: 2,
        AlertKind.REFILL_DUE_SOON: 2,
    }


def test_words() -> None:
    base = outlook(stability_days=None)
    near = only(refill_alerts(pump(forecast_=base), at(2026, 12, 23, 9, 0)))
    assert "alarm in 3 days (Sat 26 Dec)" in near.description
    today = only(refill_alerts(pump(forecast_=base), at(2026, 12, 26, 8, 0)))
    assert "alarm today at 10:00" in today.description
    assert relative_days(0) == "today"
    assert relative_days(1) == "tomorrow"
    assert relative_days(-1) == "yesterday"
    assert relative_days(5) == "in 5 days"
    assert relative_days(-5) == "5 days ago"


def test_alert_keys_are_stable_and_distinct() -> None:
    alert = only(refill_alerts(pump(), at(2026, 11, 27)))
    again = only(refill_alerts(pump(), at(2026, 11, 28)))
    assert alert.key == again.key == f"refill_due_soon:pump-{PUMP_ID}"
    worse = only(refill_alerts(pump(), at(2027, 1, 6, 9, 0)))
    assert worse.key != alert.key


def test_as_of_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate([pump()], [], dt.datetime(2026, 11, 27, 12, 0), SETTINGS)
