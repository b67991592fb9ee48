"""Multi-pack aggregation (pure): several racks/packs of one BESS -> BESS values.

Currents add up (+ = charging); the extremes keep their location (rack, cell); only packs with usable
data count; limits follow the weakest pack: parallel packs share current roughly equally, so the
BESS may take `online x min(pack limit)` (never more than the sum), voltage limits are the tightest.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PackReading:
    """One pack's latest usable values (None where the pack does not report the field)."""

    path: str
    current_a: float | None = None
    soc_pct: float | None = None
    cell_voltages_v: np.ndarray | None = None
    charge_current_limit_a: float | None = None
    discharge_current_limit_a: float | None = None
    charge_voltage_limit_v: float | None = None
    discharge_voltage_limit_v: float | None = None


def aggregate(packs: list[PackReading], total: int) -> dict[str, object]:
    """BESS values from the packs online (`total` = packs configured). Keys are point suffixes."""
    out: dict[str, object] = {"packs_online": len(packs), "packs_total": total}
    currents = [p.current_a for p in packs if p.current_a is not None]
    out["current_a"] = float(sum(currents)) if currents else math.nan
    socs = [p.soc_pct for p in packs if p.soc_pct is not None]
    out["soc_min_pct"] = min(socs) if socs else math.nan
    out["soc_max_pct"] = max(socs) if socs else math.nan
    extremes = [(float(np.nanmax(p.cell_voltages_v)), int(np.nanargmax(p.cell_voltages_v)),
                 float(np.nanmin(p.cell_voltages_v)), int(np.nanargmin(p.cell_voltages_v)), p.path)
                for p in packs if p.cell_voltages_v is not None and np.isfinite(p.cell_voltages_v).any()]
    if extremes:
        hi = max(extremes, key=lambda e: e[0])
        lo = min(extremes, key=lambda e: e[2])
        out.update(max_cell_voltage_v=hi[0], max_cell=f"{hi[4]}#{hi[1] + 1}",
                   min_cell_voltage_v=lo[2], min_cell=f"{lo[4]}#{lo[3] + 1}")
    for key, pick in (("charge_current_limit_a", min), ("discharge_current_limit_a", min)):
        limits = [getattr(p, key) for p in packs if getattr(p, key) is not None]
        if limits:
            out[key] = min(len(packs) * pick(limits), float(sum(limits)))
            out[f"{key.removesuffix('_a')}_by"] = next(p.path for p in packs if getattr(p, key) == pick(limits))
    cvl = [p.charge_voltage_limit_v for p in packs if p.charge_voltage_limit_v is not None]
    dvl = [p.discharge_voltage_limit_v for p in packs if p.discharge_voltage_limit_v is not None]
    if cvl:
        out["charge_voltage_limit_v"] = min(cvl)
    if dvl:
        out["discharge_voltage_limit_v"] = max(dvl)
    return out
