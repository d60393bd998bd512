from __future__ import annotations

import pytest
from sqlalchemy import select

from pumpclinic.db.models import AuditEntry, User
from pumpclinic.domain.enums import Role
from pumpclinic.services.errors import AuthenticationFailed, PermissionDenied, ValidationFailed
from tests.conftest import PASSWORDS


def test_a_new_database_needs_its_first_admin(services) -> None:
    assert services.users.needs_first_admin()
    actor = services.users.create_first_admin("Admin", "Ada Admin", "admin-pass-1", "admin-pass-1")
    assert actor.role is Role.ADMIN
    assert actor.username == "admin"
    assert not services.users.needs_first_admin()


def test_only_one_first_admin(services, admin) -> None:
    with pytest.raises(ValidationFailed, match="already exists"):
        services.users.create_first_admin("other", "Other", "other-pass-1", "other-pass-1")


def test_first_admin_validation_names_fields(services) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.users.create_first_admin("A b", "", "short", "different")
    fields = {e.field for e in caught.value.errors}
    assert fields == {"username", "full_name", "password", "confirm"}
    assert services.users.needs_first_admin()


def test_passwords_are_stored_as_argon2_hashes(services, admin) -> None:
    with services.context.unit_of_work() as session:
        stored = session.scalar(select(User.password_hash).where(User.username == "admin"))
    assert stored.startswith("$argon2")
    assert PASSWORDS[Role.ADMIN] not in stored


def test_wrong_password_is_refused_and_audited(services, admin) -> None:
    with pytest.raises(AuthenticationFailed, match="wrong password"):
        services.users.authenticate("admin", "nope-nope-1")
    with services.context.unit_of_work() as session:
        actions = list(session.scalars(select(AuditEntry.action)))
    assert "login-failed" in actions


def test_five_failures_lock_the_account_for_five_minutes(services, admin, clock) -> None:
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            services.users.authenticate("admin", "wrong-pass-1")
    with pytest.raises(AuthenticationFailed, match="locked"):
        services.users.authenticate("admin", PASSWORDS[Role.ADMIN])
    clock.advance(minutes=4, seconds=59)
    with pytest.raises(AuthenticationFailed, match="locked"):
        services.users.authenticate("admin", PASSWORDS[Role.ADMIN])
    clock.advance(seconds=2)
    assert services.users.authenticate("admin", PASSWORDS[Role.ADMIN]).role is Role.ADMIN


def test_admin_creates_users_who_must_change_their_password(services, admin) -> None:
    row = services.users.create_user(admin, "nina", "Nina Nurse", Role.NURSE, "nurse-pass-1")
    assert row.role is Role.NURSE and row.must_change_password
    nurse = services.users.authenticate("nina", "nurse-pass-1")
    assert nurse.must_change_password
    changed = services.users.change_password(nurse, "nurse-pass-1", "new-pass-22", "new-pass-22")
    assert not changed.must_change_password
    with pytest.raises(AuthenticationFailed):
        services.users.authenticate("nina", "nurse-pass-1")
    assert services.users.authenticate("nina", "new-pass-22").role is Role.NURSE


def test_username_must_be_unique(services, admin) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.users.create_user(admin, "admin", "Another", Role.NURSE, "nurse-pass-1")
    assert caught.value.for_field("username") == ["Username 'admin' is already taken."]


@pytest.mark.parametrize("role_fixture", ["nurse", "clinician", "staff"])
def test_only_admins_manage_users(services, request, role_fixture: str) -> None:
    actor = request.getfixturevalue(role_fixture)
    with pytest.raises(PermissionDenied):
        services.users.create_user(actor, "zed", "Zed", Role.NURSE, "zed-pass-11")
    with pytest.raises(PermissionDenied):
        services.users.list_users(actor)


def test_deactivated_users_cannot_sign_in(services, admin, nurse) -> None:
    services.users.set_active(admin, nurse.user_id, False)
    with pytest.raises(AuthenticationFailed):
        services.users.authenticate("nina", PASSWORDS[Role.NURSE])
    services.users.set_active(admin, nurse.user_id, True)
    assert services.users.authenticate("nina", PASSWORDS[Role.NURSE]).user_id == nurse.user_id


def test_admin_cannot_deactivate_self(services, admin) -> None:
    with pytest.raises(ValidationFailed, match="your own account"):
        services.users.set_active(admin, admin.user_id, False)


def test_reset_password_unlocks_and_forces_a_change(services, admin, nurse) -> None:
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            services.users.authenticate("nina", "bad-pass-11")
    services.users.reset_password(admin, nurse.user_id, "temp-pass-77")
    actor = services.users.authenticate("nina", "temp-pass-77")
    assert actor.must_change_password


def test_audit_never_holds_password_hashes(services, admin, nurse) -> None:
    with services.context.unit_of_work() as session:
        texts = [
            (e.before_json or "") + (e.after_json or "")
            for e in session.scalars(select(AuditEntry))
        ]
    assert texts
    assert not any("argon2" in t or "password_hash" in t for t in texts)
