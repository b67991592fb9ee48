"""Backtest: tuned rules vs MPC-with-forecast vs perfect foresight on seeded synthetic site data.

``synthetic_site`` draws a commercial site (load with daily/weekly shape, day-level and AR(1) noise;
PV with a clear-sky shape, day-level clearness and intra-day cloud noise; a time-of-use tariff and a
demand charge on the period's peak). Warm-up weeks before the evaluation period feed the forecasts.
``run_backtest`` simulates each strategy step by step on the evaluation period with the same plant
model (SOC band and power limits reach the controller as limits, like CCL/DCL would), then costs
every trajectory with app/ems/resimulate.py's rules:

- none: no battery.
- rules: app/ems/modes.RuleBased, its peak threshold, charge target and reserve tuned by grid search
  in hindsight on the evaluation period itself (the most favourable tuning rules can get).
- mpc: every ``replan_steps`` app/ems/mpc.MpcPlanner re-plans ``horizon_steps`` ahead from forecasts
  of load and PV fitted on the history so far; ScheduleFollowing executes with its peak guard.
- mpc_exact: the same loop told the true load and PV of each horizon. Its gap to perfect is the
  algorithm's (short horizon, receding decisions, the demand charge seen one day at a time); the
  rest of mpc's gap is what forecast error costs.
- perfect: one optimisation over the whole period with the true load and PV.

The controllers act on the measured load and PV of the current step (an EMS cycles in seconds, a
step is minutes); forecasts are used only for future steps. Energy left in the battery at the end
is valued at the mean import price (a strategy that ends emptier than it started pays for it), so a
controller cannot look better by draining the battery on the last day.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from app.ems.forecast import ProfileForecaster
from app.ems.inputs import EmsInputs
from app.ems.modes import RuleBased, ScheduleFollowing
from app.ems.mpc import PV_Z, MpcPlanner
from app.ems.optimiser import optimise
from app.ems.resimulate import resimulate
from app.ems.scenario import Battery, Grid, Scenario

OFF_PEAK = ((21.0, 7.0),)
PEAK = ((16.0, 21.0),)


@dataclass(frozen=True, eq=False)
class SiteData:
    """Evaluation scenario plus the warm-up history that precedes it (same step, slot0 = Monday 00:00)."""

    scenario: Scenario
    history_load_kw: np.ndarray
    history_pv_kw: np.ndarray
    steps_per_day: int

    @property
    def hours(self) -> np.ndarray:
        """Local hour of day of each evaluation step."""
        spd = self.steps_per_day
        return ((self.history_load_kw.size + np.arange(self.scenario.steps)) % spd) * 24.0 / spd


def tou_prices(hours: np.ndarray) -> np.ndarray:
    """Import price per kWh: peak 16-21 h 0.38, shoulder 7-16 h 0.22, off-peak 0.12."""
    return np.where((hours >= 16) & (hours < 21), 0.38, np.where((hours >= 7) & (hours < 16), 0.22, 0.12))


def synthetic_site(weeks: int = 4, warmup_weeks: int = 2, step_minutes: float = 15.0, seed: int = 11) -> SiteData:
    """A reproducible site: 500 kWh / 250 kW battery, ~100-320 kW commercial load, 400 kWp PV."""
    rng = np.random.default_rng(seed)
    spd = int(round(24 * 60 / step_minutes))
    days = 7 * (weeks + warmup_weeks)
    n = days * spd
    hod = (np.arange(n) % spd) * 24.0 / spd
    day = np.arange(n) // spd
    weekend = (day % 7) >= 5
    shape = 110 + 120 * np.exp(-((hod - 12.5) / 3.5) ** 2) + 60 * np.exp(-((hod - 18.5) / 1.8) ** 2)
    shape = np.where(weekend, 0.55 * shape + 20, shape)
    level = np.exp(_ar1(rng, days, 0.7, 0.08))[day]
    load = shape * level * np.exp(_ar1(rng, n, 0.85, 0.07))
    clear = 400 * np.clip(np.sin(np.pi * (hod - 6) / 14), 0, None) ** 1.2
    clearness = rng.beta(5, 2, days)[day]
    clouds = _ar1(rng, n, 0.9, 0.25) * (1.2 - clearness)
    pv = clear * np.clip(clearness + clouds, 0.05, 1.0)
    h = warmup_weeks * 7 * spd
    price = tou_prices(hod[h:])
    scn = Scenario(
        step_minutes=step_minutes,
        battery=Battery(capacity_kwh=500, max_charge_kw=250, max_discharge_kw=250, charge_efficiency=0.95,
                        discharge_efficiency=0.95, soc_min_pct=10, soc_max_pct=90, initial_soc_pct=50,
                        final_soc_min_pct=50, degradation_cost_per_kwh=0.02),
        grid=Grid(import_limit_kw=1000, export_limit_kw=1000, demand_charge_per_kw=15.0, existing_peak_kw=0.0),
        load_kw=_frozen(load[h:]), pv_kw=_frozen(pv[h:]), import_price_per_kwh=_frozen(price),
        export_price_per_kwh=_frozen(np.full(n - h, 0.05)))
    return SiteData(scn, _frozen(load[:h]), _frozen(pv[:h]), spd)


@dataclass(frozen=True)
class StrategyResult:
    cost: float                 # resimulated cost + value of energy missing at the end
    savings: float              # vs no battery
    cycles: float               # throughput / (2 * capacity)
    peak_kw: float
    peak_reduction_kw: float
    end_soc_pct: float
    violations: tuple[str, ...]
    wall_s: float


@dataclass(frozen=True)
class BacktestReport:
    days: float
    step_minutes: float
    horizon_steps: int
    replan_steps: int
    strategies: dict            # name -> StrategyResult: none, rules, mpc, mpc_exact, perfect
    rules: RuleBased            # the tuned rule set

    def savings(self, name: str) -> float:
        return self.strategies[name].savings


def run_backtest(data: SiteData, horizon_steps: int = 96, replan_steps: int = 4,
                 history_days: int = 14) -> BacktestReport:
    """Run every strategy on ``data`` (see module docstring)."""
    scn = data.scenario
    results: dict[str, StrategyResult] = {}
    started = time.perf_counter()
    none = np.zeros(scn.steps)
    base = _evaluate(scn, none, None, started)
    results["none"] = base
    started = time.perf_counter()
    rules = tune_rules(warmup(data))
    results["rules"] = _evaluate(scn, simulate(data, lambda t, soc, peak: rules), base, started)
    started = time.perf_counter()
    results["mpc"] = _evaluate(scn, run_mpc(data, horizon_steps, replan_steps, history_days), base, started)
    started = time.perf_counter()
    results["mpc_exact"] = _evaluate(scn, run_mpc(data, horizon_steps, replan_steps, history_days, exact=True),
                                     base, started)
    started = time.perf_counter()
    results["perfect"] = _evaluate(scn, optimise(scn, 30.0).battery_kw, base, started)
    return BacktestReport(scn.steps / data.steps_per_day, scn.step_minutes, horizon_steps, replan_steps,
                          results, rules)


def warmup(data: SiteData) -> SiteData:
    """The warm-up weeks as a site of their own (to tune on data the evaluation never sees)."""
    scn = data.scenario
    n = data.history_load_kw.size
    hours = (np.arange(n) % data.steps_per_day) * 24.0 / data.steps_per_day
    past = replace(scn, load_kw=data.history_load_kw, pv_kw=data.history_pv_kw,
                   import_price_per_kwh=_frozen(tou_prices(hours)),
                   export_price_per_kwh=_frozen(np.full(n, float(scn.export_price_per_kwh[0]))))
    return SiteData(past, _frozen(np.zeros(0)), _frozen(np.zeros(0)), data.steps_per_day)


def tune_rules(data: SiteData) -> RuleBased:
    """Grid search of RuleBased's peak threshold, charge target and reserve, by cost on ``data``."""
    scn = data.scenario
    top = float(np.max(scn.load_kw - scn.pv_kw))
    best = None
    for frac, charge_to, reserve in itertools.product((0.55, 0.65, 0.75, 0.85, 0.95), (50.0, 70.0, 90.0),
                                                      (10.0, 30.0, 50.0)):
        rules = RuleBased(peak_threshold_kw=frac * top, charge_windows=OFF_PEAK, discharge_windows=PEAK,
                          charge_kw=scn.battery.max_charge_kw, charge_to_pct=charge_to, reserve_pct=reserve)
        b = simulate(data, lambda t, soc, peak, r=rules: r)
        cost = _cost(scn, b)
        if best is None or cost < best[0]:
            best = (cost, rules)
    return best[1]


