"""Overdue-refill alerts (ITB-FACTS §6): what is wrong with each pump and patient, as of a time.

An empty pump means abrupt baclofen withdrawal, so an overdue refill is a patient-safety
alarm. Alerts are computed from events — the latest fill and its programs (through the
reservoir forecast), the next booked refill, the pump's battery date, the screening doses —
and never stored: an alert closes by itself when the refill is recorded.

Per implanted pump only the most severe refill alert is shown (the others that also hold are
listed in ``Alert.also``). Severity: info < warning < urgent < critical. A patient with a
risk flag (spinal cord injury at or above T6, communication difficulties, a previous
withdrawal) has every pump alert raised one level, never above critical. The list is ordered
most severe first, then soonest deadline.

``fast_forecast`` gives the same answer as ``reservoir.forecast`` in a fraction of the time
(a whole clinic is evaluated at once): straight-line arithmetic between program changes, and
for flex programs whole days at a time between daylight-saving changes.

Pure: no clock ("as of" is an argument), no Qt, no database.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import lru_cache

from pumpclinic.domain.calendar import ClinicCalendar
from pumpclinic.domain.reservoir import (
    MAX_FORECAST_DAYS,
    Forecast,
    ProgramPeriod,
    PumpSpec,
    _add_days,
    _elapsed_days,
    _periods_since,
    _wall_clock_instant,
    forecast,
    program_daily_volume_ml,
)

# When the catalog gives no elective-replacement lead time for a pump model.
DEFAULT_BATTERY_NOTICE_DAYS = 90
# An observation is about to end: the response must be recorded before the patient leaves.
OBSERVATION_WARNING = dt.timedelta(hours=1)
_DAY = dt.timedelta(days=1)
_UTC = dt.UTC
_FAR_FUTURE = dt.datetime.max.replace(tzinfo=_UTC)


# --- Vocabulary ----------------------------------------------------------------------------


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    URGENT = "urgent"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_ORDER.index(self)

    @property
    def label(self) -> str:
        return self.value.capitalize()

    def raised(self) -> Severity:
        """One level up, capped at critical."""
        return _SEVERITY_ORDER[min(self.rank + 1, len(_SEVERITY_ORDER) - 1)]


_SEVERITY_ORDER: tuple[Severity, ...] = (
    Severity.INFO,
    Severity.WARNING,
    Severity.URGENT,
    Severity.CRITICAL,
)
# Most severe first: the order of the list and of the counts.
SEVERITIES_MOST_SEVERE_FIRST: tuple[Severity, ...] = tuple(reversed(_SEVERITY_ORDER))


class AlertFamily(StrEnum):
    REFILL = "refill"
    BATTERY = "battery"
    SCREENING = "screening"


class AlertKind(StrEnum):
    REFILL_DUE_SOON = "refill_due_soon"
    REFILL_OVERDUE = "refill_overdue"
    PAST_ALARM = "past_alarm"
    PUMP_EMPTY = "pump_empty"
    REFILL_BOOKED_LATE = "refill_booked_late"
    REFILL_BOOKED_AFTER_ALARM = "refill_booked_after_alarm"
    STABILITY_LIMIT_PASSED = "stability_limit_passed"
    BATTERY_REPLACEMENT_DUE = "battery_replacement_due"
    BATTERY_END_OF_LIFE = "battery_end_of_life"
    SCREENING_DOSE_DUE = "screening_dose_due"
    OBSERVATION_ENDING = "observation_ending"

    @property
    def label(self) -> str:
        return _KIND_LABELS[self]

    @property
    def family(self) -> AlertFamily:
        if self in (AlertKind.BATTERY_REPLACEMENT_DUE, AlertKind.BATTERY_END_OF_LIFE):
            return AlertFamily.BATTERY
        if self in (AlertKind.SCREENING_DOSE_DUE, AlertKind.OBSERVATION_ENDING):
            return AlertFamily.SCREENING
        return AlertFamily.REFILL

    @property
    def base_severity(self) -> Severity:
        return _BASE_SEVERITY[self]


_KIND_LABELS = {
    AlertKind.REFILL_DUE_SOON: "Refill due soon",
    AlertKind.REFILL_OVERDUE: "Refill overdue",
    AlertKind.PAST_ALARM: "Past the low-reservoir alarm",
    AlertKind.PUMP_EMPTY: "Pump empty",
    AlertKind.REFILL_BOOKED_LATE: "Refill booked after the due date",
    AlertKind.REFILL_BOOKED_AFTER_ALARM: "Refill booked after the alarm",
    AlertKind.STABILITY_LIMIT_PASSED: "Drug stability limit passed",
    AlertKind.BATTERY_REPLACEMENT_DUE: "Battery replacement due",
    AlertKind.BATTERY_END_OF_LIFE: "Battery at end of life",
    AlertKind.SCREENING_DOSE_DUE: "Screening dose due",
    AlertKind.OBSERVATION_ENDING: "Observation ending",
}
_BASE_SEVERITY = {
    AlertKind.REFILL_DUE_SOON: Severity.INFO,
    AlertKind.REFILL_BOOKED_LATE: Severity.WARNING,
    AlertKind.REFILL_OVERDUE: Severity.WARNING,
    AlertKind.STABILITY_LIMIT_PASSED: Severity.WARNING,
    AlertKind.REFILL_BOOKED_AFTER_ALARM: Severity.URGENT,
    AlertKind.PAST_ALARM: Severity.URGENT,
    AlertKind.PUMP_EMPTY: Severity.CRITICAL,
    AlertKind.BATTERY_REPLACEMENT_DUE: Severity.WARNING,
    AlertKind.BATTERY_END_OF_LIFE: Severity.URGENT,
    # Screening alerts move up on their own once the time has passed (see screening_alert).
    AlertKind.SCREENING_DOSE_DUE: Severity.INFO,
    AlertKind.OBSERVATION_ENDING: Severity.INFO,
}
# Which alert of a family is shown when two of the same severity hold: the first here.
KIND_PRECEDENCE: tuple[AlertKind, ...] = (
    AlertKind.PUMP_EMPTY,
    AlertKind.PAST_ALARM,
    AlertKind.REFILL_BOOKED_AFTER_ALARM,
    AlertKind.STABILITY_LIMIT_PASSED,
    AlertKind.REFILL_OVERDUE,
    AlertKind.REFILL_BOOKED_LATE,
    AlertKind.REFILL_DUE_SOON,
    AlertKind.BATTERY_END_OF_LIFE,
    AlertKind.BATTERY_REPLACEMENT_DUE,
    AlertKind.OBSERVATION_ENDING,
    AlertKind.SCREENING_DOSE_DUE,
)
_PRECEDENCE = {kind: index for index, kind in enumerate(KIND_PRECEDENCE)}


class RiskFlag(StrEnum):
    """What raises every pump alert of a patient one level (ITB-FACTS §6)."""

    SCI_AT_OR_ABOVE_T6 = "sci_at_or_above_t6"
    COMMUNICATION_DIFFICULTIES = "communication_difficulties"
    PREVIOUS_WITHDRAWAL = "previous_withdrawal"

    @property
    def label(self) -> str:
        return {
            RiskFlag.SCI_AT_OR_ABOVE_T6: "SCI at/above T6",
            RiskFlag.COMMUNICATION_DIFFICULTIES: "communication difficulties",
            RiskFlag.PREVIOUS_WITHDRAWAL: "previous withdrawal",
        }[self]


def risk_flags(
    *, sci_at_or_above_t6: bool, communication_difficulties: bool, previous_withdrawal: bool
) -> frozenset[RiskFlag]:
    chosen = (
        (RiskFlag.SCI_AT_OR_ABOVE_T6, sci_at_or_above_t6),
        (RiskFlag.COMMUNICATION_DIFFICULTIES, communication_difficulties),
        (RiskFlag.PREVIOUS_WITHDRAWAL, previous_withdrawal),
    )
    return frozenset(flag for flag, on in chosen if on)


class ContactMethod(StrEnum):
    PHONE = "phone"
    SMS = "sms"
    EMAIL = "email"
    LETTER = "letter"
    IN_PERSON = "in-person"

    @property
    def label(self) -> str:
        return {
            ContactMethod.PHONE: "Phone",
            ContactMethod.SMS: "Text message",
            ContactMethod.EMAIL: "Email",
            ContactMethod.LETTER: "Letter",
            ContactMethod.IN_PERSON: "In person",
        }[self]


class ContactOutcome(StrEnum):
    REACHED = "reached"
    NO_ANSWER = "no-answer"
    LEFT_MESSAGE = "left-message"
    WRONG_NUMBER = "wrong-number"
    SENT = "sent"
    DECLINED = "declined"

    @property
    def label(self) -> str:
        return {
            ContactOutcome.REACHED: "Reached",
            ContactOutcome.NO_ANSWER: "No answer",
            ContactOutcome.LEFT_MESSAGE: "Left a message",
            ContactOutcome.WRONG_NUMBER: "Wrong number",
            ContactOutcome.SENT: "Sent (no reply yet)",
            ContactOutcome.DECLINED: "Declined to come",
        }[self]


_OUTCOMES_FOR_METHOD = {
    ContactMethod.PHONE: (
        ContactOutcome.REACHED,
        ContactOutcome.NO_ANSWER,
        ContactOutcome.LEFT_MESSAGE,
        ContactOutcome.WRONG_NUMBER,
        ContactOutcome.DECLINED,
    ),
    ContactMethod.SMS: (
        ContactOutcome.SENT,
        ContactOutcome.REACHED,
        ContactOutcome.WRONG_NUMBER,
        ContactOutcome.DECLINED,
    ),
    ContactMethod.EMAIL: (ContactOutcome.SENT, ContactOutcome.REACHED, ContactOutcome.DECLINED),
    ContactMethod.LETTER: (ContactOutcome.SENT, ContactOutcome.REACHED, ContactOutcome.DECLINED),
    ContactMethod.IN_PERSON: (ContactOutcome.REACHED, ContactOutcome.DECLINED),
}


def outcomes_for(method: ContactMethod) -> tuple[ContactOutcome, ...]:
    """The outcomes that go with a way of contacting (a letter is not "no answer")."""
    return _OUTCOMES_FOR_METHOD[method]


# --- Inputs and outputs --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """The clinic's zone (for days and words) and its due-soon horizon."""

    zone: dt.tzinfo
    due_soon_horizon_days: int = 14
    default_battery_notice_days: int = DEFAULT_BATTERY_NOTICE_DAYS


