"""Login sessions as immutable values: who, which role, when last active, when last authenticated.

Times are `clock.monotonic()` seconds (a wall-clock jump must not lock or unlock a console). A session
never changes in place: `touched`, `locked`, `reauthenticated` return a new one, so a session can be
handed from the GUI thread to any other thread safely.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace

from app.security.roles import Role


@dataclass(frozen=True)
class SessionPolicy:
    """idle_lock_s: inactivity that locks the session; reauth_window_s: how recent a password entry must
    be for a critical command (roles.CRITICAL)."""

    idle_lock_s: float = 600.0
    reauth_window_s: float = 120.0

    def __post_init__(self) -> None:
        if self.idle_lock_s <= 0 or self.reauth_window_s <= 0:
            raise ValueError("idle_lock_s and reauth_window_s must be positive")


@dataclass(frozen=True)
class Session:
    username: str
    role: Role
    source: str                      # where the user sits: "console", "gui@host", "remote:10.0.0.5"
    started: float
    last_activity: float
    last_auth: float
    policy: SessionPolicy = SessionPolicy()
    locked_flag: bool = False
    id: str = field(default_factory=lambda: secrets.token_hex(8))

    @classmethod
    def start(cls, username: str, role: Role, source: str, now: float, policy: SessionPolicy) -> "Session":
        return cls(username, role, source, now, now, now, policy)

    def is_locked(self, now: float) -> bool:
        """Locked explicitly or idle for longer than the policy allows."""
        return self.locked_flag or now - self.last_activity > self.policy.idle_lock_s

    def auth_fresh(self, now: float) -> bool:
        """True if the password was entered within the re-authentication window."""
        return now - self.last_auth <= self.policy.reauth_window_s

    def touched(self, now: float) -> "Session":
        """The same session after user activity (no effect once locked: unlocking needs the password)."""
        return self if self.is_locked(now) else replace(self, last_activity=now)

    def locked(self) -> "Session":
        return replace(self, locked_flag=True)

    def reauthenticated(self, now: float, role: Role) -> "Session":
        """After a correct password: unlocked, fresh for critical commands, role re-read from the store."""
        return replace(self, role=role, last_activity=now, last_auth=now, locked_flag=False)
