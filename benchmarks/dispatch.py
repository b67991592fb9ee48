"""Dispatch benchmark: solve time of the optimiser and wall time of `python main.py plan`.

Usage: python benchmarks/dispatch.py --json [--steps 576] [--step-minutes 5] [--repeat 3]
                                    [--backtest-weeks 4] [--backtest-step-minutes 15]

Builds a deterministic synthetic site (commercial load, PV, time-of-use prices with a negative-price
midday on day two, demand charge) of ``--steps`` steps, times ``optimise`` in-process and the CLI as
a subprocess (including interpreter start-up), checks the plan by independent re-simulation, and
prints one JSON object as the last stdout line. Then it runs app/ems/backtest.py (four weeks at
15-minute steps after two warm-up weeks; MPC re-plans 24 h ahead every hour: 672 HiGHS solves) and
adds its figures: savings of rules / MPC / MPC told the true load and PV / perfect foresight vs no
battery, their ratios, cycles and peak reduction. Targets: mpc_vs_rule_ratio >= 1.5, mpc_vs_perfect_pct <= 5.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.ems.backtest import run_backtest, synthetic_site  # noqa: E402
from app.ems.optimiser import optimise  # noqa: E402
from app.ems.resimulate import resimulate  # noqa: E402
from app.ems.scenario import parse_scenario  # noqa: E402


def synthetic_scenario(steps: int, step_minutes: float, seed: int = 7) -> dict:
    """A reproducible site: 500 kWh / 250 kW battery, ~150 kW load, 400 kWp PV, ToU prices."""
    rng = np.random.default_rng(seed)
    hours = np.arange(steps) * step_minutes / 60.0
    hod = hours % 24
    day = (hours // 24).astype(int)
    load = 120 + 80 * np.exp(-((hod - 13) / 4) ** 2) + 40 * np.exp(-((hod - 19) / 2) ** 2)
    load = load * (1 + 0.08 * rng.standard_normal(steps))
    pv = np.clip(400 * np.sin(np.pi * (hod - 6) / 14), 0, None) * (0.7 + 0.3 * rng.random(steps))
    pv[(hod < 6) | (hod > 20)] = 0.0
    price = np.where((hod >= 16) & (hod < 21), 0.38, np.where((hod >= 7) & (hod < 16), 0.22, 0.12))
    price = price + 0.02 * rng.standard_normal(steps)
    negative = (day % 2 == 1) & (hod >= 11) & (hod < 14)
    price[negative] = -0.05
    export = np.where(negative, -0.08, 0.05)
    return {
        "step_minutes": step_minutes,
        "battery": {"capacity_kwh": 500, "max_charge_kw": 250, "max_discharge_kw": 250,
                    "charge_efficiency": 0.95, "discharge_efficiency": 0.95,
                    "soc_min_pct": 10, "soc_max_pct": 90, "initial_soc_pct": 50,
                    "final_soc_min_pct": 50, "degradation_cost_per_kwh": 0.02},
        "grid": {"import_limit_kw": 400, "export_limit_kw": 200,
                 "demand_charge_per_kw": 15.0, "existing_peak_kw": 150},
        "series": {"load_kw": np.round(load, 3).tolist(), "pv_kw": np.round(pv, 3).tolist(),
                   "import_price_per_kwh": np.round(price, 4).tolist(),
                   "export_price_per_kwh": np.round(export, 4).tolist()},
    }


def backtest_figures(weeks: int, step_minutes: float) -> dict:
    """Backtest keys: savings per strategy, MPC vs rules and vs perfect foresight, cycles, peaks."""
    started = time.perf_counter()
    spd = round(24 * 60 / step_minutes)
    report = run_backtest(synthetic_site(weeks=weeks, warmup_weeks=2, step_minutes=step_minutes),
                          horizon_steps=spd, replan_steps=max(1, round(60 / step_minutes)))
    s = report.strategies
    out = {"backtest_days": report.days, "backtest_step_minutes": step_minutes,
           "backtest_horizon_h": report.horizon_steps * step_minutes / 60,
           "backtest_replan_minutes": report.replan_steps * step_minutes,
           "cost_no_battery": round(s["none"].cost, 2)}
    for name in ("rules", "mpc", "mpc_exact", "perfect"):
        out[f"savings_{_key(name)}"] = round(s[name].savings, 2)
        out[f"cycles_{_key(name)}"] = round(s[name].cycles, 2)
        out[f"peak_reduction_kw_{_key(name)}"] = round(s[name].peak_reduction_kw, 2)
    out["mpc_vs_rule_ratio"] = round(s["mpc"].savings / s["rules"].savings, 3) if s["rules"].savings > 0 else None
    out["mpc_vs_perfect_pct"] = round(100 * (1 - s["mpc"].savings / s["perfect"].savings), 2)
    out["mpc_exact_forecast_vs_perfect_pct"] = round(100 * (1 - s["mpc_exact"].savings / s["perfect"].savings), 2)
    out["backtest_violations"] = sum(len(r.violations) for r in s.values())
    out["backtest_wall_s"] = round(time.perf_counter() - started, 2)
    return out


def _key(strategy: str) -> str:
    return "rule" if strategy == "rules" else strategy


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    ap.add_argument("--steps", type=int, default=576)
    ap.add_argument("--step-minutes", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backtest-weeks", type=int, default=4)
    ap.add_argument("--backtest-step-minutes", type=float, default=15.0)
    args = ap.parse_args()

    data = synthetic_scenario(args.steps, args.step_minutes)
    scn = parse_scenario(data)
    solve_s = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        plan = optimise(scn)
        solve_s.append(time.perf_counter() - started)
    replay = resimulate(scn, plan.battery_kw, plan.curtail_kw)
    figures = {
        "steps": args.steps,
        "step_minutes": args.step_minutes,
        "solve_s": round(statistics.median(solve_s), 4),
        "solve_s_max": round(max(solve_s), 4),
        "highs_runs": plan.solves,
        "binaries": plan.binaries,
        "cost": round(replay.cost, 4),
        "violations": len(replay.violations),
        "command_wall_s": None,
    }
    cli = ROOT / "app" / "cli.py"
    if cli.exists():
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "scenario.json"
            path.write_text(json.dumps(data))
            walls, cost = [], None
            for _ in range(args.repeat):
                started = time.perf_counter()
                proc = subprocess.run([sys.executable, "main.py", "plan", "--scenario", str(path), "--json"],
                                      cwd=ROOT, capture_output=True, text=True, timeout=60)
                walls.append(time.perf_counter() - started)
                if proc.returncode != 0:
                    figures["command_error"] = proc.stderr.strip().splitlines()[-1:]
                    break
                cost = json.loads(proc.stdout.strip().splitlines()[-1])["cost"]
            else:
                figures["command_wall_s"] = round(statistics.median(walls), 4)
                figures["command_cost"] = cost
    else:
        figures["command_note"] = "app/cli.py does not exist yet; CLI wall time not measured"
    figures.update(backtest_figures(args.backtest_weeks, args.backtest_step_minutes))
    if not args.json:
        for key, value in figures.items():
            print(f"{key}: {value}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