@dataclass(frozen=True, slots=True)
class PumpSituation:
    """What is known about one implanted pump as of a time.

    ``next_booked_refill_at``: the earliest refill appointment still booked (or arrived) from
    the start of the day on. ``battery_notice_days``: the catalog's elective replacement
    indicator lead time (days before ``battery_replace_by``).
    """

    patient_id: int
    pump_id: int
    forecast: Forecast | None
    next_booked_refill_at: dt.datetime | None = None
    battery_replace_by: dt.date | None = None
    battery_notice_days: int | None = None
    risk_flags: frozenset[RiskFlag] = frozenset()


@dataclass(frozen=True, slots=True)
class ScreeningDoseSituation:
    """A screening test dose planned (not given yet), or given and awaiting its response."""

    patient_id: int
    trial_id: int
    number: int
    dose_mcg: float
    planned_at: dt.datetime | None = None
    given_at: dt.datetime | None = None
    assess_from: dt.datetime | None = None
    observe_until: dt.datetime | None = None
    response_recorded: bool = False


@dataclass(frozen=True, slots=True)
class Alert:
    """One line of the worklist. ``deadline`` is the next thing that goes wrong (the due day,
    the alarm, the empty time ...); ``deadline_label`` says which. ``summary`` is the short
    form of ``description``."""

    kind: AlertKind
    severity: Severity
    patient_id: int
    pump_id: int | None
    trial_id: int | None
    description: str
    deadline: dt.datetime | None
    deadline_label: str
    # The few words a list shows ("Empty since yesterday 16:54"); ``description`` says all.
    summary: str = ""
    deadline_is_day: bool = False
    raised_by: tuple[RiskFlag, ...] = ()
    also: tuple[AlertKind, ...] = ()
    refill_due: dt.date | None = None
    alarm_at: dt.datetime | None = None
    empty_at: dt.datetime | None = None
    stability_limit_at: dt.datetime | None = None
    booked_at: dt.datetime | None = None
    dose_number: int | None = None

    @property
    def base_severity(self) -> Severity:
        return self.kind.base_severity

    @property
    def family(self) -> AlertFamily:
        return self.kind.family

    @property
    def key(self) -> str:
        """Stable while the same problem lasts: a new key is a new alert."""
        if self.family is AlertFamily.SCREENING:
            return f"{self.kind}:trial-{self.trial_id}:dose-{self.dose_number}"
        return f"{self.kind}:pump-{self.pump_id}"


