"""Shared inputs for the protection rule tests: limit sets and a healthy rack frame per chemistry."""
from __future__ import annotations

import functools

import numpy as np

from app.protection.limit_file import LimitSet, load_limits

CHEMISTRIES = ("lfp", "nmc", "lto", "naion")
CAPACITY_AH = 280.0
MODULES, CELLS_PER_MODULE = 4, 16
CELLS = MODULES * CELLS_PER_MODULE


@functools.cache
def limits(chemistry: str) -> LimitSet:
    return load_limits(chemistry)


def mid_voltage(lim: LimitSet) -> float:
    """A cell voltage inside every warn level (and inside the derating tapers)."""
    return (lim.derating.ccl_taper_start_v + lim.derating.dcl_taper_start_v) / 2


def frame(lim: LimitSet, cells: int = CELLS, temp_c: float = 25.0) -> tuple[np.ndarray, np.ndarray]:
    v = np.full(cells, mid_voltage(lim), dtype=np.float32)
    t = np.full(cells, temp_c, dtype=np.float32)
    return v, t
