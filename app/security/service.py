"""SecurityService: the one object the CLI, runtime and GUI use for accounts, sessions, authorisation
and the audit trail of one installation (DATA_DIR/users.sqlite + DATA_DIR/audit.sqlite).

Every login, logout, failed login, lockout, session lock/unlock, user change, authorised action and
emergency stop is audited here; SBO commands are audited by SelectBeforeOperate (`sbo()`).
Called from the GUI thread; safe from any thread (the stores lock, sessions are immutable).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from app.core.clock import Clock
from app.security.audit import AUDIT_FILE, AuditLog
from app.security.authorise import Decision, authorise
from app.security.interlocks import Interlock
from app.security.passwords import HashParams, PasswordPolicy
from app.security.roles import CommandKind, Role
from app.security.sbo import DEFAULT_TIMEOUT_S, CommandRefused, SelectBeforeOperate
from app.security.sessions import Session, SessionPolicy
from app.security.users import USERS_FILE, AuthenticationError, LockoutPolicy, User, UserStore

T = TypeVar("T")


@dataclass(frozen=True)
class SecuritySettings:
    """Tunables; the defaults are for production. Tests pass HashParams.cheap()."""

    hash_params: HashParams = HashParams()
    password_policy: PasswordPolicy = PasswordPolicy()
    lockout: LockoutPolicy = LockoutPolicy()
    session: SessionPolicy = SessionPolicy()
    sbo_timeout_s: float = DEFAULT_TIMEOUT_S


class SecurityService:
    def __init__(self, data_dir: Path, clock: Clock, settings: SecuritySettings = SecuritySettings()) -> None:
        self.clock = clock
        self.settings = settings
        self.users = UserStore(Path(data_dir) / USERS_FILE, settings.hash_params, settings.password_policy,
                               settings.lockout)
        self.audit = AuditLog(Path(data_dir) / AUDIT_FILE, clock)

    def close(self) -> None:
        self.users.close()
        self.audit.close()

    # --- first start --------------------------------------------------------------------------
    def needs_setup(self) -> bool:
        """True until the first admin exists: show the create-admin dialog / prompt before anything else."""
        return self.users.needs_setup()

    def create_first_admin(self, username: str, password: str, source: str) -> User:
        user = self.users.create_first_admin(username, password, self.clock.time())
        self.audit.append("user.create", username, user="(first start)", source=source,
                          new_value={"role": user.role.value}, detail="first admin, password typed")
        return user

    def consume_setup_file(self, setup_file: Path, source: str) -> User:
        user = self.users.consume_setup_file(setup_file, self.clock.time())
        self.audit.append("user.create", user.username, user="(first start)", source=source,
                          new_value={"role": user.role.value}, detail=f"first admin from setup file {setup_file}")
        return user

    # --- sessions -----------------------------------------------------------------------------
    def login(self, username: str, password: str, source: str) -> Session:
        """A new session, or AuthenticationError (its message is safe to show)."""
        user = self._authenticate(username, password, source, "login")
        session = Session.start(user.username, user.role, source, self.clock.monotonic(), self.settings.session)
        self.audit.append("login", "", user=user.username, source=source, new_value={"role": user.role.value},
                          detail=f"session {session.id}")
        return session

    def logout(self, session: Session) -> None:
        self.audit.append("logout", "", user=session.username, source=session.source,
                          detail=f"session {session.id}")

    def touch(self, session: Session) -> Session:
        """Record user activity (mouse/keyboard on the console); a locked session stays locked."""
        return session.touched(self.clock.monotonic())

    def check_idle(self, session: Session) -> Session:
        """Call on a GUI timer: returns the session locked (and audits it once) after the idle time."""
        if session.locked_flag or not session.is_locked(self.clock.monotonic()):
            return session
        self.audit.append("session.lock", "", user=session.username, source=session.source,
                          detail=f"idle for more than {session.policy.idle_lock_s:g} s")
        return session.locked()

    def lock(self, session: Session) -> Session:
        """The user locks the console."""
        if not session.locked_flag:
            self.audit.append("session.lock", "", user=session.username, source=session.source, detail="by user")
        return session.locked()

    def reauthenticate(self, session: Session, password: str) -> Session:
        """Password entered again: unlocks a locked session and opens the re-authentication window for
        critical commands. The role is re-read (an admin may have changed it). AuthenticationError if
        wrong (counts towards lockout)."""
        action = "session.unlock" if session.is_locked(self.clock.monotonic()) else "reauth"
        user = self._authenticate(session.username, password, session.source, action)
        self.audit.append(action, "", user=user.username, source=session.source, detail=f"session {session.id}")
        return session.reauthenticated(self.clock.monotonic(), user.role)

    def authorise(self, session: Session | None, kind: CommandKind) -> Decision:
        """authorise() at this clock's now."""
        return authorise(session, kind, self.clock.monotonic())

    def sbo(self, interlocks: Sequence[Interlock] = ()) -> SelectBeforeOperate:
        """A select-before-operate controller auditing into this installation's trail."""
        return SelectBeforeOperate(self.audit, interlocks, self.settings.sbo_timeout_s)

    # --- actions that are not SBO commands -------------------------------------------------------
    def perform(self, session: Session | None, kind: CommandKind, action: str, target: str,
                apply: Callable[[], T], old_value: Any = None, new_value: Any = None, detail: str = "") -> T:
        """Authorise, run `apply` and audit the outcome, for actions that need no SBO: alarm ack/shelve/
        inhibit, point override, setting change, user administration. Raises CommandRefused if not
        allowed (audited as refused; `apply` not called); an exception from `apply` is audited as failed
        and re-raised."""
        decision = self.authorise(session, kind)
        user, source = (session.username, session.source) if session else ("(nobody)", "unknown")

        def record(result: str, why: str) -> None:
            self.audit.append(action, target, user=user, source=source, old_value=old_value,
                              new_value=new_value, result=result, detail=why)
        if not decision.allowed:
            record("refused", decision.reason)
            raise CommandRefused([decision.reason], decision.needs_reauth)
        try:
            outcome = apply()
        except Exception as exc:
            record("failed", str(exc))
            raise
        record("ok", detail)
        return outcome

    def emergency_stop(self, session: Session | None, target: str, source: str, stop: Callable[[], T]) -> T:
        """Run `stop` at once, then audit it: always allowed, logged in, locked or logged out."""
        user = session.username if session else "(nobody)"
        try:
            outcome = stop()
        except Exception as exc:
            self.audit.append("emergency_stop", target, user=user, source=source, result="failed", detail=str(exc))
            raise
        self.audit.append("emergency_stop", target, user=user, source=source, result="ok")
        return outcome

    # --- user administration (role admin, re-authenticated) ---------------------------------------
    def add_user(self, session: Session | None, username: str, role: Role, password: str) -> User:
        return self.perform(session, CommandKind.MANAGE_USERS, "user.add", username,
                            lambda: self.users.add_user(username, role, password, self.clock.time()),
                            new_value={"role": role.value})

    def set_role(self, session: Session | None, username: str, role: Role) -> None:
        self.perform(session, CommandKind.MANAGE_USERS, "user.role", username,
                     lambda: self.users.set_role(username, role), self.users.get(username).role.value, role.value)

    def set_enabled(self, session: Session | None, username: str, enabled: bool) -> None:
        self.perform(session, CommandKind.MANAGE_USERS, "user.enabled", username,
                     lambda: self.users.set_enabled(username, enabled), self.users.get(username).enabled, enabled)

    def reset_password(self, session: Session | None, username: str, password: str) -> None:
        self.perform(session, CommandKind.MANAGE_USERS, "user.password", username,
                     lambda: self.users.set_password(username, password, self.clock.time()),
                     detail="reset by admin")

    def unlock_user(self, session: Session | None, username: str) -> None:
        self.perform(session, CommandKind.MANAGE_USERS, "user.unlock", username,
                     lambda: self.users.unlock(username))

    def change_own_password(self, session: Session, current: str, new: str) -> None:
        """Any logged-in user, with the current password."""
        self._authenticate(session.username, current, session.source, "user.password")
        self.users.set_password(session.username, new, self.clock.time())
        self.audit.append("user.password", session.username, user=session.username, source=session.source,
                          detail="changed by the user")

    def _authenticate(self, username: str, password: str, source: str, action: str) -> User:
        try:
            return self.users.authenticate(username, password, self.clock.time())
        except AuthenticationError as exc:
            self.audit.append(action, "", user=username, source=source,
                              result="lockout" if exc.locked_out else "failed", detail=exc.reason)
            raise