def run_mpc(data: SiteData, horizon_steps: int, replan_steps: int, history_days: int,
            load_z: float = 0.0, pv_z: float = PV_Z, exact: bool = False) -> np.ndarray:
    """Receding-horizon MPC over the evaluation period; battery kW per step. ``exact``: the planner
    is given the true load and PV of its horizon instead of forecasts."""
    scn, spd = data.scenario, data.steps_per_day
    planner = MpcPlanner(scn.battery, scn.grid, scn.step_minutes, horizon_steps,
                         ProfileForecaster(spd), ProfileForecaster(spd, half_life_days=3.0, weekly=False,
                                                                   relative=True), load_z, pv_z)
    load = np.concatenate([data.history_load_kw, scn.load_kw])
    pv = np.concatenate([data.history_pv_kw, scn.pv_kw])
    h0, keep = data.history_load_kw.size, history_days * spd
    step_s = scn.step_minutes * 60.0
    current: list = [None]

    def choose(t: int, soc: float, peak: float):
        if t % replan_steps == 0:
            end = h0 + t
            start = max(0, end - keep)
            p = planner
            if exact:
                ahead = slice(end, end + horizon_steps)
                p = replace(planner, load_model=_Known(load[ahead]), pv_model=_Known(pv[ahead]))
            schedule = p.plan(t * step_s, load[start:end], pv[start:end], start % (7 * spd),
                              scn.import_price_per_kwh[t:t + horizon_steps],
                              scn.export_price_per_kwh[t:t + horizon_steps], soc, peak)
            current[0] = ScheduleFollowing(schedule)
        return current[0]

    return simulate(data, choose)


