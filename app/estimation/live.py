"""The estimation thread: per rack, SOC (EKF), SOH (capacity, resistance) and balancing, live.

Every `period_s` it reads each rack's latest frame from the DataBus (`<rack>.cell_voltages_v`,
`<rack>.current_a`, optional `<rack>.cell_temperatures_c`) and, when the frame is new and usable
(quality GOOD/MANUAL/SIMULATED, one voltage per cell, a finite current), steps that rack's
estimators over the time since its previous frame (source timestamps). It publishes, with the
frame's source time and quality:

  <rack>.cell_soc_pct, cell_soc_std_pct            vectors, %
  <rack>.soc_est_pct                               pack SOC, min/max-aware (`pack_soc`), %
  <rack>.cell_soh_capacity_pct, cell_soh_resistance_pct   vectors, %
  <rack>.soh_pct_low, soh_pct, soh_pct_high        weakest cell's capacity and its 2-sigma bounds
  <rack>.soh_resistance_pct_low/_pct/_pct_high     highest cell resistance and its bounds
  <rack>.balancing_cells, balancing_receivers      "3,17" (1-based), "" when none
  <rack>.balancing_energy_wh, balancing_dv_v, balancing_inhibit
  <rack>.balancing_command                         what became of the decision sent to the BMS

When a rack's voltages or current turn unusable its outputs are re-published once with that
quality. Missing temperatures: the SOC filter uses the rack's mean finite temperature (25 C if
none), the resistance estimator skips those cells, the balancer ignores them. The SOC filter works
with each cell's estimated capacity (nominal until the capacity estimator has evidence). With a
command router, each rack's balancing decision is sent to its link driver when it changes, and
refreshed to a BMS with a balancing timeout (`<rack>.balancing_timeout_s` on the bus; the timeout
fits the rack's frame period) so that it stops bleeding when this thread stops deciding
(app/estimation/balancing_sender.py); it is cleared when the thread stops (with a short wait for
the link threads, which stop after it).

Cost: one SocEstimator serves several consecutive racks of a BESS (up to GROUP_CELLS cells; a rack
without a new frame gets NaN inputs, which leave its cells' state untouched). Cells are independent,
so this equals one filter per rack, at about half the CPU: numpy's per-call overhead dominates at
1,000 cells and memory traffic beyond ~10,000.
"""
from __future__ import annotations

import dataclasses
import threading
from concurrent import futures

import numpy as np

from app.core.balancing_command import TIMEOUT_POINT, format_cells
from app.core.clock import Clock
from app.core.commands import CommandRouter, CommandStatus
from app.core.databus import DataBus
from app.core.events import EventJournal
from app.core.sample import Quality, Sample, vector
from app.core.site import Bess, Rack, Site
from app.estimation.balancing import BalancingController, BalancingSettings
from app.estimation.balancing_sender import BalancingSender, timeout_for
from app.estimation.soc import SocEstimator, pack_soc
from app.estimation.soh import CapacityEstimator, ResistanceEstimator

DEFAULT_TEMP_C = 25.0
GROUP_CELLS = 8000
STOP_CLEAR_S = 5.0


class SocGroup:
    """One SocEstimator over consecutive racks of one BESS: `stage` each rack's new frame, then
    `flush` steps all staged cells at once (unstaged cells: NaN inputs, state kept) and refreshes
    `soc` and `soc_std` (fractions, all the group's cells)."""

    def __init__(self, bess: Bess, racks: list[Rack]) -> None:
        bounds = np.cumsum([0] + [r.cell_count for r in racks])
        self.slices = {r.path: slice(int(a), int(b)) for r, a, b in zip(racks, bounds[:-1], bounds[1:])}
        n = int(bounds[-1])
        self.estimator = SocEstimator(bess.chemistry, bess.cell_capacity_ah, n)
        self._inputs = np.full((4, n), np.nan)  # dt, current, voltage, temperature
        self._staged = False
        self.soc = self.soc_std = np.full(n, np.nan)

    def stage(self, path: str, dt: float, current_a: float, voltage_v: np.ndarray, temp_c: np.ndarray) -> None:
        cells = self.slices[path]
        dt_cur = self._inputs[:2, cells]
        dt_cur[0], dt_cur[1] = dt, current_a
        self._inputs[2, cells] = voltage_v
        self._inputs[3, cells] = temp_c
        self._staged = True

    def flush(self) -> None:
        if self._staged:
            self.soc = self.estimator.update(*self._inputs)
            self.soc_std = self.estimator.soc_std
            self._inputs.fill(np.nan)
            self._staged = False


