"""Islanding on grid loss, black start and resynchronisation: a small state machine over a mode.

While the grid is there the inner mode runs unchanged. Every other phase's Decision names the states
the site's devices must hold (``Decision.devices``, written by the EMS worker): ``meter.breaker_command``
(1 close, 0 open), ``meter.load_feeder_enable`` (1 on, 0 off), ``pcs.operating_mode`` (1 grid-forming,
0 grid-following). A phase advances only on the devices' status (``inputs.breaker_closed``,
``inputs.grid_forming``):

- isolating: breaker open, loads off; on once the breaker reads open (at least ``isolate_s``);
- energising: black start, PCS grid-forming at nominal voltage and frequency with no load; on once a PCS
  reports grid-forming (at least ``energise_s``);
- picking_up: loads on; the power reference ramps at ``pickup_kw_per_s`` to load minus PV;
- islanded: the battery carries load minus PV (a reference equal to the load holds the island at
  nominal frequency);
- resync_wait: the grid is back and must stay within ``sync_window_hz`` of nominal for ``grid_stable_s``,
  then the island must be within ``sync_window_hz`` of the grid;
- synchronising: breaker close; on once it reads closed;
- reconnecting: PCS back to grid-following, loads on; then connected, the inner mode from a fresh state;
- shed: the island is down (SOC at ``soc_min_pct`` or too low to black-start, no PCS free of protection
  holds, a device not responding): breaker open, loads off, PCS grid-following, until the grid returns.

A device that does not report its state within ``device_timeout_s`` raises ``Decision.alarm``: a breaker
that does not open or a PCS that does not form sheds the island; a breaker that does not close goes back
to resync_wait (and tries again); a PCS that does not report grid-following is left so (connected).
Pure: time from ``inputs.time_s``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from app.ems.inputs import Decision, EmsInputs, clamp, fmt_kw

PHASES = ("connected", "isolating", "energising", "picking_up", "islanded", "resync_wait",
          "synchronising", "reconnecting", "shed")
BREAKER, FEEDER, MODE = "meter.breaker_command", "meter.load_feeder_enable", "pcs.operating_mode"


def _want(breaker: int, feeder: int, forming: int) -> tuple[tuple[str, int], ...]:
    return (BREAKER, breaker), (FEEDER, feeder), (MODE, forming)


ISOLATE = ((BREAKER, 0), (FEEDER, 0))
ENERGISE, ISLAND, DOWN = _want(0, 0, 1), _want(0, 1, 1), _want(0, 0, 0)
CLOSE, CLOSE_DEAD, RECONNECT = _want(1, 1, 1), _want(1, 0, 0), _want(1, 1, 0)


@dataclass(frozen=True)
class IslandState:
    phase: str = "connected"
    since_s: float = 0.0
    inner: Any = None           # the inner mode's state while connected
    down: bool = False          # the island was shed (no supply) before the grid came back
    cause: str = ""             # why it was shed


@dataclass(frozen=True)
class Islanding:
    inner: Any                  # any mode with step(inputs, state) -> Decision
    isolate_s: float = 0.2
    energise_s: float = 2.0
    pickup_kw_per_s: float = 50.0
    grid_stable_s: float = 60.0
    device_timeout_s: float = 10.0
    nominal_hz: float = 50.0
    sync_window_hz: float = 0.1
    soc_min_pct: float = 5.0
    black_start_min_soc_pct: float = 10.0
    name = "islanding"

    def step(self, inp: EmsInputs, state: IslandState | None = None) -> Decision:
        s = state or IslandState(since_s=inp.time_s)
        t, elapsed = inp.time_s, inp.time_s - s.since_s
        go = lambda phase, down=False: IslandState(phase, t, down=down)  # noqa: E731  (a new phase starts now)
        late = elapsed >= self.device_timeout_s
        timeout = f"{self.device_timeout_s:g} s"
        soc = inp.soc_pct
        empty = soc is not None and soc <= self.soc_min_pct
        no_pcs = inp.max_charge_kw <= 0 and inp.max_discharge_kw <= 0     # all held (or SOC unknown)
        if s.phase == "connected":
            if inp.grid_available:
                d = self.inner.step(inp, s.inner)
                return Decision(d.setpoint_kw, d.why, replace(s, inner=d.state))
            return Decision(0.0, "islanding: grid lost -> isolating site (breaker open, loads off), idle",
                            go("isolating"), ISOLATE)
        if s.phase in ("islanded", "picking_up") and inp.grid_available:
            return Decision(*self._island(inp, f"grid back, waiting {self.grid_stable_s:g} s of stable grid"),
                            go("resync_wait"), ISLAND)
        if s.phase == "isolating":
            if inp.breaker_closed is not False or elapsed < self.isolate_s:
                if late:
                    return self._shed(go("shed"), "grid breaker did not open, no black start",
                                      f"islanding: grid breaker not reported open within {timeout} of the open command")
                return Decision(0.0, "islanding: isolating site from grid, waiting for the breaker to open -> idle",
                                s, ISOLATE)
            if soc is None or soc < self.black_start_min_soc_pct:
                return self._shed(go("shed"), _soc_low(inp, "black start refused"))
            if no_pcs:
                return self._shed(go("shed"), "black start refused, no PCS free (protection hold)")
            return Decision(0.0, "islanding: breaker open, black start: energising island grid-forming, loads off "
                                 "-> idle", go("energising"), ENERGISE)
        if s.phase == "energising":
            if no_pcs:
                return self._shed(go("shed"), "black start stopped, no PCS free (protection hold)")
            if inp.grid_forming and elapsed >= self.energise_s:
                return Decision(0.0, "islanding: island energised at nominal voltage and frequency, picking up "
                                     "load -> idle", go("picking_up"), ISLAND)
            if late:
                return self._shed(go("shed"), "PCS did not form the island",
                                  f"islanding: no PCS reported grid-forming within {timeout} of the black start")
            return Decision(0.0, "islanding: black start, energising island grid-forming, loads off -> idle", s,
                            ENERGISE)
        if s.phase in ("picking_up", "islanded"):
            if empty:
                return self._shed(go("shed"), _soc_low(inp, "island shut down"))
            if no_pcs:
                return self._shed(go("shed"), "island shut down, no PCS free (protection hold)")
            if inp.grid_forming is False:
                return self._shed(go("shed"), "island lost, no PCS grid-forming",
                                  "islanding: island lost, no PCS grid-forming any more")
            if s.phase == "islanded":
                return Decision(*self._island(inp, "grid-forming, battery carries load minus PV"), s, ISLAND)
            kw, why = self._island(inp, "picking up load", cap_kw=self.pickup_kw_per_s * elapsed)
            done = inp.demand_kw is None or abs(inp.demand_kw) <= self.pickup_kw_per_s * elapsed
            return Decision(kw, why, go("islanded") if done else s, ISLAND)
        if s.phase == "shed":
            if inp.grid_available:
                return Decision(0.0, "islanding: grid back, island was down -> resync wait, idle",
                                go("resync_wait", down=True), DOWN)
            return Decision(0.0, f"islanding: island down ({s.cause}), waiting for the grid -> idle", s, DOWN)
        if s.phase == "reconnecting":
            if not inp.grid_available:
                return Decision(0.0, "islanding: grid lost again -> isolating site (breaker open, loads off), idle",
                                go("isolating"), ISOLATE)
            if inp.grid_forming is False or late:
                alarm = "" if inp.grid_forming is False else \
                    f"islanding: PCS not reported grid-following within {timeout} of reconnecting"
                return Decision(0.0, "islanding: back on grid -> resuming mode, idle", go("connected"), alarm=alarm)
            return Decision(0.0, "islanding: breaker closed, PCS back to grid-following, loads on -> idle", s,
                            RECONNECT)
        return self._resync(inp, s, go, late, empty)

    def _resync(self, inp: EmsInputs, s: IslandState, go, late: bool, empty: bool) -> Decision:
        """resync_wait / synchronising: the island (unless down) keeps running until the breaker closes."""
        down = s.down
        if not inp.grid_available:
            if down or empty:
                return self._shed(go("shed"), _soc_low(inp, "grid lost again during resync") if empty
                                  else "grid lost again during resync")
            return Decision(self._island(inp, "")[0], "islanding: grid lost again during resync -> islanded",
                            go("islanded"), ISLAND)
        kw, keep = (0.0, DOWN) if down else (self._island(inp, "")[0], ISLAND)
        if s.phase == "synchronising":
            if inp.breaker_closed:
                return Decision(0.0, "islanding: breaker closed, back on grid: PCS to grid-following, loads on "
                                     "-> idle", go("reconnecting"), RECONNECT)
            if late:
                return Decision(kw, f"islanding: grid breaker did not close, retrying after {self.grid_stable_s:g} s "
                                    f"of stable grid", go("resync_wait", down), keep,
                                f"islanding: grid breaker not reported closed within {self.device_timeout_s:g} s "
                                f"of the close command (sync check)")
            return Decision(kw, "islanding: closing the grid breaker", s, CLOSE_DEAD if down else CLOSE)
        grid_hz, island_hz = inp.grid_frequency_hz, inp.frequency_hz
        if grid_hz is not None and abs(grid_hz - self.nominal_hz) > self.sync_window_hz:
            return Decision(kw, f"islanding: grid back but {grid_hz:.2f} Hz outside {self.nominal_hz:g} +/- "
                                f"{self.sync_window_hz:g} Hz, waiting", replace(s, since_s=inp.time_s), keep)
        elapsed = inp.time_s - s.since_s
        if elapsed < self.grid_stable_s:
            return Decision(kw, f"islanding: grid stable {elapsed:.0f} of {self.grid_stable_s:g} s before resync", s,
                            keep)
        if not down and (island_hz is None or grid_hz is None or abs(island_hz - grid_hz) > self.sync_window_hz):
            return Decision(kw, f"islanding: grid stable, waiting for the island ({_hz(island_hz)}) within "
                                f"{self.sync_window_hz:g} Hz of the grid ({_hz(grid_hz)})", s, keep)
        what = "closing the grid breaker onto the dead site bus" if down else "island in sync, closing the grid breaker"
        return Decision(kw, f"islanding: grid stable, {what}", go("synchronising", down), CLOSE_DEAD if down else CLOSE)

    def _island(self, inp: EmsInputs, what: str, cap_kw: float | None = None) -> tuple[float, str]:
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

    @staticmethod
    def _shed(state: IslandState, why: str, alarm: str = "") -> Decision:
        return Decision(0.0, f"islanding: {why}, load shed -> idle", replace(state, down=True, cause=why), DOWN, alarm)


def _soc_low(inp: EmsInputs, what: str) -> str:
    soc = "unknown" if inp.soc_pct is None else f"{inp.soc_pct:.1f} %"
    return f"{what}, SOC {soc} too low to carry the island"


def _hz(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.2f} Hz"
