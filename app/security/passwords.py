"""Password hashing (argon2id via argon2-cffi) and the password policy.

Passwords are only ever held in the caller's stack frame: never stored, logged or audited.
"""
from __future__ import annotations

from dataclasses import dataclass

import argon2

from app.core.errors import UserError


@dataclass(frozen=True)
class HashParams:
    """argon2id cost. The defaults are argon2-cffi's (RFC 9106 low-memory profile: t=3, 64 MiB, p=4);
    tests pass cheap ones (`HashParams.cheap()`)."""

    time_cost: int = argon2.DEFAULT_TIME_COST
    memory_cost_kib: int = argon2.DEFAULT_MEMORY_COST
    parallelism: int = argon2.DEFAULT_PARALLELISM

    @classmethod
    def cheap(cls) -> "HashParams":
        """Minimum cost: for tests only, never for a real installation."""
        return cls(time_cost=1, memory_cost_kib=8, parallelism=1)

    def hasher(self) -> argon2.PasswordHasher:
        return argon2.PasswordHasher(time_cost=self.time_cost, memory_cost=self.memory_cost_kib,
                                     parallelism=self.parallelism, type=argon2.Type.ID)


class PasswordPolicyError(UserError):
    """The chosen password breaks the policy; the message says which rule."""


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 12
    max_length: int = 256

    def check(self, username: str, password: str) -> None:
        """Raise PasswordPolicyError naming the rule the password breaks (the password is never echoed)."""
        if len(password) < self.min_length:
            raise PasswordPolicyError(f"password for '{username}' is too short: use at least "
                                      f"{self.min_length} characters")
        if len(password) > self.max_length:
            raise PasswordPolicyError(f"password for '{username}' is too long: use at most "
                                      f"{self.max_length} characters")
        if username.casefold() in password.casefold():
            raise PasswordPolicyError(f"password for '{username}' must not contain the user name")
        if len(set(password)) < 4:
            raise PasswordPolicyError(f"password for '{username}' must use at least 4 different characters")
