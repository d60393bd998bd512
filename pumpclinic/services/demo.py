"""The demo clinic: a realistic, reproducible clinic to learn, test and show PumpClinic with.

Everything random comes from one ``random.Random(seed)`` and "now" is the context's clock,
so the same seed and the same now give the same database (password hashes aside: argon2
salts them). The whole clinic is written in one unit of work: a failure leaves nothing.

Each implanted patient's last refill is placed so that, as of now, the patient is in a
chosen refill state (see :class:`RefillState`); the refills before it are spaced back in
time from there, so every residual, interval and program change stays consistent with the
reservoir arithmetic of ITB-FACTS §4–5.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, delete, func, select
from sqlalchemy.orm import Session

from pumpclinic.db.engine import advance_id_sequences
from pumpclinic.db.models import (
    Appointment,
    AshworthScore,
    Base,
    ClinicSettings,
    DoseProgram,
    FlexStep,
    Holiday,
    ImplantedPump,
    Observation,
    ObservationAdverseEffect,
    Patient,
    PatientCondition,
    PatientContact,
    PatientMedicine,
    Refill,
    ScreeningTrial,
    TestDose,
    User,
)
from pumpclinic.domain.clinic import ClinicSettingsData
from pumpclinic.domain.enums import (
    ASHWORTH_SCORES,
    AppointmentKind,
    AppointmentStatus,
    AuditAction,
    DoseResponse,
    ProgramMode,
    PumpKind,
    Role,
    Sex,
    SpasticityOrigin,
    TrialStatus,
)
from pumpclinic.domain.patients import age_in_years
from pumpclinic.domain.reference import PumpModelSpec, Reference, ScreeningProtocolSpec
from pumpclinic.domain.reservoir import constant_rate_forecast, daily_volume_ml
from pumpclinic.services import audit, row_seals
from pumpclinic.services.alerts import refresh_kept_forecasts
from pumpclinic.services.context import ServiceContext
from pumpclinic.services.errors import ServiceError
from pumpclinic.services.integrity import TRACKED
from pumpclinic.services.settings import apply_settings
from pumpclinic.services.users import hash_password

DEMO_SEED = 20261126
# Enough patients for every refill state the demo shows (see _state_quotas).
MIN_DEMO_PATIENTS = 24
MAX_DEMO_PATIENTS = 100_000
MAX_DEMO_YEARS = 6
RECENT_REFILL_DAYS = 14

DEMO_SETTINGS = ClinicSettingsData(
    clinic_name="Riverside ITB Clinic",
    clinic_phone="020 7946 0321",
    time_zone="Europe/London",
    opens_at=dt.time(8, 0),
    closes_at=dt.time(18, 0),
    open_weekdays=frozenset({1, 2, 3, 4, 5}),
    refill_safety_margin_days=7,
    due_soon_horizon_days=14,
    observation_beds=2,
    refill_slot_minutes=30,
    idle_lock_minutes=15,
)
DEMO_HOLIDAY_COUNT = 3
# Who the demo's audit entries name: the generator, not a person.
DEMO_AUDIT_USER = "demo-generator"


@dataclass(frozen=True)
class DemoUser:
    username: str
    full_name: str
    role: Role
    password: str


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("admin", "Priya Raman", Role.ADMIN, "demo-admin-1"),
    DemoUser("nurse", "Siobhan Gallagher", Role.NURSE, "demo-nurse-1"),
    DemoUser("clinician", "Dr Tomasz Nowak", Role.CLINICIAN, "demo-clinician-1"),
    DemoUser("frontdesk", "Grace Okafor", Role.STAFF, "demo-staff-1"),
)


class RefillState(StrEnum):
    """Where an implanted patient stands, as of now, on the way to the next refill."""

    RECENTLY_REFILLED = "recently refilled"
    OK = "ok"
    DUE_SOON = "due soon"
    OVERDUE = "overdue"
    PAST_ALARM = "past alarm"
    EMPTY = "empty"


@dataclass(frozen=True)
class DemoSummary:
    patients: int
    implanted_pumps: int
    explanted_pumps: int
    refills: int
    programs: int
    trials: int
    appointments: int
    users: int
    # RefillState value → number of implanted patients in it.
    states: dict[str, int] = field(default_factory=dict)


class DemoRefused(ServiceError):
    """The database already holds a clinic: the demo is only written into an empty one."""


def refill_state(
    now: dt.datetime,
    refilled_at: dt.datetime,
    volume_after_ml: float,
    alarm_volume_ml: float,
    daily_volume: float,
    *,
    safety_margin_days: int = DEMO_SETTINGS.refill_safety_margin_days,
    due_soon_horizon_days: int = DEMO_SETTINGS.due_soon_horizon_days,
) -> RefillState:
    """The state of a pump refilled at ``refilled_at`` and pumping ``daily_volume`` mL/day.

    Refill due = alarm − safety margin. The worst applicable state wins: a pump refilled
    last week that is already due is "due soon", not "recently refilled".
    """
    forecast = constant_rate_forecast(refilled_at, volume_after_ml, alarm_volume_ml, daily_volume)
    if forecast.alarm_at is None or forecast.empty_at is None:
        return RefillState.OK  # nothing is pumped
    if forecast.empty_at <= now:
        return RefillState.EMPTY
    if forecast.alarm_at <= now:
        return RefillState.PAST_ALARM
    due_at = forecast.alarm_at - dt.timedelta(days=safety_margin_days)
    if due_at <= now:
        return RefillState.OVERDUE
    if due_at <= now + dt.timedelta(days=due_soon_horizon_days):
        return RefillState.DUE_SOON
    if refilled_at > now - dt.timedelta(days=RECENT_REFILL_DAYS):
        return RefillState.RECENTLY_REFILLED
    return RefillState.OK


def is_demo_populated(context: ServiceContext) -> bool:
    """True when the database already has users (a demo or a real clinic)."""
    with context.unit_of_work() as session:
        return bool(session.scalar(select(func.count(User.id))))


def create_demo_clinic(
    context: ServiceContext, *, patients: int = 36, years: int = 2, seed: int = DEMO_SEED
) -> DemoSummary:
    """Fill an empty database with the Riverside demo clinic; refuse a database in use."""
    if not MIN_DEMO_PATIENTS <= patients <= MAX_DEMO_PATIENTS:
        raise ValueError(
            f"The demo clinic needs {MIN_DEMO_PATIENTS} to {MAX_DEMO_PATIENTS} patients "
            f"({patients})."
        )
    if not 1 <= years <= MAX_DEMO_YEARS:
        raise ValueError(f"The demo history must span 1 to {MAX_DEMO_YEARS} years ({years}).")
    now = context.now().astimezone(dt.UTC)
    with context.unit_of_work() as session:
        user_count = session.scalar(select(func.count(User.id))) or 0
        patient_count = session.scalar(select(func.count(Patient.id))) or 0
        if user_count or patient_count:
            raise DemoRefused(
                f"{context.database_label} already holds a clinic ({user_count} users, "
                f"{patient_count} patients). The demo clinic is only created in a new, "
                "empty database: choose another file."
            )
        builder = _DemoBuilder(session, context.reference, now, random.Random(seed), years)
        summary = builder.build(patients)
    # As in a clinic that has been running: each pump's forecast kept since its last refill.
    refresh_kept_forecasts(context)
    return summary


# --- Calendar -----------------------------------------------------------------------------


def easter_sunday(year: int) -> dt.date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    leap = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * leap) // 451
    month, day = divmod(h + leap - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


# One-off changes to the England and Wales bank holidays (gov.uk).
_MOVED_BANK_HOLIDAYS = {
    dt.date(2020, 5, 4): (dt.date(2020, 5, 8), "Early May bank holiday (VE day)"),
    dt.date(2022, 5, 30): (dt.date(2022, 6, 2), "Spring bank holiday"),
}
_EXTRA_BANK_HOLIDAYS = {
    dt.date(2022, 6, 3): "Platinum Jubilee bank holiday",
    dt.date(2022, 9, 19): "Bank holiday for the State Funeral of Queen Elizabeth II",
    dt.date(2023, 5, 8): "Bank holiday for the coronation of King Charles III",
}


def england_bank_holidays(year: int) -> list[tuple[dt.date, str]]:
    """England and Wales bank holidays of ``year``, with weekend substitute days."""

    def monday_on_or_after(day: dt.date) -> dt.date:
        return day + dt.timedelta(days=(7 - day.weekday()) % 7)

    def last_monday(month: int) -> dt.date:
        first_next = dt.date(year + month // 12, month % 12 + 1, 1)
        day = first_next - dt.timedelta(days=1)
        return day - dt.timedelta(days=day.weekday())

    easter = easter_sunday(year)
    new_year = dt.date(year, 1, 1)
    holidays = [
        (monday_on_or_after(new_year), "New Year's Day")
        if new_year.weekday() >= 5
        else (new_year, "New Year's Day"),
        (easter - dt.timedelta(days=2), "Good Friday"),
        (easter + dt.timedelta(days=1), "Easter Monday"),
        (monday_on_or_after(dt.date(year, 5, 1)), "Early May bank holiday"),
        (last_monday(5), "Spring bank holiday"),
        (last_monday(8), "Summer bank holiday"),
    ]
    christmas = dt.date(year, 12, 25)
    weekday = christmas.weekday()
    if weekday == 5:  # Saturday: both move to Monday and Tuesday
        holidays += [
            (dt.date(year, 12, 27), "Christmas Day (substitute day)"),
            (dt.date(year, 12, 28), "Boxing Day (substitute day)"),
        ]
    elif weekday == 6:  # Sunday: Boxing Day stays, Christmas moves to Tuesday
        holidays += [
            (dt.date(year, 12, 26), "Boxing Day"),
            (dt.date(year, 12, 27), "Christmas Day (substitute day)"),
        ]
    elif weekday == 4:  # Friday: Boxing Day falls on Saturday
        holidays += [
            (christmas, "Christmas Day"),
            (dt.date(year, 12, 28), "Boxing Day (substitute day)"),
        ]
    else:
        holidays += [(christmas, "Christmas Day"), (dt.date(year, 12, 26), "Boxing Day")]
    result = []
    for day, name in holidays:
        if day in _MOVED_BANK_HOLIDAYS:
            day, name = _MOVED_BANK_HOLIDAYS[day]
        result.append((day, name))
    result += [(day, name) for day, name in _EXTRA_BANK_HOLIDAYS.items() if day.year == year]
    return sorted(result)


class _Calendar:
    """The clinic's open days and refill slots; slots are aware UTC datetimes."""

    def __init__(self, settings: ClinicSettingsData, closed_days: set[dt.date]) -> None:
        self.zone = ZoneInfo(settings.time_zone)
        self._opens = settings.opens_at
        self._closes = settings.closes_at
        self._weekdays = settings.open_weekdays
        self._closed = closed_days
        self.slot = dt.timedelta(minutes=settings.refill_slot_minutes)
        self._slots: dict[dt.date, list[dt.datetime]] = {}

    def is_open(self, day: dt.date) -> bool:
        return day.isoweekday() in self._weekdays and day not in self._closed

    def local_day(self, at: dt.datetime) -> dt.date:
        return at.astimezone(self.zone).date()

    def at(self, day: dt.date, time: dt.time) -> dt.datetime:
        """The UTC instant of ``time`` on ``day`` on the clinic's wall clock."""
        return dt.datetime.combine(day, time, tzinfo=self.zone).astimezone(dt.UTC)

    def opens(self, day: dt.date) -> dt.datetime:
        return self.at(day, self._opens)

    def closes(self, day: dt.date) -> dt.datetime:
        return self.at(day, self._closes)

    def slots(self, day: dt.date) -> list[dt.datetime]:
        slots = self._slots.get(day)
        if slots is None:
            slots = []
            if self.is_open(day):
                start, end = self.opens(day), self.closes(day)
                while start + self.slot <= end:
                    slots.append(start)
                    start += self.slot
            self._slots[day] = slots
        return slots

    def nearest_slot(
        self,
        target: dt.datetime,
        earliest: dt.datetime,
        latest: dt.datetime,
        rng: random.Random | None = None,
        any_time: bool = False,
    ) -> dt.datetime | None:
        """The slot start in [earliest, latest] nearest to ``target``.

        With ``any_time`` (and ``rng``), any slot of that nearest day within the bounds:
        people come at all hours of the day, not only at opening and closing time.
        """
        if earliest > latest:
            return None
        target = min(max(target, earliest), latest)
        first_day = self.local_day(target)
        best: tuple[dt.timedelta, list[dt.datetime], int, int, int] | None = None
        for offset in range(0, 400):
            days = (
                (first_day,)
                if offset == 0
                else (
                    first_day - dt.timedelta(days=offset),
                    first_day + dt.timedelta(days=offset),
                )
            )
            for day in days:
                slots = self.slots(day)
                if not slots:
                    continue
                lo = bisect.bisect_left(slots, earliest)
                hi = bisect.bisect_right(slots, latest)
                if lo >= hi:
                    continue
                i = bisect.bisect_left(slots, target, lo, hi)
                candidates = [j for j in (i - 1, i) if lo <= j < hi]
                j = min(candidates, key=lambda k: abs(slots[k] - target))
                distance = abs(slots[j] - target)
                if best is None or distance < best[0]:
                    best = (distance, slots, j, lo, hi)
            if best is not None and best[0] <= dt.timedelta(days=offset):
                break
            if first_day - dt.timedelta(days=offset) < self.local_day(earliest) and (
                first_day + dt.timedelta(days=offset) > self.local_day(latest)
            ):
                break
        if best is None:
            return None
        _, slots, j, lo, hi = best
        if rng is not None and any_time:
            j = rng.randint(lo, hi - 1)
        return slots[j]


