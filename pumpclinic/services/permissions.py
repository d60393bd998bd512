"""The permission matrix, enforced in the services (not only by hidden buttons)."""

from __future__ import annotations

from enum import StrEnum

from pumpclinic.domain.enums import Role
from pumpclinic.services.context import Actor
from pumpclinic.services.errors import PermissionDenied


class Permission(StrEnum):
    VIEW_PATIENTS = "view patient records"
    EDIT_PATIENTS = "add or edit patients"
    VIEW_SCHEDULE = "view the schedule"
    BOOK_APPOINTMENTS = "book and reschedule appointments"
    RECORD_REFILLS = "record refills"
    RECORD_VITALS = "record vitals"
    RECORD_SCREENING_RESPONSE = "record screening responses"
    CHANGE_PROGRAM_BEYOND_BOUNDS = "change a program beyond the titration bounds"
    OVERRIDE = "override safety checks"
    VIEW_ALERTS = "view alerts"
    LOG_CONTACTS = "log contact attempts"
    MANAGE_USERS = "manage users"
    MANAGE_SETTINGS = "change clinic settings"
    MANAGE_CATALOGS = "edit catalogs"
    VIEW_AUDIT = "view the audit trail"


_NURSE = frozenset(
    {
        Permission.VIEW_PATIENTS,
        Permission.EDIT_PATIENTS,
        Permission.VIEW_SCHEDULE,
        Permission.BOOK_APPOINTMENTS,
        Permission.RECORD_REFILLS,
        Permission.RECORD_VITALS,
        Permission.VIEW_ALERTS,
        Permission.LOG_CONTACTS,
        Permission.VIEW_AUDIT,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.NURSE: _NURSE,
    Role.CLINICIAN: _NURSE
    | {
        Permission.RECORD_SCREENING_RESPONSE,
        Permission.CHANGE_PROGRAM_BEYOND_BOUNDS,
        Permission.OVERRIDE,
    },
    Role.STAFF: frozenset(
        {
            Permission.VIEW_PATIENTS,
            Permission.VIEW_SCHEDULE,
            Permission.BOOK_APPOINTMENTS,
            Permission.VIEW_ALERTS,
            Permission.LOG_CONTACTS,
        }
    ),
    Role.ADMIN: frozenset(
        {
            Permission.MANAGE_USERS,
            Permission.MANAGE_SETTINGS,
            Permission.MANAGE_CATALOGS,
            Permission.VIEW_AUDIT,
        }
    ),
}


def can(actor: Actor, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[actor.role]


def require(actor: Actor, permission: Permission) -> None:
    if not can(actor, permission):
        raise PermissionDenied(
            f"{actor.full_name} ({actor.role.label}) may not {permission.value}."
        )
