"""Trip sequence and isolation decision for one BESS, as data.

The sequence (resources/limits/trip_sequence.toml) is an ordered list of steps; the planner turns
the racks' current states into the commands still to issue, as data (target, action, value, reason)
for the protection thread to wrap in Command objects. Isolation: when one rack tripped, every
other rack of the BESS is healthy (below ALARM, data fresh) and the cause is not thermal, only that
rack is opened and the BESS keeps running on the rest (the plan reports the remaining charge/discharge
power); otherwise the whole BESS trips. Scope only widens until reset(). Pure; one planner per
BESS, called by the protection thread each cycle.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from app.core.errors import ConfigError
from app.core.tomlpos import line_of
from app.protection.ladder import Level
from app.protection.limit_file import LIMITS_DIR

ACTIONS = ("latch", "pcs_zero", "start_ventilation", "notify", "open_contactors")
TRIP_SEQUENCE_FILE = LIMITS_DIR / "trip_sequence.toml"
NONE, RACK, BESS = "none", "rack", "bess"


@dataclass(frozen=True)
class TripStep:
    action: str
    wait_pcs_below_kw: float | None = None   # None: no wait for the PCS
    timeout_s: float = 0.0                   # with a wait: proceed anyway this long after the trip
    when: str = "always"                     # "always" | "thermal"


@dataclass(frozen=True)
class RackCondition:
    """One rack as the planner sees it this cycle (charge/discharge_kw: what it can still take /
    give, e.g. CCL x pack voltage / 1000)."""

    path: str                    # "site.bess1.rack03"
    level: Level
    cause: str = ""
    thermal: bool = False        # the cause is thermal runaway or gas
    stale: bool = False          # data missing/old: not healthy
    charge_kw: float = 0.0
    discharge_kw: float = 0.0


@dataclass(frozen=True)
class PlannedCommand:
    target: str                  # point name, or "site.protection" for latch/notify
    action: str                  # "write" for device points, else the step's action
    value: object
    reason: str


@dataclass(frozen=True)
class Plan:
    scope: str                   # "none" | "rack" | "bess"
    faulty: tuple[str, ...]      # rack paths that tripped
    commands: tuple[PlannedCommand, ...]   # to issue now (each is planned once)
    available_charge_kw: float   # what the racks still in service can take: n x the weakest one's
    available_discharge_kw: float


def load_trip_sequence(path: Path = TRIP_SEQUENCE_FILE) -> tuple[TripStep, ...]:
    """Read and validate a trip sequence file; ConfigError names the line and key."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read trip sequence: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None

    def fail(key_path: tuple, message: str) -> ConfigError:
        return ConfigError(f"{path}:{line_of(text, key_path) or '?'}: "
                           f"{'.'.join(map(str, key_path))}: {message}")

    steps = data.get("step")
    if not isinstance(steps, list) or not steps:
        raise fail(("step",), "needs at least one [[step]]")
    out = []
    for i, t in enumerate(steps):
        for key in t:
            if key not in ("action", "wait_pcs_below_kw", "timeout_s", "when"):
                raise fail(("step", i, key), "unknown key (allowed: action, timeout_s, wait_pcs_below_kw, when)")
        action = t.get("action")
        if action not in ACTIONS:
            raise fail(("step", i, "action"), f"unknown action {action!r} (one of: {', '.join(ACTIONS)})")
        when = t.get("when", "always")
        if when not in ("always", "thermal"):
            raise fail(("step", i, "when"), f"expected \"always\" or \"thermal\", got {when!r}")
        numbers = {}
        for key in ("wait_pcs_below_kw", "timeout_s"):
            if key in t:
                v = t[key]
                if not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= 0:
                    raise fail(("step", i, key), f"expected a number >= 0, got {v!r}")
                numbers[key] = float(v)
        if "wait_pcs_below_kw" in numbers and "timeout_s" not in numbers:
            raise fail(("step", i, "wait_pcs_below_kw"), "a wait needs a timeout_s")
        out.append(TripStep(action, numbers.get("wait_pcs_below_kw"), numbers.get("timeout_s", 0.0), when))
    if "pcs_zero" in (s.action for s in out) and "open_contactors" in (s.action for s in out):
        if [s.action for s in out].index("open_contactors") < [s.action for s in out].index("pcs_zero"):
            raise fail(("step",), "open_contactors must come after pcs_zero (contactors must not break load)")
    return tuple(out)


