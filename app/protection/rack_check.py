"""All protection rules of one rack in one call per cycle: plausibility -> ladder, derating,
thermal runaway, with the faulty sensors masked out of the last three.

The protection thread keeps one RackCheck per rack and calls step() every cycle with the rack's
latest samples; the verdict's level is the worst of the four and `cause` says why. Pure.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.points import cell_label
from app.protection.derating import DeratingResult, RackDerating
from app.protection.ladder import LadderResult, Level, RackLadder
from app.protection.limit_file import LimitSet
from app.protection.plausibility import SensorCheck, SensorHealth
from app.protection.thermal import ThermalMonitor, ThermalStatus


@dataclass(frozen=True)
class RackVerdict:
    level: Level
    cause: str                   # the worst finding as operator text, "" when NORMAL
    thermal: bool                # the worst finding is thermal (runaway / gas)
    ladder: LadderResult
    derating: DeratingResult
    thermal_status: ThermalStatus
    sensors: SensorHealth


class RackCheck:
    def __init__(self, limits: LimitSet, capacity_ah: float, rack_number: int, modules: int,
                 cells_per_module: int, temperature_sensors: int) -> None:
        cells = modules * cells_per_module
        self.rack_number, self.cells_per_module = rack_number, cells_per_module
        self.ladder = RackLadder(limits, capacity_ah, cells)
        self.derating = RackDerating(limits, capacity_ah, cells, rack_number, cells_per_module)
        self.thermal = ThermalMonitor(limits.thermal, temperature_sensors, cells)
        self.sensors = SensorCheck(limits.plausibility, cells, temperature_sensors)
        self._health: SensorHealth | None = None
        self._frame_time = float("-inf")

    def step(self, now: float, frame_time: float, cell_voltages_v: np.ndarray, cell_temperatures_c: np.ndarray,
             current_a: float, pack_voltage_v: float | None, soc_pct: float,
             h2_ppm: float | None = None, co_ppm: float | None = None) -> RackVerdict:
        """now: clock.monotonic(); frame_time: the cell arrays' source time (a repeated frame is
        not re-checked for plausibility); current + = charging."""
        if self._health is None or frame_time > self._frame_time:
            self._health = self.sensors.update(frame_time, cell_voltages_v, cell_temperatures_c)
            self._frame_time = frame_time
        h = self._health
        ladder = self.ladder.evaluate(now, cell_voltages_v, cell_temperatures_c, current_a, pack_voltage_v,
                                      h.voltage_ok, h.temperature_ok)
        derating = self.derating.evaluate(soc_pct, cell_voltages_v, cell_temperatures_c, pack_voltage_v,
                                          h.voltage_ok, h.temperature_ok)
        thermal = self.thermal.update(now, frame_time, cell_temperatures_c, cell_voltages_v, h.temperature_ok,
                                      h.voltage_ok, h2_ppm, co_ppm)
        findings = [(thermal.level, 3, thermal.cause, True), (h.level, 2, h.cause, False)]
        active = ladder.active()
        if active:
            s = active[0]
            findings.append((s.level, 1, self._ladder_text(s), False))
        level, _, cause, is_thermal = max(findings, key=lambda f: (f[0], f[1]))
        return RackVerdict(Level(level), cause if level else "", bool(level) and is_thermal, ladder, derating,
                           thermal, h)

    def _ladder_text(self, s) -> str:
        what = s.quantity.replace("_", " ")
        if s.index < 0 or s.quantity in ("cell_imbalance", "temperature_spread"):
            return f"{what} {s.value:.3g} (limit {s.limit:.3g})"
        if "temperature" in s.quantity:
            return f"{what}: sensor {s.index + 1} at {s.value:.1f} C (limit {s.limit:.1f} C)"
        m, c = divmod(s.index, self.cells_per_module)
        return f"{what}: cell {cell_label(self.rack_number, m + 1, c + 1)} at {s.value:.3f} V (limit {s.limit:.3f} V)"
