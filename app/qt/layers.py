"""Heatmap layers: which vector point a layer shows, how it is transformed and its fixed scale."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from app.core.site import Bess, Site
from app.protection.limits import CELL_DEVIATION_WINDOW_V, CELL_TEMPERATURE_WINDOW, voltage_window
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
    overrides = site.protection.overrides
    return [
        Layer("Cell voltage", "cell_voltages_v", Scale("V", *voltage_window(bess.chemistry, overrides))),
        Layer("Cell temperature", "cell_temperatures_c", Scale("°C", *CELL_TEMPERATURE_WINDOW[bess.chemistry])),
        Layer("Deviation from rack mean", "cell_voltages_v", Scale("V", *CELL_DEVIATION_WINDOW_V), _deviation),
    ]
