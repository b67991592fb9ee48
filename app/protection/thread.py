"""The protection thread: it reads the DataBus, applies every rule of every rack (limit ladders,
derating, thermal runaway, sensor plausibility, stale data), feeds the ISA-18.2 alarm manager, runs
the trip sequence and drives the PCS to a safe state. It never touches the GUI.

Timing: a full cycle every `period_s` (default 100 ms), plus an immediate evaluation of a rack as soon
as its new cell frame is published (so sample -> trip does not wait for the next tick).
Rack states: NORMAL, TRIPPED (a latched trip alarm of the rack, until an authorised reset once the
cause is gone), STALE (data missing/old/bad: safe state while it lasts). A PCS is held at 0 kW while
any of its racks is STALE, while its BESS is tripped as a whole, while a single faulty rack is being
isolated (until its contactor reads open), and after an emergency stop. A rack whose link reports only
min/max cell voltage (and temperature) is checked on those extremes, one whose pack reports a few
temperature sensors (BLE, CAN without per-cell temperature frames) on those sensors (`rack_points`, from
the site's links; app/protection/cell_source.py). Data missing, stale or of the wrong length is a fault
(STALE) for the cell voltages and for pack sensors alike. The alarm manager is owned by
this thread: operator actions reach it as Commands on "site.alarms"; the GUI reads the frozen
`alarm_summary` / `first_outs` published after every cycle.
"""
from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.alarms import commands as alarm_commands
from app.alarms.manager import AlarmManager
from app.alarms.model import AlarmDefinition, AlarmRefused, AlarmSummary, Direction, Priority
from app.core import points
from app.core.clock import Clock
from app.core.commands import Command, CommandRouter, CommandStatus, PendingCommand
from app.core.databus import DataBus
from app.core.events import Event, EventJournal, Severity
from app.core.sample import Sample
from app.core.site import Bess, Rack, Site
from app.protection.actions import RackCondition, TripPlanner, load_trip_sequence
from app.protection.cell_source import CellSource, RackPoints, cell_sources
from app.protection.ladder import Level
from app.protection.limit_file import QUANTITIES, RUNGS, load_limits
from app.protection.rack_check import RackCheck, RackVerdict
from app.protection.rules import data_age_fault, size_fault

log = logging.getLogger(__name__)

NORMAL, TRIPPED, STALE = "NORMAL", "TRIPPED", "STALE"
REASSERT_S = 1.0
ESTOP_TAG = "site.protection.emergency_stop"
RUNG_PRIORITY = {"warn": Priority.LOW, "alarm": Priority.HIGH, "trip": Priority.URGENT}
LEVEL_OF = {"warn": Level.WARN, "alarm": Level.ALARM, "trip": Level.TRIP}
EXTRA = (("thermal", "thermal runaway"), ("sensor", "sensor fault"))


@dataclass
class _RackGuard:
    rack: Rack
    bess: Bess
    check: RackCheck
    state: str = NORMAL
    verdict: RackVerdict | None = None
    frame_ts: float = float("-inf")
    fed: dict[str, tuple[bool, Any]] = field(default_factory=dict)   # tag -> last (active, value) fed
    published: dict[str, Any] = field(default_factory=dict)
    latched: set[str] = field(default_factory=set)                 # this rack's latched trip alarms

    def tag(self, what: str, rung: str) -> str:
        return f"{self.rack.path}.{what}.{rung}"

    @property
    def data_tag(self) -> str:
        return f"{self.rack.path}.data_fault"

    @property
    def source(self) -> CellSource:
        return self.check.source

    @property
    def frame_point(self) -> str:
        return f"{self.rack.path}.{self.source.frame_point}"

    @property
    def trip_tags(self) -> list[str]:
        return [self.tag(q, "trip") for q in QUANTITIES] + [self.tag(w, "trip") for w, _ in EXTRA]


