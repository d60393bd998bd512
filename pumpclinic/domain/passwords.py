"""Password and username rules (hashing itself is done by the services with argon2)."""

from __future__ import annotations

import re

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256
USERNAME_PATTERN = re.compile(r"^[a-z][a-z0-9._-]{1,31}$")
MAX_FAILED_LOGINS = 5
LOCKOUT_MINUTES = 5


def username_problem(username: str) -> str | None:
    if not USERNAME_PATTERN.match(username):
        return (
            "Username must be 2 to 32 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter."
        )
    return None


def password_problem(password: str, username: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Password must be at least {MIN_PASSWORD_LENGTH} characters ({len(password)})."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Password must be at most {MAX_PASSWORD_LENGTH} characters."
    if password.strip().lower() == username.strip().lower():
        return "Password must not be the username."
    if password.isdigit() or password.isalpha():
        return "Password must mix letters with digits or symbols."
    return None
