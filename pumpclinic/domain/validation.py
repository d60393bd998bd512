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
    elif len(value) > max_length:
        errors.append(
            FieldError(field, f"{label} must be at most {max_length} characters ({len(value)}).")
        )


def limit_text(
    errors: list[FieldError], field: str, label: str, value: str, max_length: int
) -> None:
    if len(value) > max_length:
        errors.append(
            FieldError(field, f"{label} must be at most {max_length} characters ({len(value)}).")
        )


def require_int_range(
    errors: list[FieldError], field: str, label: str, value: int, low: int, high: int
) -> None:
    if not low <= value <= high:
        errors.append(FieldError(field, f"{label} must be between {low} and {high} ({value})."))
