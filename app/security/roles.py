"""Roles, command kinds and the permission matrix (role x command kind).

Pure data: `permitted(role, kind)` is the only question it answers. Authorisation as a whole (session
lock, re-authentication, emergency stop) is `app.security.authorise.authorise`.
"""
from __future__ import annotations

import enum


class Role(enum.Enum):
    """Least privilege first. ADMIN manages users and sees the plant, but does not control the process."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ENGINEER = "engineer"
    ADMIN = "admin"


class CommandKind(enum.Enum):
    """What a user asks to do; the caller names the kind of each command it submits."""

    VIEW = "view"
    ACK_ALARM = "ack_alarm"
    SHELVE_ALARM = "shelve_alarm"
    SETPOINT = "setpoint"
    MODE = "mode"
    CONTACTOR = "contactor"
    BALANCING = "balancing"
    FORCE_POINT = "force_point"
    ALARM_INHIBIT = "alarm_inhibit"
    RESET_TRIP = "reset_trip"
    CHANGE_SETTINGS = "change_settings"
    MANAGE_USERS = "manage_users"
    SIMULATE_FAULT = "simulate_fault"       # training mode: inject/clear faults in the in-process simulator
    EMERGENCY_STOP = "emergency_stop"


K = CommandKind
_OPERATE = frozenset({K.VIEW, K.ACK_ALARM, K.SHELVE_ALARM, K.SETPOINT, K.MODE, K.CONTACTOR, K.RESET_TRIP,
                      K.EMERGENCY_STOP})

PERMISSIONS: dict[Role, frozenset[CommandKind]] = {
    Role.VIEWER: frozenset({K.VIEW, K.EMERGENCY_STOP}),
    Role.OPERATOR: _OPERATE,
    Role.ENGINEER: _OPERATE | {K.BALANCING, K.FORCE_POINT, K.ALARM_INHIBIT, K.CHANGE_SETTINGS,
                                K.SIMULATE_FAULT},
    Role.ADMIN: frozenset({K.VIEW, K.MANAGE_USERS, K.EMERGENCY_STOP}),
}
"""The matrix. Emergency stop is in every row and is also allowed with no session at all."""

CRITICAL: frozenset[CommandKind] = frozenset({K.MODE, K.CONTACTOR, K.FORCE_POINT, K.ALARM_INHIBIT, K.RESET_TRIP,
                                              K.CHANGE_SETTINGS, K.MANAGE_USERS})
"""Kinds that need a password entered within the session's re-authentication window."""


def permitted(role: Role, kind: CommandKind) -> bool:
    """True if the matrix grants `kind` to `role` (ignores session state)."""
    return kind in PERMISSIONS[role]
