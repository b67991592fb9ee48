"""Scenario builders, hypothesis strategies and brute-force oracles for the dispatch tests.

The oracles are written independently of app.ems.optimiser: an LP in highspy's modelling API whose
charge/discharge and import/export modes are enumerated exhaustively, and a dynamic programme over
a discretised SOC grid that uses no solver at all.
"""
from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

import highspy
import numpy as np
from hypothesis import strategies as st

from app.ems.scenario import Scenario, parse_scenario

BASE = {
    "step_minutes": 60,
    "battery": {
        "capacity_kwh": 10.0, "max_charge_kw": 5.0, "max_discharge_kw": 5.0,
        "charge_efficiency": 0.95, "discharge_efficiency": 0.95,
        "soc_min_pct": 10, "soc_max_pct": 90, "initial_soc_pct": 50, "final_soc_min_pct": 50,
        "degradation_cost_per_kwh": 0.0,
    },
    "grid": {"import_limit_kw": 100.0, "export_limit_kw": 100.0,
             "demand_charge_per_kw": 0.0, "existing_peak_kw": 0.0},
    "series": {"load_kw": [2.0, 2.0, 2.0, 2.0], "pv_kw": [0.0, 0.0, 0.0, 0.0],
               "import_price_per_kwh": [0.1, 0.3, 0.1, 0.3],
               "export_price_per_kwh": [0.05, 0.05, 0.05, 0.05]},
}


def scenario_dict(battery: dict | None = None, grid: dict | None = None, series: dict | None = None,
                  **top) -> dict:
    """BASE with overrides merged per section (series lists replace BASE's, lengths must agree)."""
    d = copy.deepcopy(BASE)
    d["battery"].update(battery or {})
    d["grid"].update(grid or {})
    if series:
        n = len(next(iter(series.values())))
        for key in d["series"]:
            if key not in series:
                d["series"][key] = (d["series"][key] * n)[:n]
        d["series"].update(series)
    d.update(top)
    return d


def build(**kw) -> Scenario:
    return parse_scenario(scenario_dict(**kw))


