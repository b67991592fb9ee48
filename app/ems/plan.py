"""The `plan` command's core: scenario file in, the schema's output object out."""
from __future__ import annotations

import numpy as np

from app.ems.optimiser import optimise
from app.ems.resimulate import resimulate
from app.ems.scenario import load_scenario

_DECIMALS = 6


def plan_file(path: str) -> dict:
    """Optimal dispatch for the scenario at ``path`` as
    ``{"battery_kw", "curtail_kw", "soc_pct", "cost", "warnings"}`` (JSON-ready, + = charging).

    SOC and cost come from re-simulating the rounded plan with the schema's rules, not from the
    solver. Raises ScenarioError (a UserError) naming the file or key when the input is bad.
    """
    scn = load_scenario(path)
    plan = optimise(scn)
    battery_kw = _clean(plan.battery_kw)
    curtail_kw = _clean(plan.curtail_kw)
    replay = resimulate(scn, battery_kw, curtail_kw)
    return {
        "battery_kw": battery_kw.tolist(),
        "curtail_kw": curtail_kw.tolist(),
        "soc_pct": _clean(replay.soc_pct).tolist(),
        "cost": round(replay.cost, _DECIMALS) + 0.0,
        "warnings": list(plan.warnings),
    }


def _clean(values: np.ndarray) -> np.ndarray:
    """Round away solver noise (1e-6 kW is far below every tolerance) and negative zeros."""
    return np.round(values, _DECIMALS) + 0.0
