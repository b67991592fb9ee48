"""Alarm data: definitions (configuration), ISA-18.2 states, transition records and GUI views.

Everything here is frozen and safe to hand from the thread that owns the AlarmManager (the
protection thread) to the GUI or the historian.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any, Mapping

from app.core.errors import UserError
from app.core.events import Event, Severity


class Priority(enum.IntEnum):
    """Alarm priority, 1 = most urgent (sorts first)."""

    URGENT = 1
    HIGH = 2
    MEDIUM = 3
    LOW = 4


class AlarmState(enum.Enum):
    """ISA-18.2 alarm states (the latched trip is UNACK/ACKED with `latched` set until reset)."""

    NORMAL = "NORMAL"
    UNACK = "UNACK"                    # active, unacknowledged
    ACKED = "ACKED"                    # active, acknowledged
    RTN_UNACK = "RTN_UNACK"            # returned to normal, unacknowledged
    SHELVED = "SHELVED"                # hidden by an operator: one-shot (until RTN) or timed
    SUPPRESSED = "SUPPRESSED"          # hidden by design (e.g. rack contactor open)
    OUT_OF_SERVICE = "OUT_OF_SERVICE"  # removed from service for maintenance


ANNUNCIATED = frozenset({AlarmState.UNACK, AlarmState.ACKED, AlarmState.RTN_UNACK})
HIDDEN = frozenset({AlarmState.SHELVED, AlarmState.SUPPRESSED, AlarmState.OUT_OF_SERVICE})


class Direction(enum.Enum):
    """HIGH: active above the limit; LOW: active below it; DISCRETE: the caller says active or not."""

    HIGH = "HIGH"
    LOW = "LOW"
    DISCRETE = "DISCRETE"


class AlarmRefused(UserError):
    """An operator action that is not allowed now; the message says which alarm and why."""


@dataclass(frozen=True, slots=True)
class AlarmDefinition:
    """One configured alarm.

    tag: unique alarm id, by convention the point plus the rule (`...cell012.voltage_v.ov_warn`).
    point: the measured point named in messages (a call may name another, e.g. the worst cell).
    rule: operator text of the rule ("cell overvoltage warn"). limit/deadband in the point's unit;
    an active HIGH alarm clears at value <= limit - deadband, a LOW one at value >= limit + deadband.
    on_delay_s/off_delay_s: the condition must persist this long before it activates/clears.
    latching: a trip; stays active until an authorised reset once the condition has gone.
    alarm_class: ISA-18.2 class ("safety", "equipment", "process"...). suppressed_by: name of a
    design-suppression condition (set with AlarmManager.set_suppression). group: trip group for
    first-out (a rack path). position: operator position for flood detection.
    """

    tag: str
    point: str
    rule: str
    priority: Priority
    limit: float | None = None
    direction: Direction = Direction.HIGH
    deadband: float = 0.0
    on_delay_s: float = 0.0
    off_delay_s: float = 0.0
    latching: bool = False
    alarm_class: str = "process"
    suppressed_by: str | None = None
    group: str | None = None
    position: str = "main"
    unit: str = ""
    decimals: int = 3

    def __post_init__(self) -> None:
        def bad(field: str, why: str) -> UserError:
            return UserError(f"alarm {self.tag!r}: {field} {why}")

        if not self.tag:
            raise UserError("alarm definition needs a non-empty tag")
        if not isinstance(self.priority, Priority):
            raise bad("priority", f"must be one of {[p.name for p in Priority]}, got {self.priority!r}")
        if self.direction is Direction.DISCRETE:
            if self.limit is not None or self.deadband:
                raise bad("limit/deadband", "must not be set for a DISCRETE alarm")
        elif self.limit is None or not math.isfinite(self.limit):
            raise bad("limit", f"must be a finite number for a {self.direction.name} alarm, got {self.limit!r}")
        for field in ("deadband", "on_delay_s", "off_delay_s"):
            value = getattr(self, field)
            if not (math.isfinite(value) and value >= 0):
                raise bad(field, f"must be >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """One state change of one alarm, as the journal, historian and horn see it.

    action: activate, clear, ack, shelve, unshelve, shelve_expired, suppress, unsuppress,
    out_of_service, return_to_service, reset. who: "system" or the operator. why: the reason.
    announce: True if the operator should be alerted (new alarm, not chattering).
    value/limit: at the time of the transition; message names the rule, point, value and limit.
    """

    time: float
    tag: str
    point: str
    rule: str
    action: str
    from_state: AlarmState
    to_state: AlarmState
    who: str
    why: str
    value: Any
    limit: float | None
    priority: Priority
    message: str
    latched: bool = False
    announce: bool = False

    def as_event(self) -> Event:
        """The journal Event for this transition (source "alarms", kind "alarm_<action>")."""
        if self.action == "activate":
            severity = (Severity.TRIP if self.latched else
                        Severity.ALARM if self.priority <= Priority.HIGH else Severity.WARNING)
        else:
            severity = Severity.INFO
        value = float(self.value) if isinstance(self.value, (int, float)) else None
        return Event(self.time, "alarms", f"alarm_{self.action}", self.message, severity,
                     point=self.point, value=value, limit=self.limit)


@dataclass(frozen=True, slots=True)
class Shelf:
    """Who shelved an alarm, why, when, and until when (None: one-shot, until it returns to normal)."""

    user: str
    reason: str
    since: float
    until: float | None


@dataclass(frozen=True, slots=True)
class AlarmView:
    """What the GUI shows for one alarm; value/message are those of the last transition."""

    tag: str
    point: str
    rule: str
    priority: Priority
    alarm_class: str
    group: str | None
    state: AlarmState
    state_since: float
    activated_at: float | None
    condition: bool
    latched: bool
    chattering: bool
    value: Any
    limit: float | None
    message: str
    shelf: Shelf | None
    out_of_service: tuple[str, str] | None  # (user, reason)


@dataclass(frozen=True, slots=True)
class FloodEpisode:
    """An alarm flood at one operator position: start, end (None while it lasts), new alarms in it."""

    position: str
    start: float
    end: float | None
    count: int


@dataclass(frozen=True, slots=True)
class AlarmSummary:
    """The alarm list for the GUI; `version` changes whenever anything in it changes.

    active: UNACK/ACKED/RTN_UNACK alarms sorted by priority, then newest activation first.
    hidden: SHELVED/SUPPRESSED/OUT_OF_SERVICE alarms, same order. by_state counts every alarm.
    """

    version: int
    by_priority: Mapping[Priority, int]
    unacked_by_priority: Mapping[Priority, int]
    by_state: Mapping[AlarmState, int]
    active: tuple[AlarmView, ...]
    hidden: tuple[AlarmView, ...]
    floods: tuple[FloodEpisode, ...]
    chattering: tuple[str, ...]
