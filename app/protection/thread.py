"""The protection thread: every `period_s` it reads the DataBus, applies the rules per rack, feeds the
ISA-18.2 alarm manager and drives the PCS to a safe state. It never touches the GUI and treats
missing/stale data as a fault.

Rack states: NORMAL, TRIPPED (the rack's trip alarm is latched until an authorised reset once the cause
is gone), STALE (data missing/old/bad: safe state while it lasts). A PCS is held at 0 kW while any of
its racks is not NORMAL; the hold is re-asserted until the PCS reads back 0. The alarm manager is owned
by this thread: operator actions reach it as Commands on "site.alarms", the GUI reads the frozen
`alarm_summary` / `first_outs` published after every cycle.
"""
from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass
from typing import Any

from app.alarms import commands as alarm_commands
from app.alarms.manager import AlarmManager
from app.alarms.model import AlarmDefinition, AlarmRefused, AlarmSummary, Direction, Priority
from app.core import points
from app.core.clock import Clock
from app.core.commands import Command, CommandRouter, CommandStatus, PendingCommand
from app.core.databus import DataBus
from app.core.events import Event, EventJournal, Severity
from app.core.sample import Sample
from app.core.site import Rack, Site
from app.protection.limits import OvervoltageLimit
from app.protection.rules import CellOvervoltageRule, data_age_fault

log = logging.getLogger(__name__)

NORMAL, TRIPPED, STALE = "NORMAL", "TRIPPED", "STALE"
REASSERT_S = 1.0
ESTOP_TAG = "site.protection.emergency_stop"