@dataclass(frozen=True, eq=False)
class _Known:
    """A 'forecaster' that knows the future: the MPC loop's result without forecast error."""

    future: np.ndarray
    min_history = 0

    def forecast(self, history: np.ndarray, slot0: int, horizon: int, z: float = 0.0) -> np.ndarray:
        return np.asarray(self.future[:horizon], dtype=float)


def simulate(data: SiteData, choose: Callable[[int, float, float], object]) -> np.ndarray:
    """Step a controller over the evaluation period. ``choose(t, soc_pct, peak_so_far_kw)`` returns
    the mode for step t (a new object resets the mode's state). SOC band and power limits are given
    to the mode as its charge/discharge limits."""
    scn = data.scenario
    bat, dt = scn.battery, scn.dt_h
    cap, eta_c, eta_d = bat.capacity_kwh, bat.charge_efficiency, bat.discharge_efficiency
    e, e_min, e_max = bat.initial_soc_pct * cap / 100, bat.soc_min_pct * cap / 100, bat.soc_max_pct * cap / 100
    load, pv, hours = scn.load_kw.tolist(), scn.pv_kw.tolist(), data.hours.tolist()
    prices = scn.import_price_per_kwh.tolist()
    out = np.zeros(scn.steps)
    mode, state, peak = None, None, scn.grid.existing_peak_kw
    for t in range(scn.steps):
        soc = 100 * e / cap
        new = choose(t, soc, peak)
        if new is not mode:
            mode, state = new, None
        inp = EmsInputs(time_s=t * dt * 3600, hour=hours[t],
                        max_charge_kw=min(bat.max_charge_kw, max(e_max - e, 0.0) / (eta_c * dt)),
                        max_discharge_kw=min(bat.max_discharge_kw, max(e - e_min, 0.0) * eta_d / dt),
                        soc_pct=soc, load_kw=load[t], pv_kw=pv[t], import_price=prices[t])
        d = mode.step(inp, state)
        state, b = d.state, d.setpoint_kw
        e += (max(b, 0.0) * eta_c - max(-b, 0.0) / eta_d) * dt
        peak = max(peak, load[t] - pv[t] + b)
        out[t] = b
    return out


def _cost(scn: Scenario, b: np.ndarray) -> float:
    replay = resimulate(scn, b)
    bat = scn.battery
    missing_kwh = (bat.initial_soc_pct - replay.soc_pct[-1]) / 100 * bat.capacity_kwh
    return replay.cost + missing_kwh * float(np.mean(scn.import_price_per_kwh))


def _evaluate(scn: Scenario, b: np.ndarray, base: StrategyResult | None, started: float) -> StrategyResult:
    replay = resimulate(scn, b)
    cost = _cost(scn, b)
    peak = float(replay.import_kw.max())
    throughput = float(np.sum(np.abs(b)) * scn.dt_h)
    violations = tuple(v for v in replay.violations if not v.startswith("final_soc"))
    return StrategyResult(cost, 0.0 if base is None else base.cost - cost,
                          throughput / (2 * scn.battery.capacity_kwh), peak,
                          0.0 if base is None else base.peak_kw - peak, float(replay.soc_pct[-1]),
                          violations, time.perf_counter() - started)


def _ar1(rng: np.random.Generator, n: int, phi: float, sigma: float) -> np.ndarray:
    """Stationary AR(1) noise with marginal standard deviation ``sigma``."""
    eps = rng.standard_normal(n) * sigma * np.sqrt(1 - phi ** 2)
    x = np.empty(n)
    x[0] = rng.standard_normal() * sigma
    for i in range(1, n):
        x[i] = phi * x[i - 1] + eps[i]
    return x


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=float).copy()
    a.setflags(write=False)
    return a
