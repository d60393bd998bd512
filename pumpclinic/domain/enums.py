"""The closed vocabularies of the clinic, shared by every layer."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    NURSE = "nurse"
    CLINICIAN = "clinician"
    STAFF = "staff"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return {
            Role.NURSE: "Nurse",
            Role.CLINICIAN: "Clinician",
            Role.STAFF: "Front desk",
            Role.ADMIN: "Administrator",
        }[self]


class SpasticityOrigin(StrEnum):
    SPINAL = "spinal"
    CEREBRAL = "cerebral"

    @property
    def label(self) -> str:
        return {SpasticityOrigin.SPINAL: "Spinal", SpasticityOrigin.CEREBRAL: "Cerebral"}[self]


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class PumpKind(StrEnum):
    PROGRAMMABLE = "programmable"
    CONSTANT_FLOW = "constant-flow"


class ProgramMode(StrEnum):
    SIMPLE_CONTINUOUS = "simple-continuous"
    FLEX = "flex"


class AppointmentKind(StrEnum):
    REFILL = "refill"
    SCREENING = "screening"
    REVIEW = "review"


class AppointmentStatus(StrEnum):
    BOOKED = "booked"
    ARRIVED = "arrived"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no-show"


# Which status may follow which: a finished appointment is never reopened.
APPOINTMENT_TRANSITIONS: dict[AppointmentStatus, frozenset[AppointmentStatus]] = {
    AppointmentStatus.BOOKED: frozenset(
        {AppointmentStatus.ARRIVED, AppointmentStatus.CANCELLED, AppointmentStatus.NO_SHOW}
    ),
    AppointmentStatus.ARRIVED: frozenset(
        {AppointmentStatus.COMPLETED, AppointmentStatus.CANCELLED}
    ),
    AppointmentStatus.COMPLETED: frozenset(),
    AppointmentStatus.CANCELLED: frozenset(),
    AppointmentStatus.NO_SHOW: frozenset(),
}


class TrialStatus(StrEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in-progress"
    CANDIDATE = "candidate"
    NOT_CANDIDATE = "not-candidate"
    STOPPED = "stopped"


class DoseResponse(StrEnum):
    POSITIVE = "positive"
    INADEQUATE = "inadequate"


class AuditAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    LOGIN = "login"
    LOGIN_FAILED = "login-failed"
    LOGOUT = "logout"


ASHWORTH_SCORES: tuple[str, ...] = ("0", "1", "1+", "2", "3", "4")
