"""Which cell data protection checks for a rack: every cell, the pack's temperature sensors, or only
the extremes its BMS reports.

Decided once from the site, from the points the rack's link declares (drivers.registry.rack_points: a
Modbus rack's register map; a CAN link's frames; a BLE pack's protocol and options), never from what
arrives:
  voltages      cell_voltages_v, else (min_cell_voltage_v, max_cell_voltage_v) (SunSpec 802, 803)
  temperatures  cell_temperatures_c (one per cell: rack_generic, 805, CAN with per-cell temperature
                frames), else temperatures_c (pack sensors: the N NTCs of a BLE pack, the one 0x356
                temperature of a Pylontech CAN pack), else (min_temperature_c, max_temperature_c) (803),
                else none (802)
Pack sensors are checked like cells, one reading per sensor: the ladders, derating, plausibility (the
stuck check from three sensors on) and dT/dt / runaway per sensor (sensor j of N covers cells j*n//N ..),
and every alarm names the sensor, 1-based (`site.bess1.rack01.temperatures_c[2]`); the vector must be
present, fresh and N long like the voltages (else the rack's safe state, STALE).
On extremes the ladders, derating and plausibility take the (min, max) pair as two readings and name
the point (`site.bess1.rack01.max_cell_voltage_v`); the voltage extremes must be present and fresh like
a vector (else the rack's safe state, STALE). Not available on extremes, because it needs every cell:
plausibility of individual cells (only the extremes are checked, and without neighbours not for
"stuck"), dT/dt per sensor and the runaway vote per sensor group (dT/dt runs on the max temperature,
with the drop of the min cell voltage as its voltage vote), the cell heatmap and per-cell SOC. Without
temperatures (802) the temperature ladders, dT/dt and the runaway tiers are not available (gas alarms
still are) and derating takes the BMS's own current limits (charge/discharge_current_limit_a) in place
of its temperature factor.
The BESS aggregate (app/aggregator.py) and the LFP charge-below-freezing interlock read the same points.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.core.errors import ConfigError
from app.core.site import Site

VOLTAGE_VECTOR, TEMPERATURE_VECTOR, PACK_SENSORS = "cell_voltages_v", "cell_temperatures_c", "temperatures_c"
VOLTAGE_EXTREMES = ("min_cell_voltage_v", "max_cell_voltage_v")
TEMPERATURE_EXTREMES = ("min_temperature_c", "max_temperature_c")

RackPoints = Mapping[str, int]
"""Point name -> values per sample (1: a scalar; a vector: its length), as a rack's link reports them."""


@dataclass(frozen=True)
class CellSource:
    """Rack point names protection reads: one vector point, or the (min, max) points; no temperature
    points when the rack reports none. `pack_sensors`: the length of the temperatures_c vector."""

    voltages: tuple[str, ...] = (VOLTAGE_VECTOR,)
    temperatures: tuple[str, ...] = (TEMPERATURE_VECTOR,)
    pack_sensors: int = 0

    @property
    def voltage_extremes(self) -> bool:
        return self.voltages == VOLTAGE_EXTREMES

    @property
    def temperature_extremes(self) -> bool:
        return self.temperatures == TEMPERATURE_EXTREMES

    @property
    def temperature_pack(self) -> bool:
        return self.temperatures == (PACK_SENSORS,)

    @property
    def temperature_names(self) -> tuple[str, ...] | None:
        """What an alarm calls each temperature reading: the extremes' points, `temperatures_c[j]`
        (1-based) per pack sensor; None for one reading per cell."""
        if self.temperature_pack:
            return tuple(f"{PACK_SENSORS}[{j}]" for j in range(1, self.pack_sensors + 1))
        return self.temperatures if self.temperature_extremes else None

    @property
    def required(self) -> tuple[str, ...]:
        """Points that must be present and fresh, else the rack is in its safe state."""
        return self.voltages + (self.temperatures if self.temperature_pack else ())

    @property
    def coldest(self) -> tuple[str, ...]:
        """The points whose lowest value is the rack's coldest reading (none when it reports none)."""
        return TEMPERATURE_EXTREMES[:1] if self.temperature_extremes else self.temperatures

    @property
    def frame_point(self) -> str:
        """The point whose new sample means a new cell frame (the max on extremes)."""
        return self.voltages[-1]

    def size(self, point: str, cells: int) -> int:
        """Values per sample of one of the points above on a rack of `cells` cells."""
        if point == PACK_SENSORS:
            return self.pack_sensors
        return cells if point in (VOLTAGE_VECTOR, TEMPERATURE_VECTOR) else 1

    @classmethod
    def of(cls, points: RackPoints | None, what: str) -> CellSource:
        """From the points a rack's link declares (None: per-cell vectors). `what` names the rack and
        its link in the error when it reports no cell voltages at all."""
        if points is None:
            return cls()
        if VOLTAGE_VECTOR in points:
            volts: tuple[str, ...] = (VOLTAGE_VECTOR,)
        elif set(VOLTAGE_EXTREMES) <= set(points):
            volts = VOLTAGE_EXTREMES
        else:
            raise ConfigError(f"{what}: reports neither {VOLTAGE_VECTOR} nor {' and '.join(VOLTAGE_EXTREMES)}: "
                              "protection cannot check its cells")
        if TEMPERATURE_VECTOR in points:
            return cls(volts)
        if PACK_SENSORS in points:
            return cls(volts, (PACK_SENSORS,), points[PACK_SENSORS])
        return cls(volts, TEMPERATURE_EXTREMES if set(TEMPERATURE_EXTREMES) <= set(points) else ())


def cell_sources(site: Site, rack_points: Mapping[str, RackPoints | None] | None) -> dict[str, CellSource]:
    """Rack path -> its CellSource, from drivers.registry.rack_points(site) (None or a missing rack:
    per-cell vectors)."""
    return {r.path: CellSource.of((rack_points or {}).get(r.path), f"{r.path} (register map '{r.regmap}')")
            for r in site.racks}