@dataclass
class _RackGuard:
    rack: Rack
    pcs: str
    rule: CellOvervoltageRule
    state: str = NORMAL

    @property
    def ov_tag(self) -> str:
        return f"{self.rack.path}.cell_voltages_v.ov_trip"

    @property
    def data_tag(self) -> str:
        return f"{self.rack.path}.cell_voltages_v.data_fault"


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
        self.alarms = AlarmManager(self._definitions(), snapshot_of=self._rack_snapshot, now=clock.time())
        self.alarm_summary: AlarmSummary = self.alarms.summary()     # replaced whole after every cycle
        self.first_outs: tuple = ()
        self._held: dict[str, float] = {}          # pcs id -> monotonic time of last 0 kW command
        self.lateness_s: collections.deque[float] = collections.deque(maxlen=10_000)
        self.trip_times: list[tuple[str, float]] = []  # (rack path, monotonic time of trip decision)
        self._commands = router.register("site.protection")
        self._alarm_commands = router.register(alarm_commands.TARGET)
        self._started = clock.monotonic()

    def _definitions(self) -> list[AlarmDefinition]:
        defs = []
        for g in self.guards:
            point = f"{g.rack.path}.cell_voltages_v"
            defs.append(AlarmDefinition(g.ov_tag, point, "cell overvoltage trip", Priority.URGENT,
                                        limit=g.rule.limit.trip_v, latching=True, alarm_class="safety",
                                        group=g.rack.path, unit="V"))
            defs.append(AlarmDefinition(g.data_tag, point, "cell data missing or stale: safe state", Priority.HIGH,
                                        direction=Direction.DISCRETE, alarm_class="equipment", group=g.rack.path))
        defs.append(AlarmDefinition(ESTOP_TAG, ESTOP_TAG, "emergency stop", Priority.URGENT,
                                    direction=Direction.DISCRETE, latching=True, alarm_class="safety",
                                    group="site"))
        for link in self.site.links:
            defs.append(AlarmDefinition(f"site.links.{link.name}.comm_lost", f"site.links.{link.name}.status",
                                        "link communication lost", Priority.HIGH, direction=Direction.DISCRETE,
                                        alarm_class="equipment"))
        return defs

    def _rack_snapshot(self, group: str) -> dict[str, Any]:
        """All current values of one rack (the first-out snapshot at the trip instant)."""
        snap = self.bus.snapshot()
        return {p: s.value for p, s in snap.items() if p.startswith(group + ".")}

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
        self.router.unregister(alarm_commands.TARGET)

    # --- one cycle --------------------------------------------------------------------------
    def cycle(self, now: float) -> None:
        wall = self.clock.time()
        transitions = []
        for g in self.guards:
            transitions += self._evaluate(g, now, wall)
        for link in self.site.links:
            status = self.bus.get(f"site.links.{link.name}.status")
            lost = status is not None and status.value == "COMM_LOST"
            transitions += self.alarms.evaluate(f"site.links.{link.name}.comm_lost", lost,
                                                status.value if status else None, wall)
        transitions += self.alarms.tick(wall)
        self._post(transitions)
        self._handle_commands(wall)                   # judged on this cycle's data (reset needs the cause gone)
        for g in self.guards:
            self._update_state(g, now, wall)
        hold = {g.pcs for g in self.guards if g.state != NORMAL}
        if self.alarms.view(ESTOP_TAG).latched:
            hold |= {p.id for p in self.site.pcs}
        for pcs in hold:
            self._hold_pcs(pcs, now)
        for pcs in set(self._held) - hold:
            del self._held[pcs]
            self.journal.post(Event(wall, "protection", "release", f"{pcs}: protection hold released"))
        summary = self.alarms.summary()
        if summary.version != self.alarm_summary.version:
            self.alarm_summary = summary
            self.first_outs = self.alarms.first_outs()
        overall = "EMERGENCY_STOP" if self.alarms.view(ESTOP_TAG).latched else (
            TRIPPED if any(g.state == TRIPPED for g in self.guards) else (STALE if hold else NORMAL))
        items = [(f"{g.rack.path}.protection_state", g.state) for g in self.guards]
        items += [(f"site.{p.id}.protection_hold", p.id in hold) for p in self.site.pcs]
        items += [("site.protection.state", overall)]
        self.bus.publish_many((p, Sample(v, wall, now, wall)) for p, v in items)

    def _evaluate(self, g: _RackGuard, now: float, wall: float) -> list:
        """Feed this rack's alarms; returns the alarm transitions."""
        point = f"{g.rack.path}.cell_voltages_v"
        sample = self.bus.get(point)
        fault = data_age_fault(sample.recv_mono if sample else None, bool(sample and sample.quality.usable),
                               now, self.stale_after_s)
        if now - self._started < self.stale_after_s and fault == "no data":
            fault = None                              # start-up grace: first poll not in yet
        out = self.alarms.evaluate(g.data_tag, fault is not None, fault or "ok", wall)
        if fault or sample is None:
            return out
        exceed = g.rule.evaluate(sample.value, now)
        if exceed is None:
            return out + self.alarms.evaluate(g.ov_tag, False, float(sample.value.max()), wall)
        m, c = divmod(exceed.index, g.rack.cells_per_module)
        cell_point = points.cell(g.rack.bess, g.rack.number, m + 1, c + 1, "voltage_v")
        trans = self.alarms.evaluate(g.ov_tag, True, exceed.value, wall, point=cell_point)
        if any(t.action == "activate" for t in trans):
            self.trip_times.append((g.rack.path, now))
            label = points.cell_label(g.rack.number, m + 1, c + 1)
            self.journal.post(Event(
                wall, "protection", "trip",
                f"TRIP cell overvoltage: cell {label} at {exceed.value:.3f} V > limit {exceed.limit:.3f} V "
                f"for {now - exceed.since:.1f} s -> {g.pcs} 0 kW (latched)",
                Severity.TRIP, point=cell_point, value=exceed.value, limit=exceed.limit))
        return out + trans

    def _update_state(self, g: _RackGuard, now: float, wall: float) -> None:
        old = g.state
        if self.alarms.view(g.ov_tag).latched:
            g.state = TRIPPED
        elif self.alarms.view(g.data_tag).condition:
            g.state = STALE
        else:
            g.state = NORMAL
        if old == g.state:
            return
        point = f"{g.rack.path}.cell_voltages_v"
        if g.state == STALE:
            why = self.alarms.view(g.data_tag).value
            self.journal.post(Event(wall, "protection", "safe_state",
                                    f"SAFE STATE {g.rack.path}: cell voltages {why} -> {g.pcs} 0 kW",
                                    Severity.ALARM, point=point))
        elif old == STALE:
            self.journal.post(Event(wall, "protection", "data_restored", f"{g.rack.path}: cell data restored",
                                    point=point))

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

    # --- commands -----------------------------------------------------------------------------
    def _handle_commands(self, wall: float) -> None:
        while not self._alarm_commands.empty():
            pending = self._alarm_commands.get_nowait()
            result = alarm_commands.execute(self.alarms, pending.command, wall)
            self._post(result.readback or ())
            pending.reply(result.status, result.message, result.readback)
        while not self._commands.empty():
            self._reset(self._commands.get_nowait(), wall)

    def _reset(self, pending: PendingCommand, wall: float) -> None:
        """`emergency_stop`: latch the e-stop (every PCS held at 0 kW until reset).
        `reset` [rack path]: clear latched trips (and the e-stop) whose cause is gone (the caller checked
        the role)."""
        cmd = pending.command
        if cmd.action == "emergency_stop":
            self._post(self.alarms.evaluate(ESTOP_TAG, True, f"pressed by {cmd.user}", wall))
            self._post(self.alarms.evaluate(ESTOP_TAG, False, f"pressed by {cmd.user}", wall))
            pending.reply(CommandStatus.ACCEPTED, "emergency stop latched")
            return
        if cmd.action != "reset":
            pending.reply(CommandStatus.REJECTED, f"unknown protection action {cmd.action!r}")
            return
        refused, done = [], []
        tags = [g.ov_tag for g in self.guards if not cmd.value or cmd.value == g.rack.path]
        if not cmd.value:
            tags.append(ESTOP_TAG)
        for tag in tags:
            if not self.alarms.view(tag).latched:
                continue
            try:
                done.append(self.alarms.reset(tag, cmd.user, True, wall))
            except AlarmRefused as exc:
                refused.append(f"cause persists: {exc}")
        self._post(done)
        for t in done:
            self.journal.post(Event(wall, "protection", "reset", f"{t.point}: trip reset by {cmd.user}"))
        if refused:
            pending.reply(CommandStatus.REJECTED, "; ".join(refused))
        else:
            pending.reply(CommandStatus.ACCEPTED, f"reset {len(done)} trip(s)")

    def _post(self, transitions) -> None:
        for t in transitions:
            self.journal.post(t.as_event())
