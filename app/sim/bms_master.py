"""A simulated BMS master (BESS-level controller) over its slave racks.

The master sees what its slaves report (RackModel readings, faults included) and aggregates them the
way a master BMS does: the string current, SOC, the weakest and strongest cell with its location, the
temperature extremes and how many slaves are online (a rebooting slave is offline and left out).
Per rack it does one argmin/argmax over the rack's vector, never a loop over cells.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from app.core import points
from app.core.site import Rack


class SlaveRack(Protocol):
    """What the master reads from a slave (app.sim.plant.RackModel)."""

    rack: Rack
    capacity_ah: np.ndarray
    online: bool
    contactor_closed: bool
    current_a: float
    soc: np.ndarray
    temp_c: np.ndarray

    def cell_voltages(self) -> np.ndarray: ...


@dataclass(frozen=True)
class CellExtreme:
    """One cell's value and where it is: rack path, cell number in the rack (1-based) and its point."""

    value: float
    rack: str
    cell: int
    point: str


@dataclass(frozen=True)
class MasterSummary:
    """The master's aggregate at one instant (+ current = charging)."""

    racks: int
    racks_online: int
    racks_closed: int
    cells: int
    current_a: float            # sum over the closed, online racks
    pack_voltage_v: float       # mean over the closed, online racks (0 if none)
    soc_pct: float              # capacity-weighted over the online racks
    min_cell_v: CellExtreme | None
    max_cell_v: CellExtreme | None
    min_temp_c: CellExtreme | None
    max_temp_c: CellExtreme | None


def _locate(rack: Rack, index: int, value: float, quantity: str) -> CellExtreme:
    module, cell = divmod(index, rack.cells_per_module)
    return CellExtreme(float(value), rack.path, index + 1, points.cell(rack.bess, rack.number, module + 1, cell + 1, quantity))


class BmsMaster:
    """Aggregates `slaves`; `summary()` is cheap (per rack: a few reductions) and pure."""

    def __init__(self, path: str, slaves: Sequence[SlaveRack]) -> None:
        self.path = path
        self.slaves = list(slaves)

    def summary(self) -> MasterSummary:
        online = [s for s in self.slaves if s.online]
        closed = [s for s in online if s.contactor_closed]
        v_min = v_max = t_min = t_max = None
        charge = capacity = 0.0
        packs = []
        for s in online:
            volts, temps = s.cell_voltages(), s.temp_c
            if s.contactor_closed:
                packs.append(float(volts.sum()))
            i, j, k, m = int(volts.argmin()), int(volts.argmax()), int(temps.argmin()), int(temps.argmax())
            if v_min is None or volts[i] < v_min.value:
                v_min = _locate(s.rack, i, volts[i], "voltage_v")
            if v_max is None or volts[j] > v_max.value:
                v_max = _locate(s.rack, j, volts[j], "voltage_v")
            if t_min is None or temps[k] < t_min.value:
                t_min = _locate(s.rack, k, temps[k], "temperature_c")
            if t_max is None or temps[m] > t_max.value:
                t_max = _locate(s.rack, m, temps[m], "temperature_c")
            charge += float(s.soc @ s.capacity_ah)
            capacity += float(s.capacity_ah.sum())
        return MasterSummary(
            racks=len(self.slaves), racks_online=len(online), racks_closed=len(closed),
            cells=sum(s.rack.cell_count for s in self.slaves),
            current_a=float(sum(s.current_a for s in closed)),
            pack_voltage_v=float(np.mean(packs)) if packs else 0.0,
            soc_pct=100.0 * charge / capacity if capacity else 0.0,
            min_cell_v=v_min, max_cell_v=v_max, min_temp_c=t_min, max_temp_c=t_max)
