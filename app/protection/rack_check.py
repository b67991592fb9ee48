"""All protection rules of one rack in one call per cycle: plausibility -> ladder, derating,
thermal runaway, with the faulty sensors masked out of the last three.

The protection thread keeps one RackCheck per rack and calls step() every cycle with the rack's
latest samples; the verdict's level is the worst of the four and `cause` says why. A rack that reports
only its extremes is checked on them, one with pack temperature sensors on those, per sensor (its
CellSource; what that leaves out: app/protection/cell_source.py).
Pure.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.points import cell_label
from app.protection.cell_source import CellSource
from app.protection.derating import DeratingResult, RackDerating
from app.protection.ladder import LadderResult, Level, RackLadder, extremes
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
                 cells_per_module: int, temperature_sensors: int, source: CellSource = CellSource()) -> None:
        """temperature_sensors: the length of a cell temperature vector (the CellSource gives the others)."""
        cells = modules * cells_per_module
        self.rack_number, self.cells_per_module, self.source = rack_number, cells_per_module, source
        v_names = source.voltages if source.voltage_extremes else None
        t_names = source.temperature_names
        sensors = (source.pack_sensors if source.temperature_pack else 2 if source.temperature_extremes
                   else temperature_sensors if source.temperatures else 0)
        self.ladder = RackLadder(limits, capacity_ah, cells)
        self.derating = RackDerating(limits, capacity_ah, cells, rack_number, cells_per_module, v_names, t_names)
        self._per_sensor_thermal = bool(source.temperatures) and not (v_names or source.temperature_extremes)
        self.thermal = ThermalMonitor(limits.thermal, sensors, cells, t_names) if self._per_sensor_thermal else \
            ThermalMonitor(limits.thermal, 1, 1, (t_names[1] if source.temperature_extremes else "max temperature",))
        self.sensors = SensorCheck(limits.plausibility, 2 if v_names else cells, sensors, v_names, t_names)
        self._health: SensorHealth | None = None
        self._frame_time = float("-inf")

    def step(self, now: float, frame_time: float, cell_voltages_v: np.ndarray, cell_temperatures_c: np.ndarray,
             current_a: float, pack_voltage_v: float | None, soc_pct: float,
             h2_ppm: float | None = None, co_ppm: float | None = None,
             bms_current_limits_a: tuple[float, float] | None = None) -> RackVerdict:
        """now: clock.monotonic(); frame_time: the cell arrays' source time (a repeated frame is
        not re-checked for plausibility); current + = charging. Arrays as the CellSource says: every
        cell/sensor, or (min, max); temperatures empty when the rack reports none (then
        `bms_current_limits_a` = the BMS's charge/discharge limits, for derating). pack_voltage_v None:
        the sum of the cells (unknown on extremes)."""
        if pack_voltage_v is None and self.source.voltage_extremes:
            pack_voltage_v = float("nan")
        if self._health is None or frame_time > self._frame_time:
            self._health = self.sensors.update(frame_time, cell_voltages_v, cell_temperatures_c)
            self._frame_time = frame_time
        h = self._health
        ladder = self.ladder.evaluate(now, cell_voltages_v, cell_temperatures_c, current_a, pack_voltage_v,
                                      h.voltage_ok, h.temperature_ok)
        derating = self.derating.evaluate(soc_pct, cell_voltages_v, cell_temperatures_c, pack_voltage_v,
                                          h.voltage_ok, h.temperature_ok, bms_current_limits_a)
        if self._per_sensor_thermal:
            thermal = self.thermal.update(now, frame_time, cell_temperatures_c, cell_voltages_v, h.temperature_ok,
                                          h.voltage_ok, h2_ppm, co_ppm)
        else:                     # dT/dt of the max temperature; runaway voltage vote: the min cell voltage
            t_max = extremes(cell_temperatures_c, h.temperature_ok)[0]
            v_min = extremes(cell_voltages_v, h.voltage_ok)[2]
            thermal = self.thermal.update(now, frame_time, np.array([t_max]), np.array([v_min]), None, None,
                                          h2_ppm, co_ppm)
        findings = [(thermal.level, 3, thermal.cause, True), (h.level, 2, h.cause, False)]
        active = ladder.active()
        if active:
            s = active[0]
            findings.append((s.level, 1, self._ladder_text(s), False))
        level, _, cause, is_thermal = max(findings, key=lambda f: (f[0], f[1]))
        return RackVerdict(Level(level), cause if level else "", bool(level) and is_thermal, ladder, derating,
                           thermal, h)

    def reading(self, quantity: str, index: int) -> str | None:
        """The rack point behind a status when it is not a cell: an extreme ('max_cell_voltage_v') or a
        pack sensor ('temperatures_c[2]'); None for a cell, a cell's sensor or a rack-level quantity."""
        if index < 0 or quantity in ("cell_imbalance", "temperature_spread"):
            return None
        if "temperature" in quantity:
            names = self.source.temperature_names
            return names[index] if names else None
        return self.source.voltages[index] if self.source.voltage_extremes else None

    def _ladder_text(self, s) -> str:
        what = s.quantity.replace("_", " ")
        if s.index < 0 or s.quantity in ("cell_imbalance", "temperature_spread"):
            return f"{what} {s.value:.3g} (limit {s.limit:.3g})"
        point = self.reading(s.quantity, s.index)
        if "temperature" in s.quantity:
            return f"{what}: {point or f'sensor {s.index + 1}'} at {s.value:.1f} C (limit {s.limit:.1f} C)"
        m, c = divmod(s.index, self.cells_per_module)
        where = point or f"cell {cell_label(self.rack_number, m + 1, c + 1)}"
        return f"{what}: {where} at {s.value:.3f} V (limit {s.limit:.3f} V)"