# --- People -------------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_FEMALE_NAMES = _words(
    "Olivia Amelia Isla Ava Emily Sophie Grace Lily Freya Chloe Ella Evie Hannah Jessica "
    "Sarah Rebecca Laura Claire Helen Joanne Karen Susan Margaret Patricia Janet Linda "
    "Deborah Fiona Siobhan Aoife Niamh Priya Aisha Fatima Zainab Amira Mei Ngozi Chiamaka "
    "Agnieszka Katarzyna Ioana Maria Sofia Lucia Bethan Cerys Eilidh Morag Rhiannon Yasmin "
    "Naomi Ruth Esther Leah Anjali Harpreet Shabnam Thandiwe Keisha"
)
_MALE_NAMES = _words(
    "Oliver George Harry Jack Noah Charlie Thomas James William Daniel Matthew David Michael "
    "Robert Paul Mark Stephen Andrew Richard Peter Gareth Rhys Dylan Callum Hamish Fraser "
    "Ciaran Declan Sean Mohammed Ahmed Omar Yusuf Imran Arjun Rohan Sanjay Vikram Chidi "
    "Emeka Kwame Kofi Tomasz Piotr Mateusz Andrei Luca Marco Jamal Tyrone Dwayne Wei Jun "
    "Hiroshi Samuel Joseph Ethan Leo Alfie Owen"
)
_FAMILY_NAMES = _words(
    "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson "
    "Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel "
    "Jackson Wood Turner Martin Cooper Hill Ward Morris Moore Clark Lee King Baker Harrison "
    "Morgan Allen James Scott Phillips Watson Davis Parker Price Bennett Young Griffiths "
    "Mitchell Kelly Cook Carter Richardson Bailey Collins Bell Shaw Murphy Miller Cox "
    "Richards Khan Marshall Anderson Simpson Ellis Adams Singh Begum Ali Hussain Ahmed Shah "
    "Chowdhury Okafor Adeyemi Mensah Boateng Nowak Kowalczyk Popescu Rossi Ferreira Silva "
    "Nguyen Chen Wong Li Zhang O'Brien O'Connor McDonald MacLeod Campbell Stewart Fraser "
    "Reid Gallagher Doherty Quinn Byrne Walsh Lloyd Pritchard Vaughan Rees Howell "
    "Sutherland Fitzgerald Okonkwo Osei Abdi Farah Mahmood Iqbal Kaur Gill Sandhu Dhillon "
    "Kapoor Mehta"
)
_STREETS = (
    "Mill Lane",
    "Church Street",
    "Station Road",
    "Victoria Road",
    "Park Avenue",
    "Riverside Walk",
    "Orchard Close",
    "The Green",
    "High Street",
    "Meadow View",
    "Willow Crescent",
    "Kingfisher Way",
    "Castle Street",
    "Queen's Road",
    "Brook Lane",
)
_TOWNS = ("Riverside", "Millbrook", "Eastwick", "Hollowfield", "Ashby Vale", "Kingsmead")
_ALLERGIES = (
    (70, "No known drug allergies"),
    (9, "Penicillin (rash)"),
    (5, "Latex"),
    (4, "Chlorhexidine (skin reaction)"),
    (4, "Codeine (vomiting)"),
    (3, "Iodinated contrast (urticaria)"),
    (5, "Trimethoprim (rash)"),
)
_OTHER_MEDICINES = (
    "Oxybutynin 5 mg twice daily",
    "Gabapentin 300 mg three times daily",
    "Pregabalin 75 mg twice daily",
    "Laxido 1 sachet daily",
    "Omeprazole 20 mg daily",
    "Sertraline 50 mg daily",
    "Vitamin D 800 units daily",
    "Paracetamol 1 g up to four times daily when needed",
    "Solifenacin 5 mg daily",
    "Senna 15 mg at night",
)
_NOTES = (
    "Lives 70 miles away: book refills a week early in winter (travel and weather).",
    "Wheelchair user; needs the hoist for transfers.",
    "Prefers afternoon appointments (carer's hours).",
    "Interpreter needed at every visit.",
    "Care home resident: confirm appointments with the care home manager.",
    "Hospital transport booked for each refill; allow extra time.",
)
_MUSCLE_GROUPS = (
    "Hip adductors",
    "Knee flexors",
    "Knee extensors",
    "Ankle plantar flexors",
    "Elbow flexors",
)


@dataclass(frozen=True)
class _Diagnosis:
    weight: int
    origin: SpasticityOrigin
    text: str
    min_age: int
    max_age: int
    communication: float = 0.03
    epilepsy: float = 0.02
    brain: bool = False


_SPINAL = SpasticityOrigin.SPINAL
_CEREBRAL = SpasticityOrigin.CEREBRAL
_ADULT_DIAGNOSES = (
    _Diagnosis(22, _SPINAL, "Multiple sclerosis", 28, 74),
    _Diagnosis(6, _SPINAL, "Multiple sclerosis (secondary progressive)", 38, 78),
    _Diagnosis(3, _SPINAL, "Multiple sclerosis (primary progressive)", 40, 78),
    _Diagnosis(17, _SPINAL, "Traumatic spinal cord injury {level}", 19, 72),
    _Diagnosis(5, _SPINAL, "Hereditary spastic paraplegia", 20, 75),
    _Diagnosis(3, _SPINAL, "Transverse myelitis", 20, 70),
    _Diagnosis(2, _SPINAL, "Degenerative cervical myelopathy", 50, 82),
    _Diagnosis(7, _CEREBRAL, "Cerebral palsy (spastic diplegia)", 18, 50, 0.15, 0.25),
    _Diagnosis(5, _CEREBRAL, "Cerebral palsy (spastic quadriplegia)", 18, 45, 0.6, 0.4),
    _Diagnosis(6, _CEREBRAL, "Hypoxic brain injury", 19, 70, 0.7, 0.35, True),
    _Diagnosis(7, _CEREBRAL, "Traumatic brain injury", 19, 70, 0.35, 0.2, True),
    _Diagnosis(6, _CEREBRAL, "Stroke", 40, 84, 0.35, 0.08, True),
)
_CHILD_DIAGNOSES = (
    _Diagnosis(10, _CEREBRAL, "Cerebral palsy (spastic diplegia)", 4, 17, 0.15, 0.25),
    _Diagnosis(8, _CEREBRAL, "Cerebral palsy (spastic quadriplegia)", 4, 17, 0.6, 0.4),
    _Diagnosis(3, _CEREBRAL, "Hypoxic-ischaemic encephalopathy", 4, 17, 0.7, 0.4, True),
    _Diagnosis(2, _CEREBRAL, "Traumatic brain injury", 6, 17, 0.35, 0.2, True),
    _Diagnosis(2, _SPINAL, "Hereditary spastic paraplegia", 6, 17),
)
_SCI_LEVELS = (
    (2, "C4"),
    (4, "C5"),
    (5, "C6"),
    (3, "C7"),
    (2, "T2"),
    (3, "T4"),
    (2, "T6"),
    (2, "T8"),
    (3, "T10"),
    (2, "T12"),
)
_AT_OR_ABOVE_T6 = frozenset({"C4", "C5", "C6", "C7", "T2", "T4", "T6"})
_OPIOIDS = ("oxycodone", "tramadol", "morphine", "codeine", "fentanyl", "buprenorphine")


@dataclass
class _Person:
    given_name: str
    family_name: str
    sex: Sex
    date_of_birth: dt.date
    age: int
    diagnosis: _Diagnosis
    diagnosis_text: str
    sci_at_or_above_t6: bool = False
    communication_difficulties: bool = False
    previous_withdrawal: bool = False
    withdrawal_year: int = 0
    epilepsy: bool = False

    @property
    def is_child(self) -> bool:
        return self.age < 18


# --- Pumps and programs ---------------------------------------------------------------------