# --- The engine ----------------------------------------------------------------------------


def evaluate(
    pumps: Iterable[PumpSituation],
    doses: Iterable[ScreeningDoseSituation],
    as_of: dt.datetime,
    settings: AlertSettings,
) -> tuple[Alert, ...]:
    """Every alert as of ``as_of``, most severe first, then soonest deadline."""
    _require_aware("as_of", as_of)
    now = _Now(as_of, settings)
    alerts: list[Alert] = []
    for pump in pumps:
        refill = _refill_alert(pump, now)
        if refill is not None:
            alerts.append(refill)
        battery = _battery_alert(pump, now)
        if battery is not None:
            alerts.append(battery)
    for dose in doses:
        alert = screening_alert(dose, as_of, settings)
        if alert is not None:
            alerts.append(alert)
    alerts.sort(key=sort_key)
    return tuple(alerts)


def sort_key(alert: Alert) -> tuple[int, dt.datetime, int, int, str]:
    deadline = _FAR_FUTURE if alert.deadline is None else alert.deadline.astimezone(_UTC)
    return (-alert.severity.rank, deadline, _PRECEDENCE[alert.kind], alert.patient_id, alert.key)


def pump_alerts(
    pump: PumpSituation, as_of: dt.datetime, settings: AlertSettings
) -> tuple[Alert, ...]:
    """The pump's most severe refill alert and its battery alert, each if any."""
    _require_aware("as_of", as_of)
    now = _Now(as_of, settings)
    found = []
    refill = _refill_alert(pump, now)
    if refill is not None:
        found.append(refill)
    battery = _battery_alert(pump, now)
    if battery is not None:
        found.append(battery)
    return tuple(found)


def apply_risk_flags(
    alerts: Iterable[Alert], flags_by_patient: Mapping[int, frozenset[RiskFlag]]
) -> tuple[Alert, ...]:
    """The alerts with each patient's risk flags applied to their pump alerts (refill and
    battery: one level up, capped at critical), in list order again.

    A flag never makes or closes an alert, so a whole clinic can be evaluated first and only
    the patients on the list looked up."""
    raised: list[Alert] = []
    for alert in alerts:
        flags = flags_by_patient.get(alert.patient_id, frozenset())
        if flags and alert.family is not AlertFamily.SCREENING and not alert.raised_by:
            severity, raised_by = _raise_for_risk(alert.severity, flags)
            alert = replace(alert, severity=severity, raised_by=raised_by)
        raised.append(alert)
    raised.sort(key=sort_key)
    return tuple(raised)


def count_by_severity(alerts: Iterable[Alert]) -> dict[Severity, int]:
    counts = Counter(alert.severity for alert in alerts)
    return {severity: counts.get(severity, 0) for severity in SEVERITIES_MOST_SEVERE_FIRST}


def count_by_kind(alerts: Iterable[Alert]) -> dict[AlertKind, int]:
    counts = Counter(alert.kind for alert in alerts)
    return {kind: counts[kind] for kind in KIND_PRECEDENCE if counts.get(kind)}


def _raise_for_risk(
    severity: Severity, flags: frozenset[RiskFlag]
) -> tuple[Severity, tuple[RiskFlag, ...]]:
    if not flags:
        return severity, ()
    ordered = tuple(flag for flag in RiskFlag if flag in flags)
    return severity.raised(), ordered


class _Now:
    """``as_of`` and what follows from it, worked out once per evaluation."""

    __slots__ = ("as_of", "due_soon", "horizon_end", "settings", "today", "zone")

    def __init__(self, as_of: dt.datetime, settings: AlertSettings) -> None:
        self.as_of = as_of
        self.settings = settings
        self.zone = settings.zone
        self.today = as_of.astimezone(settings.zone).date()
        self.due_soon = dt.timedelta(days=settings.due_soon_horizon_days)
        # A refill due after this day is not "due soon" yet.
        self.horizon_end = self.today + self.due_soon


