"""Accounts: no default password, first admin, setup file, policy, lockout and its expiry, audit."""
from __future__ import annotations

import os
import sqlite3

import pytest

from app.core.errors import UserError
from app.security.passwords import PasswordPolicyError
from app.security.roles import Role
from app.security.sbo import CommandRefused
from app.security.users import AuthenticationError

from security_accounts import PASSWORDS

GOOD = "a long enough passphrase"


def actions(service, **match):
    return [r for r in service.audit.records()
            if all(getattr(r, k) == v for k, v in match.items())]


def test_a_new_installation_has_no_account_and_no_default_password(service):
    assert service.needs_setup()
    for user, pw in (("admin", "admin"), ("admin", ""), ("root", "root")):
        with pytest.raises(AuthenticationError):
            service.login(user, pw, "test")


def test_first_admin_from_a_typed_password_then_setup_is_closed(service):
    user = service.create_first_admin("alice", GOOD, "console")
    assert user.role is Role.ADMIN and not service.needs_setup()
    with pytest.raises(UserError, match="already exists"):
        service.create_first_admin("mallory", GOOD, "console")
    assert service.login("alice", GOOD, "console").role is Role.ADMIN
    assert [r.action for r in service.audit.records()] == ["user.create", "login"]


def test_first_admin_from_a_setup_file_consumes_the_file(service, tmp_path):
    setup = tmp_path / "first-admin.toml"
    setup.write_text(f'username = "alice"\npassword = "{GOOD}"\n')
    os.chmod(setup, 0o600)
    service.consume_setup_file(setup, "console")
    assert not setup.exists()
    assert service.login("alice", GOOD, "console").username == "alice"


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_setup_file_others_could_read_is_refused_and_deleted(service, tmp_path):
    setup = tmp_path / "first-admin.toml"
    setup.write_text(f'username = "alice"\npassword = "{GOOD}"\n')
    os.chmod(setup, 0o644)
    with pytest.raises(UserError, match="readable by others"):
        service.consume_setup_file(setup, "console")
    assert not setup.exists() and service.needs_setup()


@pytest.mark.parametrize("password, rule", [("short pw 1", "too short"), ("alice's long password", "user name"),
                                            ("aaaaaaaaaaaaaaaa", "different characters")])
def test_password_policy_names_the_broken_rule(service, password, rule):
    with pytest.raises(PasswordPolicyError, match=rule):
        service.create_first_admin("alice", password, "console")
    assert service.needs_setup()


def test_passwords_are_stored_as_argon2id_hashes_only(service, tmp_path):
    service.create_first_admin("alice", GOOD, "console")
    service.login("alice", GOOD, "console")
    raw = (tmp_path / "users.sqlite").read_bytes() + (tmp_path / "audit.sqlite").read_bytes()
    assert GOOD.encode() not in raw
    with sqlite3.connect(tmp_path / "users.sqlite") as db:
        assert db.execute("SELECT hash FROM users").fetchone()[0].startswith("$argon2id$")
    if os.name == "posix":
        assert (tmp_path / "users.sqlite").stat().st_mode & 0o077 == 0


def test_five_failures_lock_the_account_until_the_lockout_expires(staffed, clock):
    for n in range(4):
        with pytest.raises(AuthenticationError) as exc:
            staffed.login("operator", "wrong password!!", "console")
        assert not exc.value.locked_out
    with pytest.raises(AuthenticationError, match="locked for 300 s") as exc:
        staffed.login("operator", "wrong password!!", "console")
    assert exc.value.locked_out
    with pytest.raises(AuthenticationError, match="locked"):               # right password, still locked
        staffed.login("operator", PASSWORDS[Role.OPERATOR], "console")
    clock.advance(299)
    with pytest.raises(AuthenticationError, match="locked"):
        staffed.login("operator", PASSWORDS[Role.OPERATOR], "console")
    clock.advance(2)
    assert staffed.login("operator", PASSWORDS[Role.OPERATOR], "console").role is Role.OPERATOR
    results = [r.result for r in actions(staffed, action="login", user="operator")]
    assert results == ["failed"] * 4 + ["lockout", "lockout", "lockout", "ok"]