@dataclass
class _Program:
    concentration: float
    nominal_dose: float
    # Flex shape: (start minute, relative rate); empty for a simple continuous program.
    shape: tuple[tuple[int, float], ...] = ()
    effective_from: dt.datetime | None = None
    at_fill: _Fill | None = None
    reason: str = ""
    steps: tuple[tuple[int, float], ...] = field(init=False)
    dose: float = field(init=False)

    def __post_init__(self) -> None:
        if not self.shape:
            self.steps = ()
            self.dose = self.nominal_dose
            return
        starts = [start for start, _ in self.shape]
        lengths = [end - start for start, end in zip(starts, [*starts[1:], 1440], strict=True)]
        mean = sum(w * n for (_, w), n in zip(self.shape, lengths, strict=True)) / 1440
        rates = [float(round(weight * self.nominal_dose / mean)) for _, weight in self.shape]
        # The last step takes up the rounding: the day's total is exactly the nominal dose.
        others = sum(rate * n for rate, n in zip(rates[:-1], lengths[:-1], strict=True))
        rates[-1] = (self.nominal_dose * 1440 - others) / lengths[-1]
        self.steps = tuple(zip(starts, rates, strict=True))
        self.dose = self.nominal_dose

    @property
    def daily_ml(self) -> float:
        return daily_volume_ml(self.dose, self.concentration)

    def with_dose(self, nominal_dose: float, concentration: float | None = None) -> _Program:
        return _Program(
            concentration=self.concentration if concentration is None else concentration,
            nominal_dose=nominal_dose,
            shape=self.shape,
        )


@dataclass
class _Fill:
    at: dt.datetime
    volume_ml: float
    # The appointment slot's start; None for a fill in theatre at implant.
    slot: dt.datetime | None
    implant: bool = False
    id: int = 0


# Steps start on 6-hour boundaries and the last one runs 18:00-24:00, so whole-mcg rates
# can add up to a whole-mcg day's total.
_FLEX_SHAPES: tuple[tuple[tuple[int, float], ...], ...] = (
    ((0, 1.25), (360, 0.85), (1080, 1.05)),
    ((0, 1.3), (360, 0.85), (720, 0.95), (1080, 1.15)),
    ((0, 0.9), (1080, 1.35)),
    ((0, 1.15), (360, 0.9), (1080, 1.0)),
)


def _round_dose(dose: float) -> float:
    return float(round(dose / 5) * 5) if dose >= 100 else float(round(dose))


def _days(days: float) -> dt.timedelta:
    return dt.timedelta(days=days)


def _pct(change: float) -> int:
    return round(abs(change) * 100)


# --- The builder ----------------------------------------------------------------------------


