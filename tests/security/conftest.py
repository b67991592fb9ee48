"""Fixtures for the security tests: a manual clock and a SecurityService with cheap argon2 cost."""
from __future__ import annotations

import pytest

from app.core.clock import ManualClock
from app.security.passwords import HashParams
from app.security.roles import Role
from app.security.service import SecurityService, SecuritySettings
from app.security.sessions import SessionPolicy
from app.security.users import LockoutPolicy
from security_accounts import PASSWORDS

CHEAP = SecuritySettings(hash_params=HashParams.cheap(), lockout=LockoutPolicy(max_failures=5, lockout_s=300),
                         session=SessionPolicy(idle_lock_s=600, reauth_window_s=120))

@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()

@pytest.fixture
def service(tmp_path, clock):
    svc = SecurityService(tmp_path, clock, CHEAP)
    yield svc
    svc.close()

@pytest.fixture
def staffed(service):
    """A service with one user per role: admin, operator, engineer, viewer (password PASSWORDS[role])."""
    service.create_first_admin("admin", PASSWORDS[Role.ADMIN], "test")
    admin = service.login("admin", PASSWORDS[Role.ADMIN], "test")
    for role in (Role.VIEWER, Role.OPERATOR, Role.ENGINEER):
        service.add_user(admin, role.value, role, PASSWORDS[role])
    service.logout(admin)
    return service
