"""Islanding on grid loss, black start and resynchronisation: a small state machine over a mode.

While the grid is there the inner mode runs unchanged. On grid loss the site is isolated (breaker
open, PCS stops following the grid), the PCS energises the island grid-forming with loads off, then
loads are picked up at ``pickup_kw_per_s`` until the battery carries load minus PV. The island shuts
down (``shed``) when SOC falls to ``soc_min_pct`` or is too low to black-start. When the grid returns
it must stay available and in frequency for ``grid_stable_s`` before the island synchronises and the
breaker closes again (``sync_s``); then the inner mode resumes from a fresh state.

Phases: connected -> isolating -> energising -> picking_up -> islanded -> resync_wait ->
synchronising -> connected; shed from isolating/picking_up/islanded; grid loss during resync goes back
to islanded (or shed). Pure: time from ``inputs.time_s``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from app.ems.inputs import Decision, EmsInputs, clamp, fmt_kw

PHASES = ("connected", "isolating", "energising", "picking_up", "islanded", "resync_wait",
          "synchronising", "shed")


@dataclass(frozen=True)
class IslandState:
    phase: str = "connected"
    since_s: float = 0.0
    inner: Any = None           # the inner mode's state while connected
    down: bool = False          # the island was shed (no supply) before the grid came back


@dataclass(frozen=True)
class Islanding:
    inner: Any                  # any mode with step(inputs, state) -> Decision
    isolate_s: float = 0.2
    energise_s: float = 2.0
    pickup_kw_per_s: float = 50.0
    grid_stable_s: float = 60.0
    sync_s: float = 1.0
    nominal_hz: float = 50.0
    sync_window_hz: float = 0.1
    soc_min_pct: float = 5.0
    black_start_min_soc_pct: float = 10.0
    name = "islanding"

    def step(self, inp: EmsInputs, state: IslandState | None = None) -> Decision:
        s = state or IslandState(since_s=inp.time_s)
        t, elapsed = inp.time_s, inp.time_s - s.since_s
        go = lambda phase: IslandState(phase, t)  # noqa: E731  (a new phase starts now)
        soc = inp.soc_pct
        empty = soc is not None and soc <= self.soc_min_pct
        if s.phase == "connected":
            if inp.grid_available:
                d = self.inner.step(inp, s.inner)
                return Decision(d.setpoint_kw, d.why, replace(s, inner=d.state))
            return Decision(0.0, "islanding: grid lost -> isolating site (breaker open), idle", go("isolating"))
        if s.phase in ("islanded", "picking_up") and inp.grid_available:
            return Decision(*self._island(inp, s, f"grid back, waiting {self.grid_stable_s:g} s of stable grid"),
                            go("resync_wait"))
        if s.phase == "isolating":
            if elapsed < self.isolate_s:
                return Decision(0.0, "islanding: isolating site from grid -> idle", s)
            if soc is None or soc < self.black_start_min_soc_pct:
                return self._shed(inp, go("shed"), "black start refused")
            return Decision(0.0, "islanding: black start, energising island grid-forming, loads off -> idle",
                            go("energising"))
        if s.phase == "energising":
            if elapsed < self.energise_s:
                return Decision(0.0, "islanding: black start, energising island grid-forming, loads off -> idle", s)
            return Decision(0.0, "islanding: island energised, picking up load -> idle", go("picking_up"))
        if s.phase == "picking_up":
            if empty:
                return self._shed(inp, go("shed"), "island shut down")
            kw, why = self._island(inp, s, "picking up load", cap_kw=self.pickup_kw_per_s * elapsed)
            done = inp.demand_kw is None or abs(inp.demand_kw) <= self.pickup_kw_per_s * elapsed
            return Decision(kw, why, go("islanded") if done else s)
        if s.phase == "islanded":
            if empty:
                return self._shed(inp, go("shed"), "island shut down")
            return Decision(*self._island(inp, s, "grid-forming, battery carries load minus PV"), s)
        if s.phase == "shed":
            if inp.grid_available:
                return Decision(0.0, "islanding: grid back, island was down -> resync wait, idle",
                                IslandState("resync_wait", t, down=True))
            return self._shed(inp, s, "island down")
        # resync_wait / synchronising: the island keeps running until the breaker closes
        was_down = s.down
        if not inp.grid_available:
            if was_down or empty:
                return self._shed(inp, go("shed"), "grid lost again during resync")
            return Decision(self._island(inp, s, "")[0], "islanding: grid lost again during resync -> islanded",
                            go("islanded"))
        in_sync = inp.frequency_hz is None or abs(inp.frequency_hz - self.nominal_hz) <= self.sync_window_hz
        kw = 0.0 if was_down else self._island(inp, s, "")[0]
        if s.phase == "resync_wait":
            if not in_sync:
                return Decision(kw, f"islanding: grid back but {inp.frequency_hz:.2f} Hz outside "
                                    f"{self.nominal_hz:g} +/- {self.sync_window_hz:g} Hz, waiting",
                                replace(s, since_s=t))
            if elapsed < self.grid_stable_s:
                return Decision(kw, f"islanding: grid stable {elapsed:.0f} of {self.grid_stable_s:g} s before "
                                    f"resync", s)
            return Decision(kw, "islanding: grid stable, synchronising island to grid",
                            IslandState("synchronising", t, down=was_down))
        if elapsed < self.sync_s:
            return Decision(kw, "islanding: synchronising island to grid", s)
        return Decision(0.0, "islanding: breaker closed, back on grid -> resuming mode, idle", go("connected"))

    def _island(self, inp: EmsInputs, s: IslandState, what: str, cap_kw: float | None = None) -> tuple[float, str]:
        demand = inp.demand_kw
        if demand is None:
            return 0.0, f"islanding: {what}, site load unknown (battery follows it) -> idle"
        want = -demand if cap_kw is None else -max(min(demand, cap_kw), -cap_kw)
        kw = clamp(want, inp)
        note = ""
        if want < kw - 0.05:
            note = f", shed {kw - want:.0f} kW of load (discharge limit)"
        elif want > kw + 0.05:
            note = f", curtail {want - kw:.0f} kW of PV (charge limit)"
        return kw, f"islanding: {what}{', ' if what else ''}load-PV {demand:.0f} kW -> {fmt_kw(kw)}{note}"

    def _shed(self, inp: EmsInputs, state: IslandState, what: str) -> Decision:
        soc = "unknown" if inp.soc_pct is None else f"{inp.soc_pct:.1f} %"
        return Decision(0.0, f"islanding: {what}, SOC {soc} too low to carry the island, load shed -> idle",
                        replace(state, down=True))