def _refill_alert(pump: PumpSituation, now: _Now) -> Alert | None:
    outlook = pump.forecast
    if outlook is None:
        return None
    as_of, zone, today = now.as_of, now.zone, now.today
    alarm_at, empty_at, due = outlook.alarm_at, outlook.empty_at, outlook.refill_due
    stability_at = outlook.stability_limit_at
    booked = pump.next_booked_refill_at
    if (
        booked is None
        and (due is None or due > now.horizon_end)
        and (alarm_at is None or as_of < alarm_at)
        and (empty_at is None or as_of < empty_at)
        and (stability_at is None or as_of < stability_at)
    ):
        return None  # most pumps, most of the time: nothing holds
    booked_day = booked.astimezone(zone).date() if booked is not None else None
    past_alarm = alarm_at is not None and as_of >= alarm_at

    holding: list[AlertKind] = []
    if empty_at is not None and as_of >= empty_at:
        holding.append(AlertKind.PUMP_EMPTY)
    if past_alarm:
        holding.append(AlertKind.PAST_ALARM)
    booked_after_alarm = booked is not None and alarm_at is not None and booked >= alarm_at
    if booked_after_alarm and not past_alarm:
        holding.append(AlertKind.REFILL_BOOKED_AFTER_ALARM)
    if stability_at is not None and as_of >= stability_at:
        holding.append(AlertKind.STABILITY_LIMIT_PASSED)
    if due is not None and not past_alarm:
        if booked_day is not None and booked_day > due and not booked_after_alarm:
            holding.append(AlertKind.REFILL_BOOKED_LATE)
        if booked is None and today > due:
            holding.append(AlertKind.REFILL_OVERDUE)
        if due - now.due_soon <= today <= due and (booked_day is None or booked_day > due):
            holding.append(AlertKind.REFILL_DUE_SOON)
    if not holding:
        return None
    holding.sort(key=lambda kind: (-kind.base_severity.rank, _PRECEDENCE[kind]))
    kind = holding[0]
    severity, raised_by = _raise_for_risk(kind.base_severity, pump.risk_flags)
    words = _Words(as_of, zone)
    deadline: dt.datetime | None
    deadline_is_day = False
    if kind is AlertKind.PUMP_EMPTY:
        assert empty_at is not None
        deadline, deadline_label = empty_at, "empty"
        description = f"Pump empty since {words.since(empty_at)} — withdrawal risk: refill now"
        summary = f"Empty {words.for_since(empty_at)}"
    elif kind is AlertKind.PAST_ALARM:
        assert alarm_at is not None
        deadline, deadline_label = empty_at, "empty"
        description = f"Pump alarming since {words.since(alarm_at)}"
        summary = f"Alarming {words.for_since(alarm_at)}"
        if empty_at is not None:
            description += f"; empty {words.until(empty_at)}"
            summary += f"; empty {words.soon(empty_at)}"
    elif kind is AlertKind.REFILL_BOOKED_AFTER_ALARM:
        assert alarm_at is not None and booked is not None
        deadline, deadline_label = alarm_at, "alarm"
        description = f"Booked {words.moment(booked)}, after the alarm ({words.until(alarm_at)})"
        summary = f"Booked {words.short(booked)}, after the alarm"
        if empty_at is not None and booked >= empty_at:
            description += f"; the pump is empty by then ({words.until(empty_at)})"
            summary += " and empty"
    else:
        deadline, deadline_label = alarm_at, "alarm"
        parts: list[str] = []
        if kind is AlertKind.STABILITY_LIMIT_PASSED:
            assert stability_at is not None
            parts.append(f"Drug past its stability limit since {words.since(stability_at)}")
        if kind is AlertKind.REFILL_BOOKED_LATE:
            assert booked is not None
            parts.append(f"Booked {words.moment(booked)}, after the refill-due date")
        if due is not None:
            parts.append(words.due(due))
        if alarm_at is not None:
            parts.append(f"alarm {words.until(alarm_at)}")
        if booked is None:
            parts.append("not booked")
        if kind is AlertKind.REFILL_DUE_SOON:
            assert due is not None
            deadline_label, deadline_is_day = "refill due", True
            deadline = dt.datetime.combine(due, dt.time(), tzinfo=zone).astimezone(_UTC)
        description = "; ".join(parts)
        description = description[:1].upper() + description[1:]
        summary = _refill_summary(kind, words, due, alarm_at, stability_at, booked)
    return Alert(
        kind=kind,
        severity=severity,
        patient_id=pump.patient_id,
        pump_id=pump.pump_id,
        trial_id=None,
        description=description,
        deadline=deadline,
        deadline_label=deadline_label,
        summary=summary,
        deadline_is_day=deadline_is_day,
        raised_by=raised_by,
        also=tuple(holding[1:]),
        refill_due=due,
        alarm_at=alarm_at,
        empty_at=empty_at,
        stability_limit_at=stability_at,
        booked_at=booked,
    )


