"""Plant simulator figures: simulated cells per second of wall time at x1, x100 and x1000 (stepping
flat out with the simulator's 0.2 s step: dt = 0.2, 20 and 200 s of simulated time per step), and
the CPU share of one core for `--cells` cells stepped at 1 Hz in real time (dt = 1 s; target < 10 %).

Usage: python benchmarks/sim.py [--json] [--cells N]. The last stdout line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.site import parse_site  # noqa: E402
from app.sim.plant import Plant  # noqa: E402
from benchmarks._plant import site_toml  # noqa: E402

SIM_STEP_S = 0.2           # app.sim.simulator.Simulator's default step (wall seconds)
REALTIME_S = 10.0          # length of the real-time 1 Hz run


def _plant(cells: int) -> Plant:
    plant = Plant(parse_site(site_toml(cells), "bench-sim.toml"), seed=1)
    for pcs in plant.pcs.values():
        pcs.setpoint_kw = 0.25 * pcs.pcs.rated_power_kw      # charging: currents, heat, RC all active
    return plant


def _flat_out(plant: Plant, dt: float, steps: int) -> float:
    """Wall seconds per step, stepping back to back."""
    plant.step(dt)
    start = time.perf_counter()
    for _ in range(steps):
        plant.step(dt)
    return (time.perf_counter() - start) / steps


def _cpu_at_1hz(plant: Plant) -> float:
    """Process CPU seconds per wall second while stepping dt = 1 s once per wall second."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    next_tick = wall0
    while next_tick - wall0 < REALTIME_S:
        plant.step(1.0)
        next_tick += 1.0
        time.sleep(max(0.0, next_tick - time.perf_counter()))
    return (time.process_time() - cpu0) / (time.perf_counter() - wall0)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    ap.add_argument("--cells", type=int, default=5000)
    args = ap.parse_args(argv)
    plant = _plant(args.cells)
    cells = sum(len(r.soc) for r in plant.racks.values())
    figures = {"cells": cells, "racks": len(plant.racks)}
    for speed in (1, 100, 1000):
        dt = SIM_STEP_S * speed
        per_step = _flat_out(plant, dt, 50 if cells <= 10_000 else 10)
        figures[f"step_ms_x{speed}"] = round(per_step * 1000.0, 3)
        # simulated cell-seconds per wall second, and (divided by the speed) how many cells this
        # machine could keep in step with the clock at that acceleration
        figures[f"cells_per_wall_s_x{speed}"] = round(cells * dt / per_step)
        figures[f"realtime_cells_x{speed}"] = round(cells * dt / per_step / speed)
    figures["cpu_pct_of_core"] = round(100.0 * _cpu_at_1hz(_plant(args.cells)), 2)
    figures["cpu_step_rate_hz"] = 1.0
    figures["cpu_dt_s"] = 1.0
    if not args.json:
        for key, value in figures.items():
            print(f"{key:>26}: {value}")
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
