"""Independent re-simulation of a dispatch plan with exactly the rules of shared/scenario-schema.md.

``resimulate(scenario, battery_kw, curtail_kw)`` replays the plan step by step (no solver), returns
the SOC trajectory, grid flows, the cost and every rule the plan breaks beyond the judging
tolerances (0.5 kW on power limits, 0.2 percentage points on SOC). Used by the planner to report
SOC and cost, by the tests, and by the backtest.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.ems.scenario import Battery, Scenario

POWER_TOL_KW = 0.5
SOC_TOL_PCT = 0.2


@dataclass(frozen=True, eq=False)
class Replay:
    """Outcome of replaying a plan: per-step arrays (length N), cost terms and rule violations."""

    soc_pct: np.ndarray          # SOC at the end of each step
    import_kw: np.ndarray
    export_kw: np.ndarray
    energy_cost: float           # sum (import price * import - export price * export) * dt
    demand_cost: float
    degradation_cost: float
    violations: tuple[str, ...]  # kinds: power, curtail, import, export, soc, recovery, final_soc

    @property
    def cost(self) -> float:
        return self.energy_cost + self.demand_cost + self.degradation_cost

    def violation_kinds(self) -> set[str]:
        return {v.split(":", 1)[0] for v in self.violations}


def resimulate(scn: Scenario, battery_kw, curtail_kw=None) -> Replay:
    """Replay ``battery_kw`` (+ = charging) and ``curtail_kw`` (default 0) on ``scn``."""
    bat, grid = scn.battery, scn.grid
    n, dt = scn.steps, scn.dt_h
    b = np.asarray(battery_kw, dtype=float)
    k = np.zeros(n) if curtail_kw is None else np.asarray(curtail_kw, dtype=float)
    if b.shape != (n,) or k.shape != (n,):
        raise ValueError(f"plan has {b.size} battery and {k.size} curtail values, expected {n}")
    c, d = np.maximum(b, 0.0), np.maximum(-b, 0.0)
    soc = soc_path(bat, b, dt)
    g = scn.load_kw - (scn.pv_kw - k) + b
    imp, exp = np.maximum(g, 0.0), np.maximum(-g, 0.0)
    energy_cost = float(np.sum(scn.import_price_per_kwh * imp - scn.export_price_per_kwh * exp) * dt)
    demand_cost = grid.demand_charge_per_kw * max(grid.existing_peak_kw, float(imp.max()))
    degradation_cost = bat.degradation_cost_per_kwh * float(np.sum(c + d) * dt)

    v: list[str] = []
    _flag(v, "power", "charge above max_charge_kw", c > bat.max_charge_kw + POWER_TOL_KW)
    _flag(v, "power", "discharge above max_discharge_kw", d > bat.max_discharge_kw + POWER_TOL_KW)
    _flag(v, "curtail", "curtailment outside [0, pv_kw]",
          (k < -POWER_TOL_KW) | (k > scn.pv_kw + POWER_TOL_KW))
    _flag(v, "import", "import above import_limit_kw", imp > grid.import_limit_kw + POWER_TOL_KW)
    _flag(v, "export", "export above export_limit_kw", exp > grid.export_limit_kw + POWER_TOL_KW)
    v += _soc_rules(scn, soc, c, d)
    return Replay(soc, imp, exp, energy_cost, demand_cost, degradation_cost, tuple(v))


def soc_path(bat: Battery, battery_kw: np.ndarray, dt_h: float) -> np.ndarray:
    """SOC % at the end of each step of ``battery_kw`` (+ = charging) from ``bat.initial_soc_pct``."""
    c, d = np.maximum(battery_kw, 0.0), np.maximum(-battery_kw, 0.0)
    energy = bat.initial_soc_pct / 100 * bat.capacity_kwh + np.cumsum(
        (c * bat.charge_efficiency - d / bat.discharge_efficiency) * dt_h)
    return 100.0 * energy / bat.capacity_kwh


def _flag(out: list[str], kind: str, what: str, mask: np.ndarray) -> None:
    steps = np.flatnonzero(mask)
    if steps.size:
        out.append(f"{kind}: {what} at {steps.size} step(s), first step {steps[0]}")


def _soc_rules(scn: Scenario, soc: np.ndarray, c: np.ndarray, d: np.ndarray) -> list[str]:
    """Band, recovery from an out-of-band start (monotone, at the fastest allowed rate) and final SOC."""
    bat, grid = scn.battery, scn.grid
    lo, hi = bat.soc_min_pct, bat.soc_max_pct
    prev = np.concatenate(([bat.initial_soc_pct], soc[:-1]))
    out: list[str] = []
    # distance from the band may never grow beyond the smallest distance seen so far
    start = np.concatenate(([bat.initial_soc_pct], soc))
    dist = np.maximum(lo - start, 0) + np.maximum(start - hi, 0)
    closest = np.minimum.accumulate(dist)[:-1]
    _flag(out, "soc", "SOC outside [soc_min_pct, soc_max_pct] and further from it than before",
          dist[1:] > closest + SOC_TOL_PCT)
    # while outside the band, the battery must move towards it as fast as the power limits allow
    below, above = prev < lo - SOC_TOL_PCT, prev > hi + SOC_TOL_PCT
    max_c = np.clip(grid.import_limit_kw - scn.load_kw + scn.pv_kw, 0, bat.max_charge_kw)
    max_d = np.clip(grid.export_limit_kw + scn.load_kw, 0, bat.max_discharge_kw)
    slow_up = below & (soc < lo - SOC_TOL_PCT) & (c < max_c - POWER_TOL_KW)
    slow_down = above & (soc > hi + SOC_TOL_PCT) & (d < max_d - POWER_TOL_KW)
    _flag(out, "recovery", "SOC outside the band but not moving back at the allowed rate",
          slow_up | slow_down)
    if soc[-1] < bat.final_soc_min_pct - SOC_TOL_PCT:
        out.append(f"final_soc: final SOC {soc[-1]:.2f} % below final_soc_min_pct "
                   f"{bat.final_soc_min_pct:g} %")
    return out
