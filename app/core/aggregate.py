"""Multi-pack aggregation (pure): several racks/packs of one BESS -> BESS values.

Currents add up (+ = charging); the cell voltage and temperature extremes keep their location
(`rack#cell`, or the rack's reading when a pack reports only its extremes or a few temperature sensors:
`rack.max_cell_voltage_v`, `rack.temperatures_c[2]`), NaN and "" when no pack has one; only packs with
usable data count; limits follow the weakest pack: parallel packs share current roughly equally, so the
BESS may take `online x min(pack limit)` (never more than the sum), voltage limits are the tightest.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PackReading:
    """One pack's latest usable values (None where the pack does not report the field). Cell voltages and
    temperatures: one per cell, or the readings `*_names` names (e.g. the (min, max) extremes)."""

    path: str
    current_a: float | None = None
    soc_pct: float | None = None
    cell_voltages_v: np.ndarray | None = None
    charge_current_limit_a: float | None = None
    discharge_current_limit_a: float | None = None
    charge_voltage_limit_v: float | None = None
    discharge_voltage_limit_v: float | None = None
    voltage_names: tuple[str, ...] | None = None
    temperatures_c: np.ndarray | None = None
    temperature_names: tuple[str, ...] | None = None


def aggregate(packs: list[PackReading], total: int) -> dict[str, object]:
    """BESS values from the packs online (`total` = packs configured). Keys are point suffixes."""
    out: dict[str, object] = {"packs_online": len(packs), "packs_total": total}
    currents = [p.current_a for p in packs if p.current_a is not None]
    out["current_a"] = float(sum(currents)) if currents else math.nan
    socs = [p.soc_pct for p in packs if p.soc_pct is not None]
    out["soc_min_pct"] = min(socs) if socs else math.nan
    out["soc_max_pct"] = max(socs) if socs else math.nan
    for (hi, hi_at, lo, lo_at), keys in (
            (_extremes([(p.path, p.cell_voltages_v, p.voltage_names) for p in packs]),
             ("max_cell_voltage_v", "max_cell", "min_cell_voltage_v", "min_cell")),
            (_extremes([(p.path, p.temperatures_c, p.temperature_names) for p in packs]),
             ("max_temperature_c", "max_temperature_at", "min_temperature_c", "min_temperature_at"))):
        out.update(zip(keys, (hi, hi_at, lo, lo_at)))
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


def _extremes(readings: list[tuple[str, np.ndarray | None, tuple[str, ...] | None]]
              ) -> tuple[float, str, float, str]:
    """(max, its location, min, its location) over every pack's finite readings (path, values, names);
    NaN and "" if none."""
    found = []
    for path, values, names in readings:
        if values is None or not np.isfinite(values).any():
            continue
        hi, lo = int(np.nanargmax(values)), int(np.nanargmin(values))
        at = [f"{path}.{names[i]}" if names else f"{path}#{i + 1}" for i in (hi, lo)]
        found.append((float(values[hi]), at[0], float(values[lo]), at[1]))
    if not found:
        return math.nan, "", math.nan, ""
    hi_pack, lo_pack = max(found, key=lambda e: e[0]), min(found, key=lambda e: e[2])
    return hi_pack[0], hi_pack[1], lo_pack[2], lo_pack[3]
