"""Which cell data protection checks for a rack: every cell, or only the extremes its BMS reports.

Decided once from the site, from the points the rack's link declares (drivers.registry.rack_points: a
Modbus rack's register map; CAN and BLE decoders carry per-cell vectors), never from what arrives:
  voltages      cell_voltages_v, else (min_cell_voltage_v, max_cell_voltage_v) (SunSpec 802, 803)
  temperatures  cell_temperatures_c, else (min_temperature_c, max_temperature_c) (803), else none (802)
On extremes the ladders, derating and plausibility take the (min, max) pair as two readings and name
the point (`site.bess1.rack01.max_cell_voltage_v`); the voltage extremes must be present and fresh like
a vector (else the rack's safe state, STALE). Not available on extremes, because it needs every cell:
plausibility of individual cells (only the extremes are checked, and without neighbours not for
"stuck"), dT/dt per sensor and the runaway vote per sensor group (dT/dt runs on the max temperature,
with the drop of the min cell voltage as its voltage vote), the cell heatmap and per-cell SOC. Without
temperatures (802) the temperature ladders, dT/dt and the runaway tiers are not available (gas alarms
still are) and derating takes the BMS's own current limits (charge/discharge_current_limit_a) in place
of its temperature factor.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from app.core.errors import ConfigError

VOLTAGE_VECTOR, TEMPERATURE_VECTOR = "cell_voltages_v", "cell_temperatures_c"
VOLTAGE_EXTREMES = ("min_cell_voltage_v", "max_cell_voltage_v")
TEMPERATURE_EXTREMES = ("min_temperature_c", "max_temperature_c")


@dataclass(frozen=True)
class CellSource:
    """Rack point names protection reads: one vector point, or the (min, max) points; no temperature
    points when the rack reports none."""

    voltages: tuple[str, ...] = (VOLTAGE_VECTOR,)
    temperatures: tuple[str, ...] = (TEMPERATURE_VECTOR,)

    @property
    def voltage_extremes(self) -> bool:
        return self.voltages == VOLTAGE_EXTREMES

    @property
    def temperature_extremes(self) -> bool:
        return self.temperatures == TEMPERATURE_EXTREMES

    @property
    def frame_point(self) -> str:
        """The point whose new sample means a new cell frame (the max on extremes)."""
        return self.voltages[-1]

    @classmethod
    def of(cls, points: Collection[str] | None, what: str) -> CellSource:
        """From the point names a rack's link declares (None: per-cell vectors). `what` names the rack
        and its map in the error when it reports no cell voltages at all."""
        if points is None:
            return cls()
        if VOLTAGE_VECTOR in points:
            volts: tuple[str, ...] = (VOLTAGE_VECTOR,)
        elif set(VOLTAGE_EXTREMES) <= set(points):
            volts = VOLTAGE_EXTREMES
        else:
            raise ConfigError(f"{what}: reports neither {VOLTAGE_VECTOR} nor {' and '.join(VOLTAGE_EXTREMES)}: "
                              "protection cannot check its cells")
        temps = (TEMPERATURE_VECTOR,) if TEMPERATURE_VECTOR in points else (
            TEMPERATURE_EXTREMES if set(TEMPERATURE_EXTREMES) <= set(points) else ())
        return cls(volts, temps)
