"""Sessions through the service: login/logout, idle lock, unlock, audited actions, emergency stop."""
from __future__ import annotations

import pytest

from app.security.roles import CommandKind as K, Role
from app.security.sbo import CommandRefused
from app.security.users import AuthenticationError

from security_accounts import PASSWORDS


def test_login_and_logout_are_audited_with_user_and_source(staffed):
    s = staffed.login("operator", PASSWORDS[Role.OPERATOR], "console@hmi1")
    staffed.logout(s)
    trail = [(r.action, r.user, r.source, r.result) for r in staffed.audit.records()][-2:]
    assert trail == [("login", "operator", "console@hmi1", "ok"), ("logout", "operator", "console@hmi1", "ok")]


def test_idle_session_locks_is_audited_once_and_unlocks_with_the_password(staffed, clock):
    s = staffed.login("operator", PASSWORDS[Role.OPERATOR], "console")
    clock.advance(601)
    assert not staffed.authorise(s, K.SETPOINT).allowed
    s = staffed.check_idle(s)
    s = staffed.check_idle(s)
    with pytest.raises(AuthenticationError):
        staffed.reauthenticate(s, "wrong password!!")
    s = staffed.reauthenticate(s, PASSWORDS[Role.OPERATOR])
    assert staffed.authorise(s, K.SETPOINT).allowed
    trail = [(r.action, r.result) for r in staffed.audit.records() if r.user == "operator"]
    assert trail == [("login", "ok"), ("session.lock", "ok"), ("session.unlock", "failed"),
                     ("session.unlock", "ok")]


def test_reauthentication_picks_up_a_role_changed_by_an_admin(staffed):
    op = staffed.login("operator", PASSWORDS[Role.OPERATOR], "console")
    admin = staffed.login("admin", PASSWORDS[Role.ADMIN], "console")
    staffed.set_role(admin, "operator", Role.VIEWER)
    op = staffed.reauthenticate(op, PASSWORDS[Role.OPERATOR])
    assert op.role is Role.VIEWER and not staffed.authorise(op, K.SETPOINT).allowed


def test_perform_applies_and_audits_an_allowed_action(staffed):
    eng = staffed.login("engineer", PASSWORDS[Role.ENGINEER], "console")
    settings = {"soc_floor_pct": 5.0}
    staffed.perform(eng, K.CHANGE_SETTINGS, "setting.change", "soc_floor_pct",
                    lambda: settings.update(soc_floor_pct=8.0), old_value=5.0, new_value=8.0)
    assert settings == {"soc_floor_pct": 8.0}
    r = staffed.audit.records()[-1]
    assert (r.action, r.target, r.user, r.old_value, r.new_value, r.result) == \
        ("setting.change", "soc_floor_pct", "engineer", "5.0", "8.0", "ok")


def test_perform_refuses_without_applying_and_audits_the_refusal(staffed):
    viewer = staffed.login("viewer", PASSWORDS[Role.VIEWER], "console")
    applied = []
    with pytest.raises(CommandRefused, match="viewer may not ack_alarm"):
        staffed.perform(viewer, K.ACK_ALARM, "alarm.ack", "site.bess1.rack01.cell_overvoltage",
                        lambda: applied.append(1))
    assert applied == [] and staffed.audit.records()[-1].result == "refused"


def test_perform_audits_a_failing_action_as_failed(staffed):
    op = staffed.login("operator", PASSWORDS[Role.OPERATOR], "console")

    def shelve():
        raise RuntimeError("alarm not active")
    with pytest.raises(RuntimeError):
        staffed.perform(op, K.SHELVE_ALARM, "alarm.shelve", "A1", shelve)
    r = staffed.audit.records()[-1]
    assert (r.action, r.result, r.detail) == ("alarm.shelve", "failed", "alarm not active")


def test_emergency_stop_while_logged_out_runs_and_is_audited(staffed):
    stopped = []
    staffed.emergency_stop(None, "site", "console", lambda: stopped.append("site"))
    assert stopped == ["site"]
    r = staffed.audit.records()[-1]
    assert (r.action, r.target, r.user, r.source, r.result) == ("emergency_stop", "site", "(nobody)", "console", "ok")


def test_emergency_stop_with_a_locked_session(staffed, clock):
    s = staffed.check_idle(staffed.login("viewer", PASSWORDS[Role.VIEWER], "console"))
    clock.advance(10_000)
    s = staffed.check_idle(s)
    assert staffed.authorise(s, K.EMERGENCY_STOP).allowed
    staffed.emergency_stop(s, "site.pcs1", "console", lambda: None)
    assert staffed.audit.records()[-1].user == "viewer"
    assert staffed.audit.verify().ok
