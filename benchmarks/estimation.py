"""Estimation benchmark (DESIGN.md section 5, `bench estimation`): one SocEstimator.update of N cells,
and one 1 Hz cycle of the live estimation thread (SOC + SOH + balancing + publishing) for N cells in
racks of 1,000.

    python benchmarks/estimation.py --json --cells 50000

Prints figures; with --json the last stdout line is one JSON object with cells and update_ms
(median wall time of one update of all cells, after warm-up), live_cycle_ms (median CPU time of the
thread's cycle over every rack; target < 50 ms at 50,000 cells) and live_cycle_p95_ms.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.clock import ManualClock  # noqa: E402
from app.core.databus import DataBus  # noqa: E402
from app.core.sample import Quality, Sample, vector  # noqa: E402
from app.core.site import parse_site  # noqa: E402
from app.estimation.live import EstimationThread  # noqa: E402
from app.estimation.soc import SocEstimator  # noqa: E402
from benchmarks._plant import site_toml  # noqa: E402


def run(cells: int, updates: int, chemistry: str) -> dict:
    rng = np.random.default_rng(0)
    est = SocEstimator(chemistry, 280.0, cells)
    soc = rng.uniform(0.1, 0.9, cells)
    temps = rng.uniform(15, 35, cells)
    ocv = est.chem.ocv(soc, temps)
    est.update(1.0, np.zeros(cells), ocv, temps)
    times = []
    for k in range(updates + 5):
        current = 140.0 * np.sin(k / 30.0) + rng.normal(0, 2.0, cells)
        volts = ocv + 0.0002 * current + rng.normal(0, 0.002, cells)
        t0 = time.perf_counter()
        est.update(1.0, current, volts, temps)
        times.append(time.perf_counter() - t0)
    times_ms = 1000 * np.array(times[5:])
    return {
        "cells": cells,
        "update_ms": round(float(np.median(times_ms)), 3),
        "update_p95_ms": round(float(np.percentile(times_ms, 95)), 3),
        "updates": updates,
        "chemistry": chemistry,
    }


def run_live(cells: int, cycles: int) -> dict:
    """CPU time of EstimationThread.cycle() with a new frame for every rack before each cycle."""
    site = parse_site(site_toml(cells, cells_per_rack=1000))
    bus, clock = DataBus(), ManualClock()
    thread = EstimationThread(site, bus, clock)
    rng = np.random.default_rng(1)
    chem = thread.groups[0].estimator.chem
    racks = [(r.path, chem.ocv(rng.uniform(0.3, 0.7, r.cell_count)), rng.uniform(20, 30, r.cell_count))
             for r in site.racks]
    times = []
    for k in range(cycles + 5):
        clock.advance(1.0)
        now = clock.time()
        current = 140.0 if (k // 10) % 2 else -140.0  # steps every 10 s (resistance updates)
        frames = []
        for path, ocv, temps in racks:
            volts = ocv + 0.0003 * current + rng.normal(0, 0.002, ocv.size)
            frames += [(f"{path}.cell_voltages_v", Sample(vector(volts), now, now, now, Quality.GOOD)),
                       (f"{path}.cell_temperatures_c", Sample(vector(temps), now, now, now, Quality.GOOD)),
                       (f"{path}.current_a", Sample(current, now, now, now, Quality.GOOD))]
        bus.publish_many(frames)
        t0 = time.thread_time()
        updated = thread.cycle()
        times.append(time.thread_time() - t0)
        assert updated == len(racks)
    times_ms = 1000 * np.array(times[5:])
    return {
        "live_cells": site.cell_count,
        "live_racks": len(racks),
        "live_cycle_ms": round(float(np.median(times_ms)), 3),
        "live_cycle_p95_ms": round(float(np.percentile(times_ms, 95)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=50_000)
    parser.add_argument("--updates", type=int, default=30)
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--chemistry", default="lfp")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = run(args.cells, args.updates, args.chemistry) | run_live(args.cells, args.cycles)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
