"""The permission matrix, session lock, re-authentication window and emergency stop (pure)."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from app.security.authorise import authorise
from app.security.roles import CRITICAL, CommandKind as K, Role
from app.security.sessions import Session, SessionPolicy

# Written out by hand (not derived from roles.PERMISSIONS) so that a change to the matrix fails here.
ALLOWED = {
    Role.VIEWER: {"view", "emergency_stop"},
    Role.OPERATOR: {"view", "ack_alarm", "shelve_alarm", "setpoint", "mode", "contactor", "reset_trip",
                    "emergency_stop"},
    Role.ENGINEER: {"view", "ack_alarm", "shelve_alarm", "setpoint", "mode", "contactor", "reset_trip",
                    "emergency_stop", "balancing", "force_point", "alarm_inhibit", "change_settings",
                    "simulate_fault"},
    Role.ADMIN: {"view", "manage_users", "emergency_stop"},
}
POLICY = SessionPolicy(idle_lock_s=300, reauth_window_s=60)
T0 = 1000.0


def fresh(role: Role) -> Session:
    return Session.start("u", role, "test", T0, POLICY)


@pytest.mark.parametrize("kind", list(K), ids=lambda k: k.value)
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_matrix_allows_exactly_the_listed_kinds(role, kind):
    decision = authorise(fresh(role), kind, T0 + 1)
    assert decision.allowed is (kind.value in ALLOWED[role]), decision.reason
    if not decision.allowed:
        assert role.value in decision.reason and not decision.needs_reauth


def test_admin_does_not_control_the_process():
    admin = fresh(Role.ADMIN)
    for kind in (K.SETPOINT, K.MODE, K.CONTACTOR, K.RESET_TRIP, K.FORCE_POINT, K.BALANCING):
        assert not authorise(admin, kind, T0).allowed


@pytest.mark.parametrize("kind", sorted(CRITICAL, key=lambda k: k.value), ids=lambda k: k.value)
def test_critical_kind_needs_a_password_within_the_reauth_window(kind):
    role = Role.ADMIN if kind is K.MANAGE_USERS else Role.ENGINEER
    s = fresh(role)
    assert authorise(s, kind, T0 + 60).allowed
    s = s.touched(T0 + 61)
    stale = authorise(s, kind, T0 + 61)
    assert not stale.allowed and stale.needs_reauth and "re-enter the password" in stale.reason
    assert authorise(s.reauthenticated(T0 + 62, role), kind, T0 + 62).allowed


def test_non_critical_kind_needs_no_reauth():
    s = fresh(Role.OPERATOR).touched(T0 + 250)
    assert authorise(s, K.SETPOINT, T0 + 260).allowed


def test_idle_session_locks_and_a_password_unlocks_it():
    s = fresh(Role.OPERATOR).touched(T0 + 100)
    assert authorise(s, K.VIEW, T0 + 400).allowed
    locked = authorise(s, K.VIEW, T0 + 401)
    assert not locked.allowed and locked.needs_reauth and "locked" in locked.reason
    assert s.touched(T0 + 401) == s                           # activity after the lock does not unlock
    assert authorise(s.reauthenticated(T0 + 402, Role.OPERATOR), K.SETPOINT, T0 + 402).allowed


def test_explicitly_locked_session_refuses_everything_but_emergency_stop():
    s = fresh(Role.ENGINEER).locked()
    assert [k for k in K if authorise(s, k, T0).allowed] == [K.EMERGENCY_STOP]


def test_logged_out_allows_only_emergency_stop():
    assert [k for k in K if authorise(None, k, T0).allowed] == [K.EMERGENCY_STOP]
    assert "log in" in authorise(None, K.VIEW, T0).reason


@given(role=st.sampled_from(list(Role)), locked=st.booleans(), idle=st.floats(0, 1e6),
       since_auth=st.floats(0, 1e6))
def test_emergency_stop_is_always_allowed(role, locked, idle, since_auth):
    s = Session("u", role, "test", 0.0, 0.0, 0.0, POLICY, locked)
    assert authorise(s, K.EMERGENCY_STOP, max(idle, since_auth)).allowed


@given(role=st.sampled_from(list(Role)), kind=st.sampled_from(list(K)), dt=st.floats(0, 1e5))
def test_nothing_outside_the_matrix_is_ever_allowed(role, kind, dt):
    if authorise(fresh(role), kind, T0 + dt).allowed:
        assert kind.value in ALLOWED[role]
