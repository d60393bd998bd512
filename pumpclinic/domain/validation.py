"""Field-level validation results shared by every form and service."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """``field`` is the form field's name; ``message`` names the field and the limit."""

    field: str
    message: str


def require_text(
    errors: list[FieldError], field: str, label: str, value: str, max_length: int
) -> None:
    if not value.strip():
        errors.append(FieldError(field, f"{label} is required."))
    else:
        limit_text(errors, field, label, value, max_length)


def limit_text(
    errors: list[FieldError], field: str, label: str, value: str, max_length: int
) -> None:
    if len(value) > max_length:
        errors.append(
            FieldError(field, f"{label} must be at most {max_length} characters ({len(value)}).")
        )
    elif "\x00" in value:
        # Never typed by a person; PostgreSQL cannot store it in a text column.
        errors.append(FieldError(field, f"{label} must not contain a NUL character."))


def require_int_range(
    errors: list[FieldError], field: str, label: str, value: int, low: int, high: int
) -> None:
    if not low <= value <= high:
        errors.append(FieldError(field, f"{label} must be between {low} and {high} ({value})."))
