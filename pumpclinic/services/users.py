"""Accounts: the first administrator, signing in, passwords, and user management."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pumpclinic.db.models import User
from pumpclinic.domain.enums import AuditAction, Role
from pumpclinic.domain.passwords import (
    LOCKOUT_MINUTES,
    MAX_FAILED_LOGINS,
    password_problem,
    username_problem,
)
from pumpclinic.domain.validation import FieldError, require_text
from pumpclinic.services import audit
from pumpclinic.services.context import Actor, ServiceContext
from pumpclinic.services.errors import AuthenticationFailed, NotFound, ValidationFailed
from pumpclinic.services.permissions import Permission, require

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2 hash of ``password`` (salted: two hashes of one password differ)."""
    return _hasher.hash(password)


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    username: str
    full_name: str
    role: Role
    active: bool
    locked_until: dt.datetime | None
    last_login_at: dt.datetime | None
    must_change_password: bool


def _actor(user: User) -> Actor:
    return Actor(
        user_id=user.id,
        username=user.username,
        full_name=user.full_name,
        role=Role(user.role),
        must_change_password=user.must_change_password,
    )


def _row(user: User) -> UserRow:
    return UserRow(
        id=user.id,
        username=user.username,
        full_name=user.full_name,
        role=Role(user.role),
        active=user.active,
        locked_until=user.locked_until,
        last_login_at=user.last_login_at,
        must_change_password=user.must_change_password,
    )


def _account_errors(
    username: str, full_name: str, password: str, confirm: str | None
) -> list[FieldError]:
    errors: list[FieldError] = []
    problem = username_problem(username)
    if problem:
        errors.append(FieldError("username", problem))
    require_text(errors, "full_name", "Full name", full_name, 200)
    problem = password_problem(password, username)
    if problem:
        errors.append(FieldError("password", problem))
    if confirm is not None and confirm != password:
        errors.append(FieldError("confirm", "The two passwords do not match."))
    return errors