def write(tmp_path: Path, data: dict, name: str = "scenario.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


@st.composite
def scenarios(draw, max_steps: int = 24, in_band: bool = False, feasible: bool = False,
              step_minutes=(5, 15, 60)) -> dict:
    """Random scenario dicts. ``in_band``: initial SOC inside the band. ``feasible``: limits that
    idling (b = 0, k = 0) satisfies and a final target at or below the initial SOC."""
    n = draw(st.integers(1, max_steps))
    real = lambda lo, hi: st.floats(lo, hi, allow_nan=False, allow_infinity=False)  # noqa: E731
    cap = draw(real(1, 500))
    lo_pct = draw(real(0, 50))
    hi_pct = draw(real(lo_pct, 100))
    init = draw(real(lo_pct, hi_pct) if in_band or feasible else real(0, 100))
    final = draw(real(0, init) if feasible else real(0, 100))
    load = draw(st.lists(real(-5 if not feasible else 0, 60), min_size=n, max_size=n))
    pv = draw(st.lists(st.one_of(st.just(0.0), real(0, 80)), min_size=n, max_size=n))
    imp_price = draw(st.lists(real(-0.3, 0.6), min_size=n, max_size=n))
    spread = draw(st.lists(real(-0.2, 0.5), min_size=n, max_size=n))
    exp_price = [p - s for p, s in zip(imp_price, spread)]
    net = max(max(l - p for l, p in zip(load, pv)), 0.0)
    import_limit = draw(real(net, net + 80) if feasible else real(0, 120))
    return {
        "step_minutes": draw(st.sampled_from(step_minutes)),
        "battery": {
            "capacity_kwh": cap, "max_charge_kw": draw(real(0, 60)),
            "max_discharge_kw": draw(real(0, 60)),
            "charge_efficiency": draw(real(0.5, 1)), "discharge_efficiency": draw(real(0.5, 1)),
            "soc_min_pct": lo_pct, "soc_max_pct": hi_pct, "initial_soc_pct": init,
            "final_soc_min_pct": final, "degradation_cost_per_kwh": draw(real(0, 0.1)),
        },
        "grid": {"import_limit_kw": import_limit, "export_limit_kw": draw(real(0, 120)),
                 "demand_charge_per_kw": draw(st.one_of(st.just(0.0), real(0, 20))),
                 "existing_peak_kw": draw(real(0, 60))},
        "series": {"load_kw": load, "pv_kw": pv, "import_price_per_kwh": imp_price,
                   "export_price_per_kwh": exp_price},
    }


class ModeLP:
    """The schema's dispatch problem with the SOC band as hard limits (initial SOC in the band),
    written with highspy's modelling API. ``solve(charge_mode, grid_mode)`` fixes per step whether
    the battery may only charge (True) or only discharge (False), and whether the grid may only
    export (True), only import (False) or both (None). No modes at all is the LP relaxation."""

    def __init__(self, scn: Scenario):
        bat, grid, n, dt = scn.battery, scn.grid, scn.steps, scn.dt_h
        h = self.h = highspy.Highs()
        h.silent()
        deg = bat.degradation_cost_per_kwh * dt
        self.c = [h.addVariable(0, bat.max_charge_kw, deg) for _ in range(n)]
        self.d = [h.addVariable(0, bat.max_discharge_kw, deg) for _ in range(n)]
        self.i = [h.addVariable(0, grid.import_limit_kw, float(scn.import_price_per_kwh[t]) * dt)
                  for t in range(n)]
        self.e = [h.addVariable(0, grid.export_limit_kw, -float(scn.export_price_per_kwh[t]) * dt)
                  for t in range(n)]
        k = [h.addVariable(0, float(scn.pv_kw[t]), 0) for t in range(n)]
        peak = h.addVariable(grid.existing_peak_kw, 1e6, grid.demand_charge_per_kw)
        cap = bat.capacity_kwh
        energy = bat.initial_soc_pct / 100 * cap
        for t in range(n):
            h.addConstr(self.i[t] - self.e[t] == float(scn.load_kw[t] - scn.pv_kw[t]) + k[t]
                        + self.c[t] - self.d[t])
            h.addConstr(peak >= self.i[t])
            energy = energy + (bat.charge_efficiency * dt) * self.c[t] \
                - (dt / bat.discharge_efficiency) * self.d[t]
            h.addConstr(energy >= bat.soc_min_pct / 100 * cap)
            h.addConstr(energy <= bat.soc_max_pct / 100 * cap)
        h.addConstr(energy >= bat.final_soc_min_pct / 100 * cap)
        self.n = n
        self.ub = (bat.max_charge_kw, bat.max_discharge_kw, grid.import_limit_kw, grid.export_limit_kw)

    def solve(self, charge_mode=None, grid_mode=None) -> float | None:
        h, (c_ub, d_ub, i_ub, e_ub) = self.h, self.ub
        for t in range(self.n):
            charge = None if charge_mode is None else charge_mode[t]
            export = None if grid_mode is None else grid_mode[t]
            h.changeColBounds(self.c[t].index, 0, 0 if charge is False else c_ub)
            h.changeColBounds(self.d[t].index, 0, 0 if charge is True else d_ub)
            h.changeColBounds(self.i[t].index, 0, 0 if export is True else i_ub)
            h.changeColBounds(self.e[t].index, 0, 0 if export is False else e_ub)
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        return h.getInfo().objective_function_value


def exhaustive_optimum(scn: Scenario) -> float | None:
    """Exact optimum: the best LP over every charge/discharge pattern and, on the steps where the
    export price exceeds the import price (the only ones where importing and exporting at once could
    pay), every import/export pattern. None if no pattern is feasible."""
    lp = ModeLP(scn)
    risky = np.flatnonzero(scn.export_price_per_kwh > scn.import_price_per_kwh)
    values = []
    for modes in itertools.product((True, False), repeat=scn.steps):
        for flips in itertools.product((True, False), repeat=risky.size):
            grid_mode = [None] * scn.steps
            for t, flip in zip(risky, flips):
                grid_mode[t] = flip
            values.append(lp.solve(modes, grid_mode))
    feasible = [v for v in values if v is not None]
    return min(feasible) if feasible else None


def dp_optimum(scn: Scenario, grid_kwh: float) -> float:
    """Cheapest plan whose end-of-step energies lie on a grid of ``grid_kwh`` through the initial
    energy (no demand charge). Exact for grid trajectories, so it bounds the optimum from above."""
    bat, grid, dt = scn.battery, scn.grid, scn.dt_h
    cap = bat.capacity_kwh
    e0 = bat.initial_soc_pct / 100 * cap
    lo, hi = bat.soc_min_pct / 100 * cap, bat.soc_max_pct / 100 * cap
    levels = e0 + grid_kwh * np.arange(np.ceil((lo - e0) / grid_kwh - 1e-9),
                                        np.floor((hi - e0) / grid_kwh + 1e-9) + 1)
    delta = levels[None, :] - levels[:, None]                     # from i to j
    b = np.where(delta >= 0, delta / (bat.charge_efficiency * dt), delta * bat.discharge_efficiency / dt)
    ok_power = (b <= bat.max_charge_kw + 1e-9) & (-b <= bat.max_discharge_kw + 1e-9)
    value = np.where(np.isclose(levels, e0), 0.0, np.inf)
    for t in range(scn.steps):
        base = scn.load_kw[t] - scn.pv_kw[t] + b               # grid power before curtailment
        k_lo = np.maximum(0.0, -grid.export_limit_kw - base)
        k_hi = np.minimum(scn.pv_kw[t], grid.import_limit_kw - base)
        best = np.full(b.shape, np.inf)
        for k in (k_lo, k_hi, np.clip(-base, k_lo, k_hi)):
            g = base + k
            cost = (scn.import_price_per_kwh[t] * np.maximum(g, 0)
                    - scn.export_price_per_kwh[t] * np.maximum(-g, 0)) * dt
            best = np.minimum(best, np.where(k_lo <= k_hi + 1e-9, cost, np.inf))
        step = best + bat.degradation_cost_per_kwh * np.abs(b) * dt
        step = np.where(ok_power, step, np.inf)
        value = np.min(value[:, None] + step, axis=0)
    final = levels >= bat.final_soc_min_pct / 100 * cap - 1e-9
    return float(np.min(np.where(final, value, np.inf)))
