"""User accounts in DATA_DIR/users.sqlite: argon2id hashes, roles, failed-login lockout.

No default account exists: the first admin is created from a password typed at first start
(`create_first_admin`) or from a one-time setup file that is consumed (`consume_setup_file`).
Lockout times are wall-clock (`clock.time()`) because they must survive a restart.
Thread-safe: one connection behind a lock.
"""
from __future__ import annotations

import os
import sqlite3
import stat
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

import argon2

from app.core.errors import UserError
from app.security.passwords import HashParams, PasswordPolicy
from app.security.roles import Role

USERS_FILE = "users.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1,
    failures INTEGER NOT NULL DEFAULT 0, locked_until REAL NOT NULL DEFAULT 0, created REAL NOT NULL,
    password_changed REAL NOT NULL);
"""


class AuthenticationError(UserError):
    """Login refused. `reason` is for the audit trail; the message shown to the user does not say
    whether the user name exists."""

    def __init__(self, message: str, reason: str, locked_out: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.locked_out = locked_out


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    lockout_s: float = 900.0


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    enabled: bool
    failures: int
    locked_until: float

    def locked_out(self, now_wall: float) -> bool:
        return now_wall < self.locked_until


class UserStore:
    """Accounts of one installation. Methods are called from the GUI thread (login dialog, user admin)
    but are safe from any thread."""

    def __init__(self, path: Path, hash_params: HashParams = HashParams(),
                 password_policy: PasswordPolicy = PasswordPolicy(),
                 lockout: LockoutPolicy = LockoutPolicy()) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.password_policy = password_policy
        self.lockout = lockout
        self._hasher = hash_params.hasher()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        self._db.executescript(_SCHEMA)
        _owner_only(self.path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- first start --------------------------------------------------------------------------
    def needs_setup(self) -> bool:
        """True while no account exists: the CLI/GUI must create the first admin before anything else."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0

    def create_first_admin(self, username: str, password: str, now_wall: float) -> User:
        """Create the first admin from a typed password; refused once any account exists."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if self._db.execute("SELECT COUNT(*) FROM users").fetchone()[0]:
                    raise UserError("the first admin already exists: log in as an admin to add users")
                self._insert(username, Role.ADMIN, password, now_wall)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get(username)

    def consume_setup_file(self, setup_file: Path, now_wall: float) -> User:
        """Create the first admin from a one-time TOML file (`username = "..."`, `password = "..."`),
        readable by its owner only. The file is overwritten and deleted whatever the outcome (a file
        others could read has exposed its password: it is refused and must be written again)."""
        setup_file = Path(setup_file)
        try:
            mode = setup_file.stat().st_mode
        except FileNotFoundError:
            raise UserError(f"setup file {setup_file} does not exist") from None
        try:
            if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise UserError(f"setup file {setup_file} was readable by others and has been deleted: write "
                                "it again with permissions 600 (owner only)")
            try:
                data = tomllib.loads(setup_file.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise UserError(f"setup file {setup_file} is not valid TOML: {exc}") from None
            username, password = data.get("username"), data.get("password")
            if not isinstance(username, str) or not isinstance(password, str):
                raise UserError(f"setup file {setup_file} needs string keys 'username' and 'password'")
            return self.create_first_admin(username, password, now_wall)
        finally:
            _shred(setup_file)

    # --- login --------------------------------------------------------------------------------
    def authenticate(self, username: str, password: str, now_wall: float) -> User:
        """The user if the password is right and the account usable; else AuthenticationError.
        Counts failures; the LockoutPolicy.max_failures-th failure locks the account for lockout_s."""
        refused = "user name or password is wrong"
        with self._lock:
            row = self._db.execute("SELECT hash, enabled, failures, locked_until FROM users WHERE username = ?",
                                   (username,)).fetchone()
            if row is None:
                self._hasher.hash(password)           # same cost as a real check: no user-name oracle by timing
                raise AuthenticationError(refused, "unknown user")
            stored, enabled, failures, locked_until = row
            if now_wall < locked_until:
                raise AuthenticationError(f"account '{username}' is locked after repeated failures: try again "
                                          f"in {int(locked_until - now_wall) + 1} s or ask an admin",
                                          "account locked", locked_out=True)
            try:
                self._hasher.verify(stored, password)
            except argon2.exceptions.VerificationError:
                failures += 1
                if failures >= self.lockout.max_failures:
                    self._db.execute("UPDATE users SET failures = 0, locked_until = ? WHERE username = ?",
                                     (now_wall + self.lockout.lockout_s, username))
                    raise AuthenticationError(f"account '{username}' is now locked for "
                                              f"{self.lockout.lockout_s:.0f} s after {failures} failed logins",
                                              "wrong password: account locked out", locked_out=True) from None
                self._db.execute("UPDATE users SET failures = ? WHERE username = ?", (failures, username))
                raise AuthenticationError(refused, f"wrong password ({failures} of "
                                          f"{self.lockout.max_failures})") from None
            if not enabled:
                raise AuthenticationError(f"account '{username}' is disabled: ask an admin", "account disabled")
            if self._hasher.check_needs_rehash(stored):
                stored = self._hasher.hash(password)
            self._db.execute("UPDATE users SET failures = 0, locked_until = 0, hash = ? WHERE username = ?",
                             (stored, username))
        return self.get(username)

    # --- administration (authorisation and audit are the caller's: SecurityService) ---------------
    def get(self, username: str) -> User:
        with self._lock:
            row = self._db.execute("SELECT username, role, enabled, failures, locked_until FROM users "
                                   "WHERE username = ?", (username,)).fetchone()
        if row is None:
            raise UserError(f"no user named '{username}'")
        return User(row[0], Role(row[1]), bool(row[2]), row[3], row[4])

    def list_users(self) -> list[User]:
        with self._lock:
            rows = self._db.execute("SELECT username, role, enabled, failures, locked_until FROM users "
                                    "ORDER BY username").fetchall()
        return [User(r[0], Role(r[1]), bool(r[2]), r[3], r[4]) for r in rows]

    def add_user(self, username: str, role: Role, password: str, now_wall: float) -> User:
        with self._lock:
            self._insert(username, role, password, now_wall)
        return self.get(username)

    def set_role(self, username: str, role: Role) -> None:
        """Refused if it would leave no enabled admin."""
        self._update(username, "UPDATE users SET role = ? WHERE username = ?", role.value, keep_admin=True)

    def set_enabled(self, username: str, enabled: bool) -> None:
        """Refused if it would leave no enabled admin."""
        self._update(username, "UPDATE users SET enabled = ? WHERE username = ?", int(enabled), keep_admin=True)

    def set_password(self, username: str, password: str, now_wall: float) -> None:
        self.password_policy.check(username, password)
        self._update(username, "UPDATE users SET hash = ?, password_changed = ?, failures = 0 WHERE username = ?",
                     self._hasher.hash(password), now_wall)

    def unlock(self, username: str) -> None:
        self._update(username, "UPDATE users SET failures = 0, locked_until = 0 WHERE username = ?")

    # --- internals ------------------------------------------------------------------------------
    def _insert(self, username: str, role: Role, password: str, now_wall: float) -> None:
        if not username or not username.isprintable() or username.strip() != username or len(username) > 64:
            raise UserError(f"user name {username!r} is not valid: use 1-64 printable characters, no "
                            "leading/trailing spaces")
        self.password_policy.check(username, password)
        try:
            self._db.execute("INSERT INTO users (username, role, hash, created, password_changed) "
                             "VALUES (?, ?, ?, ?, ?)",
                             (username, role.value, self._hasher.hash(password), now_wall, now_wall))
        except sqlite3.IntegrityError:
            raise UserError(f"a user named '{username}' already exists") from None

    def _update(self, username: str, sql: str, *values: object, keep_admin: bool = False) -> None:
        """One UPDATE in a transaction; rolled back if the user is unknown or (keep_admin) no enabled
        admin would remain."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if self._db.execute(sql, (*values, username)).rowcount == 0:
                    raise UserError(f"no user named '{username}'")
                if keep_admin and not self._db.execute(
                        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND enabled = 1").fetchone()[0]:
                    raise UserError(f"'{username}' is the last enabled admin: add another admin first")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise


def _owner_only(path: Path) -> None:
    if os.name == "posix":
        os.chmod(path, 0o600)


def _shred(path: Path) -> None:
    """Overwrite then delete a file that held a password (best effort on journaling/SSD storage)."""
    try:
        size = path.stat().st_size
        with path.open("r+b") as f:
            f.write(b"\0" * size)
            f.flush()
            os.fsync(f.fileno())
        path.unlink()
    except FileNotFoundError:
        pass
