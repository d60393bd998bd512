"""Errors a user can act on. Anything else escaping a service is a bug."""

from __future__ import annotations

from collections.abc import Sequence

from pumpclinic.domain.validation import FieldError


class ServiceError(Exception):
    """A problem the user can understand and fix; ``str()`` is the message to show."""


class ValidationFailed(ServiceError):
    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(e.message for e in self.errors))

    def for_field(self, field: str) -> list[str]:
        return [e.message for e in self.errors if e.field == field]


class PermissionDenied(ServiceError):
    pass


class NotFound(ServiceError):
    pass


class AuthenticationFailed(ServiceError):
    pass


class StaleRecord(ServiceError):
    """Someone else saved the record since it was read; nothing was written."""


class DatabaseUnavailable(ServiceError):
    pass
