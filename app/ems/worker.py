"""The EMS worker thread: DataBus points in, one operating mode, PCS setpoint commands out.

``EmsThread(site, bus, router, clock, mode="self_consumption", settings=EmsSettings(), history=None,
journal=None)`` is a supervisor worker (name "ems", ``run(stop)``; ``cycle()`` is one pass, every
``settings.period_s``); it cannot start in "schedule" (no plan yet: send ``set_schedule``). Each cycle it:

- reads (missing, unusable-quality or older than ``stale_after_s`` counts as absent):
  ``site.<pcs>.protection_hold`` (absent = held), ``site.<pcs>.active_power_kw``,
  ``site.<pcs>.grid_frequency_hz``, ``site.<bess>.rackNN.soc_pct`` and, when published,
  ``site.<bess>.rackNN.pack_voltage_v`` x ``charge_current_limit_a`` / ``discharge_current_limit_a``
  (CCL/DCL; else the PCS rating), ``site.meter.load_kw``, ``site.meter.pv_kw``, ``site.meter.grid_kw``
  (+ = import), ``site.meter.grid_available`` (absent = available), and for islanding
  ``site.meter.grid_frequency_hz``, ``site.meter.breaker_closed`` and ``site.<pcs>.state`` (3 = grid-forming);
- runs the active mode (app/ems/modes.py), wrapped in app/ems/island.py's Islanding when
  ``island_on_grid_loss``; in "mpc" it re-plans every ``mpc_replan_minutes`` (app/ems/mpc.py) from
  the load/PV history it records (seeded by ``history``) and falls back to the rule set while it
  has no plan;
- splits the site setpoint over the PCS units that protection does not hold, in proportion to their
  limits, and writes ``site.<pcs>.active_power_setpoint_kw`` (Command "write", user "ems") only when
  it moved by ``write_deadband_kw`` or was never accepted; a held PCS is never commanded;
- writes the device states the decision asks for (islanding: ``site.meter.breaker_command``,
  ``site.meter.load_feeder_enable``, ``site.<pcs>.operating_mode`` of the PCS protection does not hold;
  reason "EMS islanding: <phase>") once each, again if the write failed; posts each island phase change
  to ``journal`` (INFO) and each new ``Decision.alarm`` (ALARM);
- publishes ``site.ems.mode``, ``site.ems.why``, ``site.ems.island_state`` (str),
  ``site.ems.setpoint_kw`` and ``site.ems.savings`` (energy cost saved vs no battery since start, at
  the settings' tariff; float);
- keeps ``plan_snapshot()`` current for other threads: the plan it follows (app/ems/plan_snapshot.py).

Commands on target ``site.ems``: action ``set_mode`` (value: a name from settings.MODES),
``set_param`` (value: {"name": value, ...}), ``set_schedule`` (value: {"battery_kw": [...],
"step_minutes": m}; starts now and switches to mode "schedule").
"""
from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time as _time

import numpy as np

from app.core.chemistry.table import get_chemistry
from app.core.clock import Clock
from app.core.commands import Command, CommandRouter, CommandStatus
from app.core.databus import DataBus
from app.core.errors import UserError
from app.core.events import Event, EventJournal, Severity
from app.core.sample import Sample
from app.core.site import Site
from app.ems.forecast import ProfileForecaster
from app.ems.inputs import Decision, EmsInputs
from app.ems.island import IslandState, Islanding
from app.ems.modes import Schedule, ScheduleFollowing
from app.ems.mpc import MpcPlanner
from app.ems.plan_snapshot import PlanSnapshot, plan_snapshot
from app.ems.scenario import Battery, Grid
from app.ems.settings import MODES, EmsSettings, build_mode, with_param

log = logging.getLogger(__name__)
TARGET = "site.ems"
METER = "site.meter"
PCS_GRID_FORMING = 3          # pcs_generic state code