class _Wake:
    """DataBus subscriber that only notes which racks have a new cell frame and wakes the thread."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.points: collections.deque[str] = collections.deque()

    def put(self, item: tuple[str, Sample]) -> None:
        self.points.append(item[0])
        self.event.set()


class ProtectionThread:
    name = "protection"

    def __init__(self, site: Site, bus: DataBus, router: CommandRouter, journal: EventJournal, clock: Clock,
                 rack_points: Mapping[str, RackPoints | None] | None = None) -> None:
        """rack_points: rack path -> the points its link declares (drivers.registry.rack_points; None or
        a missing rack: per-cell vectors); the CellSource of each rack is kept in `sources`."""
        self.site, self.bus, self.router, self.journal, self.clock = site, bus, router, journal, clock
        self.period_s = site.protection.period_s
        self.stale_after_s = site.protection.stale_after_s
        site_text = Path(site.source).read_text(encoding="utf-8") if Path(site.source).is_file() else None
        sequence = load_trip_sequence()
        self.guards: list[_RackGuard] = []
        self.sources = cell_sources(site, rack_points)
        self.planners: dict[str, TripPlanner] = {}
        self.limits = {}
        for b in site.bess:
            limits = self.limits[b.id] = load_limits(b.chemistry, site.protection.overrides, site_text=site_text,
                                                     site_source=site.source)
            self.planners[b.id] = TripPlanner(b.id, b.pcs, [r.path for r in b.racks], sequence)
            for r in b.racks:
                check = RackCheck(limits, b.cell_capacity_ah, r.number, r.modules, r.cells_per_module, r.cell_count,
                                  self.sources[r.path])
                self.guards.append(_RackGuard(r, b, check))
        self.by_path = {g.rack.path: g for g in self.guards}
        self._guard_of_trip = {t: g for g in self.guards for t in g.trip_tags}
        self._published: dict[str, Any] = {}
        self._heartbeat = float("-inf")
        self.alarms = AlarmManager(self._definitions(), snapshot_of=self._rack_snapshot, now=clock.time())
        self.alarm_summary: AlarmSummary = self.alarms.summary()     # replaced whole after every cycle
        self.first_outs: tuple = ()
        self._held: dict[str, float] = {}          # pcs id -> monotonic time of last 0 kW command
        self.lateness_s: collections.deque[float] = collections.deque(maxlen=10_000)
        # (rack, what tripped, recv_mono of the sample that tripped, decision mono, mono when its condition began)
        self.trip_times: list[tuple[str, str, float, float, float]] = []
        self._commands = router.register("site.protection")
        self._alarm_commands = router.register(alarm_commands.TARGET)
        self._wake = _Wake()
        self._subs = [bus.subscribe(f"site.*.{p}", self._wake)
                      for p in sorted({g.source.frame_point for g in self.guards})]
        self._started = clock.monotonic()

    # --- alarm definitions ----------------------------------------------------------------------
    def _definitions(self) -> list[AlarmDefinition]:
        defs = []
        for g in self.guards:
            for q, (side, unit) in QUANTITIES.items():
                spec = self.limits[g.bess.id].ladders[q]
                scale = g.rack.cell_count if q.startswith("pack_") else (
                    g.bess.cell_capacity_ah if unit == "crate" else 1.0)
                for rung, level in zip(RUNGS, spec.levels):
                    defs.append(AlarmDefinition(
                        g.tag(q, rung), f"{g.rack.path}.{q}", f"{q.replace('_', ' ')} {rung}", RUNG_PRIORITY[rung],
                        limit=level * scale, direction=Direction.HIGH if side == "high" else Direction.LOW,
                        latching=rung == "trip", alarm_class="safety" if rung == "trip" else "process",
                        group=g.rack.path, unit={"v": "V", "crate": "A", "c": "°C"}[unit],
                        decimals=1 if unit == "c" else 3))
            for what, text in EXTRA:
                for rung in ("alarm", "trip"):
                    defs.append(AlarmDefinition(
                        g.tag(what, rung), f"{g.rack.path}.{what}", f"{text} {rung}", RUNG_PRIORITY[rung],
                        direction=Direction.DISCRETE, latching=rung == "trip", alarm_class="safety",
                        group=g.rack.path))
            defs.append(AlarmDefinition(g.data_tag, g.frame_point,
                                        "cell data missing or stale: safe state", Priority.HIGH,
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

    # --- loop -------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        tick = self.clock.monotonic()
        while not stop.is_set():
            now = self.clock.monotonic()
            self.lateness_s.append(max(0.0, now - tick))
            self.cycle(now)
            tick += self.period_s
            if tick < self.clock.monotonic():             # overrun: skip missed ticks, keep the phase
                tick += ((self.clock.monotonic() - tick) // self.period_s + 1) * self.period_s
            while not stop.is_set() and self.clock.monotonic() < tick:
                if self._wake.points or self.clock.wait(self._wake.event, tick - self.clock.monotonic()):
                    self._wake.event.clear()
                    self._on_new_frames(tick)

    def _on_new_frames(self, tick: float) -> None:
        """Evaluate at once, one rack at a time, the racks whose cell frame just arrived (fast path
        between ticks); stops when the next tick is due so the periodic cycle stays on time."""
        while self._wake.points and self.clock.monotonic() < tick:
            point = self._wake.points.popleft()
            guard = self.by_path.get(point.rsplit(".", 1)[0])
            if guard is not None and point == guard.frame_point and guard.frame_ts < self.bus.get(point).source_ts:
                self.cycle(self.clock.monotonic(), [guard])

    def on_stopped(self) -> None:
        """Leave the plant safe when the application stops: every PCS to 0 kW (drivers still run)."""
        for sub in self._subs:
            self.bus.unsubscribe(sub)
        futures = [self.router.submit(Command(f"site.{p.id}.active_power_setpoint_kw", "write", 0.0,
                                              reason="ESMS shutdown: safe state")) for p in self.site.pcs]
        for f in futures:
            try:
                f.result(timeout=2.0)
            except Exception:  # noqa: BLE001 - shutdown continues; the PCS link may already be gone
                log.warning("shutdown safe state: PCS did not confirm 0 kW")
        self.router.unregister("site.protection")
        self.router.unregister(alarm_commands.TARGET)

    # --- one cycle --------------------------------------------------------------------------------
    def cycle(self, now: float, guards: list[_RackGuard] | None = None) -> None:
        """Evaluate `guards` (default: every rack, links and time-driven alarms) and act."""
        wall = self.clock.time()
        full = guards is None
        transitions = []
        for g in self.guards if full else guards:
            transitions += self._evaluate(g, now, wall)
        if full:
            for link in self.site.links:
                status = self.bus.get(f"site.links.{link.name}.status")
                lost = status is not None and status.value == "COMM_LOST"
                transitions += self.alarms.evaluate(f"site.links.{link.name}.comm_lost", lost,
                                                    status.value if status else None, wall)
            transitions += self.alarms.tick(wall)
        self._post(transitions)
        if full:
            self._handle_commands(wall)               # judged on this cycle's data (reset needs the cause gone)
        self._act(now, wall, self.guards if full else guards)

    def _evaluate(self, g: _RackGuard, now: float, wall: float) -> list:
        """Run the rack's rules and feed its alarms (only changes are fed); returns alarm transitions."""
        path, src = g.rack.path, g.source
        required = [self.bus.get(f"{path}.{p}") for p in src.required]
        faults = [(data_age_fault(s.recv_mono if s else None, bool(s and s.quality.usable), now, self.stale_after_s)
                   or size_fault(s.value, src.size(p, g.rack.cell_count)), f"{path}.{p}")
                  for s, p in zip(required, src.required)]
        fault, point = next(((f, p) for f, p in faults if f), (None, g.frame_point))
        if now - self._started < self.stale_after_s and fault == "no data":
            fault = None                              # start-up grace: first poll not in yet
        out = self._feed(g, g.data_tag, fault is not None, fault or "ok", wall, point)
        if fault or None in required:
            return out
        volts = required[:len(src.voltages)]
        frame_ts = min(s.source_ts for s in volts)
        fresh = frame_ts > g.frame_ts
        pending = g.verdict is not None and (g.verdict.level > Level.NORMAL or
                                            any(s.since is not None for s in g.verdict.ladder.statuses))
        if not (fresh or pending):
            return out                                # nothing new and nothing timing: skip the rules
        g.frame_ts = frame_ts
        cells = volts[0].value if len(volts) == 1 else np.array([float(s.value) for s in volts], np.float32)
        limits = None if src.temperatures else (self._num(f"{path}.charge_current_limit_a", float("nan")),
                                                self._num(f"{path}.discharge_current_limit_a", float("nan")))
        v = g.check.step(now, frame_ts, cells, self._temperatures(g), self._num(f"{path}.current_a", 0.0),
                         self._num(f"{path}.pack_voltage_v", None), self._num(f"{path}.soc_pct", 50.0),
                         self._num(f"{path}.h2_ppm", None), self._num(f"{path}.co_ppm", None), limits)
        g.verdict = v
        for s in v.ladder.statuses:
            point = self._point_of(g, s.quantity, s.index)
            for rung in RUNGS:
                out += self._feed(g, g.tag(s.quantity, rung), s.level >= LEVEL_OF[rung], round(s.value, 4),
                                  wall, point)
        for what, level, cause in (("thermal", v.thermal_status.level, v.thermal_status.cause),
                                   ("sensor", v.sensors.level, v.sensors.cause)):
            out += self._feed(g, g.tag(what, "alarm"), level >= Level.ALARM, cause or "ok", wall)
            out += self._feed(g, g.tag(what, "trip"), level >= Level.TRIP, cause or "ok", wall)
        tripped = [t for t in out if t.action == "activate" and t.latched]
        if tripped:
            for t in tripped:
                what = t.tag.rsplit(".", 2)[-2]
                began = next((s.since for s in v.ladder.statuses if s.quantity == what and s.since is not None), now)
                self.trip_times.append((path, what, max(s.recv_mono for s in volts), now, began))
            first = tripped[0]
            self.journal.post(Event(wall, "protection", "trip",
                                    f"TRIP {v.cause} -> {g.bess.pcs} 0 kW ({path}, latched)", Severity.TRIP,
                                    point=first.point, value=first.value if isinstance(first.value, float) else None,
                                    limit=first.limit))
        self._publish_derating(g, v, now, wall)
        return out

    def _feed(self, g: _RackGuard, tag: str, active: bool, value: Any, wall: float, point: str | None = None) -> list:
        if g.fed.get(tag, (False, None))[0] == active and not active:
            return []
        if g.fed.get(tag) == (active, value):
            return []
        g.fed[tag] = (active, value)
        return self.alarms.evaluate(tag, active, value, wall, point)

    def _temperatures(self, g: _RackGuard) -> np.ndarray:
        """The rack's temperature vector (per cell or per pack sensor), or (min, max), or nothing;
        unusable readings are NaN."""
        src, path = g.source, g.rack.path
        if not src.temperatures:
            return np.zeros(0, np.float32)
        if src.temperature_extremes:
            return np.array([self._num(f"{path}.{p}", np.nan) for p in src.temperatures], np.float32)
        temps = self.bus.get(f"{path}.{src.temperatures[0]}")
        n = src.size(src.temperatures[0], g.rack.cell_count)
        return temps.value if temps is not None and temps.quality.usable and temps.value.size == n \
            else np.full(n, np.nan, np.float32)

    def _num(self, point: str, default):
        s = self.bus.get(point)
        return float(s.value) if s is not None and s.quality.usable else default

    @staticmethod
    def _point_of(g: _RackGuard, quantity: str, index: int) -> str:
        """The point an alarm message names: the worst cell's voltage, a cell's sensor, the extreme the
        rack reports (max_cell_voltage_v), a pack sensor (temperatures_c[2]), or the rack quantity."""
        extreme = g.check.reading(quantity, index)
        if extreme is not None:
            return f"{g.rack.path}.{extreme}"
        if index >= 0 and quantity.startswith("cell_") and quantity != "cell_imbalance":
            m, c = divmod(index, g.rack.cells_per_module)
            return points.cell(g.rack.bess, g.rack.number, m + 1, c + 1, "voltage_v")
        if index >= 0 and "temperature" in quantity and quantity != "temperature_spread":
            m, c = divmod(index, g.rack.cells_per_module)
            return points.cell(g.rack.bess, g.rack.number, m + 1, c + 1, "temperature_c")
        return f"{g.rack.path}.{quantity}"

    def _publish_derating(self, g: _RackGuard, v: RackVerdict, now: float, wall: float) -> None:
        """CCL/DCL/CVL/DVL and their reasons as points, published when they change."""
        d = v.derating
        values = {"ccl_a": round(d.ccl_a, 1), "dcl_a": round(d.dcl_a, 1), "cvl_v": round(d.cvl_v, 2),
                  "dvl_v": round(d.dvl_v, 2), "ccl_reason": d.ccl_reason, "dcl_reason": d.dcl_reason,
                  "protection_level": v.level.name, "protection_cause": v.cause}
        changed = [(f"{g.rack.path}.{k}", Sample(x, wall, now, wall)) for k, x in values.items()
                   if g.published.get(k) != x]
        if changed:
            g.published.update(values)
            self.bus.publish_many(changed)

    # --- actions ----------------------------------------------------------------------------------
    def _act(self, now: float, wall: float, evaluated: list[_RackGuard]) -> None:
        """Rack states, trip sequence, PCS holds; publishes what changed."""
        for g in evaluated:
            self._update_state(g, wall)
        hold: set[str] = set()
        items: list[tuple[str, Any]] = []
        for b in self.site.bess:
            guards = [g for g in self.guards if g.bess is b]
            plan = self.planners[b.id].plan(now, [self._condition(g) for g in guards],
                                            self._num(f"site.{b.pcs}.active_power_kw", None))
            for c in plan.commands:
                if c.action == "write":
                    self.router.submit(Command(c.target, "write", c.value, "protection", c.reason)) \
                        .add_done_callback(self._log_result)
                elif c.action == "notify":
                    self.journal.post(Event(wall, "protection", "trip_sequence", str(c.value), Severity.TRIP))
            isolating = plan.scope == "rack" and any(
                self._num(f"{p}.contactor_closed", 1.0) for p in plan.faulty)
            if plan.scope == "bess" or isolating or any(g.state == STALE for g in guards):
                hold.add(b.pcs)
            items += [(f"site.{b.id}.available_charge_kw", round(plan.available_charge_kw, 1)),
                      (f"site.{b.id}.available_discharge_kw", round(plan.available_discharge_kw, 1)),
                      (f"site.{b.id}.trip_scope", plan.scope),
                      (f"site.{b.id}.limit_reason", self._limit_reason(guards))]
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
        items += [(f"{g.rack.path}.protection_state", g.state) for g in self.guards]
        items += [(f"site.{p.id}.protection_hold", p.id in hold) for p in self.site.pcs]
        items += [("site.protection.state", overall)]
        heartbeat = now - self._heartbeat >= 1.0            # BESS/site points also once per second
        if heartbeat:
            self._heartbeat = now
        changed = [(p, v) for p, v in items if self._published.get(p, self) != v
                   or (heartbeat and not p.endswith(".protection_state"))]
        if changed:
            self._published.update(changed)
            self.bus.publish_many((p, Sample(v, wall, now, wall)) for p, v in changed)

    def _condition(self, g: _RackGuard) -> RackCondition:
        v = g.verdict
        level = Level.TRIP if g.state == TRIPPED else (v.level if v else Level.NORMAL)
        pack_v = self._num(f"{g.rack.path}.pack_voltage_v", 0.0)
        charge = discharge = 0.0
        if v is not None and g.state != STALE:
            charge, discharge = v.derating.ccl_a * pack_v / 1000.0, v.derating.dcl_a * pack_v / 1000.0
        return RackCondition(g.rack.path, level, v.cause if v else "", bool(v and v.thermal), g.state == STALE,
                             charge, discharge)

    @staticmethod
    def _limit_reason(guards: list[_RackGuard]) -> str:
        """Why charging/discharging is limited: the binding derating reasons of the most limited racks."""
        verdicts = [g.verdict for g in guards if g.verdict is not None]
        if not verdicts:
            return ""
        c = min(verdicts, key=lambda v: v.derating.ccl_a).derating
        d = min(verdicts, key=lambda v: v.derating.dcl_a).derating
        return "; ".join(r for r in (c.ccl_reason, d.dcl_reason) if r)

    def _update_state(self, g: _RackGuard, wall: float) -> None:
        old = g.state
        if g.latched:
            g.state = TRIPPED
        elif g.fed.get(g.data_tag, (False,))[0]:
            g.state = STALE
        else:
            g.state = NORMAL
        if old == g.state:
            return
        point = self.alarms.view(g.data_tag).point     # the cell data point at fault
        if g.state == STALE:
            why = g.fed[g.data_tag][1]
            self.journal.post(Event(wall, "protection", "safe_state",
                                    f"SAFE STATE {g.rack.path}: {point} {why} -> {g.bess.pcs} 0 kW",
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

    # --- commands -----------------------------------------------------------------------------------
    def _handle_commands(self, wall: float) -> None:
        while not self._alarm_commands.empty():
            pending = self._alarm_commands.get_nowait()
            result = alarm_commands.execute(self.alarms, pending.command, wall)
            self._post(result.readback or ())
            self._after_resets(wall)
            pending.reply(result.status, result.message, result.readback)
        while not self._commands.empty():
            self._protection_command(self._commands.get_nowait(), wall)

    def _protection_command(self, pending: PendingCommand, wall: float) -> None:
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
        tags = [t for g in self.guards if not cmd.value or cmd.value == g.rack.path for t in g.trip_tags]
        if not cmd.value:
            tags.append(ESTOP_TAG)
        refused, done = [], []
        for tag in tags:
            if not self.alarms.view(tag).latched:
                continue
            try:
                done.append(self.alarms.reset(tag, cmd.user, True, wall))
            except AlarmRefused as exc:
                refused.append(f"cause persists: {exc}")
        self._post(done)
        self._after_resets(wall)
        for t in done:
            self.journal.post(Event(wall, "protection", "reset", f"{t.point}: trip reset by {cmd.user}"))
        if refused:
            pending.reply(CommandStatus.REJECTED, "; ".join(refused))
        else:
            pending.reply(CommandStatus.ACCEPTED, f"reset {len(done)} trip(s)")

    def _after_resets(self, wall: float) -> None:
        """A BESS whose racks have no latched trip left forgets its trip sequence (thermal too)."""
        for b in self.site.bess:
            guards = [g for g in self.guards if g.bess is b]
            planner = self.planners[b.id]
            if planner.started is not None and not any(g.latched for g in guards):
                planner.reset()
                for g in guards:
                    g.check.thermal.reset()
                    self._update_state(g, wall)

    def _post(self, transitions) -> None:
        """Journal every transition and keep each rack's set of latched trip alarms current."""
        for t in transitions:
            self.journal.post(t.as_event())
            g = self._guard_of_trip.get(t.tag)
            if g is not None:
                if t.latched:
                    g.latched.add(t.tag)
                elif t.action == "reset":
                    g.latched.discard(t.tag)
