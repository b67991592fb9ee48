"""The protection thread: every `period_s` it reads the DataBus, applies the rules per rack and
drives the PCS to a safe state. It never touches the GUI and treats missing/stale data as a fault.

Rack states: NORMAL, TRIPPED (latched until an authorised reset once the cause is gone), STALE (data
missing/old/bad: safe state while it lasts). A PCS is held at 0 kW while any of its racks is not NORMAL;
the hold is re-asserted until the PCS reads back 0.
"""
from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass

from app.core import points
from app.core.clock import Clock
from app.core.commands import Command, CommandRouter, CommandStatus
from app.core.databus import DataBus
from app.core.events import Event, EventJournal, Severity
from app.core.sample import Sample
from app.core.site import Rack, Site
from app.protection.limits import OvervoltageLimit
from app.protection.rules import CellOvervoltageRule, Exceedance, data_age_fault

log = logging.getLogger(__name__)

NORMAL, TRIPPED, STALE = "NORMAL", "TRIPPED", "STALE"
REASSERT_S = 1.0


@dataclass
class _RackGuard:
    rack: Rack
    pcs: str
    rule: CellOvervoltageRule
    state: str = NORMAL
    trip: Exceedance | None = None
    cause: str = ""


class ProtectionThread:
    name = "protection"

    def __init__(self, site: Site, bus: DataBus, router: CommandRouter, journal: EventJournal, clock: Clock) -> None:
        self.site, self.bus, self.router, self.journal, self.clock = site, bus, router, journal, clock
        self.period_s = site.protection.period_s
        self.stale_after_s = site.protection.stale_after_s
        self.guards = [
            _RackGuard(r, b.pcs, CellOvervoltageRule(OvervoltageLimit.for_chemistry(b.chemistry,
                                                                                    site.protection.overrides)))
            for b in site.bess for r in b.racks
        ]
        self._held: dict[str, float] = {}          # pcs id -> monotonic time of last 0 kW command
        self.lateness_s: collections.deque[float] = collections.deque(maxlen=10_000)
        self.trip_times: list[tuple[str, float]] = []  # (rack path, monotonic time of trip decision)
        self._commands = router.register("site.protection")
        self._started = clock.monotonic()

    def run(self, stop: threading.Event) -> None:
        tick = self.clock.monotonic()
        while not stop.is_set():
            now = self.clock.monotonic()
            self.lateness_s.append(max(0.0, now - tick))
            self.cycle(now)
            tick += self.period_s
            if tick < self.clock.monotonic():             # overrun: skip missed ticks, keep the phase
                tick += ((self.clock.monotonic() - tick) // self.period_s + 1) * self.period_s
            self.clock.wait(stop, tick - self.clock.monotonic())

    def on_stopped(self) -> None:
        """Leave the plant safe when the application stops: every PCS to 0 kW (drivers still run)."""
        futures = [self.router.submit(Command(f"site.{p.id}.active_power_setpoint_kw", "write", 0.0,
                                              reason="ESMS shutdown: safe state")) for p in self.site.pcs]
        for f in futures:
            try:
                f.result(timeout=2.0)
            except Exception:  # noqa: BLE001 - shutdown continues; the PCS link may already be gone
                log.warning("shutdown safe state: PCS did not confirm 0 kW")
        self.router.unregister("site.protection")

    # --- one cycle --------------------------------------------------------------------------
    def cycle(self, now: float) -> None:
        self._handle_commands()
        wall = self.clock.time()
        for g in self.guards:
            self._evaluate(g, now, wall)
        hold = {g.pcs for g in self.guards if g.state != NORMAL}
        for pcs in hold:
            self._hold_pcs(pcs, now)
        for pcs in set(self._held) - hold:
            del self._held[pcs]
            self.journal.post(Event(wall, "protection", "release", f"{pcs}: protection hold released"))
        overall = TRIPPED if any(g.state == TRIPPED for g in self.guards) else (
            STALE if hold else NORMAL)
        items = [(f"{g.rack.path}.protection_state", g.state) for g in self.guards]
        items += [(f"site.{p.id}.protection_hold", p.id in hold) for p in self.site.pcs]
        items += [("site.protection.state", overall)]
        self.bus.publish_many((p, Sample(v, wall, now, wall)) for p, v in items)

    def _evaluate(self, g: _RackGuard, now: float, wall: float) -> None:
        point = f"{g.rack.path}.cell_voltages_v"
        sample = self.bus.get(point)
        fault = data_age_fault(sample.recv_mono if sample else None, bool(sample and sample.quality.usable),
                               now, self.stale_after_s)
        if now - self._started < self.stale_after_s and fault == "no data":
            return                                  # start-up grace: first poll not in yet
        if fault:
            if g.state == NORMAL:
                g.state, g.cause = STALE, fault
                self.journal.post(Event(wall, "protection", "safe_state",
                                        f"SAFE STATE {g.rack.path}: cell voltages {fault} -> {g.pcs} 0 kW",
                                        Severity.ALARM, point=point))
            return
        if g.state == STALE:
            g.state, g.cause = NORMAL, ""
            self.journal.post(Event(wall, "protection", "data_restored", f"{g.rack.path}: cell data restored",
                                    point=point))
        exceed = g.rule.evaluate(sample.value, now)
        if exceed and g.state == NORMAL:
            g.state, g.trip = TRIPPED, exceed
            g.cause = "cell overvoltage"
            self.trip_times.append((g.rack.path, now))
            m, c = divmod(exceed.index, g.rack.cells_per_module)
            label = points.cell_label(g.rack.number, m + 1, c + 1)
            self.journal.post(Event(
                wall, "protection", "trip",
                f"TRIP cell overvoltage: cell {label} at {exceed.value:.3f} V > limit {exceed.limit:.3f} V "
                f"for {now - exceed.since:.1f} s -> {g.pcs} 0 kW (latched)",
                Severity.TRIP, point=points.cell(g.rack.bess, g.rack.number, m + 1, c + 1, "voltage_v"),
                value=exceed.value, limit=exceed.limit))

    def _hold_pcs(self, pcs: str, now: float) -> None:
        setpoint = self.bus.get(f"site.{pcs}.active_power_setpoint_kw")
        last = self._held.get(pcs)
        confirmed = setpoint is not None and setpoint.quality.usable and abs(setpoint.value) < 0.05 \
            and last is not None and setpoint.recv_mono > last
        if last is None or (not confirmed and now - last >= REASSERT_S):
            self._held[pcs] = now
            self.router.submit(Command(f"site.{pcs}.active_power_setpoint_kw", "write", 0.0,
                                       reason="protection hold")).add_done_callback(self._log_result)

    def _log_result(self, future) -> None:
        result = future.result()
        if not result.ok:
            log.warning("protection command %s: %s", result.command.target, result.message)

    def _handle_commands(self) -> None:
        while not self._commands.empty():
            pending = self._commands.get_nowait()
            cmd = pending.command
            if cmd.action != "reset":
                pending.reply(CommandStatus.REJECTED, f"unknown protection action {cmd.action!r}")
                continue
            refused = []
            for g in self.guards:
                if g.state != TRIPPED or (cmd.value and cmd.value != g.rack.path):
                    continue
                sample = self.bus.get(f"{g.rack.path}.cell_voltages_v")
                worst = float(sample.value.max()) if sample is not None else float("nan")
                if not sample or not sample.quality.usable or not worst < g.rule.limit.release_v:
                    refused.append(f"{g.rack.path}: max cell {worst:.3f} V not below "
                                   f"{g.rule.limit.release_v:.3f} V")
                    continue
                g.state, g.trip, g.cause = NORMAL, None, ""
                self.journal.post(Event(self.clock.time(), "protection", "reset",
                                        f"{g.rack.path}: trip reset by {cmd.user}", Severity.INFO))
            if refused:
                pending.reply(CommandStatus.REJECTED, "cause persists: " + "; ".join(refused))
            else:
                pending.reply(CommandStatus.ACCEPTED, "reset")