class _DemoBuilder:
    def __init__(
        self,
        session: Session,
        reference: Reference,
        now: dt.datetime,
        rng: random.Random,
        years: int,
    ) -> None:
        self.session = session
        self.reference = reference
        self.now = now
        self.rng = rng
        self.window_start = now - _days(365.25 * years)
        self.zone = ZoneInfo(DEMO_SETTINGS.time_zone)
        self.today = now.astimezone(self.zone).date()
        closed: set[dt.date] = set()
        for year in range(self.window_start.year - 12, self.today.year + 3):
            closed.update(day for day, _ in england_bank_holidays(year))
        self.calendar = _Calendar(DEMO_SETTINGS, closed)
        self.rows: dict[type[Base], list[dict[str, Any]]] = {
            model: []
            for model in (
                User,
                Patient,
                PatientCondition,
                PatientMedicine,
                PatientContact,
                ImplantedPump,
                Appointment,
                Refill,
                DoseProgram,
                FlexStep,
                ScreeningTrial,
                TestDose,
                Observation,
                AshworthScore,
                ObservationAdverseEffect,
            )
        }
        self._next_id: dict[type[Base], int] = {}
        for model in (
            User,
            Patient,
            PatientContact,
            ImplantedPump,
            Appointment,
            Refill,
            DoseProgram,
            FlexStep,
            ScreeningTrial,
            TestDose,
            Observation,
        ):
            column = model.__table__.c.id
            self._next_id[model] = (session.scalar(select(func.max(column))) or 0) + 1
        self.fill_concentrations = sorted(
            p.concentration_mcg_per_ml for p in reference.drug_products if not p.screening_only
        )
        self.drug_by_concentration = {
            p.concentration_mcg_per_ml: p.id
            for p in reversed(reference.drug_products)
            if not p.screening_only
        }
        self.stability_days = min(
            (p.stability_days for p in reference.drug_products if not p.screening_only),
            default=77,
        )
        leaflet = reference.leaflet
        self.condition_ids = {item.id for item in leaflet.precaution_conditions}
        self.medicine_ids = {item.id for item in leaflet.interacting_medicines} | {
            item.id for item in leaflet.cns_depressant_classes
        }
        self.side_effect_ids = {item.id for item in leaflet.side_effects}
        self._lots: dict[tuple[float, int, int], str] = {}
        self._mrn = 100 + rng.randint(0, 400)
        self._serial = 200_000 + rng.randint(0, 50_000)
        self.users: dict[Role, int] = {}
        self.states: Counter[str] = Counter()
        self.explanted = 0
        self._high_sci_placed = False

    # --- ids and rows -----------------------------------------------------------------------

    def new_id(self, model: type[Base]) -> int:
        value = self._next_id[model]
        self._next_id[model] = value + 1
        return value

    def add(self, model: type[Base], **values: Any) -> None:
        self.rows[model].append(values)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def minutes(self, low: int, high: int) -> dt.timedelta:
        return dt.timedelta(minutes=self.rng.randint(low, high))

    # --- the whole clinic -------------------------------------------------------------------

    def build(self, patient_count: int) -> DemoSummary:
        self._settings()
        self._users()
        screening_count = 4 + round(0.03 * max(0, patient_count - 36))
        implanted_count = patient_count - screening_count
        self._screening_patients(screening_count)
        self._implanted_patients(implanted_count)
        self._flag_reconciliations()
        self._write()
        self._audit()
        rows = self.rows
        return DemoSummary(
            patients=len(rows[Patient]),
            implanted_pumps=len(rows[ImplantedPump]) - self.explanted,
            explanted_pumps=self.explanted,
            refills=len(rows[Refill]),
            programs=len(rows[DoseProgram]),
            trials=len(rows[ScreeningTrial]),
            appointments=len(rows[Appointment]),
            users=len(rows[User]),
            states={state.value: self.states[state.value] for state in RefillState},
        )

    def _write(self) -> None:
        # Core executemany on the tables: every row has every column, ids are assigned here,
        # so the ORM's per-object bookkeeping would only cost time.
        # Refills, programs and appointments carry their seal (their create's record, as
        # the services' flush gives theirs: pumpclinic.services.row_seals), counted in
        # their tables' heads.
        key = self.session.info.get(audit.SESSION_KEY)
        if not isinstance(key, bytes) or not key:
            raise RuntimeError("no audit key on this session: open it through a ServiceContext")
        tables: list[Table] = []
        sealed: dict[str, list[bytes]] = {}
        for model, rows in self.rows.items():
            table = model.__table__
            assert isinstance(table, Table)
            tables.append(table)
            if model in row_seals.SEALED_BY_MODEL:
                seals = sealed[table.name] = []
                for row in rows:
                    row[row_seals.SEAL_COLUMN] = seal = row_seals.seal_values(key, table.name, row)
                    seals.append(seal)
            for start in range(0, len(rows), 5000):
                self.session.execute(table.insert(), rows[start : start + 5000])
        advance_id_sequences(self.session, tables)
        connection = self.session.connection()
        for name, seals in sealed.items():
            row_seals.apply_to_head(connection, key, name, seals, [])
        self.session.flush()

    def _audit(self) -> None:
        """A create entry for every clinical row that does not carry a seal, as the services
        write one for theirs: the demo's rows verify against the audit trail like any
        other."""
        rows = self.rows
        pump_patient = {r["id"]: r["patient_id"] for r in rows[ImplantedPump]}
        trial_patient = {r["id"]: r["patient_id"] for r in rows[ScreeningTrial]}
        dose_patient = {r["id"]: trial_patient.get(r["trial_id"]) for r in rows[TestDose]}

        def patient_of(model: type[Base], row: dict[str, Any]) -> int | None:
            if model is Patient:
                return int(row["id"])
            if "patient_id" in row:
                return int(row["patient_id"])
            if "pump_id" in row:
                return pump_patient.get(row["pump_id"])
            if "trial_id" in row:
                return trial_patient.get(row["trial_id"])
            if "test_dose_id" in row:
                return dose_patient.get(row["test_dose_id"])
            return None

        def entries() -> Iterator[audit.BulkEntry]:
            for tracked in TRACKED:
                if tracked.model in row_seals.SEALED_BY_MODEL:
                    continue  # sealed rows record their own create
                for row in rows.get(tracked.model, ()):
                    yield audit.BulkEntry(
                        AuditAction.CREATE,
                        tracked.entity,
                        row["id"],
                        patient_id=patient_of(tracked.model, row),
                        after={name: audit.json_ready(value) for name, value in row.items()},
                    )

        audit.record_bulk(self.session, at=self.now, username=DEMO_AUDIT_USER, entries=entries())

    def _settings(self) -> None:
        settings = DEMO_SETTINGS
        row = self.session.get(ClinicSettings, 1)
        if row is None:
            row = ClinicSettings(id=1)
            self.session.add(row)
        apply_settings(row, settings)
        self.session.execute(delete(Holiday))
        upcoming = [
            (day, name)
            for year in (self.today.year, self.today.year + 1)
            for day, name in england_bank_holidays(year)
            if day > self.today
        ][:DEMO_HOLIDAY_COUNT]
        self.session.add_all(Holiday(day=day, name=name) for day, name in upcoming)
        self.session.flush()

    def _users(self) -> None:
        created_day = self.calendar.local_day(self.window_start - _days(90))
        created_at = self.calendar.at(created_day, dt.time(9, 0))
        for user in DEMO_USERS:
            user_id = self.new_id(User)
            self.users.setdefault(user.role, user_id)
            self.add(
                User,
                id=user_id,
                username=user.username,
                full_name=user.full_name,
                role=user.role.value,
                password_hash=hash_password(user.password),
                active=True,
                must_change_password=False,
                failed_login_count=0,
                locked_until=None,
                last_login_at=None,
                created_at=created_at,
                version=1,
            )

    @property
    def nurse(self) -> int:
        return self.users[Role.NURSE]

    @property
    def clinician(self) -> int:
        return self.users[Role.CLINICIAN]

    @property
    def frontdesk(self) -> int:
        return self.users[Role.STAFF]

    def booker(self) -> int:
        return self.frontdesk if self.chance(0.7) else self.nurse

    # --- patients ---------------------------------------------------------------------------

    def _person(
        self,
        *,
        child: bool,
        min_age: int = 4,
        age: int | None = None,
        diagnosis: str | None = None,
        high_sci: bool = False,
    ) -> _Person:
        rng = self.rng
        table = _CHILD_DIAGNOSES if child else _ADULT_DIAGNOSES
        choices = [d for d in table if d.max_age >= min_age]
        if diagnosis is not None:
            choices = [d for d in choices if d.text == diagnosis] or choices
        diag = rng.choices(choices, weights=[d.weight for d in choices])[0]
        if age is None:
            age = rng.randint(max(diag.min_age, min_age), diag.max_age)
        sex = (
            Sex.FEMALE if rng.random() < (0.62 if "sclerosis" in diag.text else 0.45) else Sex.MALE
        )
        given = rng.choice(_FEMALE_NAMES if sex is Sex.FEMALE else _MALE_NAMES)
        text = diag.text
        at_or_above_t6 = False
        if "{level}" in text:
            levels = [(w, lv) for w, lv in _SCI_LEVELS if lv in _AT_OR_ABOVE_T6 or not high_sci]
            level = rng.choices([lv for _, lv in levels], [w for w, _ in levels])[0]
            text = text.format(level=level)
            at_or_above_t6 = level in _AT_OR_ABOVE_T6
        elif "cervical" in text:
            at_or_above_t6 = True
        birthday = self.today.replace(year=self.today.year - age, day=min(self.today.day, 28))
        date_of_birth = birthday - _days(rng.randint(1, 360))
        return _Person(
            given_name=given,
            family_name=rng.choice(_FAMILY_NAMES),
            sex=sex,
            date_of_birth=date_of_birth,
            age=age,
            diagnosis=diag,
            diagnosis_text=text,
            sci_at_or_above_t6=at_or_above_t6,
            communication_difficulties=rng.random() < diag.communication,
            epilepsy=rng.random() < diag.epilepsy,
        )

    def _phone(self) -> str:
        if self.chance(0.7):
            return f"07700 900{self.rng.randint(0, 999):03d}"
        return f"0117 496 0{self.rng.randint(0, 999):03d}"

    def _add_patient(self, person: _Person, created_at: dt.datetime) -> int:
        rng = self.rng
        patient_id = self.new_id(Patient)
        self._mrn += rng.randint(1, 9)
        conditions: list[str] = []
        medicines: list[str] = []
        other_medicines: list[str] = []
        if person.sci_at_or_above_t6:
            conditions.append("spinal-cord-injury-t6-or-above")
            if self.chance(0.3):
                conditions.append("difficulty-breathing")
        if person.communication_difficulties:
            conditions.append("communication-difficulties")
        if person.previous_withdrawal:
            conditions.append("history-of-withdrawal")
        if person.diagnosis.brain:
            conditions.append("stroke-or-brain-disease")
        if person.epilepsy:
            conditions.append("epilepsy")
            medicines.append("seizure-medicines")
            other_medicines.append("Levetiracetam 500 mg twice daily")
        if "spinal cord" in person.diagnosis_text or "myel" in person.diagnosis_text:
            conditions.append("spinal-lesions")
        if self.chance(0.04):
            conditions.append("kidney-disease")
        if self.chance(0.08):
            conditions.append("emotional-or-mental-problems")
        if not person.is_child and self.chance(0.2):
            opioid = rng.choice(_OPIOIDS)
            medicines += [opioid, "narcotic-pain-medicines"]
            other_medicines.append(
                {
                    "oxycodone": "Oxycodone MR 10 mg twice daily",
                    "tramadol": "Tramadol 50 mg up to four times daily",
                    "morphine": "Morphine sulfate MR 20 mg twice daily",
                    "codeine": "Co-codamol 30/500 two tablets when needed",
                    "fentanyl": "Fentanyl patch 12 micrograms/hour, changed every 3 days",
                    "buprenorphine": "Buprenorphine patch 10 micrograms/hour weekly",
                }[opioid]
            )
        if not person.is_child and self.chance(0.05):
            medicines += ["zolpidem", "sedatives"]
            other_medicines.append("Zolpidem 5 mg at night")
        if self.chance(0.12):
            medicines.append("muscle-relaxants")
            other_medicines.append(
                rng.choice(("Tizanidine 2 mg at night", "Oral baclofen 10 mg at night"))
            )
        other_medicines += rng.sample(_OTHER_MEDICINES, rng.randint(0, 3))
        conditions = sorted(set(conditions) & self.condition_ids)
        medicines = sorted(set(medicines) & self.medicine_ids)
        notes: list[str] = []
        if person.previous_withdrawal:
            notes.append(
                f"Baclofen withdrawal in {person.withdrawal_year} after a "
                "catheter fracture: treat a late refill as urgent."
            )
        if person.communication_difficulties:
            notes.append(
                rng.choice(
                    (
                        "Limited speech: communicates with a picture board; carer attends.",
                        "Non-verbal: uses an eye-gaze device; family interpret pain and spasms.",
                        "Aphasia: short questions, allow time; a relative attends.",
                    )
                )
            )
        if self.chance(0.2):
            notes.append(rng.choice(_NOTES))
        email = ""
        if self.chance(0.4) and not person.is_child:
            local = "".join(
                c for c in f"{person.given_name}.{person.family_name}" if c.isalpha() or c == "."
            )
            email = f"{local.lower()}@example.org"
        address = (
            f"{rng.randint(1, 140)} {rng.choice(_STREETS)}, {rng.choice(_TOWNS)}, "
            f"RV{rng.randint(1, 19)} {rng.randint(1, 9)}"
            f"{rng.choice('ABDEFGHJLNPQRSTUWXY')}{rng.choice('ABDEFGHJLNPQRSTUWXY')}"
        )
        self.add(
            Patient,
            id=patient_id,
            mrn=f"RIV-{self._mrn:06d}",
            family_name=person.family_name,
            given_name=person.given_name,
            date_of_birth=person.date_of_birth,
            sex=person.sex.value,
            spasticity_origin=person.diagnosis.origin.value,
            diagnosis=person.diagnosis_text,
            sci_at_or_above_t6=person.sci_at_or_above_t6,
            communication_difficulties=person.communication_difficulties,
            previous_withdrawal=person.previous_withdrawal,
            allergies=rng.choices([a for _, a in _ALLERGIES], [w for w, _ in _ALLERGIES])[0],
            other_medicines="\n".join(other_medicines),
            pregnant=False,
            breastfeeding=False,
            phone=self._phone(),
            email=email,
            address=address,
            notes="\n".join(notes),
            do_not_contact=False,
            do_not_contact_reason="",
            created_at=created_at,
            updated_at=created_at + (self.now - created_at) * rng.random(),
            version=1,
        )
        for code in conditions:
            self.add(PatientCondition, patient_id=patient_id, code=code)
        for code in medicines:
            self.add(PatientMedicine, patient_id=patient_id, code=code)
        self._add_contact(patient_id, person)
        return patient_id

    def _add_contact(self, patient_id: int, person: _Person) -> None:
        rng = self.rng
        family = person.family_name
        if person.is_child:
            relationship = rng.choice(("Mother", "Mother", "Father"))
        else:
            options = ["Sister", "Brother"]
            if person.age >= 25:
                spouse = "Wife" if person.sex is Sex.MALE else "Husband"
                options += [spouse, spouse, "Partner"] * 3
            if person.age >= 55:
                options += ["Daughter", "Son"] * 2
            if person.age < 40:
                options += ["Mother", "Father"] * 2
            if person.communication_difficulties:
                options += ["Carer"] * 4
            relationship = rng.choice(options)
        female = relationship in {"Mother", "Sister", "Wife", "Daughter"} or (
            relationship in {"Partner", "Carer"} and self.chance(0.5)
        )
        given = rng.choice(_FEMALE_NAMES if female else _MALE_NAMES)
        if relationship in {"Partner", "Carer"} or (relationship == "Wife" and self.chance(0.2)):
            family = rng.choice(_FAMILY_NAMES)
        self.add(
            PatientContact,
            id=self.new_id(PatientContact),
            patient_id=patient_id,
            name=f"{given} {family}",
            relationship_to_patient=relationship,
            phone=self._phone(),
            email="",
            is_primary=True,
        )

    # --- appointments -----------------------------------------------------------------------

    def _appointment(
        self,
        *,
        patient_id: int,
        pump_id: int | None,
        kind: AppointmentKind,
        status: AppointmentStatus,
        starts_at: dt.datetime,
        ends_at: dt.datetime,
        booked_at: dt.datetime,
        booked_by: int | None = None,
        status_changed_at: dt.datetime | None = None,
        status_changed_by: int | None = None,
        late_reason: str = "",
        cancel_reason: str = "",
        notes: str = "",
    ) -> int:
        appointment_id = self.new_id(Appointment)
        self.add(
            Appointment,
            id=appointment_id,
            patient_id=patient_id,
            pump_id=pump_id,
            kind=kind.value,
            status=status.value,
            starts_at=starts_at,
            ends_at=ends_at,
            booked_by_id=booked_by if booked_by is not None else self.booker(),
            booked_at=booked_at,
            late_reason=late_reason,
            override_by_id=None,
            rescheduled_from_id=None,
            status_changed_at=status_changed_at,
            status_changed_by_id=status_changed_by,
            cancel_reason=cancel_reason,
            notes=notes,
            version=1,
        )
        return appointment_id

    def _booked_at(self, starts_at: dt.datetime, low_days: float, high_days: float) -> dt.datetime:
        booked = starts_at - _days(self.rng.uniform(low_days, high_days))
        return min(booked, self.now - dt.timedelta(minutes=5))

    def _book_refill(
        self,
        patient_id: int,
        pump_id: int,
        earliest: dt.datetime,
        latest: dt.datetime,
        late_reason: str = "",
    ) -> bool:
        """A booked refill appointment in [earliest, latest]; False if no slot fits."""
        slot = self.calendar.nearest_slot(
            earliest + (latest - earliest) * self.rng.uniform(0.3, 0.9),
            earliest,
            latest,
            self.rng,
            any_time=True,
        )
        if slot is None:
            return False
        self._appointment(
            patient_id=patient_id,
            pump_id=pump_id,
            kind=AppointmentKind.REFILL,
            status=AppointmentStatus.BOOKED,
            starts_at=slot,
            ends_at=slot + self.calendar.slot,
            booked_at=self.now - _days(self.rng.uniform(0.5, 12)),
            late_reason=late_reason,
        )
        return True

    # --- screening --------------------------------------------------------------------------

    def _screening_patients(self, count: int) -> None:
        protocol = self.reference.screening_protocol("standard")
        now = self.now
        # In screening: dose 1 yesterday (inadequate), dose 2 two hours ago, awaiting response.
        person = self._person(child=False, age=27, diagnosis="Cerebral palsy (spastic diplegia)")
        patient_id = self._add_patient(person, now - _days(self.rng.uniform(40, 90)))
        dose_2 = (now - dt.timedelta(hours=2)).replace(second=0, microsecond=0)
        self._trial(
            patient_id,
            protocol,
            [dose_2 - dt.timedelta(hours=24, minutes=5), dose_2],
            [DoseResponse.INADEQUATE, None],
            TrialStatus.IN_PROGRESS,
        )
        # Not a candidate: 50, 75 and 100 mcg, 24 h apart, all inadequate.
        person = self._person(child=False, diagnosis="Stroke")
        first = self._screening_start(self.today - _days(self.rng.randint(35, 60)), 3)
        patient_id = self._add_patient(person, first - _days(self.rng.uniform(30, 90)))
        self._trial(
            patient_id,
            protocol,
            self._dose_times(first, 3),
            [DoseResponse.INADEQUATE] * 3,
            TrialStatus.NOT_CANDIDATE,
        )
        # Candidate awaiting implant: positive at 75 mcg.
        person = self._person(child=False, diagnosis="Multiple sclerosis")
        first = self._screening_start(self.today - _days(self.rng.randint(14, 24)), 2)
        patient_id = self._add_patient(person, first - _days(self.rng.uniform(30, 90)))
        self._trial(
            patient_id,
            protocol,
            self._dose_times(first, 2),
            [DoseResponse.INADEQUATE, DoseResponse.POSITIVE],
            TrialStatus.CANDIDATE,
        )
        review_day = self._open_day_on_or_after(self.today + _days(self.rng.randint(10, 20)))
        review_at = self.calendar.at(review_day, dt.time(14, 0))
        self._appointment(
            patient_id=patient_id,
            pump_id=None,
            kind=AppointmentKind.REVIEW,
            status=AppointmentStatus.BOOKED,
            starts_at=review_at,
            ends_at=review_at + dt.timedelta(minutes=45),
            booked_at=self._booked_at(review_at, 10, 14),
            booked_by=self.frontdesk,
            notes="Pre-implant review with the neurosurgeon: pump size and site.",
        )
        # Screening planned for next week: a child of 3 (safety under 4 is not established).
        person = self._person(
            child=True, min_age=3, age=3, diagnosis="Cerebral palsy (spastic quadriplegia)"
        )
        person.communication_difficulties = True
        patient_id = self._add_patient(person, now - _days(self.rng.uniform(20, 40)))
        next_week = self.today + _days(7 - self.today.weekday() + 1)
        self._planned_trial(patient_id, self._open_day_on_or_after(next_week), small_child=True)
        # A larger demo also gets more screening histories.
        for index in range(count - 4):
            person = self._person(child=self.chance(0.1), min_age=4)
            kind = index % 3
            if kind == 2:
                day = self._open_day_on_or_after(self.today + _days(self.rng.randint(1, 28)))
                patient_id = self._add_patient(person, now - _days(self.rng.uniform(10, 60)))
                self._planned_trial(patient_id, day)
                continue
            doses = 2 if kind == 0 else 3
            first = self._screening_start(self.today - _days(self.rng.randint(7, 180)), doses)
            patient_id = self._add_patient(person, first - _days(self.rng.uniform(30, 90)))
            if kind == 0:
                responses = [DoseResponse.INADEQUATE, DoseResponse.POSITIVE]
                status = TrialStatus.CANDIDATE
            else:
                responses = [DoseResponse.INADEQUATE] * 3
                status = TrialStatus.NOT_CANDIDATE
            self._trial(patient_id, protocol, self._dose_times(first, doses), responses, status)

    def _open_day_on_or_after(self, day: dt.date) -> dt.date:
        while not self.calendar.is_open(day):
            day += _days(1)
        return day

    def _screening_start(self, day: dt.date, consecutive: int) -> dt.datetime:
        """09:00 on the first of ``consecutive`` open days, searching back from ``day``."""
        while not all(self.calendar.is_open(day + _days(k)) for k in range(consecutive)):
            day -= _days(1)
        return self.calendar.at(day, dt.time(9, 0)) + self.minutes(0, 40)

    def _dose_times(self, first: dt.datetime, count: int) -> list[dt.datetime]:
        # 24 h is elapsed time; a dose may be later than 24 h, never earlier.
        times = [first]
        for _ in range(count - 1):
            times.append(times[-1] + dt.timedelta(hours=24) + self.minutes(0, 30))
        return times

    def _planned_trial(self, patient_id: int, day: dt.date, *, small_child: bool = False) -> None:
        # Very small children start at 25 mcg (Boster 2016) when the clinic has that protocol.
        ids = {p.id for p in self.reference.screening_protocols}
        protocol_id = "small-child" if small_child and "small-child" in ids else "standard"
        planned_at = self.calendar.at(day, dt.time(9, 0))
        self.add(
            ScreeningTrial,
            id=self.new_id(ScreeningTrial),
            patient_id=patient_id,
            protocol_id=protocol_id,
            status=TrialStatus.PLANNED.value,
            planned_first_dose_at=planned_at,
            started_at=None,
            ended_at=None,
            stop_reason="",
            checks_acknowledged_by_id=None,
            checks_acknowledged_at=None,
            effective_dose_mcg=None,
            effect_duration_hours=None,
            decided_by_id=None,
            created_by_id=self.clinician,
            created_at=self.now - _days(self.rng.uniform(2, 9)),
            version=1,
        )
        start = self.calendar.at(day, dt.time(8, 30))
        self._appointment(
            patient_id=patient_id,
            pump_id=None,
            kind=AppointmentKind.SCREENING,
            status=AppointmentStatus.BOOKED,
            starts_at=start,
            ends_at=self.calendar.at(day, dt.time(17, 0)),
            booked_at=self._booked_at(start, 7, 21),
            booked_by=self.frontdesk,
            notes="Screening day 1: observation bed booked 08:30 to 17:00.",
        )

    def _trial(
        self,
        patient_id: int,
        protocol: ScreeningProtocolSpec,
        given: Sequence[dt.datetime],
        responses: Sequence[DoseResponse | None],
        status: TrialStatus,
        *,
        detailed: bool = True,
        effect_hours: float | None = None,
    ) -> float | None:
        """A screening trial with its doses; the effective dose for a candidate."""
        rng = self.rng
        trial_id = self.new_id(ScreeningTrial)
        decided = status in {TrialStatus.CANDIDATE, TrialStatus.NOT_CANDIDATE}
        effective: float | None = None
        if status is TrialStatus.CANDIDATE:
            effective = protocol.doses[len(given) - 1].dose_mcg
            if effect_hours is None:
                effect_hours = round(rng.uniform(5, 8), 1)
        last_response_at = given[-1] + dt.timedelta(hours=6, minutes=rng.randint(0, 40))
        self.add(
            ScreeningTrial,
            id=trial_id,
            patient_id=patient_id,
            protocol_id=protocol.id,
            status=status.value,
            planned_first_dose_at=given[0],
            started_at=given[0],
            ended_at=last_response_at if decided else None,
            stop_reason="",
            checks_acknowledged_by_id=self.clinician,
            checks_acknowledged_at=given[0] - self.minutes(40, 90),
            effective_dose_mcg=effective,
            effect_duration_hours=effect_hours if status is TrialStatus.CANDIDATE else None,
            decided_by_id=self.clinician if decided else None,
            created_by_id=self.clinician,
            created_at=given[0] - _days(rng.uniform(7, 28)),
            version=1,
        )
        baseline = {group: rng.choice(("1+", "2", "3", "3", "4")) for group in _MUSCLE_GROUPS[:4]}
        penn = rng.randint(2, 4)
        lot = f"SCR{given[0].astimezone(self.zone):%y%m}{rng.choice('ABCDEFGH')}"
        for number, (given_at, response) in enumerate(zip(given, responses, strict=True), 1):
            spec = protocol.doses[number - 1]
            dose_id = self.new_id(TestDose)
            recorded_at = given_at + dt.timedelta(hours=6) + self.minutes(0, 40)
            if response is None or recorded_at > self.now:
                response, recorded_at_or_none = None, None
            else:
                recorded_at_or_none = recorded_at
            self.add(
                TestDose,
                id=dose_id,
                trial_id=trial_id,
                number=number,
                dose_mcg=spec.dose_mcg,
                volume_ml=spec.volume_ml,
                concentration_mcg_per_ml=protocol.concentration_mcg_per_ml,
                planned_at=given_at - self.minutes(0, 20),
                given_at=given_at,
                given_by_id=self.clinician,
                lot_number=lot,
                route="lumbar puncture",
                response=response.value if response else None,
                response_recorded_at=recorded_at_or_none,
                response_recorded_by_id=self.clinician if response else None,
                response_notes=_response_note(response, spec.dose_mcg),
                corrects_id=None,
                created_at=given_at,
            )
            if detailed:
                self._observations(dose_id, given_at, response, baseline, penn)
        for day in sorted({self.calendar.local_day(t) for t in given}):
            if not self.calendar.is_open(day):
                continue
            start, end = self.calendar.at(day, dt.time(8, 0)), self.calendar.at(day, dt.time(17, 0))
            if start > self.now:
                status_now, changed_at, changed_by = AppointmentStatus.BOOKED, None, None
            elif end <= self.now:
                status_now, changed_at, changed_by = (
                    AppointmentStatus.COMPLETED,
                    end,
                    self.nurse,
                )
            else:
                status_now, changed_at, changed_by = (
                    AppointmentStatus.ARRIVED,
                    start + self.minutes(0, 10),
                    self.frontdesk,
                )
            self._appointment(
                patient_id=patient_id,
                pump_id=None,
                kind=AppointmentKind.SCREENING,
                status=status_now,
                starts_at=start,
                ends_at=end,
                booked_at=self._booked_at(start, 7, 21),
                booked_by=self.frontdesk,
                status_changed_at=changed_at,
                status_changed_by=changed_by,
            )
        return effective

    def _observations(
        self,
        dose_id: int,
        given_at: dt.datetime,
        response: DoseResponse | None,
        baseline: dict[str, str],
        baseline_penn: int,
    ) -> None:
        rng = self.rng
        heart_rate = rng.randint(64, 88)
        for minutes, is_baseline in (
            (-25, True),
            (60, False),
            (120, False),
            (240, False),
            (360, False),
        ):
            observed_at = given_at + dt.timedelta(minutes=minutes + rng.randint(0, 8))
            if observed_at > self.now - dt.timedelta(minutes=5):
                break
            scored = is_baseline or minutes >= 240
            observation_id = self.new_id(Observation)
            scores = dict(baseline)
            penn: int | None = baseline_penn
            if not is_baseline:
                if response is DoseResponse.POSITIVE and minutes >= 240:
                    scores = {g: _lower_ashworth(s, rng.randint(1, 2)) for g, s in baseline.items()}
                    penn = max(0, baseline_penn - 2)
                elif minutes >= 240:
                    group = rng.choice(sorted(baseline))
                    scores[group] = _lower_ashworth(baseline[group], rng.randint(0, 1))
                    penn = max(0, baseline_penn - rng.randint(0, 1))
            self.add(
                Observation,
                id=observation_id,
                test_dose_id=dose_id,
                observed_at=observed_at,
                is_baseline=is_baseline,
                recorded_by_id=self.nurse,
                penn_spasm_frequency=penn if scored else None,
                heart_rate_bpm=heart_rate + rng.randint(-6, 6),
                respiratory_rate_per_min=rng.randint(12, 18),
                spo2_pct=rng.randint(95, 99),
                notes="Baseline before the dose." if is_baseline else "",
                corrects_id=None,
                created_at=observed_at + self.minutes(1, 6),
            )
            if scored:
                for group, score in scores.items():
                    self.add(
                        AshworthScore,
                        observation_id=observation_id,
                        muscle_group=group,
                        score=score,
                    )
            if (
                response is DoseResponse.POSITIVE
                and minutes == 240
                and "sleepiness" in self.side_effect_ids
            ):
                self.add(
                    ObservationAdverseEffect,
                    observation_id=observation_id,
                    code="sleepiness",
                    is_overdose_sign=False,
                )

    # --- implanted patients -----------------------------------------------------------------

    def _state_quotas(self, count: int) -> list[RefillState]:
        quotas = {
            RefillState.EMPTY: max(2, round(0.008 * count)),
            RefillState.PAST_ALARM: max(3, round(0.02 * count)),
            RefillState.OVERDUE: max(3, round(0.04 * count)),
            RefillState.DUE_SOON: max(4, round(0.12 * count)),
            RefillState.RECENTLY_REFILLED: max(4, round(0.15 * count)),
        }
        quotas[RefillState.OK] = count - sum(quotas.values())
        states = [state for state, n in quotas.items() for _ in range(n)]
        self.rng.shuffle(states)
        return states

    def _implanted_patients(self, count: int) -> None:
        rng = self.rng
        states = self._state_quotas(count)
        models = self.reference.pump_models
        assigned: list[PumpModelSpec | None] = [None] * count
        forced_concentration: list[float | None] = [None] * count
        # Every model of the catalog at least once, every concentration at least once.
        for model in models:
            for i in range(count):
                constant = model.kind is PumpKind.CONSTANT_FLOW
                if assigned[i] is None and not (constant and states[i] is RefillState.OK):
                    assigned[i] = model
                    break
        for concentration in self.fill_concentrations:
            for i in range(count):
                chosen = assigned[i]
                if (
                    chosen is not None
                    and chosen.kind is PumpKind.PROGRAMMABLE
                    and forced_concentration[i] is None
                    and self._allows(chosen, concentration)
                ):
                    forced_concentration[i] = concentration
                    break
        weights = [
            (8 if m.kind is PumpKind.CONSTANT_FLOW else 35 if m.max_flex_steps else 10)
            for m in models
        ]
        plans: list[tuple[PumpModelSpec, RefillState, float | None, bool]] = []
        for i in range(count):
            pick = assigned[i]
            while pick is None:
                pick = rng.choices(models, weights)[0]
                if pick.kind is PumpKind.CONSTANT_FLOW and states[i] is RefillState.OK:
                    pick = None
            plans.append((pick, states[i], forced_concentration[i], assigned[i] is not None))
        recent = max(2, round(0.12 * count))
        recent_implants = [True] * recent + [False] * (count - recent)
        rng.shuffle(recent_implants)
        # Children (4 to 17) on pumps that allow them; never the forced catalog examples.
        may_be_child = [
            i
            for i, (model, state, _, forced) in enumerate(plans)
            if not forced
            and state is not RefillState.EMPTY
            and model.kind is PumpKind.PROGRAMMABLE
            and (model.min_patient_age_years or 0) < 18
        ]
        children = set(
            rng.sample(may_be_child, min(len(may_be_child), max(2, round(0.12 * count))))
        )
        for i, (pump_model, state, forced_mcg_per_ml, forced) in enumerate(plans):
            self._implanted_patient(
                pump_model,
                state,
                forced_mcg_per_ml,
                adult=forced,
                child=i in children,
                recent_implant=recent_implants[i],
            )

    def _allows(self, model: PumpModelSpec, concentration: float) -> bool:
        allowed = model.allowed_concentrations_mcg_per_ml
        return not allowed or any(math.isclose(a, concentration) for a in allowed)

    def _dose_range(self, person: _Person) -> tuple[float, float]:
        if person.is_child:
            return (60.0, 400.0) if person.age >= 8 else (50.0, 250.0)
        if person.diagnosis.origin is SpasticityOrigin.SPINAL:
            return (300.0, 800.0) if self.chance(0.85) else (150.0, 1000.0)
        return (90.0, 700.0)

    def _first_program(
        self,
        model: PumpModelSpec,
        person: _Person,
        state: RefillState,
        concentration: float | None,
    ) -> _Program:
        rng = self.rng
        usable_ml = model.reservoir_ml - model.low_reservoir_alarm_ml
        if model.kind is PumpKind.CONSTANT_FLOW:
            assert model.constant_flow_ml_per_day is not None
            options = [c for c in self.fill_concentrations if self._allows(model, c)]
            _, high = self._dose_range(person)
            fitting = [c for c in options if c * model.constant_flow_ml_per_day <= high * 1.3]
            chosen = rng.choice(fitting or options[:1])
            return _Program(chosen, chosen * model.constant_flow_ml_per_day)
        # A refill interval of 4 to 12 weeks: never beyond drug stability (the alarm comes
        # first), and long enough for an "ok" patient to be neither due soon nor recent.
        shortest = 45.0 if state is RefillState.OK else 28.0
        longest = min(84.0, self.stability_days + 7.0)
        options = [c for c in self.fill_concentrations if self._allows(model, c)]
        weights = [{500.0: 4, 1000.0: 3, 2000.0: 3}.get(c, 2) for c in options]
        low, high = self._dose_range(person)
        for attempt in range(400):
            if attempt == 200:
                low, high = 20.0, 1200.0
            chosen = concentration or rng.choices(options, weights)[0]
            dose = _round_dose(rng.uniform(low, high))
            if shortest <= usable_ml * chosen / dose <= longest:
                break
        else:
            chosen = concentration or options[0]
            dose = _round_dose(usable_ml * chosen / ((shortest + longest) / 2))
        shape: tuple[tuple[int, float], ...] = ()
        if model.max_flex_steps >= 2 and self.chance(0.15):
            shape = rng.choice([s for s in _FLEX_SHAPES if len(s) <= model.max_flex_steps])
        return _Program(chosen, dose, shape)

    def _implanted_patient(
        self,
        model: PumpModelSpec,
        state: RefillState,
        concentration: float | None,
        *,
        adult: bool,
        child: bool,
        recent_implant: bool,
    ) -> None:
        rng = self.rng
        calendar = self.calendar
        min_age = model.min_patient_age_years or 4
        if model.kind is PumpKind.CONSTANT_FLOW or adult:
            min_age = max(min_age, 18)
        # The empty pump (the critical case) belongs to a patient with the highest risk:
        # a spinal cord injury at or above T6 (ITB-FACTS §6).
        high_sci = state is RefillState.EMPTY and not self._high_sci_placed and not child
        self._high_sci_placed |= high_sci
        person = self._person(
            child=child and min_age < 18,
            min_age=min_age,
            diagnosis="Traumatic spinal cord injury {level}" if high_sci else None,
            high_sci=high_sci,
        )
        current = self._first_program(model, person, state, concentration)
        reservoir = model.reservoir_ml
        alarm = model.low_reservoir_alarm_ml
        last = self._place_last_fill(state, reservoir, alarm, current.daily_ml)
        self.states[state.value] += 1

        # Recent implants: the pump went in within the window, after a screening trial.
        implant_floor: dt.datetime | None = None
        latest_implant = last.at - _days(40)
        earliest_implant = self.window_start + _days(30)
        if latest_implant > earliest_implant and recent_implant:
            wanted = earliest_implant + (latest_implant - earliest_implant) * rng.random()
            implant_floor = wanted + _days(14)

        fills_reversed = [last]
        later_programs: list[_Program] = []
        program = current
        fill = last
        stability_cap = self.stability_days - 1.0
        while True:
            earlier = self._earlier_program(program, model, person)
            if earlier is not None:
                program.effective_from, program.at_fill = fill.at, fill
                later_programs.append(program)
                program = earlier
            volume = round(reservoir - rng.uniform(0, 0.6), 1)
            max_gap = min((volume - alarm - 0.5) / program.daily_ml, stability_cap)
            min_gap = min(14.0, max_gap)
            # Clinics refill some days before the alarm, and within drug stability.
            to_alarm = (volume - alarm) / program.daily_ml
            gap = min(max(to_alarm - rng.uniform(4, 12), min_gap), max_gap)
            target = fill.at - _days(gap)
            if implant_floor is not None and target < implant_floor:
                break
            slot = calendar.nearest_slot(
                target, fill.at - _days(max_gap), fill.at - _days(min_gap), rng, any_time=True
            )
            if slot is None:
                raise RuntimeError("no clinic slot for a demo refill")  # pragma: no cover
            fill = _Fill(slot + self.minutes(3, 20), volume, slot)
            fills_reversed.append(fill)
            if implant_floor is None and fill.at < self.window_start:
                break
        fills = fills_reversed[::-1]
        programs = [program, *reversed(later_programs)]

        protocol = self.reference.screening_protocol("standard")
        trial_given: list[dt.datetime] = []
        effective_index = rng.choices((1, 2, 3), (5, 3, 2))[0]
        effect_hours = round(rng.uniform(5, 8), 1) if self.chance(0.85) else 10.0
        if implant_floor is not None:
            # Starting daily dose: 2 × the effective screening dose (1 × if it lasted > 8 h).
            start_dose = protocol.doses[effective_index - 1].dose_mcg
            start_dose *= 2 if effect_hours <= 8 else 1
            implant_at, titration = self._implant_and_titration(
                fills[0], program, person, start_dose
            )
            implant_fill = _Fill(implant_at, round(reservoir - rng.uniform(0, 0.4), 1), None, True)
            fills.insert(0, implant_fill)
            programs = [*titration, *programs]
            implanted_on = calendar.local_day(implant_at)
            trial_given = self._dose_times(
                self._screening_start(implanted_on - _days(rng.randint(30, 100)), 3),
                3,
            )
        else:
            program.effective_from = fills[0].at
            program.reason = "Maintenance program in effect when these records begin."
            implanted_on = self._pre_window_implant_day(model, fills[0].at)
        self._ensure_residuals(fills, programs, alarm, reservoir)
        # Old enough at screening and implant: 4 years (the label), or the pump's minimum.
        min_age = max(4, model.min_patient_age_years or 0)
        born_by = implanted_on.replace(year=implanted_on.year - min_age, day=1) - _days(120)
        if person.date_of_birth > born_by:
            person.date_of_birth = born_by - _days(rng.randint(0, 700))
            person.age = age_in_years(person.date_of_birth, self.today)
        # A history of withdrawal raises every refill alert: one patient past the alarm has it.
        first_past_alarm = state is RefillState.PAST_ALARM and self.states[state.value] == 1
        if first_past_alarm or (implant_floor is None and self.chance(0.05)):
            person.previous_withdrawal = True
            first_year = min(implanted_on.year + 1, self.today.year)
            person.withdrawal_year = rng.randint(first_year, self.today.year)

        # Registered when referred, before the screening trial and the implant.
        created_at = self.calendar.at(implanted_on, dt.time(9, 0)) - _days(rng.uniform(135, 300))
        patient_id = self._add_patient(person, created_at)
        if trial_given:
            responses = [DoseResponse.INADEQUATE] * (effective_index - 1) + [DoseResponse.POSITIVE]
            self._trial(
                patient_id,
                protocol,
                trial_given[:effective_index],
                responses,
                TrialStatus.CANDIDATE,
                detailed=False,
                effect_hours=effect_hours,
            )
        pump_id = self._add_pump(patient_id, model, implanted_on, person.date_of_birth)
        self._add_history(patient_id, pump_id, fills, programs, implant_floor is not None)
        self._scenario_appointments(patient_id, pump_id, state, last, current, alarm)

    def _pre_window_implant_day(self, model: PumpModelSpec, first_fill: dt.datetime) -> dt.date:
        rng = self.rng
        latest = self.calendar.local_day(first_fill) - _days(rng.randint(14, 60))
        if model.battery_life_years is not None:
            life_days = model.battery_life_years * 365.25
            if self.chance(0.06):
                # A few pumps close to their replacement date: the battery view has work.
                return min(latest, self.today - _days(life_days - rng.uniform(30, 150)))
            earliest = self.today - _days(life_days - 200)
        else:
            earliest = self.today - _days(12 * 365.25)
        if earliest >= latest:
            return latest
        return earliest + _days(rng.randint(0, (latest - earliest).days))

    def _implant_and_titration(
        self, first_refill: _Fill, target: _Program, person: _Person, start_dose: float
    ) -> tuple[dt.datetime, list[_Program]]:
        """Implant in theatre, then increases (at most one a day) from ``start_dose``."""
        rng = self.rng
        spinal = person.diagnosis.origin is SpasticityOrigin.SPINAL and not person.is_child
        low, high = (0.10, 0.30) if spinal else (0.05, 0.15)
        doses: list[float] = []
        dose = min(start_dose, target.nominal_dose)
        while dose < target.nominal_dose and len(doses) < 30:
            doses.append(dose)
            dose = min(target.nominal_dose, _round_dose(dose * (1 + rng.uniform(low, high))))
            if dose <= doses[-1]:
                dose = target.nominal_dose
        # Implant (a morning in theatre) so that the titration, one step every other day,
        # ends well before the first refill.
        needed = _days(2 * len(doses) + 6)
        latest = first_refill.at - max(needed, _days(14))
        day = self.calendar.local_day(latest - _days(rng.uniform(0, 20)))
        while not self.calendar.is_open(day):
            day -= _days(1)
        implant_at = self.calendar.at(day, dt.time(9, 0)) + self.minutes(0, 240)
        programs: list[_Program] = []
        at = implant_at
        for number, step_dose in enumerate(doses):
            program = _Program(target.concentration, step_dose)
            if number == 0:
                program.reason = "Starting dose after implant, from the screening dose."
            else:
                program.reason = f"Titration: +{_pct(step_dose / doses[number - 1] - 1)} %."
            program.effective_from = at
            programs.append(program)
            # No increase in the first 24 h, then at most one per 24 h.
            hours = 26 if number == 0 else 48
            at += dt.timedelta(hours=hours) + self.minutes(0, 90)
        target.effective_from = at
        if programs:
            target.reason = (
                f"Titration: +{_pct(target.dose / programs[-1].dose - 1)} %: target reached."
            )
        else:
            target.reason = "Starting dose after implant."
        return implant_at, programs

    def _earlier_program(
        self, program: _Program, model: PumpModelSpec, person: _Person
    ) -> _Program | None:
        """The program before ``program`` when it was changed at a refill (or None)."""
        rng = self.rng
        if model.kind is PumpKind.CONSTANT_FLOW or not self.chance(0.18):
            return None
        usable_ml = model.reservoir_ml - model.low_reservoir_alarm_ml
        roll = rng.random()
        if roll < 0.12:
            options = [
                c
                for c in self.fill_concentrations
                if c != program.concentration
                and self._allows(model, c)
                and 28 <= usable_ml * c / program.dose <= min(84.0, self.stability_days + 7.0)
            ]
            if not options:
                return None
            concentration = rng.choice(options)
            earlier = program.with_dose(program.nominal_dose, concentration)
            longer = concentration < program.concentration
            program.reason = (
                f"Concentration changed from {concentration:g} to {program.concentration:g} "
                f"mcg/mL: {'longer' if longer else 'shorter'} refill interval, same dose."
            )
            return earlier
        if program.shape and roll < 0.3:
            earlier = _Program(program.concentration, program.nominal_dose)
            program.reason = "Flex program started: higher rate overnight for night-time spasms."
        elif roll < 0.8:
            spinal = person.diagnosis.origin is SpasticityOrigin.SPINAL and not person.is_child
            step = rng.uniform(0.05, 0.2 if spinal else 0.12)
            earlier = program.with_dose(_round_dose(program.nominal_dose / (1 + step)))
            program.reason = (
                f"Increased by {_pct(program.nominal_dose / earlier.nominal_dose - 1)} %: "
                + rng.choice(
                    (
                        "spasms more frequent at night.",
                        "tone increased, Ashworth up by one grade.",
                        "patient reports stiffer legs on transfers.",
                    )
                )
            )
        else:
            earlier = program.with_dose(_round_dose(program.nominal_dose * rng.uniform(1.05, 1.15)))
            program.reason = (
                f"Reduced by {_pct(1 - program.nominal_dose / earlier.nominal_dose)} %: "
                + rng.choice(
                    (
                        "daytime leg weakness affecting transfers.",
                        "drowsiness in the afternoons.",
                        "relies on some tone to stand: slightly less relaxation wanted.",
                    )
                )
            )
        interval = usable_ml * earlier.concentration / earlier.dose
        if earlier.dose <= 0 or not 25 <= interval <= min(90.0, self.stability_days + 7.0):
            program.reason = ""
            return None
        return earlier

    def _place_last_fill(
        self, state: RefillState, reservoir: float, alarm: float, daily_ml: float
    ) -> _Fill:
        """The last refill, placed so that the pump is in ``state`` now."""
        rng = self.rng
        now = self.now
        to_empty_after_alarm = alarm / daily_ml
        latest = now - dt.timedelta(hours=1)
        for _ in range(200):
            volume = round(reservoir - rng.uniform(0, 0.6), 1)
            full_days = (volume - alarm) / daily_ml
            if state is RefillState.RECENTLY_REFILLED:
                earliest = max(
                    now - _days(RECENT_REFILL_DAYS - 0.5),
                    now + _days(21.3) - _days(full_days),
                )
                target = earliest + (latest - earliest) * rng.random()
                alarm_target = None
            else:
                low, high = {
                    RefillState.OK: (22.0, full_days - 14.5),
                    RefillState.DUE_SOON: (7.3, 20.7),
                    RefillState.OVERDUE: (0.3, 6.7),
                    RefillState.PAST_ALARM: (
                        -0.85 * to_empty_after_alarm,
                        -0.15 * to_empty_after_alarm,
                    ),
                    RefillState.EMPTY: (
                        -rng.uniform(0.5, 5) - to_empty_after_alarm,
                        -0.3 - to_empty_after_alarm,
                    ),
                }[state]
                if low > high:
                    raise RuntimeError(f"the demo cannot reach {state} with this pump")
                alarm_target = now + _days(rng.uniform(low, high))
                target = alarm_target - _days(full_days)
                earliest = target - _days(4)
            slot = self.calendar.nearest_slot(
                target,
                earliest,
                min(latest - dt.timedelta(minutes=30), target + _days(4)),
                rng,
                any_time=True,
            )
            if slot is None:
                continue
            at = slot + self.minutes(3, 20)
            if alarm_target is not None:
                # Fill a little less or more to land on the wanted alarm time.
                wanted = alarm + daily_ml * (alarm_target - at).total_seconds() / 86400
                volume = round(min(reservoir, max(reservoir - 1.0, wanted)), 1)
            if refill_state(now, at, volume, alarm, daily_ml) is state:
                return _Fill(at, volume, slot)
        raise RuntimeError(f"could not place a demo refill in state {state}")  # pragma: no cover

    def _ensure_residuals(
        self, fills: list[_Fill], programs: list[_Program], alarm: float, reservoir: float
    ) -> None:
        """Refill before the alarm every time: add a visit where an interval is too long."""
        rng = self.rng
        for _ in range(50):
            for index in range(1, len(fills)):
                before, after = fills[index - 1], fills[index]
                left = before.volume_ml - _delivered_ml(programs, before.at, after.at)
                if left < alarm + 0.3:
                    middle = before.at + (after.at - before.at) / 2
                    slot = self.calendar.nearest_slot(
                        middle, before.at + _days(5), after.at - _days(5), rng, any_time=True
                    )
                    if slot is None:
                        raise RuntimeError("no slot for an extra demo refill")  # pragma: no cover
                    volume = round(reservoir - rng.uniform(0, 0.6), 1)
                    fills.insert(index, _Fill(slot + self.minutes(3, 20), volume, slot))
                    break
            else:
                return
        raise RuntimeError("demo refill history does not converge")  # pragma: no cover

    def _add_pump(
        self, patient_id: int, model: PumpModelSpec, implanted_on: dt.date, born: dt.date
    ) -> int:
        rng = self.rng
        prefix = "".join(c for c in model.manufacturer.upper() if c.isalpha())[:3]
        old_on = None
        if model.battery_life_years is not None:
            old_on = implanted_on - _days(
                round(model.battery_life_years * 365.25) - rng.randint(20, 120)
            )
        if (
            old_on is not None
            and implanted_on < self.window_start.date() - _days(365)
            and age_in_years(born, old_on) >= 18
            and self.chance(0.06)
        ):
            # An earlier pump, replaced when its battery reached the replacement indicator.
            self._serial += rng.randint(1, 400)
            self.add(
                ImplantedPump,
                **self._pump_values(patient_id, model, f"{prefix}{self._serial}", old_on),
                explanted_on=implanted_on,
                explant_reason="Elective replacement: battery at the replacement indicator (ERI).",
            )
            self.explanted += 1
        self._serial += rng.randint(1, 400)
        values = self._pump_values(patient_id, model, f"{prefix}{self._serial}", implanted_on)
        self.add(ImplantedPump, **values, explanted_on=None, explant_reason="")
        pump_id: int = values["id"]
        return pump_id

    def _pump_values(
        self, patient_id: int, model: PumpModelSpec, serial: str, implanted_on: dt.date
    ) -> dict[str, Any]:
        replace_by = None
        if model.battery_life_years is not None:
            replace_by = implanted_on + _days(round(model.battery_life_years * 365.25))
        return {
            "id": self.new_id(ImplantedPump),
            "patient_id": patient_id,
            "pump_model_id": model.id,
            "serial_number": serial,
            "implanted_on": implanted_on,
            "reservoir_ml": model.reservoir_ml,
            "low_reservoir_alarm_ml": model.low_reservoir_alarm_ml,
            "battery_replace_by": replace_by,
            "notes": "",
            "version": 1,
        }

    def _lot(self, concentration: float, at: dt.datetime) -> str:
        key = (concentration, at.year, at.month)
        lot = self._lots.get(key)
        if lot is None:
            lot = (
                f"BAC{round(concentration / 100):02d}-{at:%y%m}"
                f"{self.rng.choice('ABCDEFGHJK')}{self.rng.randint(1, 9)}"
            )
            self._lots[key] = lot
        return lot

    def _add_history(
        self,
        patient_id: int,
        pump_id: int,
        fills: list[_Fill],
        programs: list[_Program],
        since_implant: bool,
    ) -> None:
        rng = self.rng
        stored = fills if since_implant else fills[1:]
        first_stored = 0 if since_implant else 1
        for fill in stored:
            fill.id = self.new_id(Refill)
        for index in range(first_stored, len(fills)):
            fill = fills[index]
            program = _program_at(programs, fill.at)
            concentration = program.concentration
            appointment_id = None
            if fill.slot is not None:
                appointment_id = self._appointment(
                    patient_id=patient_id,
                    pump_id=pump_id,
                    kind=AppointmentKind.REFILL,
                    status=AppointmentStatus.COMPLETED,
                    starts_at=fill.slot,
                    ends_at=fill.slot + self.calendar.slot,
                    booked_at=self._booked_at(fill.slot, 7, 42),
                    status_changed_at=fill.at + self.minutes(15, 30),
                    status_changed_by=self.nurse,
                )
            common = {
                "id": fill.id,
                "pump_id": pump_id,
                "performed_at": fill.at,
                "appointment_id": appointment_id,
                "drug_product_id": self.drug_by_concentration.get(concentration),
                "lot_number": self._lot(concentration, fill.at),
                "concentration_mcg_per_ml": concentration,
                "volume_added_ml": fill.volume_ml,
                "volume_after_ml": fill.volume_ml,
                "reconciliation_flagged": False,
                "corrects_refill_id": None,
                "created_at": fill.at + self.minutes(5, 25),
            }
            if fill.implant:
                self.add(
                    Refill,
                    **common,
                    performed_by_id=self.clinician,
                    double_checked_by_id=self.nurse,
                    expected_residual_ml=None,
                    aspirated_residual_ml=0.0,
                    measured_after_ml=None,
                    notes="Initial fill in theatre at implant.",
                )
                continue
            before = fills[index - 1]
            delivered = _delivered_ml(programs, before.at, fill.at)
            expected = before.volume_ml - delivered
            # Measurement noise well inside both reconciliation rules (2 mL, flow accuracy).
            spread = min(0.25, 0.02 * delivered)
            noise = max(-2 * spread, min(2 * spread, rng.gauss(0, spread / 2)))
            self.add(
                Refill,
                **common,
                performed_by_id=self.nurse,
                double_checked_by_id=self.clinician,
                expected_residual_ml=round(expected, 2),
                aspirated_residual_ml=round(max(0.0, expected + noise), 1),
                measured_after_ml=round(fill.volume_ml - rng.uniform(0, 0.3), 1),
                notes="",
            )
        for program in programs:
            assert program.effective_from is not None
            program_id = self.new_id(DoseProgram)
            refill_id = program.at_fill.id if program.at_fill and program.at_fill.id else None
            self.add(
                DoseProgram,
                id=program_id,
                pump_id=pump_id,
                effective_from=program.effective_from,
                drug_product_id=self.drug_by_concentration.get(program.concentration),
                concentration_mcg_per_ml=program.concentration,
                mode=(ProgramMode.FLEX if program.steps else ProgramMode.SIMPLE_CONTINUOUS).value,
                dose_mcg_per_day=program.dose,
                bolus_dose_mcg=None,
                max_boluses_per_day=0,
                entered_by_id=self.clinician,
                double_checked_by_id=self.nurse,
                refill_id=refill_id,
                reason=program.reason,
                created_at=program.effective_from,
            )
            for number, (start, rate) in enumerate(program.steps, 1):
                self.add(
                    FlexStep,
                    id=self.new_id(FlexStep),
                    program_id=program_id,
                    step_number=number,
                    starts_at_minute=start,
                    rate_mcg_per_day=rate,
                )

    def _scenario_appointments(
        self,
        patient_id: int,
        pump_id: int,
        state: RefillState,
        last: _Fill,
        program: _Program,
        alarm: float,
    ) -> None:
        """Bookings that tell each state's story on the schedule and the worklist."""
        rng = self.rng
        now = self.now
        forecast = constant_rate_forecast(last.at, last.volume_ml, alarm, program.daily_ml)
        assert forecast.alarm_at is not None
        due_at = forecast.alarm_at - _days(DEMO_SETTINGS.refill_safety_margin_days)
        seen = self.states[state.value]  # this patient is number `seen` in its state
        soon = now + dt.timedelta(hours=1)
        if state is RefillState.DUE_SOON and (seen <= 2 or self.chance(0.5)):
            self._book_refill(patient_id, pump_id, max(soon, due_at - _days(8)), due_at)
        elif state is RefillState.OK and due_at < now + _days(35) and self.chance(0.4):
            self._book_refill(patient_id, pump_id, due_at - _days(10), due_at)
        elif state is RefillState.OVERDUE and seen == 1:
            self._book_refill(
                patient_id,
                pump_id,
                soon,
                forecast.alarm_at - dt.timedelta(hours=2),
                late_reason="Earliest date hospital transport could be arranged.",
            )
        elif state in {RefillState.PAST_ALARM, RefillState.EMPTY} and seen == 1:
            slot = self.calendar.nearest_slot(
                due_at - _days(2),
                due_at - _days(6),
                min(due_at, now - _days(1)),
                rng,
                any_time=True,
            )
            if slot is None:
                return
            booked_at = slot - _days(rng.uniform(14, 28))
            if state is RefillState.PAST_ALARM:
                self._appointment(
                    patient_id=patient_id,
                    pump_id=pump_id,
                    kind=AppointmentKind.REFILL,
                    status=AppointmentStatus.CANCELLED,
                    starts_at=slot,
                    ends_at=slot + self.calendar.slot,
                    booked_at=booked_at,
                    booked_by=self.frontdesk,
                    status_changed_at=slot - _days(rng.uniform(1, 3)),
                    status_changed_by=self.frontdesk,
                    cancel_reason="Patient admitted elsewhere with a chest infection; "
                    "will rebook after discharge.",
                )
            else:
                self._appointment(
                    patient_id=patient_id,
                    pump_id=pump_id,
                    kind=AppointmentKind.REFILL,
                    status=AppointmentStatus.NO_SHOW,
                    starts_at=slot,
                    ends_at=slot + self.calendar.slot,
                    booked_at=booked_at,
                    booked_by=self.frontdesk,
                    status_changed_at=slot + dt.timedelta(hours=1),
                    status_changed_by=self.nurse,
                    notes="Did not attend. Phoned the patient and the emergency contact "
                    "twice: no answer.",
                )

    def _flag_reconciliations(self) -> None:
        """A few refills whose aspirated residual was more than 2 mL off the expected one."""
        rng = self.rng
        candidates = [
            row
            for row in self.rows[Refill]
            if row["expected_residual_ml"] is not None and row["expected_residual_ml"] > 3
        ]
        count = min(len(candidates), max(2, round(0.004 * len(candidates))))
        for row in rng.sample(candidates, count):
            expected = row["expected_residual_ml"]
            gap = rng.uniform(2.2, 3.2) * (1 if rng.random() < 0.5 else -1)
            aspirated = round(max(0.0, expected + gap), 1)
            gap = aspirated - expected
            row["aspirated_residual_ml"] = aspirated
            row["reconciliation_flagged"] = True
            direction = "over-infusion" if gap < 0 else "under-delivery"
            row["notes"] = (
                f"Aspirated {aspirated:.1f} mL against {expected:.2f} mL expected "
                f"({gap:+.1f} mL, possible {direction}): clinician informed, pump log and "
                "catheter check requested."
            )