class EmsThread:
    name = "ems"

    def __init__(self, site: Site, bus: DataBus, router: CommandRouter, clock: Clock,
                 mode: str = "self_consumption", settings: EmsSettings = EmsSettings(),
                 history: tuple[np.ndarray, np.ndarray] | None = None, journal: EventJournal | None = None) -> None:
        """``history``: (load_kw, pv_kw) per ``mpc_step_minutes`` step, ending with the last whole
        step before now (e.g. from the historian) so MPC can plan at once."""
        if mode not in MODES:
            raise UserError(f"unknown EMS mode {mode!r} (known: {', '.join(MODES)})")
        if mode == "schedule":
            raise UserError("mode 'schedule' needs a plan: start in another mode and send set_schedule")
        self.site, self.bus, self.router, self.clock, self.journal = site, bus, router, clock, journal
        self.mode, self.settings = mode, settings
        self.rated_kw = sum(p.rated_power_kw for p in site.pcs)
        self._queue = router.register(TARGET)
        self._controller = None
        self._state = None
        self._schedule: Schedule | None = None
        self._planned_at = -math.inf
        self._snapshot: tuple[Schedule, PlanSnapshot] | None = None   # the newest schedule, as snapshot
        self._plan: PlanSnapshot | None = None                        # the one followed (plan_snapshot)
        self._sent: dict[str, tuple[float, object]] = {}     # pcs id -> (kw, future)
        self._sent_at: dict[str, float] = {}                 # pcs id -> monotonic time its read-back counts from
        self._device_sent: dict[str, tuple[int, object]] = {}   # device point -> (value, future)
        self._phase, self._alarm = "connected", ""
        self._savings = 0.0
        self._peak_kw = 0.0
        self._last_mono: float | None = None
        self._load_hist = list(history[0]) if history else []
        self._pv_hist = list(history[1]) if history else []
        self._acc = [0.0, 0.0, 0, None]      # load sum, pv sum, count, step index

    # -- thread ------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        if self._queue is None:
            self._queue = self.router.register(TARGET)
        try:
            while not self.clock.wait(stop, self.settings.period_s):
                self.cycle()
        finally:
            self.router.unregister(TARGET)
            q, self._queue = self._queue, None
            while not q.empty():
                q.get_nowait().reply(CommandStatus.REJECTED, "EMS stopped")

    def cycle(self) -> Decision:
        """One EMS pass (see module docstring); returns the site decision."""
        self._commands()
        now = self.clock.monotonic()
        snap = self.bus.snapshot()
        inp, per_pcs = self._inputs(snap, now)
        self._record(inp, now)
        decision = self._decide(inp, now)
        self._track_plan(inp, now)
        self._dispatch(decision.setpoint_kw, per_pcs)
        island = self._state.phase if isinstance(self._state, IslandState) else "connected"
        self._devices(decision, per_pcs, island)
        wall = self.clock.time()
        self._events(decision, island, wall)
        self.bus.publish_many((f"{TARGET}.{k}", Sample(v, wall, now, wall)) for k, v in (
            ("mode", self.mode), ("why", decision.why), ("island_state", island),
            ("setpoint_kw", float(decision.setpoint_kw)), ("savings", round(self._savings, 4))))
        return decision

    def plan_snapshot(self) -> PlanSnapshot | None:
        """The plan being followed: the MPC plan in "mpc", the schedule in "schedule"; None under a rule
        set (also in "mpc" before its first plan). Any thread: the EMS thread swaps in whole immutable
        snapshots."""
        return self._plan

    # -- commands ----------------------------------------------------------------------------------
    def _commands(self) -> None:
        q = self._queue
        while q is not None and not q.empty():
            pending = q.get_nowait()
            c = pending.command
            try:
                message = self._apply(c)
            except UserError as exc:
                pending.reply(CommandStatus.REJECTED, str(exc))
            else:
                pending.reply(CommandStatus.ACCEPTED, message)

    def _apply(self, c: Command) -> str:
        if c.action == "set_mode":
            if c.value not in MODES:
                raise UserError(f"unknown EMS mode {c.value!r} (known: {', '.join(MODES)})")
            if c.value == "schedule" and self._schedule is None:
                raise UserError("mode 'schedule' needs a plan: send set_schedule first")
            self._set_mode(c.value)
            return f"EMS mode {c.value}"
        if c.action == "set_param":
            if not isinstance(c.value, dict) or not c.value:
                raise UserError("set_param needs a value like {\"peak_threshold_kw\": 400}")
            settings = self.settings
            for key, value in c.value.items():
                settings = with_param(settings, key, value)
            self.settings = settings
            self._controller = None      # rebuilt with the new settings (mode state restarts)
            return "EMS parameters " + ", ".join(f"{k}={v!r}" for k, v in c.value.items())
        if c.action == "set_schedule":
            try:
                kw = np.asarray(c.value["battery_kw"], dtype=float)
                step_s = float(c.value["step_minutes"]) * 60.0
            except (TypeError, KeyError, ValueError):
                raise UserError("set_schedule needs {\"battery_kw\": [numbers], \"step_minutes\": m}") from None
            if kw.ndim != 1 or kw.size == 0 or not np.all(np.isfinite(kw)) or not step_s > 0:
                raise UserError("set_schedule: battery_kw must be a non-empty list of finite numbers, "
                                "step_minutes > 0")
            self._schedule = Schedule(self.clock.monotonic(), step_s, kw, source="operator plan")
            self._set_mode("schedule")
            return f"schedule of {kw.size} steps loaded"
        raise UserError(f"unknown EMS action {c.action!r} (set_mode, set_param, set_schedule)")

    def _set_mode(self, mode: str) -> None:
        if mode != self.mode:
            self.mode, self._controller = mode, None
            if mode == "mpc":
                self._planned_at = -math.inf

    # -- inputs ------------------------------------------------------------------------------------
    def _value(self, snap, point: str, now: float):
        s = snap.get(point)
        if s is None or not s.quality.usable or now - s.recv_mono > self.settings.stale_after_s:
            return None
        return s.value

    def _inputs(self, snap, now: float) -> tuple[EmsInputs, dict[str, tuple[float, float]]]:
        st = self.settings
        socs, caps, per_pcs, powers = [], [], {}, []
        freq = None
        for b in self.site.bess:
            pcs = next(p for p in self.site.pcs if p.id == b.pcs)
            rack_soc = [self._value(snap, f"{r.path}.soc_pct", now) for r in b.racks]
            soc = None if any(v is None for v in rack_soc) else float(np.mean(rack_soc))
            held = self._value(snap, f"site.{pcs.id}.protection_hold", now)
            ch, dis = self._rack_limits(snap, b, now, pcs.rated_power_kw)
            if held is None or held or soc is None:
                ch = dis = 0.0
            ch = 0.0 if soc is None or soc >= st.soc_max_pct else ch
            dis = 0.0 if soc is None or soc <= st.soc_min_pct else dis
            per_pcs[pcs.id] = (ch, dis) if not (held is None or held) else None
            if soc is not None:
                socs.append(soc)
                caps.append(self._capacity(b))
            p = self._value(snap, f"site.{pcs.id}.active_power_kw", now)
            powers.append(p)
            freq = freq if freq is not None else self._value(snap, f"site.{pcs.id}.grid_frequency_hz", now)
        soc = float(np.average(socs, weights=caps)) if socs else None
        limits = [v for v in per_pcs.values() if v is not None]
        local = _time.localtime(self.clock.time())
        hour = local.tm_hour + local.tm_min / 60 + local.tm_sec / 3600
        grid_ok = self._value(snap, f"{METER}.grid_available", now)
        breaker = self._value(snap, f"{METER}.breaker_closed", now)
        free = [pid for pid, lim in per_pcs.items() if lim is not None]
        known = [int(v) for v in (self._value(snap, f"site.{pid}.state", now) for pid in free) if v is not None]
        price = float(st.import_price(hour))
        inp = EmsInputs(
            time_s=now, hour=hour, max_charge_kw=sum(c for c, _ in limits), max_discharge_kw=sum(d for _, d in limits),
            soc_pct=soc, load_kw=_num(self._value(snap, "site.meter.load_kw", now)),
            pv_kw=_num(self._value(snap, "site.meter.pv_kw", now)),
            grid_kw=_num(self._value(snap, "site.meter.grid_kw", now)),
            battery_kw=None if any(p is None for p in powers) else float(sum(powers)),
            frequency_hz=_num(freq), grid_available=True if grid_ok is None else bool(grid_ok),
            grid_frequency_hz=_num(self._value(snap, f"{METER}.grid_frequency_hz", now)),
            breaker_closed=None if breaker is None else bool(breaker),
            grid_forming=None if free and not known else PCS_GRID_FORMING in known,
            import_price=price, export_price=st.export_price)
        return inp, per_pcs

    def _rack_limits(self, snap, b, now: float, rated_kw: float) -> tuple[float, float]:
        """(charge, discharge) kW: the PCS rating, cut by what protection says the BESS can take now
        (`site.<bess>.available_*_kw`: derating, isolated racks) or else by rack CCL/DCL x pack voltage."""
        available = [self._value(snap, f"site.{b.id}.available_{kind}_kw", now) for kind in ("charge", "discharge")]
        if all(a is not None for a in available):
            return min(rated_kw, max(float(available[0]), 0.0)), min(rated_kw, max(float(available[1]), 0.0))
        out = []
        for kind in ("charge", "discharge"):
            total = 0.0
            for r in b.racks:
                v = self._value(snap, f"{r.path}.pack_voltage_v", now)
                a = self._value(snap, f"{r.path}.{kind}_current_limit_a", now)
                if v is None or a is None:
                    total = math.inf
                    break
                total += max(float(a), 0.0) * float(v) / 1000
            out.append(min(rated_kw, total))
        return out[0], out[1]

    def _capacity(self, b) -> float:
        if self.settings.capacity_kwh > 0:
            return self.settings.capacity_kwh * b.cell_count / self.site.cell_count
        return b.cell_count * b.cell_capacity_ah * float(get_chemistry(b.chemistry).ocv(0.5)) / 1000

    # -- decision ----------------------------------------------------------------------------------
    def _decide(self, inp: EmsInputs, now: float) -> Decision:
        if self._controller is None:
            self._controller, self._state = self._build(), None
        if self.mode == "mpc":
            fresh = self._mpc_plan(inp, now)
            if fresh is not None:
                self._controller = self._wrap(fresh)
                self._state = self._keep_island(self._state)
        d = self._controller.step(inp, self._state)
        self._state = d.state
        if inp.demand_kw is not None:
            self._peak_kw = max(self._peak_kw, inp.demand_kw + d.setpoint_kw)
        return d

    def _build(self):
        if self.mode == "schedule":
            inner = ScheduleFollowing(self._schedule)
        elif self.mode == "mpc":
            inner = (ScheduleFollowing(self._schedule) if self._schedule and self._schedule.source == "MPC plan"
                     else build_mode("rules", self.settings, self.rated_kw))
        else:
            inner = build_mode(self.mode, self.settings, self.rated_kw)
        return self._wrap(inner)

    def _wrap(self, inner):
        st = self.settings
        return Islanding(inner, grid_stable_s=st.island_grid_stable_s, device_timeout_s=st.island_device_timeout_s,
                         nominal_hz=st.nominal_hz) if st.island_on_grid_loss else inner

    def _keep_island(self, state):
        """Keep the island phase across a plan swap; the new plan starts with fresh inner state."""
        return dataclasses.replace(state, inner=None) if isinstance(state, IslandState) else None

    def _planner(self) -> MpcPlanner:
        st = self.settings
        spd = int(round(24 * 60 / st.mpc_step_minutes))
        cap = sum(self._capacity(b) for b in self.site.bess)
        battery = Battery(cap, self.rated_kw, self.rated_kw, 0.95, 0.95, st.soc_min_pct, st.soc_max_pct, 50.0,
                          st.mpc_final_soc_pct, st.degradation_cost_per_kwh)
        grid = Grid(st.import_limit_kw, st.export_limit_kw, st.demand_charge_per_kw, 0.0)
        return MpcPlanner(battery, grid, st.mpc_step_minutes, int(round(st.mpc_horizon_h * 60 / st.mpc_step_minutes)),
                          ProfileForecaster(spd), ProfileForecaster(spd, half_life_days=3.0, weekly=False,
                                                                    relative=True))

    def _mpc_plan(self, inp: EmsInputs, now: float):
        """A fresh ScheduleFollowing when a re-plan is due and possible, else None (keep going)."""
        st = self.settings
        if now - self._planned_at < st.mpc_replan_minutes * 60 or inp.soc_pct is None:
            return None
        planner = self._planner()
        n = len(self._load_hist)
        if n < planner.min_history:
            return None
        self._planned_at = now
        step_s = st.mpc_step_minutes * 60
        wall = self.clock.time()
        slot_now = self._slot(wall)
        spd = int(round(86400 / step_s))
        slot0 = (slot_now - n) % (7 * spd)
        hours = inp.hour + np.arange(planner.horizon_steps) * step_s / 3600
        try:
            schedule = planner.plan(now, np.asarray(self._load_hist), np.asarray(self._pv_hist), slot0,
                                    st.import_price(hours % 24), np.full(hours.size, st.export_price),
                                    inp.soc_pct, self._peak_kw)
        except (RuntimeError, ValueError) as exc:
            log.warning("MPC re-plan failed, keeping rules/previous plan: %s", exc)
            return None
        self._schedule = schedule
        return ScheduleFollowing(schedule)

    def _slot(self, wall: float) -> int:
        local = _time.localtime(wall)
        step_s = self.settings.mpc_step_minutes * 60
        seconds = local.tm_wday * 86400 + local.tm_hour * 3600 + local.tm_min * 60 + local.tm_sec
        return int(seconds // step_s)

    def _record(self, inp: EmsInputs, now: float) -> None:
        """Average load and PV per MPC step into the history; accumulate energy cost savings."""
        if self._last_mono is not None and inp.battery_kw is not None and inp.demand_kw is not None:
            dt_h = max(now - self._last_mono, 0.0) / 3600
            with_b = inp.demand_kw + inp.battery_kw
            without = inp.demand_kw
            cost = lambda g: (inp.import_price * g if g > 0 else inp.export_price * g)  # noqa: E731
            self._savings += (cost(without) - cost(with_b)) * dt_h
        self._last_mono = now
        if inp.load_kw is None or inp.pv_kw is None:
            return
        step = self._slot(self.clock.time())
        acc = self._acc
        if acc[3] is not None and step != acc[3] and acc[2]:
            self._load_hist.append(acc[0] / acc[2])
            self._pv_hist.append(acc[1] / acc[2])
            keep = 28 * int(round(1440 / self.settings.mpc_step_minutes))
            del self._load_hist[:-keep], self._pv_hist[:-keep]
            acc[:3] = [0.0, 0.0, 0]
        acc[0] += inp.load_kw
        acc[1] += inp.pv_kw
        acc[2] += 1
        acc[3] = step

    def _track_plan(self, inp: EmsInputs, now: float) -> None:
        """Snapshot each new schedule once (the SOC measured now projects an operator's plan); publish
        the snapshot while its schedule is followed."""
        s = self._schedule
        if s is not None and (self._snapshot is None or self._snapshot[0] is not s):
            soc = math.nan if inp.soc_pct is None else inp.soc_pct
            battery = dataclasses.replace(self._planner().battery, initial_soc_pct=soc)
            wall = self.clock.time()
            self._snapshot = (s, plan_snapshot(s, battery, self.settings, wall, wall - (now - s.start_s)))
        follows = s is not None and (self.mode == "schedule" or self.mode == "mpc" and s.source == "MPC plan")
        self._plan = self._snapshot[1] if follows else None

    # -- output ------------------------------------------------------------------------------------
    def _dispatch(self, site_kw: float, per_pcs: dict) -> None:
        free = {pid: lim for pid, lim in per_pcs.items() if lim is not None}
        for pid in per_pcs.keys() - free.keys():
            self._sent.pop(pid, None)          # held: never commanded; re-sent once released
        side = 0 if site_kw >= 0 else 1
        total = sum(lim[side] for lim in free.values())
        for pid, lim in free.items():
            kw = site_kw * lim[side] / total if total > 0 else 0.0
            last = self._sent.get(pid)
            if last is not None:
                prev, fut = last
                failed = fut.done() and not fut.result().ok
                # someone else wrote the PCS since (protection's 0 kW, an operator): the read-back differs
                readback = self.bus.get(f"site.{pid}.active_power_setpoint_kw")
                overwritten = fut.done() and readback is not None and readback.recv_mono > self._sent_at.get(pid, 0) \
                    and abs(float(readback.value) - prev) >= self.settings.write_deadband_kw
                if not (failed or overwritten) and abs(kw - prev) < self.settings.write_deadband_kw:
                    continue
            fut = self.router.submit(Command(f"site.{pid}.active_power_setpoint_kw", "write", round(kw, 1),
                                             user="ems", reason=f"EMS {self.mode}"))
            self._sent[pid] = (kw, fut)
            self._sent_at[pid] = self.clock.monotonic() + 2 * self.settings.period_s   # read-back settles

    def _devices(self, decision: Decision, per_pcs: dict, phase: str) -> None:
        """Write the device states the decision asks for that were not written yet (or whose write
        failed); "pcs.<point>" goes to every PCS protection does not hold. No ask: forget what was sent."""
        wanted: dict[str, int] = {}
        for point, value in decision.devices:
            device, _, name = point.partition(".")
            targets = [f"site.{pid}.{name}" for pid, lim in per_pcs.items() if lim is not None] \
                if device == "pcs" else [f"{METER}.{name}"]
            wanted.update((target, value) for target in targets)
        if not wanted:
            self._device_sent.clear()
        for target, value in wanted.items():
            last = self._device_sent.get(target)
            if last is not None and last[0] == value and not (last[1].done() and not last[1].result().ok):
                continue
            fut = self.router.submit(Command(target, "write", value, user="ems", reason=f"EMS islanding: {phase}"))
            self._device_sent[target] = (value, fut)

    def _events(self, decision: Decision, phase: str, wall: float) -> None:
        """Island phase changes (INFO) and new alarms (ALARM) to the journal."""
        if phase != self._phase and self.journal is not None:
            self.journal.post(Event(wall, "ems", "island", f"{self._phase} -> {phase}: {decision.why}",
                                    point=f"{TARGET}.island_state"))
        if decision.alarm and decision.alarm != self._alarm:
            log.warning("%s", decision.alarm)
            if self.journal is not None:
                self.journal.post(Event(wall, "ems", "island_alarm", decision.alarm, Severity.ALARM,
                                        point=f"{TARGET}.island_state"))
        self._phase, self._alarm = phase, decision.alarm


def _num(v) -> float | None:
    return None if v is None else float(v)