def _refill_summary(
    kind: AlertKind,
    words: _Words,
    due: dt.date | None,
    alarm_at: dt.datetime | None,
    stability_at: dt.datetime | None,
    booked: dt.datetime | None,
) -> str:
    alarm = f"alarm {words.soon(alarm_at)}" if alarm_at is not None else ""
    if kind is AlertKind.STABILITY_LIMIT_PASSED and stability_at is not None:
        first = f"Drug past stability {words.for_since(stability_at)}"
    elif kind is AlertKind.REFILL_BOOKED_LATE and booked is not None and due is not None:
        return f"Booked {words.short(booked)}, after due {words.day(due)}"
    elif kind is AlertKind.REFILL_OVERDUE and due is not None:
        late = (words.today - due).days
        first = f"Refill {late} day{'s' if late != 1 else ''} overdue"
    elif due is not None:
        first = f"Refill due {relative_days((due - words.today).days)}"
        return f"{first}; not booked" if booked is None else first
    else:
        first = ""
    return "; ".join(part for part in (first, alarm) if part)


def _battery_alert(pump: PumpSituation, now: _Now) -> Alert | None:
    replace_by = pump.battery_replace_by
    if replace_by is None:
        return None
    zone, today = now.zone, now.today
    notice_days = pump.battery_notice_days or now.settings.default_battery_notice_days
    if today < replace_by - dt.timedelta(days=notice_days):
        return None
    words = _Words(now.as_of, zone)
    if today >= replace_by:
        kind = AlertKind.BATTERY_END_OF_LIFE
        description = (
            f"Battery past its expected end of life ({words.day_relative(replace_by)}):"
            " the pump may stop at any time — replace it"
        )
        summary = f"Battery past end of life ({relative_days((replace_by - today).days)})"
    else:
        kind = AlertKind.BATTERY_REPLACEMENT_DUE
        description = (
            "Battery in its replacement-indicator window: replace the pump by"
            f" {words.day_relative(replace_by)}"
        )
        summary = f"Battery: replace {relative_days((replace_by - today).days)}"
    severity, raised_by = _raise_for_risk(kind.base_severity, pump.risk_flags)
    return Alert(
        kind=kind,
        severity=severity,
        patient_id=pump.patient_id,
        pump_id=pump.pump_id,
        trial_id=None,
        description=description,
        deadline=dt.datetime.combine(replace_by, dt.time(), tzinfo=zone).astimezone(_UTC),
        deadline_label="replace by",
        summary=summary,
        deadline_is_day=True,
        raised_by=raised_by,
    )


def screening_alert(
    dose: ScreeningDoseSituation, as_of: dt.datetime, settings: AlertSettings
) -> Alert | None:
    """A planned dose on its day (late once its time has passed), or the end of the
    observation after a given dose whose response is not recorded yet."""
    zone = settings.zone
    words = _Words(as_of, zone)
    what = f"screening dose {dose.number} ({dose.dose_mcg:g} mcg)"
    if dose.given_at is None:
        planned = dose.planned_at
        if planned is None or planned.astimezone(zone).date() > as_of.astimezone(zone).date():
            return None
        short = f"Dose {dose.number} ({dose.dose_mcg:g} mcg)"
        if as_of < planned:
            severity = Severity.INFO
            description = f"{what.capitalize()} due {words.moment(planned)}"
            summary = f"{short} due {words.moment(planned)}"
        else:
            severity = Severity.WARNING
            description = (
                f"{what.capitalize()} planned {words.moment(planned)} — not given,"
                f" {words.ago(planned)}"
            )
            summary = f"{short} not given, {_duration(as_of - planned)} late"
        return Alert(
            kind=AlertKind.SCREENING_DOSE_DUE,
            severity=severity,
            patient_id=dose.patient_id,
            pump_id=None,
            trial_id=dose.trial_id,
            description=description,
            deadline=planned,
            deadline_label="dose planned",
            summary=summary,
            dose_number=dose.number,
        )
    if dose.response_recorded or dose.observe_until is None:
        return None
    assess_from = dose.assess_from or dose.given_at
    if as_of < assess_from:
        return None
    ends = dose.observe_until
    summary = (
        f"Observation ends {words.until_time(ends)}"
        if as_of < ends
        else f"Observation ended {words.ago(ends)}: record the response"
    )
    if as_of < ends - OBSERVATION_WARNING:
        severity = Severity.INFO
        description = (
            f"Observation after {what} ends {words.moment(ends)} ({words.until_time(ends)}):"
            " assess and record the response"
        )
    elif as_of < ends:
        severity = Severity.WARNING
        description = (
            f"Observation after {what} ends {words.moment(ends)} ({words.until_time(ends)}):"
            " record the response before the patient leaves"
        )
    else:
        severity = Severity.WARNING
        description = (
            f"Observation after {what} ended {words.moment(ends)} ({words.ago(ends)}):"
            " response not recorded"
        )
    return Alert(
        kind=AlertKind.OBSERVATION_ENDING,
        severity=severity,
        patient_id=dose.patient_id,
        pump_id=None,
        trial_id=dose.trial_id,
        description=description,
        deadline=ends,
        deadline_label="observation ends",
        summary=summary,
        dose_number=dose.number,
    )


# --- Words ---------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _day_text(day: dt.date, this_year: int) -> str:
    """ "Tue 15 Dec", with the year when it is not this one (a whole clinic's list names the
    same few weeks of days again and again)."""
    text = f"{day:%a} {day.day} {day:%b}"
    return text if day.year == this_year else f"{text} {day.year}"