class TripPlanner:
    """Trip progress of one BESS: which racks, since when, which commands are already planned."""

    def __init__(self, bess: str, pcs: str, racks: Sequence[str], sequence: Sequence[TripStep]) -> None:
        self.bess, self.pcs, self.racks, self.sequence = bess, pcs, tuple(racks), tuple(sequence)
        self.reset()

    def reset(self) -> None:
        """Forget the trip (authorised reset; the thread checks the cause is gone first)."""
        self.started: float | None = None
        self.scope = NONE
        self.faulty: tuple[str, ...] = ()
        self.thermal = False
        self._planned: set[tuple[str, str]] = set()

    def plan(self, now: float, racks: Sequence[RackCondition], pcs_power_kw: float | None) -> Plan:
        """One cycle: racks = this BESS's racks (any order); pcs_power_kw = the PCS's measured
        active power (None/NaN if unknown: waits then run to their timeout)."""
        tripped = [r for r in racks if r.level >= Level.TRIP]
        if tripped or self.started is not None:
            if self.started is None:
                self.started = now
            self.faulty = tuple(dict.fromkeys(self.faulty + tuple(r.path for r in tripped)))
            self.thermal = self.thermal or any(r.thermal for r in tripped)
            others = [r for r in racks if r.path not in self.faulty]
            healthy = all(r.level < Level.ALARM and not r.stale for r in others)
            scope = RACK if (len(self.faulty) == 1 and others and healthy and not self.thermal) else BESS
            if self.scope != BESS:
                self.scope = scope
        in_service = [r for r in racks if self.scope == NONE or (self.scope == RACK and r.path not in self.faulty)]
        commands = self._commands(now, pcs_power_kw) if self.scope != NONE else ()
        # Racks in parallel on one DC bus share the current about equally, so the BESS may take only
        # as much as keeps its weakest rack within its own limit: n x the smallest rack limit.
        n = len(in_service)
        return Plan(self.scope, self.faulty, commands, n * min((r.charge_kw for r in in_service), default=0.0),
                    n * min((r.discharge_kw for r in in_service), default=0.0))

    def _commands(self, now: float, pcs_power_kw: float | None) -> tuple[PlannedCommand, ...]:
        out: list[PlannedCommand] = []
        for step in self.sequence:
            if step.when == "thermal" and not self.thermal:
                continue
            pending = [c for c in self._targets(step) if (step.action, c.target + repr(c.value)) not in self._planned]
            if not pending:
                continue
            if step.wait_pcs_below_kw is not None:
                low = pcs_power_kw is not None and abs(pcs_power_kw) < step.wait_pcs_below_kw
                if not low and now - self.started < step.timeout_s:
                    break                          # later steps wait for this one
            for c in pending:
                self._planned.add((step.action, c.target + repr(c.value)))
                out.append(c)
        return tuple(out)

    def _targets(self, step: TripStep) -> list[PlannedCommand]:
        racks = self.faulty if self.scope == RACK else self.racks
        what = f"rack {', '.join(self.faulty)}" if self.scope == RACK else f"BESS {self.bess}"
        reason = f"protection trip of {what}"
        if step.action == "latch":
            return [PlannedCommand("site.protection", "latch", r, reason) for r in racks]
        if step.action == "pcs_zero":
            return [PlannedCommand(f"site.{self.pcs}.active_power_setpoint_kw", "write", 0.0, reason)]
        if step.action == "start_ventilation":
            return [PlannedCommand(f"site.{self.bess}.ventilation_command", "write", 1, reason)]
        if step.action == "notify":
            return [PlannedCommand("site.protection", "notify", f"TRIP {what} ({self.scope} isolation)", reason)]
        return [PlannedCommand(f"{r}.contactor_command", "write", 0, reason) for r in racks]
