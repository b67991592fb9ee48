"""Interlocks: pure checks of a requested command against a values snapshot (point -> value).

An interlock is any callable `(kind, command, values) -> str | None` returning a refusal reason, or
None when it has nothing against the command (including commands it does not concern). A value that
is missing, unusable or NaN refuses the command: an interlock that cannot check does not allow.
`site_interlocks(site, sources)` builds the standard list for a site; append your own to extend it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from app.core.commands import Command
from app.core.sample import Sample
from app.core.site import Site
from app.protection.cell_source import CellSource
from app.security.roles import CommandKind

Interlock = Callable[[CommandKind, Command, Mapping[str, Any]], "str | None"]

TRIP_CAUSE_PERSISTS = "site.protection.trip_cause_persists"
"""Key the caller sets in the values snapshot (bool) before asking to clear a latched trip."""

GRID_BREAKER = "site.meter.breaker_command"
ISLAND_STATE = "site.ems.island_state"


def usable_values(snapshot: Mapping[str, Sample]) -> dict[str, Any]:
    """DataBus.snapshot() -> {point: value} keeping only samples of usable quality."""
    return {p: s.value for p, s in snapshot.items() if s.quality.usable}


def check_interlocks(interlocks: Iterable[Interlock], kind: CommandKind, command: Command,
                     values: Mapping[str, Any]) -> list[str]:
    """Every refusal reason, in interlock order; empty means the command may proceed."""
    return [reason for check in interlocks if (reason := check(kind, command, values)) is not None]


@dataclass(frozen=True)
class ContactorVoltageMatch:
    """Refuse closing a rack contactor while |rack voltage - DC bus voltage| > max_diff_v."""

    contactor_point: str
    rack_voltage_point: str
    bus_voltage_point: str
    max_diff_v: float

    def __call__(self, kind: CommandKind, command: Command, values: Mapping[str, Any]) -> str | None:
        if kind is not CommandKind.CONTACTOR or command.target != self.contactor_point or not command.value:
            return None
        rack, missing = _lowest(values, (self.rack_voltage_point,))
        bus, missing_bus = _lowest(values, (self.bus_voltage_point,))
        if missing or missing_bus:
            return f"close {self.contactor_point}: cannot compare voltages, no usable value of {missing or missing_bus}"
        if abs(rack - bus) > self.max_diff_v:
            return (f"close {self.contactor_point}: rack {rack:.1f} V and DC bus {bus:.1f} V differ by "
                    f"{abs(rack - bus):.1f} V (> {self.max_diff_v:.1f} V): precharge or match voltages first")
        return None


@dataclass(frozen=True)
class LfpChargeBelowFreezing:
    """Refuse charging (positive power setpoint) while any LFP temperature reading (cells, pack sensors or
    a rack's min_temperature_c) is below min_temperature_c."""

    setpoint_point: str
    temperature_points: tuple[str, ...]
    min_temperature_c: float = 0.0

    def __call__(self, kind: CommandKind, command: Command, values: Mapping[str, Any]) -> str | None:
        if kind is not CommandKind.SETPOINT or command.target != self.setpoint_point:
            return None
        kw = _number(command.value)
        if kw is None or kw <= 0:
            return None
        coldest, missing = _lowest(values, self.temperature_points)
        if missing:
            return f"charge via {self.setpoint_point}: cannot check cell temperatures, no usable value of {missing}"
        if coldest < self.min_temperature_c:
            return (f"charge via {self.setpoint_point}: LFP cell at {coldest:.1f} °C is below "
                    f"{self.min_temperature_c:.1f} °C (lithium plating): warm the battery first")
        return None


@dataclass(frozen=True)
class ClearTripWhileCausePersists:
    """Refuse resetting a latched trip while the caller reports its cause still present."""

    target: str = "site.protection"
    cause_point: str = TRIP_CAUSE_PERSISTS

    def __call__(self, kind: CommandKind, command: Command, values: Mapping[str, Any]) -> str | None:
        if kind is not CommandKind.RESET_TRIP or not (command.target == self.target
                                                      or command.target.startswith(self.target + ".")):
            return None
        persists = values.get(self.cause_point)
        if persists is None:
            return f"reset {command.target}: cannot tell whether the trip cause persists ({self.cause_point})"
        if persists:
            return f"reset {command.target}: the cause of the trip is still present: clear it first"
        return None


@dataclass(frozen=True)
class DischargeBelowSocFloor:
    """Refuse discharging (negative power setpoint) while any rack SOC is below floor_pct."""

    setpoint_point: str
    soc_points: tuple[str, ...]
    floor_pct: float

    def __call__(self, kind: CommandKind, command: Command, values: Mapping[str, Any]) -> str | None:
        if kind is not CommandKind.SETPOINT or command.target != self.setpoint_point:
            return None
        kw = _number(command.value)
        if kw is None or kw >= 0:
            return None
        lowest, missing = _lowest(values, self.soc_points)
        if missing:
            return f"discharge via {self.setpoint_point}: cannot check SOC, no usable value of {missing}"
        if lowest < self.floor_pct:
            return (f"discharge via {self.setpoint_point}: SOC {lowest:.1f} % is below the floor of "
                    f"{self.floor_pct:.1f} %")
        return None


@dataclass(frozen=True)
class SetpointWithinRating:
    """Refuse a power setpoint that is not a number or whose magnitude exceeds the rated power."""

    setpoint_point: str
    rated_kw: float

    def __call__(self, kind: CommandKind, command: Command, values: Mapping[str, Any]) -> str | None:
        if kind is not CommandKind.SETPOINT or command.target != self.setpoint_point:
            return None
        kw = _number(command.value)
        if kw is None:
            return f"{self.setpoint_point}: setpoint {command.value!r} is not a number"
        if abs(kw) > self.rated_kw:
            return f"{self.setpoint_point}: |{kw:.1f}| kW is above the rated {self.rated_kw:.1f} kW"
        return None


@dataclass(frozen=True)
class BreakerCloseWhileIslanding:
    """Refuse closing the grid breaker by hand while the EMS islanding sequence runs (island_state other
    than connected or shed): the sequence closes it itself, in sync, and a close onto a forming island
    from here would fight it."""

    breaker_point: str = GRID_BREAKER
    island_point: str = ISLAND_STATE

    def __call__(self, kind: CommandKind, command: Command, values: Mapping[str, Any]) -> str | None:
        if kind is not CommandKind.CONTACTOR or command.target != self.breaker_point or not command.value:
            return None
        phase = values.get(self.island_point)
        if not isinstance(phase, str):
            return (f"close {self.breaker_point}: cannot tell whether the EMS islanding sequence is active, "
                    f"no usable value of {self.island_point}")
        if phase not in ("connected", "shed"):
            return (f"close {self.breaker_point}: the EMS islanding sequence is active (phase {phase}); "
                    "it closes the breaker itself once the island is in sync with the grid")
        return None


def site_interlocks(site: Site, sources: Mapping[str, CellSource] | None = None, max_contactor_diff_v: float = 10.0,
                    soc_floor_pct: float = 5.0) -> list[Interlock]:
    """The standard interlocks of a site, over the rack_generic/pcs_generic/meter_generic point names. sources: rack
    path -> its CellSource (ProtectionThread.sources; missing: per-cell vectors), whose coldest reading the
    LFP freezing rule checks; a rack without temperatures (SunSpec 802) is left to its BMS's own charge
    current limit, as protection's derating does."""
    rated = {p.id: p.rated_power_kw for p in site.pcs}
    checks: list[Interlock] = [SetpointWithinRating(f"site.{pcs}.active_power_setpoint_kw", kw)
                               for pcs, kw in rated.items()]
    for bess in site.bess:
        setpoint = f"site.{bess.pcs}.active_power_setpoint_kw"
        for rack in bess.racks:
            checks.append(ContactorVoltageMatch(f"{rack.path}.contactor_command", f"{rack.path}.pack_voltage_v",
                                                f"site.{bess.pcs}.dc_voltage_v", max_contactor_diff_v))
        cold = tuple(f"{r.path}.{p}" for r in bess.racks for p in (sources or {}).get(r.path, CellSource()).coldest)
        if bess.chemistry == "lfp" and cold:
            checks.append(LfpChargeBelowFreezing(setpoint, cold))
        checks.append(DischargeBelowSocFloor(setpoint, tuple(f"{r.path}.soc_pct" for r in bess.racks),
                                             soc_floor_pct))
    checks.append(ClearTripWhileCausePersists())
    if site.meters:
        checks.append(BreakerCloseWhileIslanding())
    return checks


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _lowest(values: Mapping[str, Any], points: Iterable[str]) -> tuple[float, str | None]:
    """(minimum over the points' scalar or vector values, first point lacking a usable value or None)."""
    lowest = math.inf
    for point in points:
        value = values.get(point)
        try:
            arr = np.asarray(value, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            return math.nan, point
        if value is None or isinstance(value, bool) or arr.size == 0 or not np.isfinite(arr).all():
            return math.nan, point
        lowest = min(lowest, float(arr.min()))
    return lowest, None
