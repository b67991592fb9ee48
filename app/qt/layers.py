"""Heatmap layers: which vector point a layer shows, how it is transformed and its fixed scale."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from app.core.site import Bess, Site
from app.protection.limit_file import load_limits
from app.protection.limits import deviation_window, temperature_window, voltage_window
from widgets.cell_heatmap import Scale


@dataclass(frozen=True)
class Layer:
    title: str
    suffix: str                                   # vector point under the rack path
    scale: Scale
    transform: Callable[[np.ndarray], np.ndarray] = lambda v: v


def _deviation(values: np.ndarray) -> np.ndarray:
    return values - np.nanmean(values) if values.size else values


def layers_for(site: Site, bess: Bess) -> list[Layer]:
    limits = load_limits(bess.chemistry, site.protection.overrides)
    return [
        Layer("Cell voltage", "cell_voltages_v", Scale("V", *voltage_window(limits))),
        Layer("Cell temperature", "cell_temperatures_c", Scale("°C", *temperature_window(limits))),
        Layer("Deviation from rack mean", "cell_voltages_v", Scale("V", *deviation_window(limits)), _deviation),
        Layer("Cell SOC (estimated)", "cell_soc_pct", Scale("%", 0.0, 5.0, 95.0, 100.0)),
    ]
