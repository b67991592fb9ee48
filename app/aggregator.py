"""BESS aggregation worker: every second, the racks/packs of each BESS -> `site.<bess>.*` points
(sum of currents, min/max cell with location, packs online, limits of the weakest pack)."""
from __future__ import annotations

import threading

from app.core.aggregate import PackReading, aggregate
from app.core.clock import Clock
from app.core.databus import DataBus
from app.core.sample import Sample
from app.core.site import Site

# Limits: what the BMS itself reports (CAN/BLE packs) wins; otherwise the protection's derating.
_LIMIT_POINTS = {"charge_current_limit_a": ("charge_current_limit_a", "ccl_a"),
                 "discharge_current_limit_a": ("discharge_current_limit_a", "dcl_a"),
                 "charge_voltage_limit_v": ("charge_voltage_limit_v", "cvl_v"),
                 "discharge_voltage_limit_v": ("discharge_voltage_limit_v", "dvl_v")}


class BessAggregator:
    name = "aggregator"

    def __init__(self, site: Site, bus: DataBus, clock: Clock, period_s: float = 1.0) -> None:
        self.site, self.bus, self.clock, self.period_s = site, bus, clock, period_s

    def run(self, stop: threading.Event) -> None:
        while not self.clock.wait(stop, self.period_s):
            self.cycle()

    def cycle(self) -> None:
        snap = self.bus.snapshot()

        def value(point: str):
            s = snap.get(point)
            return s.value if s is not None and s.quality.usable else None

        mono, wall = self.clock.monotonic(), self.clock.time()
        items = []
        for b in self.site.bess:
            packs = []
            for r in b.racks:
                volts = snap.get(f"{r.path}.cell_voltages_v")
                if volts is None or not volts.quality.usable:
                    continue
                limits = {key: next((value(f"{r.path}.{p}") for p in names if value(f"{r.path}.{p}") is not None),
                                    None) for key, names in _LIMIT_POINTS.items()}
                packs.append(PackReading(r.path, value(f"{r.path}.current_a"), value(f"{r.path}.soc_pct"),
                                         volts.value, **limits))
            for key, v in aggregate(packs, len(b.racks)).items():
                items.append((f"site.{b.id}.{key}", Sample(v, wall, mono, wall)))
        self.bus.publish_many(items)