class _Words:
    """Times in plain words relative to ``as_of``, in the clinic's zone."""

    def __init__(self, as_of: dt.datetime, zone: dt.tzinfo) -> None:
        self.as_of = as_of
        self.zone = zone
        self.today = as_of.astimezone(zone).date()

    def day(self, day: dt.date) -> str:
        return _day_text(day, self.today.year)

    def moment(self, at: dt.datetime) -> str:
        local = at.astimezone(self.zone)
        days = (local.date() - self.today).days
        name = {0: "today", 1: "tomorrow", -1: "yesterday"}.get(days) or self.day(local.date())
        return f"{name} {local:%H:%M}"

    def short(self, at: dt.datetime) -> str:
        """ "today 13:00", "tomorrow 09:30", else the day: "Tue 15 Dec"."""
        local = at.astimezone(self.zone)
        days = (local.date() - self.today).days
        if days in (0, 1):
            return f"{'today' if days == 0 else 'tomorrow'} {local:%H:%M}"
        return self.day(local.date())

    def for_since(self, at: dt.datetime) -> str:
        """ "since today 06:10", "since yesterday 14:00", "for 5 days"."""
        local = at.astimezone(self.zone)
        days = (self.today - local.date()).days
        if days <= 0:
            return f"since today {local:%H:%M}"
        if days == 1:
            return f"since yesterday {local:%H:%M}"
        return f"for {days} days"

    def soon(self, at: dt.datetime) -> str:
        """ "today 14:30", "tomorrow 06:00", "in 3 days", or how long ago."""
        local = at.astimezone(self.zone)
        days = (local.date() - self.today).days
        if days == 0:
            return f"today {local:%H:%M}"
        if days == 1:
            return f"tomorrow {local:%H:%M}"
        return relative_days(days)

    def day_relative(self, day: dt.date) -> str:
        return f"{self.day(day)}, {relative_days((day - self.today).days)}"

    def due(self, due: dt.date) -> str:
        days_late = (self.today - due).days
        if days_late > 0:
            plural = "s" if days_late > 1 else ""
            return f"refill due {self.day(due)} — {days_late} day{plural} overdue"
        return f"refill due {self.day(due)} ({relative_days(-days_late)})"

    def until(self, at: dt.datetime) -> str:
        """ "in 3 days (Fri 11 Dec 06:00)", "today at 14:30", "tomorrow at 06:00"."""
        local = at.astimezone(self.zone)
        days = (local.date() - self.today).days
        if days == 0:
            return f"today at {local:%H:%M}"
        if days == 1:
            return f"tomorrow at {local:%H:%M}"
        if days < 0:
            return f"{relative_days(days)} ({self.day(local.date())} {local:%H:%M})"
        return f"in {days} days ({self.day(local.date())})"

    def since(self, at: dt.datetime) -> str:
        """ "yesterday 14:00", "today 06:10", "Mon 7 Dec (5 days ago)"."""
        local = at.astimezone(self.zone)
        days = (self.today - local.date()).days
        if days == 0:
            return f"today {local:%H:%M}"
        if days == 1:
            return f"yesterday {local:%H:%M}"
        if days < 0:
            return self.until(at)
        return f"{self.day(local.date())} ({days} days ago)"

    def until_time(self, at: dt.datetime) -> str:
        return f"in {_duration(at - self.as_of)}"

    def ago(self, at: dt.datetime) -> str:
        return f"{_duration(self.as_of - at)} ago"


def relative_days(days: int) -> str:
    """0 → "today", 1 → "tomorrow", -1 → "yesterday", 3 → "in 3 days", -3 → "3 days ago"."""
    if days == 0:
        return "today"
    if days == 1:
        return "tomorrow"
    if days == -1:
        return "yesterday"
    return f"in {days} days" if days > 0 else f"{-days} days ago"