class RackEstimation:
    """All estimators of one rack; `poll` turns its latest DataBus frame into points to publish."""

    def __init__(self, rack: Rack, bess: Bess, group: SocGroup, balancing: BalancingSettings,
                 sender: BalancingSender | None = None) -> None:
        n, cap = rack.cell_count, bess.cell_capacity_ah
        self.path, self.n, self.nominal_ah = rack.path, n, cap
        self.group, self.cells = group, group.slices[rack.path]
        self.capacity = CapacityEstimator(bess.chemistry, cap, n)
        self.resistance = ResistanceEstimator(bess.chemistry, cap, n)
        self.balancing = BalancingController(bess.chemistry, cap, n, balancing)
        self.sender = sender
        self.bess = bess
        self.enabled = True                       # the operator's balancing on/off for this BESS
        self.bms_timeout = False                  # the BMS has a balancing timeout
        self.frame_ts: float | None = None
        self.published: dict[str, Sample] = {}
        self._soh_versions = (-1, -1)
        self._frame: tuple | None = None  # staged by `poll`, finished by `finish`

    @property
    def soc_estimator(self) -> SocEstimator:
        """The group's filter; this rack's cells are `self.cells` of it."""
        return self.group.estimator

    def poll(self, bus: DataBus, mono: float, wall: float) -> list[tuple[str, Sample]]:
        """Stage the rack's frame if it is new and usable (then `finish` after the group's flush);
        if its voltages or current are unusable, return the last outputs re-published once with
        that quality; else nothing."""
        volts, current = bus.get(f"{self.path}.cell_voltages_v"), bus.get(f"{self.path}.current_a")
        if volts is None or current is None:
            return []
        for sample in (volts, current):
            if not sample.quality.usable:
                return self.mark(sample.quality, mono, wall)
        if not volts.is_vector or volts.value.shape != (self.n,) or not np.isfinite(current.value):
            return self.mark(Quality.BAD, mono, wall)
        if self.frame_ts is not None and volts.source_ts <= self.frame_ts:
            return []
        temps = bus.get(f"{self.path}.cell_temperatures_c")
        if temps is not None and temps.quality.usable and temps.is_vector and temps.value.shape == (self.n,):
            temp = temps.value.astype(float)
        else:
            temp = np.full(self.n, np.nan)
        self.bms_timeout = bus.get(f"{self.path}.{TIMEOUT_POINT}") is not None
        self.stage(volts, float(current.value), temp)
        return []

    def stage(self, volts: Sample, current_a: float, temp_c: np.ndarray) -> None:
        """Take one new frame (voltage sample, rack current A, temperatures (n,) with NaN where
        missing): stage the SOC inputs in the group and step the SOH estimators; `finish` after
        the group's flush."""
        dt = 0.0 if self.frame_ts is None else volts.source_ts - self.frame_ts
        self.frame_ts = volts.source_ts
        v = volts.value.astype(float)
        known = np.isfinite(temp_c)
        filled = temp_c if known.all() else np.where(known, temp_c, temp_c[known].mean() if known.any()
                                                     else DEFAULT_TEMP_C)
        self.soc_estimator.capacity_ah[self.cells] = self.nominal_ah * self.capacity.ratio
        self.group.stage(self.path, dt, current_a, v, filled)
        self.capacity.update(dt, current_a, v, filled)
        self.resistance.update(dt, current_a, v, temp_c)
        self._frame = (volts, dt, current_a, v, temp_c)

    def finish(self, mono: float, wall: float) -> list[tuple[str, Sample]]:
        """After the group's flush: balancing on the new SOC; returns the points to publish."""
        if self._frame is None:
            return []
        volts, dt, current_a, v, temp_c = self._frame
        self._frame = None
        soc = self.group.soc[self.cells]
        decision = self.balancing.update(dt, current_a, v, soc, temp_c)
        if not self.enabled:
            decision = dataclasses.replace(decision, cells=(), receivers=(), inhibit="balancing off (operator)")
        finite = soc[np.isfinite(soc)]
        values = {
            "cell_soc_pct": vector(100.0 * soc),
            "cell_soc_std_pct": vector(100.0 * self.group.soc_std[self.cells]),
            "soc_est_pct": float(100.0 * pack_soc(finite)) if finite.size else float("nan"),
            "balancing_cells": format_cells(decision.cells),
            "balancing_receivers": format_cells(decision.receivers),
            "balancing_energy_wh": decision.energy_wh,
            "balancing_dv_v": decision.dv_v,
            "balancing_inhibit": decision.inhibit,
        }
        if self.sender is not None:
            values["balancing_command"] = self.sender.update(decision, wall, self.bms_timeout)
        versions = (self.capacity.fused.version, self.resistance.fused.version)
        if versions != self._soh_versions or volts.quality != self._quality:  # SOH: when it changes
            self._soh_versions = versions
            values.update(self._soh_values())
        items = [(f"{self.path}.{k}", Sample(x, volts.source_ts, mono, wall, volts.quality)) for k, x in values.items()]
        self.published.update(items)
        return items

    @property
    def _quality(self) -> Quality | None:
        sample = self.published.get(f"{self.path}.soc_est_pct")
        return sample.quality if sample is not None else None

    def _soh_values(self) -> dict:
        cap, res = self.capacity.estimate(), self.resistance.estimate()
        weakest, worst = int(np.argmin(cap.pct)), int(np.argmax(res.pct))
        return {
            "cell_soh_capacity_pct": vector(cap.pct),
            "soh_pct_low": float(cap.low_pct[weakest]),
            "soh_pct": float(cap.pct[weakest]),
            "soh_pct_high": float(cap.high_pct[weakest]),
            "cell_soh_resistance_pct": vector(res.pct),
            "soh_resistance_pct_low": float(res.low_pct[worst]),
            "soh_resistance_pct": float(res.pct[worst]),
            "soh_resistance_pct_high": float(res.high_pct[worst]),
        }

    def mark(self, quality: Quality, mono: float, wall: float) -> list[tuple[str, Sample]]:
        """The points last published, re-published once with `quality` (the rack's data is unusable)."""
        if self._quality in (None, quality):
            return []
        items = [(p, s.with_quality(quality, mono, wall)) for p, s in self.published.items()]
        self.published.update(items)
        return items


