"""The single authorisation decision used by every command path (GUI, SBO, remote)."""
from __future__ import annotations

from dataclasses import dataclass

from app.security.roles import CRITICAL, CommandKind, permitted
from app.security.sessions import Session


@dataclass(frozen=True)
class Decision:
    """allowed: go ahead. needs_reauth: refused only because the password must be entered (again)."""

    allowed: bool
    reason: str
    needs_reauth: bool = False


def authorise(session: Session | None, kind: CommandKind, now: float) -> Decision:
    """May this session do `kind` now (`now` = clock.monotonic())? Pure; any thread.

    Emergency stop is always allowed: with no session, a locked session and any role.
    """
    if kind is CommandKind.EMERGENCY_STOP:
        return Decision(True, "emergency stop is always allowed")
    if session is None:
        return Decision(False, f"log in to {kind.value}")
    if session.is_locked(now):
        return Decision(False, f"session of '{session.username}' is locked: enter the password to unlock",
                        needs_reauth=True)
    if not permitted(session.role, kind):
        return Decision(False, f"role {session.role.value} may not {kind.value}")
    if kind in CRITICAL and not session.auth_fresh(now):
        return Decision(False, f"{kind.value} is critical: re-enter the password of '{session.username}'",
                        needs_reauth=True)
    return Decision(True, f"{session.role.value} may {kind.value}")