class UserService:
    def __init__(self, context: ServiceContext) -> None:
        self._ctx = context

    # --- first run and sign-in ----------------------------------------------------------

    def needs_first_admin(self) -> bool:
        with self._ctx.unit_of_work() as session:
            return session.scalar(select(func.count(User.id))) == 0

    def create_first_admin(
        self, username: str, full_name: str, password: str, confirm: str
    ) -> Actor:
        username = username.strip().lower()
        errors = _account_errors(username, full_name.strip(), password, confirm)
        if errors:
            raise ValidationFailed(errors)
        with self._ctx.unit_of_work() as session:
            if session.scalar(select(func.count(User.id))):
                raise ValidationFailed(
                    [FieldError("username", "An administrator already exists: sign in instead.")]
                )
            user = self._new_user(session, username, full_name.strip(), Role.ADMIN, password)
            actor = _actor(user)
            audit.record(
                session,
                actor=actor,
                at=self._ctx.now(),
                action=AuditAction.CREATE,
                entity="user",
                entity_id=user.id,
                after=audit.snapshot(user),
            )
        return actor

    def authenticate(self, username: str, password: str) -> Actor:
        """The actor for valid credentials; 5 failures lock the account for 5 minutes."""
        # A NUL cannot be in a username nor in a query or the audit on PostgreSQL: shown as
        # U+FFFD it matches no account and is still audited as the failed attempt it is.
        username = username.strip().lower().replace("\x00", "\ufffd")
        now = self._ctx.now()
        refused = AuthenticationFailed("Unknown username or wrong password.")
        with self._ctx.unit_of_work() as session:
            user = session.scalar(select(User).where(User.username == username))
            if user is None or not user.active:
                # Same work and same message for unknown and inactive accounts.
                _hasher.hash(password)
                audit.record(
                    session,
                    actor=None,
                    username=username[:64],
                    at=now,
                    action=AuditAction.LOGIN_FAILED,
                    entity="user",
                    entity_id=user.id if user else "",
                )
                raise_after = refused
            elif user.locked_until is not None and user.locked_until > now:
                minutes = max(1, round((user.locked_until - now).total_seconds() / 60))
                raise_after = AuthenticationFailed(
                    f"This account is locked after {MAX_FAILED_LOGINS} failed sign-ins. "
                    f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
                )
            elif not _verify(user.password_hash, password):
                user.failed_login_count += 1
                if user.failed_login_count >= MAX_FAILED_LOGINS:
                    user.locked_until = now + dt.timedelta(minutes=LOCKOUT_MINUTES)
                    user.failed_login_count = 0
                audit.record(
                    session,
                    actor=None,
                    username=username,
                    at=now,
                    action=AuditAction.LOGIN_FAILED,
                    entity="user",
                    entity_id=user.id,
                )
                raise_after = refused
            else:
                user.failed_login_count = 0
                user.locked_until = None
                user.last_login_at = now
                if _hasher.check_needs_rehash(user.password_hash):
                    user.password_hash = _hasher.hash(password)
                actor = _actor(user)
                audit.record(
                    session,
                    actor=actor,
                    at=now,
                    action=AuditAction.LOGIN,
                    entity="user",
                    entity_id=user.id,
                )
                return actor
        # Raised after the unit of work committed, so the failed attempt is counted.
        raise raise_after

    def change_password(self, actor: Actor, old: str, new: str, confirm: str) -> Actor:
        with self._ctx.unit_of_work() as session:
            user = session.get(User, actor.user_id)
            if user is None:
                raise NotFound("Your account no longer exists.")
            errors: list[FieldError] = []
            if not _verify(user.password_hash, old):
                errors.append(FieldError("old_password", "Current password is wrong."))
            problem = password_problem(new, user.username)
            if problem:
                errors.append(FieldError("password", problem))
            elif new == old:
                errors.append(FieldError("password", "New password must differ from the old."))
            if new != confirm:
                errors.append(FieldError("confirm", "The two passwords do not match."))
            if errors:
                raise ValidationFailed(errors)
            user.password_hash = _hasher.hash(new)
            user.must_change_password = False
            audit.record(
                session,
                actor=actor,
                at=self._ctx.now(),
                action=AuditAction.UPDATE,
                entity="user",
                entity_id=user.id,
                after={"password": "changed"},
            )
            return _actor(user)

    # --- administration -----------------------------------------------------------------

    def list_users(self, actor: Actor) -> list[UserRow]:
        require(actor, Permission.MANAGE_USERS)
        with self._ctx.unit_of_work() as session:
            users = session.scalars(select(User).order_by(User.active.desc(), User.username))
            return [_row(u) for u in users]

    def create_user(
        self, actor: Actor, username: str, full_name: str, role: Role, password: str
    ) -> UserRow:
        require(actor, Permission.MANAGE_USERS)
        username = username.strip().lower()
        errors = _account_errors(username, full_name.strip(), password, None)
        with self._ctx.unit_of_work() as session:
            # Look an invalid username up never: it cannot be taken, and PostgreSQL refuses a
            # NUL even in a query.
            valid = not any(e.field == "username" for e in errors)
            taken = (
                session.scalar(select(User.id).where(User.username == username)) if valid else None
            )
            if taken is not None:
                errors.append(FieldError("username", f"Username '{username}' is already taken."))
            if errors:
                raise ValidationFailed(errors)
            user = self._new_user(session, username, full_name.strip(), role, password)
            # The administrator chose this password: the user must replace it.
            user.must_change_password = True
            audit.record(
                session,
                actor=actor,
                at=self._ctx.now(),
                action=AuditAction.CREATE,
                entity="user",
                entity_id=user.id,
                after=audit.snapshot(user),
            )
            return _row(user)

    def set_active(self, actor: Actor, user_id: int, active: bool) -> UserRow:
        require(actor, Permission.MANAGE_USERS)
        with self._ctx.unit_of_work() as session:
            user = self._get(session, user_id)
            if not active and user.id == actor.user_id:
                raise ValidationFailed(
                    [FieldError("active", "You cannot deactivate your own account.")]
                )
            before = audit.snapshot(user)
            user.active = active
            audit.record(
                session,
                actor=actor,
                at=self._ctx.now(),
                action=AuditAction.UPDATE,
                entity="user",
                entity_id=user.id,
                before=before,
                after=audit.snapshot(user),
            )
            return _row(user)

    def reset_password(self, actor: Actor, user_id: int, new_password: str) -> UserRow:
        """Set a temporary password; the user must change it at the next sign-in."""
        require(actor, Permission.MANAGE_USERS)
        with self._ctx.unit_of_work() as session:
            user = self._get(session, user_id)
            problem = password_problem(new_password, user.username)
            if problem:
                raise ValidationFailed([FieldError("password", problem)])
            user.password_hash = _hasher.hash(new_password)
            user.must_change_password = True
            user.failed_login_count = 0
            user.locked_until = None
            audit.record(
                session,
                actor=actor,
                at=self._ctx.now(),
                action=AuditAction.UPDATE,
                entity="user",
                entity_id=user.id,
                after={"password": "reset by administrator"},
            )
            return _row(user)

    # --- helpers ------------------------------------------------------------------------

    def _get(self, session: Session, user_id: int) -> User:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(f"User {user_id} does not exist.")
        return user

    def _new_user(
        self, session: Session, username: str, full_name: str, role: Role, password: str
    ) -> User:
        user = User(
            username=username,
            full_name=full_name,
            role=role.value,
            password_hash=_hasher.hash(password),
            active=True,
            must_change_password=False,
            failed_login_count=0,
            created_at=self._ctx.now(),
        )
        session.add(user)
        session.flush()
        return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
