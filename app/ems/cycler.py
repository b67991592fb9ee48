"""Demo dispatch for the built-in plant: cycles each BESS between two SOC levels through its PCS.

A stand-in operating mode until the EMS modes of issue 11 land. It never commands a PCS that
protection holds, and only writes when the setpoint changes (a real PCS link is not spammed).
"""
from __future__ import annotations

import threading

from app.core.clock import Clock
from app.core.commands import Command, CommandRouter
from app.core.databus import DataBus
from app.core.site import Site


class SocCycler:
    name = "ems"

    def __init__(self, site: Site, bus: DataBus, router: CommandRouter, clock: Clock,
                 low_pct: float = 30.0, high_pct: float = 70.0, c_rate_fraction: float = 0.5,
                 period_s: float = 1.0) -> None:
        self.site, self.bus, self.router, self.clock = site, bus, router, clock
        self.low, self.high, self.fraction, self.period_s = low_pct, high_pct, c_rate_fraction, period_s
        self._charging = {b.id: True for b in site.bess}
        self._sent: dict[str, float] = {}

    def run(self, stop: threading.Event) -> None:
        while not self.clock.wait(stop, self.period_s):
            self.cycle()

    def cycle(self) -> None:
        for b in self.site.bess:
            pcs = next(p for p in self.site.pcs if p.id == b.pcs)
            hold = self.bus.get(f"site.{pcs.id}.protection_hold")
            if hold is None or hold.value:
                self._sent.pop(pcs.id, None)      # re-send once the hold is released
                continue
            socs = [self.bus.get(f"{r.path}.soc_pct") for r in b.racks]
            if any(s is None or not s.quality.usable for s in socs):
                continue
            if max(s.value for s in socs) >= self.high:
                self._charging[b.id] = False
            elif min(s.value for s in socs) <= self.low:
                self._charging[b.id] = True
            kw = pcs.rated_power_kw * self.fraction * (1 if self._charging[b.id] else -1)
            if self._sent.get(pcs.id) != kw:
                self._sent[pcs.id] = kw
                self.router.submit(Command(f"site.{pcs.id}.active_power_setpoint_kw", "write", kw,
                                           user="ems", reason="demo SOC cycling"))
