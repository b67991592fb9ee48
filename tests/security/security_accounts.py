"""Test accounts shared by the security tests: one password per role (none contains a user name)."""
from __future__ import annotations

from app.security.roles import Role

PASSWORDS = {role: f"correct horse battery #{n}" for n, role in enumerate(Role)}
