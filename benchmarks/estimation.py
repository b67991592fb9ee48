"""Estimation benchmark: one SocEstimator.update of N cells (DESIGN.md section 5, `bench estimation`).

    python benchmarks/estimation.py --json --cells 50000

Prints figures; with --json the last stdout line is one JSON object with cells and update_ms
(median wall time of one update of all cells, after warm-up).
"""
import argparse
import json
import time

import numpy as np

from app.estimation.soc import SocEstimator


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=50_000)
    parser.add_argument("--updates", type=int, default=30)
    parser.add_argument("--chemistry", default="lfp")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = run(args.cells, args.updates, args.chemistry)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