def _duration(span: dt.timedelta) -> str:
    minutes = max(0, round(span.total_seconds() / 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {rest:02d} min" if rest else f"{hours} h"
    return f"{round(minutes / (24 * 60))} days"


def _require_aware(name: str, value: dt.datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware ({value.isoformat()})")


# --- The fast forecast ---------------------------------------------------------------------


def fast_forecast(
    filled_at: dt.datetime,
    volume_ml: float,
    programs: Sequence[ProgramPeriod],
    pump: PumpSpec,
    calendar: ClinicCalendar,
    *,
    margin_days: int,
    stability_days: int | None,
    zone: dt.tzinfo | None = None,
) -> Forecast:
    """``reservoir.forecast``, for a whole clinic at once.

    The same walk over the rate segments from the fill, but a flex program's whole days are
    taken a day at a time (one sum per day instead of one segment per step) between
    daylight-saving changes; the day of a crossing and the days around a clock change are
    walked step by step as the reservoir engine does. Anything unusual (bad input) goes to
    ``reservoir.forecast``, which says what is wrong.
    """
    local_zone = calendar.zone if zone is None else zone
    if (
        filled_at.tzinfo is None
        or filled_at.utcoffset() is None
        or not programs
        or not (math.isfinite(volume_ml) and 0 <= volume_ml <= pump.reservoir_ml)
        or margin_days < 0
        or (stability_days is not None and stability_days < 1)
    ):
        return _slow(
            filled_at, volume_ml, programs, pump, calendar, margin_days, stability_days, zone
        )
    start = filled_at.astimezone(_UTC)
    alarm_ml = pump.low_reservoir_alarm_ml
    if len(programs) == 1 and programs[0].effective_from <= filled_at:
        # The common case: one program since the fill.
        spans: Sequence[tuple[dt.datetime, dt.datetime | None, ProgramPeriod]] = (
            (start, None, programs[0]),
        )
    else:
        try:
            spans = _periods_since(filled_at, programs)
        except ValueError:
            return _slow(
                filled_at, volume_ml, programs, pump, calendar, margin_days, stability_days, zone
            )
    if len(spans) == 1 and _is_constant(spans[0][2], pump):
        ml_per_day = program_daily_volume_ml(spans[0][2], pump)
        alarm_at = _straight_crossing(start, volume_ml - alarm_ml, ml_per_day)
        empty_at = _straight_crossing(start, volume_ml, ml_per_day)
    else:
        alarm_at, empty_at = _fast_crossings(
            start, volume_ml, spans, pump, local_zone, (alarm_ml, 0.0)
        )
    stability_limit_at = None
    if stability_days is not None:
        stability_limit_at = _add_days(start, stability_days)
        if stability_limit_at is None:
            return _slow(
                filled_at, volume_ml, programs, pump, calendar, margin_days, stability_days, zone
            )
    latest_days: list[dt.date] = []
    if alarm_at is not None:
        latest = _add_days(alarm_at, -margin_days)
        if latest is None:
            return _slow(
                filled_at, volume_ml, programs, pump, calendar, margin_days, stability_days, zone
            )
        latest_days.append(latest.astimezone(local_zone).date())
    if stability_limit_at is not None:
        latest_days.append(stability_limit_at.astimezone(local_zone).date())
    refill_due = calendar.latest_open_day_on_or_before(min(latest_days)) if latest_days else None
    return Forecast(
        daily_volume_ml=program_daily_volume_ml(spans[-1][2], pump),
        alarm_at=alarm_at,
        empty_at=empty_at,
        stability_limit_at=stability_limit_at,
        refill_due=refill_due,
        days_to_alarm=None if alarm_at is None else _elapsed_days(start, alarm_at),
    )


def _slow(
    filled_at: dt.datetime,
    volume_ml: float,
    programs: Sequence[ProgramPeriod],
    pump: PumpSpec,
    calendar: ClinicCalendar,
    margin_days: int,
    stability_days: int | None,
    zone: dt.tzinfo | None,
) -> Forecast:
    return forecast(
        filled_at,
        volume_ml,
        programs,
        pump,
        calendar,
        margin_days=margin_days,
        stability_days=stability_days,
        zone=zone,
    )


def _is_constant(program: ProgramPeriod, pump: PumpSpec) -> bool:
    return (
        pump.constant_flow_ml_per_day is not None
        or len({step.rate_mcg_per_day for step in program.flex_steps}) <= 1
    )


class _Walk:
    """The reservoir engine's crossing search, fed one segment at a time (times in UTC)."""

    def __init__(self, start: dt.datetime, volume_ml: float, thresholds_ml: Sequence[float]):
        self.start = start
        self.to_deliver_ml = [volume_ml - threshold for threshold in thresholds_ml]
        self.found: list[dt.datetime | None] = [
            start if ml <= 0 else None for ml in self.to_deliver_ml
        ]
        self.pending = [index for index, ml in enumerate(self.to_deliver_ml) if ml > 0]
        self.horizon = _add_days(start, MAX_FORECAST_DAYS) or _FAR_FUTURE
        self.delivered_ml = 0.0

    def done_before(self, at: dt.datetime) -> bool:
        return not self.pending or at >= self.horizon

    def remaining_ml(self) -> float:
        return min(self.to_deliver_ml[index] for index in self.pending) - self.delivered_ml

    def take(self, start: dt.datetime, end: dt.datetime | None, ml_per_day: float) -> bool:
        """Deliver one segment; False when the walk is over."""
        if self.done_before(start):
            return False
        segment_ml = None
        if end is not None:
            segment_ml = ml_per_day * _elapsed_days(start, end)
        for index in list(self.pending):
            remaining_ml = self.to_deliver_ml[index] - self.delivered_ml
            if ml_per_day <= 0 or (segment_ml is not None and segment_ml < remaining_ml):
                continue
            days = remaining_ml / ml_per_day
            if _elapsed_days(self.start, start) + days > MAX_FORECAST_DAYS:
                continue
            crossing = _add_days(start, days)
            if crossing is not None and end is not None:
                crossing = min(crossing, end)
            self.found[index] = crossing
            self.pending.remove(index)
        if segment_ml is None:
            return False
        self.delivered_ml += segment_ml
        return True


def _fast_crossings(
    start: dt.datetime,
    volume_ml: float,
    spans: Sequence[tuple[dt.datetime, dt.datetime | None, ProgramPeriod]],
    pump: PumpSpec,
    zone: dt.tzinfo,
    thresholds_ml: Sequence[float],
) -> list[dt.datetime | None]:
    walk = _Walk(start, volume_ml, thresholds_ml)
    for span_start, span_end, program in spans:
        if walk.done_before(span_start):
            break
        if _is_constant(program, pump):
            going = walk.take(span_start, span_end, program_daily_volume_ml(program, pump))
        else:
            going = _walk_flex(walk, program, span_start, span_end, zone)
        if not going:
            break
    return walk.found


def _straight_crossing(
    start: dt.datetime, to_deliver_ml: float, ml_per_day: float
) -> dt.datetime | None:
    """When one endless segment from ``start`` has delivered ``to_deliver_ml`` (the reservoir
    engine's walk over a single constant segment, step for step)."""
    if to_deliver_ml <= 0:
        return start
    if ml_per_day <= 0:
        return None
    days = to_deliver_ml / ml_per_day
    if days > MAX_FORECAST_DAYS:
        return None
    return _add_days(start, days)


def _walk_flex(
    walk: _Walk,
    program: ProgramPeriod,
    start: dt.datetime,
    end: dt.datetime | None,
    zone: dt.tzinfo,
) -> bool:
    """Feed a flex period to ``walk``; False when the walk is over.

    A day runs from its first step to the next day's first step. On an ordinary day (no
    change of UTC offset in it) the steps are fixed offsets from the day's first step, and
    whole ordinary days are taken at once, keeping one in hand before a crossing; a day with
    a clock change is walked with the wall-clock step times, as the reservoir engine does.
    """
    steps = program.flex_steps
    concentration = program.concentration_mcg_per_ml
    bolus_ml_per_day = program.bolus_mcg_per_day / concentration
    first_minute = steps[0].starts_at_minute
    offsets = [dt.timedelta(minutes=s.starts_at_minute - first_minute) for s in steps]
    offsets.append(_DAY)
    rates_ml_per_day = [s.rate_mcg_per_day / concentration + bolus_ml_per_day for s in steps]
    day_ml = sum(
        rate * ((offsets[i + 1] - offsets[i]) / _DAY) for i, rate in enumerate(rates_ml_per_day)
    )
    local_day = start.astimezone(zone).date()
    day_start = _wall_clock_instant(local_day, first_minute, zone)
    if day_start > start:
        day_start = _wall_clock_instant(local_day - _DAY, first_minute, zone)
    cursor = start
    while True:
        if end is not None and cursor >= end:
            return True
        if walk.done_before(cursor):
            return False
        change = _skip_limit(zone, day_start)
        local = day_start.astimezone(zone)
        ordinary = (
            day_start + _DAY < change
            and local.hour * 60 + local.minute == first_minute
            and local.second == 0
            and local.microsecond == 0
        )
        if not ordinary:
            for segment_start, segment_end, ml_per_day, day_starts in _flex_exact(
                program, cursor, end, zone
            ):
                if not walk.take(segment_start, segment_end, ml_per_day):
                    return False
                cursor = segment_end
                if day_starts:
                    break
            else:
                return True  # the period ended
            day_start = cursor
            continue
        if cursor == day_start and day_ml > 0:
            days = math.floor(walk.remaining_ml() / day_ml) - 1
            days = min(days, math.ceil((change - day_start) / _DAY) - 1)
            for limit in (end, walk.horizon):
                if limit is not None and limit != _FAR_FUTURE:
                    days = min(days, math.floor((limit - day_start) / _DAY))
            if days >= 1:
                walk.delivered_ml += days * day_ml
                day_start += days * _DAY
                cursor = day_start
                continue
        for index, ml_per_day in enumerate(rates_ml_per_day):
            segment_end = day_start + offsets[index + 1]
            if segment_end <= cursor:
                continue
            if end is not None and segment_end > end:
                segment_end = end
            if segment_end > cursor:
                if not walk.take(cursor, segment_end, ml_per_day):
                    return False
                cursor = segment_end
            if end is not None and cursor >= end:
                return True
        day_start += _DAY


def _flex_exact(
    program: ProgramPeriod, start: dt.datetime, end: dt.datetime | None, zone: dt.tzinfo
) -> Iterator[tuple[dt.datetime, dt.datetime, float, bool]]:
    """The reservoir engine's flex segments from ``start``: (start, end, mL/day, whether the
    segment ends at a day's first step)."""
    bolus_ml_per_day = program.bolus_mcg_per_day / program.concentration_mcg_per_ml
    concentration = program.concentration_mcg_per_ml
    day = start.astimezone(zone).date() - _DAY
    rate_mcg_per_day: float | None = None
    cursor = start
    while True:
        for index, step in enumerate(program.flex_steps):
            step_at = _wall_clock_instant(day, step.starts_at_minute, zone)
            if step_at > start:
                assert rate_mcg_per_day is not None  # yesterday's steps came first
                segment_end = step_at if end is None else min(step_at, end)
                if segment_end > cursor:
                    ml_per_day = rate_mcg_per_day / concentration + bolus_ml_per_day
                    yield cursor, segment_end, ml_per_day, index == 0 and segment_end == step_at
                    cursor = segment_end
                if end is not None and step_at >= end:
                    return
            rate_mcg_per_day = step.rate_mcg_per_day
        if day >= dt.date.max - _DAY:
            return
        day += _DAY


def _skip_limit(zone: dt.tzinfo, after: dt.datetime) -> dt.datetime:
    """The zone's next UTC-offset change after ``after``, or a checkpoint two years on."""
    if isinstance(zone, dt.timezone):
        return _FAR_FUTURE
    for year in (after.year, after.year + 1):
        changes = _offset_changes(zone, year)
        index = bisect_right(changes, after)
        if index < len(changes):
            return changes[index]
    try:
        return dt.datetime(after.year + 2, 1, 1, tzinfo=_UTC)
    except ValueError:
        return _FAR_FUTURE


@lru_cache(maxsize=512)
def _offset_changes(zone: dt.tzinfo, year: int) -> tuple[dt.datetime, ...]:
    """The instants (UTC, to the second) in ``year`` at which ``zone``'s offset changes."""
    if not 1 < year < 9999:
        return ()
    changes: list[dt.datetime] = []
    at = dt.datetime(year, 1, 1, tzinfo=_UTC)
    end = dt.datetime(year + 1, 1, 1, tzinfo=_UTC)
    offset = at.astimezone(zone).utcoffset()
    while at < end:
        following = at + _DAY
        new_offset = following.astimezone(zone).utcoffset()
        if new_offset != offset:
            low, high = at, following  # the offset changes in (low, high]
            while high - low > dt.timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == offset:
                    low = middle
                else:
                    high = middle
            changes.append(high.replace(microsecond=0))
            offset = new_offset
        at = following
    return tuple(changes)