# --- Pure helpers -----------------------------------------------------------------------------


def _program_at(programs: Sequence[_Program], at: dt.datetime) -> _Program:
    """The program in effect at ``at`` (the first one before it begins)."""
    current = programs[0]
    for program in programs:
        assert program.effective_from is not None
        if program.effective_from <= at:
            current = program
        else:
            break
    return current


def _delivered_ml(programs: Sequence[_Program], start: dt.datetime, end: dt.datetime) -> float:
    """mL pumped between ``start`` and ``end``, piecewise over program changes."""
    total = 0.0
    for index, program in enumerate(programs):
        assert program.effective_from is not None
        begins = start if index == 0 else max(start, program.effective_from)
        following = programs[index + 1].effective_from if index + 1 < len(programs) else None
        ends = end if following is None else min(end, following)
        if ends > begins:
            total += program.daily_ml * (ends - begins).total_seconds() / 86400
    return total


def _lower_ashworth(score: str, steps: int) -> str:
    index = ASHWORTH_SCORES.index(score)
    return ASHWORTH_SCORES[max(0, index - steps)]


def _response_note(response: DoseResponse | None, dose_mcg: float) -> str:
    if response is DoseResponse.POSITIVE:
        return (
            f"Clear fall in tone after {dose_mcg:g} mcg: Ashworth down 1 to 2 grades, "
            "spasms much less frequent; effect lasted most of the afternoon."
        )
    if response is DoseResponse.INADEQUATE:
        return f"No meaningful change in tone or spasms after {dose_mcg:g} mcg."
    return ""