def test_a_success_resets_the_failure_count(staffed):
    for _ in range(4):
        with pytest.raises(AuthenticationError):
            staffed.login("viewer", "wrong password!!", "console")
    staffed.login("viewer", PASSWORDS[Role.VIEWER], "console")
    for _ in range(4):
        with pytest.raises(AuthenticationError):
            staffed.login("viewer", "wrong password!!", "console")
    assert staffed.login("viewer", PASSWORDS[Role.VIEWER], "console")


def test_admin_unlocks_a_locked_out_account(staffed):
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            staffed.login("viewer", "wrong password!!", "console")
    admin = staffed.login("admin", PASSWORDS[Role.ADMIN], "console")
    staffed.unlock_user(admin, "viewer")
    assert staffed.login("viewer", PASSWORDS[Role.VIEWER], "console")


def test_failed_login_does_not_reveal_whether_the_user_exists(staffed):
    messages = []
    for user in ("operator", "nosuchuser"):
        with pytest.raises(AuthenticationError) as exc:
            staffed.login(user, "wrong password!!", "console")
        messages.append(str(exc.value))
    assert messages[0] == messages[1]
    assert [r.detail for r in actions(staffed, action="login", result="failed")] == \
        ["wrong password (1 of 5)", "unknown user"]


def test_only_an_admin_manages_users_and_every_change_is_audited(staffed):
    engineer = staffed.login("engineer", PASSWORDS[Role.ENGINEER], "console")
    with pytest.raises(CommandRefused, match="may not manage_users"):
        staffed.add_user(engineer, "eve", Role.ADMIN, GOOD)
    admin = staffed.login("admin", PASSWORDS[Role.ADMIN], "console")
    staffed.add_user(admin, "bob", Role.VIEWER, GOOD)
    staffed.set_role(admin, "bob", Role.OPERATOR)
    staffed.set_enabled(admin, "bob", False)
    with pytest.raises(AuthenticationError, match="disabled"):
        staffed.login("bob", GOOD, "console")
    with pytest.raises(UserError, match="already exists"):
        staffed.add_user(admin, "bob", Role.VIEWER, GOOD)
    trail = [(r.action, r.target, r.user, r.old_value, r.new_value, r.result)
             for r in staffed.audit.records() if r.action.startswith("user.") and r.target in ("eve", "bob")]
    assert trail == [
        ("user.add", "eve", "engineer", "null", '{"role":"admin"}', "refused"),
        ("user.add", "bob", "admin", "null", '{"role":"viewer"}', "ok"),
        ("user.role", "bob", "admin", '"viewer"', '"operator"', "ok"),
        ("user.enabled", "bob", "admin", "true", "false", "ok"),
        ("user.add", "bob", "admin", "null", '{"role":"viewer"}', "failed"),
    ]


def test_user_management_needs_a_recent_password(staffed, clock):
    admin = staffed.login("admin", PASSWORDS[Role.ADMIN], "console")
    clock.advance(121)
    admin = staffed.touch(admin)
    with pytest.raises(CommandRefused) as exc:
        staffed.add_user(admin, "bob", Role.VIEWER, GOOD)
    assert exc.value.needs_reauth
    admin = staffed.reauthenticate(admin, PASSWORDS[Role.ADMIN])
    staffed.add_user(admin, "bob", Role.VIEWER, GOOD)


def test_the_last_enabled_admin_cannot_be_demoted_or_disabled(staffed):
    admin = staffed.login("admin", PASSWORDS[Role.ADMIN], "console")
    with pytest.raises(UserError, match="last enabled admin"):
        staffed.set_role(admin, "admin", Role.OPERATOR)
    with pytest.raises(UserError, match="last enabled admin"):
        staffed.set_enabled(admin, "admin", False)
    assert staffed.users.get("admin").role is Role.ADMIN and staffed.users.get("admin").enabled


def test_users_change_their_own_password_with_the_current_one(staffed):
    op = staffed.login("operator", PASSWORDS[Role.OPERATOR], "console")
    with pytest.raises(AuthenticationError):
        staffed.change_own_password(op, "not my password", GOOD)
    staffed.change_own_password(op, PASSWORDS[Role.OPERATOR], GOOD)
    assert staffed.login("operator", GOOD, "console")