class EstimationThread:
    """Supervisor worker "estimation": `run(stop)` calls `cycle()` every `period_s` of `clock`."""

    name = "estimation"

    def __init__(self, site: Site, bus: DataBus, clock: Clock, period_s: float = 1.0,
                 balancing: BalancingSettings = BalancingSettings(), router: CommandRouter | None = None,
                 journal: EventJournal | None = None) -> None:
        self.bus, self.clock, self.period_s, self.router = bus, clock, period_s, router
        self.groups: list[SocGroup] = []
        self.racks: list[RackEstimation] = []
        for b in site.bess:
            for racks in _chunks(b.racks):
                group = SocGroup(b, racks)
                self.groups.append(group)
                for r in racks:
                    frame_s = max(period_s, site.link(r.link).poll_period_s)
                    sender = (BalancingSender(r.path, router, journal, timeout_for(frame_s))
                              if router is not None else None)
                    self.racks.append(RackEstimation(r, b, group, balancing, sender))
        self.cycles = 0
        # balancing on/off per BESS: Command(f"site.{bess}.balancing", "write", 0 | 1)
        self._switches = {f"site.{b.id}.balancing": router.register(f"site.{b.id}.balancing")
                          for b in site.bess} if router is not None else {}

    def run(self, stop: threading.Event) -> None:
        tick = self.clock.monotonic()
        while not stop.is_set():
            self.cycle()
            tick += self.period_s
            now = self.clock.monotonic()
            if tick < now:  # overrun: skip the missed ticks, keep the phase
                tick += ((now - tick) // self.period_s + 1) * self.period_s
            self.clock.wait(stop, tick - now)

    def on_stopped(self) -> None:
        """Unregister the switches; clear the BMSs' balancing commands, waiting up to STOP_CLEAR_S for
        the link threads (they stop after this thread)."""
        for target in self._switches:
            self.router.unregister(target)
        clears = [f for rack in self.racks if rack.sender is not None and (f := rack.sender.stop()) is not None]
        futures.wait(clears, timeout=STOP_CLEAR_S)

    def _switch_balancing(self, mono: float, wall: float) -> list[tuple[str, Sample]]:
        """Operator balancing on/off commands; the state is published back as `site.<bess>.balancing`."""
        items = []
        for target, queue in self._switches.items():
            while not queue.empty():
                pending = queue.get_nowait()
                value = pending.command.value
                if pending.command.action != "write" or value not in (0, 1, True, False):
                    pending.reply(CommandStatus.REJECTED, f"{target}: write 1 (on) or 0 (off)")
                    continue
                for rack in self.racks:
                    if f"site.{rack.bess.id}.balancing" == target:
                        rack.enabled = bool(value)
                items.append((target, Sample(bool(value), wall, mono, wall)))
                pending.reply(CommandStatus.ACCEPTED, f"balancing {'on' if value else 'off'}", int(bool(value)))
        return items

    def cycle(self) -> int:
        """Step every rack that has a new usable frame and publish its points; returns how many
        racks were stepped.
        Called by the estimation thread (or a test/benchmark in its place)."""
        mono, wall = self.clock.monotonic(), self.clock.time()
        items: list[tuple[str, Sample]] = self._switch_balancing(mono, wall)
        for rack in self.racks:
            items += rack.poll(self.bus, mono, wall)
        for group in self.groups:
            group.flush()
        updated = 0
        for rack in self.racks:
            finished = rack.finish(mono, wall)
            updated += bool(finished)
            items += finished
        if items:
            self.bus.publish_many(items)
        self.cycles += 1
        return updated


def _chunks(racks: tuple[Rack, ...]) -> list[list[Rack]]:
    """Consecutive racks in groups of at most GROUP_CELLS cells (at least one rack each)."""
    groups: list[list[Rack]] = []
    for r in racks:
        if groups and sum(x.cell_count for x in groups[-1]) + r.cell_count <= GROUP_CELLS:
            groups[-1].append(r)
        else:
            groups.append([r])
    return groups
