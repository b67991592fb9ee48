"""Select-before-operate (SBO): select -> confirm within the timeout -> caller executes -> result.

A state machine without I/O of its own: every step (select, refusal, confirm, timeout, cancel,
result) is written to the injected audit sink. Called from the GUI thread (select/confirm/cancel) and
from whichever thread completes the command's future (record_result); guarded by a lock.
Emergency stop never goes through SBO: it is executed at once (see SecurityService.emergency_stop).
"""
from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, replace
from typing import Any, Mapping, Protocol, Sequence

from app.core.commands import Command, CommandResult
from app.core.errors import UserError
from app.security.authorise import authorise
from app.security.interlocks import Interlock, check_interlocks
from app.security.roles import CommandKind
from app.security.sessions import Session

DEFAULT_TIMEOUT_S = 15.0


class AuditSink(Protocol):
    def append(self, action: str, target: str = "", *, user: str, source: str, old_value: Any = None,
               new_value: Any = None, result: str = "ok", detail: str = "") -> Any: ...


class CommandRefused(UserError):
    """Not authorised, interlocked, timed out or not selected. `reasons` lists every refusal;
    `needs_reauth` says a password entry would lift it."""

    def __init__(self, reasons: Sequence[str], needs_reauth: bool = False) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = tuple(reasons)
        self.needs_reauth = needs_reauth


@dataclass(frozen=True)
class SboToken:
    """A pending selection. `command.user` is the selecting user."""

    id: str
    command: Command
    kind: CommandKind
    session_id: str
    source: str
    selected_at: float
    expires_at: float
    old_value: Any = None            # the target's value when selected (for the audit trail)
    confirmed: bool = False


class SelectBeforeOperate:
    """One per console. `now` is clock.monotonic() throughout."""

    def __init__(self, audit: AuditSink, interlocks: Sequence[Interlock] = (),
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.audit = audit
        self.interlocks = list(interlocks)
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._tokens: dict[str, SboToken] = {}

    def select(self, command: Command, kind: CommandKind, session: Session | None, now: float,
               values: Mapping[str, Any]) -> SboToken:
        """Authorise and interlock-check `command`; reserve its target. Raises CommandRefused."""
        if kind is CommandKind.EMERGENCY_STOP:
            raise ValueError("emergency stop is executed at once, not through select-before-operate")
        user, source = (session.username, session.source) if session else ("(nobody)", "unknown")
        command = replace(command, user=user)
        with self._lock:
            self._expire(now)
            decision = authorise(session, kind, now)
            reasons = [] if decision.allowed else [decision.reason]
            busy = next((t for t in self._tokens.values() if t.command.target == command.target), None)
            if decision.allowed and busy:
                reasons.append(f"{command.target} is already selected by '{busy.command.user}'")
            if not reasons:
                reasons = check_interlocks(self.interlocks, kind, command, values)
            if reasons:
                self._audit("select", command, kind, source, "refused", "; ".join(reasons))
                raise CommandRefused(reasons, decision.needs_reauth)
            token = SboToken(secrets.token_hex(8), command, kind, session.id, source, now, now + self.timeout_s,
                             values.get(command.target))
            self._tokens[token.id] = token
            self._audit("select", command, kind, source, "selected", old=token.old_value)
        return token

    def confirm(self, token_id: str, session: Session | None, now: float, values: Mapping[str, Any]) -> Command:
        """Operate: the selecting session confirms before the timeout; authorisation and interlocks are
        checked again on fresh values. Returns the Command for the caller to submit."""
        with self._lock:
            token = self._pending(token_id, now)
            if token.confirmed:
                raise CommandRefused([f"{token.command.target}: already confirmed"])
            reasons: list[str] = []
            decision = authorise(session, token.kind, now)
            if session is None or session.id != token.session_id:
                reasons.append(f"{token.command.target}: only the session that selected it can confirm")
            elif not decision.allowed:
                reasons.append(decision.reason)
            else:
                reasons = check_interlocks(self.interlocks, token.kind, token.command, values)
            if reasons:
                self._audit("confirm", token.command, token.kind, token.source, "refused", "; ".join(reasons))
                raise CommandRefused(reasons, decision.needs_reauth)
            self._tokens[token_id] = replace(token, confirmed=True)
            self._audit("confirm", token.command, token.kind, token.source, "confirmed", old=token.old_value)
        return token.command

    def record_result(self, token_id: str, result: CommandResult) -> str:
        """After the caller executed the confirmed command: 'verified' (accepted with read-back),
        'executed' (accepted, no read-back) or 'failed'. Ends the selection."""
        with self._lock:
            token = self._tokens.get(token_id)
            if token is None or not token.confirmed:
                raise ValueError(f"no confirmed selection {token_id!r}")
            del self._tokens[token_id]
            outcome = "failed" if not result.ok else ("executed" if result.readback is None else "verified")
            self._audit("execute", token.command, token.kind, token.source, outcome, result.message,
                        old=token.old_value, readback=result.readback)
        return outcome

    def cancel(self, token_id: str, now: float) -> None:
        """The operator deselects (or the dialog closes) before confirming."""
        with self._lock:
            token = self._pending(token_id, now)
            if token.confirmed:
                raise CommandRefused([f"{token.command.target}: already confirmed, cannot cancel"])
            del self._tokens[token_id]
            self._audit("cancel", token.command, token.kind, token.source, "cancelled")

    def expire(self, now: float) -> list[SboToken]:
        """Drop (and audit) unconfirmed selections past their timeout; call from a GUI timer."""
        with self._lock:
            return self._expire(now)

    def _pending(self, token_id: str, now: float) -> SboToken:
        token = self._tokens.get(token_id)
        if token is not None and not token.confirmed and now > token.expires_at:
            self._expire(now)
            raise CommandRefused([f"{token.command.target}: selection timed out after {self.timeout_s:g} s: "
                                  "select again"])
        if token is None:
            raise CommandRefused(["no such selection: it was confirmed, cancelled or timed out"])
        return token

    def _expire(self, now: float) -> list[SboToken]:
        gone = [t for t in self._tokens.values() if not t.confirmed and now > t.expires_at]
        for t in gone:
            del self._tokens[t.id]
            self._audit("confirm", t.command, t.kind, t.source, "timeout",
                        f"not confirmed within {self.timeout_s:g} s")
        return gone

    def _audit(self, step: str, command: Command, kind: CommandKind, source: str, result: str,
               detail: str = "", old: Any = None, readback: Any = None) -> None:
        new = {"kind": kind.value, "action": command.action, "value": command.value, "id": command.id}
        if step == "execute":
            new["readback"] = readback
        self.audit.append(f"command.{step}", command.target, user=command.user, source=source, old_value=old,
                          new_value=new, result=result, detail=detail or command.reason)
