"""BESS aggregation worker: every second, the racks/packs of each BESS -> `site.<bess>.*` points
(sum of currents, min/max cell voltage and temperature with location, packs online, limits of the
weakest pack).

Each rack is read from the points its CellSource names (app/protection/cell_source.py, the decision
protection made from drivers.registry.rack_points): per-cell vectors, the (min, max) extremes of a
SunSpec 802/803 rack, or a BLE/CAN pack's temperature sensors. A rack counts as online while those
voltage points are usable.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np

from app.core.aggregate import PackReading, aggregate
from app.core.clock import Clock
from app.core.databus import DataBus
from app.core.sample import Sample
from app.core.site import Site
from app.protection.cell_source import CellSource

# Limits: what the BMS itself reports (CAN/BLE packs) wins; otherwise the protection's derating.
_LIMIT_POINTS = {"charge_current_limit_a": ("charge_current_limit_a", "ccl_a"),
                 "discharge_current_limit_a": ("discharge_current_limit_a", "dcl_a"),
                 "charge_voltage_limit_v": ("charge_voltage_limit_v", "cvl_v"),
                 "discharge_voltage_limit_v": ("discharge_voltage_limit_v", "dvl_v")}


class BessAggregator:
    name = "aggregator"

    def __init__(self, site: Site, bus: DataBus, clock: Clock, period_s: float = 1.0,
                 sources: Mapping[str, CellSource] | None = None) -> None:
        """sources: rack path -> its CellSource (ProtectionThread.sources; missing: per-cell vectors)."""
        self.site, self.bus, self.clock, self.period_s = site, bus, clock, period_s
        self.sources = {r.path: (sources or {}).get(r.path, CellSource()) for r in site.racks}

    def run(self, stop: threading.Event) -> None:
        while not self.clock.wait(stop, self.period_s):
            self.cycle()

    def cycle(self) -> None:
        snap = self.bus.snapshot()

        def value(point: str):
            s = snap.get(point)
            return s.value if s is not None and s.quality.usable else None

        def readings(rack: str, names: tuple[str, ...]) -> np.ndarray | None:
            """One vector point's value, or the scalar points as one array (NaN where unusable)."""
            if len(names) == 1:
                return value(f"{rack}.{names[0]}")
            return np.array([np.nan if (v := value(f"{rack}.{p}")) is None else v for p in names], np.float32)

        mono, wall = self.clock.monotonic(), self.clock.time()
        items = []
        for b in self.site.bess:
            packs = []
            for r in b.racks:
                src = self.sources[r.path]
                volts = readings(r.path, src.voltages)
                if volts is None or (src.voltage_extremes and not np.isfinite(volts).all()):
                    continue                                  # not online
                limits = {key: next((value(f"{r.path}.{p}") for p in names if value(f"{r.path}.{p}") is not None),
                                    None) for key, names in _LIMIT_POINTS.items()}
                packs.append(PackReading(
                    r.path, value(f"{r.path}.current_a"), value(f"{r.path}.soc_pct"), volts, **limits,
                    voltage_names=src.voltages if src.voltage_extremes else None,
                    temperatures_c=readings(r.path, src.temperatures) if src.temperatures else None,
                    temperature_names=src.temperature_names))
            for key, v in aggregate(packs, len(b.racks)).items():
                items.append((f"site.{b.id}.{key}", Sample(v, wall, mono, wall)))
        self.bus.publish_many(items)
