"""Operating modes as pure controllers: ``mode.step(inputs, state) -> Decision``.

Each mode is a frozen dataclass of its settings. ``step`` reads one EmsInputs snapshot and the state it
returned last time (None on the first call), and answers a setpoint in kW (+ = charging) within the
protection limits of the inputs, an operator-readable why, and its next state. No I/O, no clock: time
comes from ``inputs.time_s``/``inputs.hour``. Islanding (a state machine over another mode) is in
app/ems/island.py; the model-predictive planner that feeds ScheduleFollowing is in app/ems/mpc.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.ems.inputs import Decision, EmsInputs, clamp, fmt_kw, limited, missing

Windows = tuple[tuple[float, float], ...]     # (start_hour, end_hour); end < start wraps midnight


def in_windows(hour: float, windows: Windows) -> tuple[float, float] | None:
    """The window containing ``hour``, or None."""
    for start, end in windows:
        if (start <= hour < end) if start <= end else (hour >= start or hour < end):
            return start, end
    return None


def _decide(mode: str, kw: float, inp: EmsInputs, reason: str, state=None) -> Decision:
    out, cut = limited(kw, inp)
    return Decision(out, f"{mode}: {reason} -> {fmt_kw(out)}{cut}", state)


@dataclass(frozen=True)
class Manual:
    """Hold an operator setpoint."""

    setpoint_kw: float = 0.0
    name = "manual"

    def step(self, inp: EmsInputs, state=None) -> Decision:
        return _decide(self.name, self.setpoint_kw, inp, f"operator setpoint {self.setpoint_kw:+.1f} kW")


@dataclass(frozen=True)
class PeakShaving:
    """Keep site import <= threshold; below it, recharge towards ``target_soc_pct`` without making a
    new peak."""

    threshold_kw: float
    recharge_kw: float
    target_soc_pct: float = 90.0
    name = "peak shaving"

    def step(self, inp: EmsInputs, state=None) -> Decision:
        demand = inp.demand_kw
        if demand is None:
            return missing(self.name, "site load/PV or grid meter")
        if demand > self.threshold_kw:
            return _decide(self.name, self.threshold_kw - demand, inp,
                           f"import {demand:.0f} kW > {self.threshold_kw:.0f} kW limit")
        if inp.soc_pct is not None and inp.soc_pct < self.target_soc_pct:
            return _decide(self.name, min(self.recharge_kw, self.threshold_kw - demand), inp,
                           f"import {demand:.0f} kW under {self.threshold_kw:.0f} kW limit, SOC "
                           f"{inp.soc_pct:.0f} % < {self.target_soc_pct:.0f} %, recharge")
        return Decision(0.0, f"{self.name}: import {demand:.0f} kW under {self.threshold_kw:.0f} kW limit -> idle")


@dataclass(frozen=True)
class TouShifting:
    """Charge in cheap windows up to ``charge_to_pct``, discharge in expensive windows down to
    ``discharge_to_pct`` (covering site demand only, never exporting, when demand is known)."""

    charge_windows: Windows = ((0.0, 6.0),)
    discharge_windows: Windows = ((16.0, 21.0),)
    charge_kw: float = 100.0
    discharge_kw: float = 100.0
    charge_to_pct: float = 90.0
    discharge_to_pct: float = 20.0
    name = "TOU"

    def step(self, inp: EmsInputs, state=None) -> Decision:
        if inp.soc_pct is None:
            return missing(self.name, "SOC")
        price = "" if inp.import_price is None else f", price {inp.import_price:.3f}"
        at = f"{_hhmm(inp.hour)}{price}"
        if (w := in_windows(inp.hour, self.charge_windows)) and inp.soc_pct < self.charge_to_pct:
            return _decide(self.name, self.charge_kw, inp,
                           f"{at} in cheap window {_window(w)}, SOC {inp.soc_pct:.0f} % < {self.charge_to_pct:.0f} %")
        if (w := in_windows(inp.hour, self.discharge_windows)) and inp.soc_pct > self.discharge_to_pct:
            kw = self.discharge_kw if inp.demand_kw is None else min(self.discharge_kw, max(inp.demand_kw, 0.0))
            return _decide(self.name, -kw, inp, f"{at} in peak window {_window(w)}, SOC "
                                                f"{inp.soc_pct:.0f} % > {self.discharge_to_pct:.0f} %")
        return Decision(0.0, f"{self.name}: {at} outside active windows or SOC target reached -> idle")


@dataclass(frozen=True)
class SelfConsumption:
    """Charge from PV surplus, discharge to cover site load (no grid charging, no export), keeping
    SOC >= ``reserve_pct``."""

    reserve_pct: float = 10.0
    name = "self-consumption"

    def step(self, inp: EmsInputs, state=None) -> Decision:
        demand = inp.demand_kw
        if demand is None:
            return missing(self.name, "site load/PV or grid meter")
        if demand < 0:
            return _decide(self.name, -demand, inp, f"PV surplus {-demand:.0f} kW")
        if inp.soc_pct is not None and inp.soc_pct <= self.reserve_pct:
            return Decision(0.0, f"{self.name}: load {demand:.0f} kW but SOC {inp.soc_pct:.0f} % at "
                                 f"{self.reserve_pct:.0f} % reserve -> idle")
        return _decide(self.name, -demand, inp, f"load {demand:.0f} kW not covered by PV")


@dataclass(frozen=True)
class SolarSmoothing:
    """Limit the ramp of PV + battery output at the grid to ``ramp_pct_per_min`` of the PV rating.
    State: (time_s, output_kw) of the last step."""

    pv_rating_kw: float
    ramp_pct_per_min: float = 10.0
    name = "solar smoothing"

    def step(self, inp: EmsInputs, state: tuple[float, float] | None = None) -> Decision:
        if inp.pv_kw is None:
            return missing(self.name, "PV power")
        if state is None:
            return Decision(0.0, f"{self.name}: start at PV {inp.pv_kw:.0f} kW -> idle", (inp.time_s, inp.pv_kw))
        t0, out0 = state
        ramp = self.ramp_pct_per_min / 100 * self.pv_rating_kw / 60      # kW per s
        room = ramp * max(inp.time_s - t0, 0.0)
        target = min(max(inp.pv_kw, out0 - room), out0 + room)
        kw = clamp(inp.pv_kw - target, inp)
        out = inp.pv_kw - kw
        why = (f"PV {inp.pv_kw:.0f} kW, output {out:.0f} kW ramping <= {self.ramp_pct_per_min:g} %/min "
               f"({ramp * 60:.0f} kW/min)")
        return Decision(kw, f"{self.name}: {why} -> {fmt_kw(kw)}", (inp.time_s, out))


@dataclass(frozen=True)
class FrequencySupport:
    """Proportional droop outside a deadband (over-frequency charges, under-frequency discharges) and
    an FFR step: full ``ffr_kw`` discharge for ``ffr_hold_s`` once frequency falls to
    ``ffr_trigger_hz``. State: monotonic time until which the FFR step holds (or None)."""

    rated_kw: float
    nominal_hz: float = 50.0
    deadband_hz: float = 0.05
    droop_pct: float = 4.0
    ffr_trigger_hz: float = 49.7
    ffr_kw: float | None = None        # default: rated_kw
    ffr_hold_s: float = 30.0
    name = "frequency support"

    def step(self, inp: EmsInputs, state: float | None = None) -> Decision:
        f = inp.frequency_hz
        if f is None:
            return missing(self.name, "grid frequency")
        df = f - self.nominal_hz
        excess = max(abs(df) - self.deadband_hz, 0.0)
        droop_kw = math.copysign(excess / (self.nominal_hz * self.droop_pct / 100) * self.rated_kw, df)
        ffr_kw = self.rated_kw if self.ffr_kw is None else self.ffr_kw
        if f <= self.ffr_trigger_hz:
            state = max(state or 0.0, inp.time_s + self.ffr_hold_s)
        if state is not None and inp.time_s < state:
            kw = clamp(min(droop_kw, -ffr_kw), inp)
            return Decision(kw, f"{self.name}: FFR {f:.3f} Hz (trigger {self.ffr_trigger_hz:.2f} Hz), step held "
                                f"{state - inp.time_s:.0f} s more -> {fmt_kw(kw)}", state)
        if excess == 0.0:
            return Decision(0.0, f"{self.name}: {f:.3f} Hz within +/-{self.deadband_hz:g} Hz deadband -> idle")
        return _decide(self.name, droop_kw, inp, f"{f:.3f} Hz, {excess:.3f} Hz outside +/-{self.deadband_hz:g} Hz "
                                                 f"deadband, droop {self.droop_pct:g} %")


@dataclass(frozen=True)
class BackupReserve:
    """Keep SOC >= ``reserve_pct``: recharge at ``recharge_kw`` below it, otherwise stay idle."""

    reserve_pct: float = 80.0
    recharge_kw: float = 50.0
    name = "backup reserve"

    def step(self, inp: EmsInputs, state=None) -> Decision:
        if inp.soc_pct is None:
            return missing(self.name, "SOC")
        if inp.soc_pct < self.reserve_pct:
            return _decide(self.name, self.recharge_kw, inp,
                           f"SOC {inp.soc_pct:.1f} % < {self.reserve_pct:.0f} % reserve")
        return Decision(0.0, f"{self.name}: SOC {inp.soc_pct:.1f} % >= {self.reserve_pct:.0f} % reserve -> idle")


@dataclass(frozen=True, eq=False)
class Outlook:
    """What a planner expects per step of its Schedule: SOC % at the end of the step, the load and PV
    forecasts and the grid flow (kW, + = import)."""

    soc_pct: np.ndarray
    load_kw: np.ndarray
    pv_kw: np.ndarray
    grid_kw: np.ndarray


@dataclass(frozen=True, eq=False)
class Schedule:
    """A plan: ``battery_kw[i]`` holds from ``start_s + i * step_s`` (monotonic s). ``peak_kw`` is the
    import the plan expects never to exceed (the real-time guard discharges to keep it); ``outlook``
    what the planner expects along it (None for an operator's plan)."""

    start_s: float
    step_s: float
    battery_kw: np.ndarray
    peak_kw: float | None = None
    source: str = "plan"
    outlook: Outlook | None = None

    def index(self, time_s: float) -> int | None:
        i = math.floor((time_s - self.start_s) / self.step_s + 1e-9)
        return i if 0 <= i < self.battery_kw.size else None


@dataclass(frozen=True)
class ScheduleFollowing:
    """Follow a Schedule; if the measured demand would push import above the plan's peak, discharge
    the difference (forecasts miss spikes; the plan's demand-charge saving must survive them)."""

    schedule: Schedule
    name = "schedule"

    def step(self, inp: EmsInputs, state=None) -> Decision:
        s = self.schedule
        i = s.index(inp.time_s)
        if i is None:
            return Decision(0.0, f"{self.name}: no {s.source} step for now -> idle")
        kw = float(s.battery_kw[i])
        reason = f"{s.source} step {i + 1}/{s.battery_kw.size} says {kw:+.1f} kW"
        demand = inp.demand_kw
        if s.peak_kw is not None and demand is not None and demand + kw > s.peak_kw:
            kw = s.peak_kw - demand
            reason += f", import {demand:.0f} kW would exceed planned peak {s.peak_kw:.0f} kW"
        return _decide(self.name, kw, inp, reason)


@dataclass(frozen=True)
class RuleBased:
    """The rule set the EMS falls back to (and the backtest's tuned baseline), first match wins:
    shave import above ``peak_threshold_kw``; store PV surplus; charge in cheap windows up to
    ``charge_to_pct`` without exceeding the threshold; cover load in expensive windows down to
    ``reserve_pct``."""

    peak_threshold_kw: float
    charge_windows: Windows = ((0.0, 6.0),)
    discharge_windows: Windows = ((16.0, 21.0),)
    charge_kw: float = 100.0
    charge_to_pct: float = 90.0
    reserve_pct: float = 20.0
    name = "rules"

    def step(self, inp: EmsInputs, state=None) -> Decision:
        demand, soc = inp.demand_kw, inp.soc_pct
        if demand is None or soc is None:
            return missing(self.name, "site load/PV or grid meter, SOC")
        if demand > self.peak_threshold_kw:
            return _decide(self.name, self.peak_threshold_kw - demand, inp,
                           f"peak shaving: import {demand:.0f} kW > {self.peak_threshold_kw:.0f} kW limit")
        if demand < 0:
            return _decide(self.name, -demand, inp, f"self-consumption: PV surplus {-demand:.0f} kW")
        if (w := in_windows(inp.hour, self.charge_windows)) and soc < self.charge_to_pct:
            return _decide(self.name, min(self.charge_kw, self.peak_threshold_kw - demand), inp,
                           f"TOU: {_hhmm(inp.hour)} in cheap window {_window(w)}, SOC {soc:.0f} % < "
                           f"{self.charge_to_pct:.0f} %")
        if (w := in_windows(inp.hour, self.discharge_windows)) and soc > self.reserve_pct:
            return _decide(self.name, -demand, inp, f"TOU: {_hhmm(inp.hour)} in peak window {_window(w)}, "
                                                    f"cover load {demand:.0f} kW")
        return Decision(0.0, f"{self.name}: import {demand:.0f} kW, SOC {soc:.0f} %, no rule applies -> idle")


def _hhmm(hour: float) -> str:
    m = int(round(hour * 60)) % 1440
    return f"{m // 60:02d}:{m % 60:02d}"


def _window(w: tuple[float, float]) -> str:
    return f"{_hhmm(w[0])}-{_hhmm(w[1])}"
