"""Clinic-wide settings: one typed registry with defaults and limits."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field

from pumpclinic.domain.patients import PHONE_PATTERN
from pumpclinic.domain.validation import FieldError, require_int_range, require_text

ISO_WEEKDAY_NAMES = {1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat", 7: "Sun"}

# (low, high) limits; the database has the same CHECK constraints.
REFILL_SAFETY_MARGIN_DAYS_RANGE = (0, 60)
DUE_SOON_HORIZON_DAYS_RANGE = (1, 90)
OBSERVATION_BEDS_RANGE = (0, 50)
REFILL_SLOT_MINUTES_RANGE = (5, 240)
IDLE_LOCK_MINUTES_RANGE = (1, 240)


@dataclass(frozen=True, slots=True)
class ClinicSettingsData:
    clinic_name: str = "ITB Clinic"
    clinic_phone: str = ""
    time_zone: str = "Europe/London"
    opens_at: dt.time = dt.time(8, 0)
    closes_at: dt.time = dt.time(18, 0)
    open_weekdays: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    refill_safety_margin_days: int = 7
    due_soon_horizon_days: int = 14
    observation_beds: int = 2
    refill_slot_minutes: int = 30
    idle_lock_minutes: int = 15
    holidays: tuple[tuple[dt.date, str], ...] = field(default=())

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def weekdays_label(self) -> str:
        return ", ".join(ISO_WEEKDAY_NAMES[d] for d in sorted(self.open_weekdays))


def is_valid_time_zone(name: str) -> bool:
    if not name or name != name.strip():
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # 'Europe' is a folder
        return False
    return True


def validate_settings(data: ClinicSettingsData) -> list[FieldError]:
    errors: list[FieldError] = []
    require_text(errors, "clinic_name", "Clinic name", data.clinic_name, 200)
    phone = data.clinic_phone.strip()
    if phone and not PHONE_PATTERN.match(phone):
        errors.append(
            FieldError("clinic_phone", "Clinic phone may hold only digits, spaces and + ( ) - .")
        )
    if not is_valid_time_zone(data.time_zone):
        errors.append(
            FieldError("time_zone", f"Time zone '{data.time_zone}' is not an IANA zone name.")
        )
    if data.closes_at <= data.opens_at:
        errors.append(
            FieldError(
                "closes_at",
                f"Closing time ({data.closes_at:%H:%M}) must be after opening time "
                f"({data.opens_at:%H:%M}).",
            )
        )
    if not data.open_weekdays:
        errors.append(FieldError("open_weekdays", "Open weekdays: choose at least one day."))
    elif not data.open_weekdays <= set(ISO_WEEKDAY_NAMES):
        errors.append(FieldError("open_weekdays", "Open weekdays must be ISO days 1 to 7."))
    for name, label, (low, high) in (
        (
            "refill_safety_margin_days",
            "Refill safety margin (days)",
            REFILL_SAFETY_MARGIN_DAYS_RANGE,
        ),
        ("due_soon_horizon_days", "Due-soon horizon (days)", DUE_SOON_HORIZON_DAYS_RANGE),
        ("observation_beds", "Observation beds", OBSERVATION_BEDS_RANGE),
        ("refill_slot_minutes", "Refill slot (minutes)", REFILL_SLOT_MINUTES_RANGE),
        ("idle_lock_minutes", "Lock after idle (minutes)", IDLE_LOCK_MINUTES_RANGE),
    ):
        require_int_range(errors, name, label, getattr(data, name), low, high)
    days = [day for day, _ in data.holidays]
    if len(days) != len(set(days)):
        errors.append(FieldError("holidays", "Holidays: each date may be listed once."))
    return errors
