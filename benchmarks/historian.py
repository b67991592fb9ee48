"""Historian figures: compression, write throughput, 24 h read times. Prints one JSON object last.

usage: python benchmarks/historian.py --json [--cells N] [--cells-per-rack K]

Write: N cells at 1 Hz for --seconds simulated seconds, one `HistorianStore.write` per second (what the
writer thread does each flush period), with 60-s blocks so blocks get sealed and rolled up during the
run; timed from the first write to the final seal. bytes_per_value = pages in use after sealing / values.
Read: a full day (1 Hz) of the rack holding the queried cell, written through the same storage layer
(one write per 300-s block). Only that rack is written for the day, not all N cells (which would be a
multi-GB file): a query touches only its own point's rows via the (point_id, t0) index.
Reads are warm-cache (the file was just written), median of 5.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.historian.reader import HistorianReader, nice_bucket  # noqa: E402
from app.historian.store import Batch, HistorianStore, VectorSample  # noqa: E402

T0 = 1_700_006_400.0  # a day boundary in UTC
DAY = 86_400


def cell_data(rng: np.random.Generator, seconds: int, cells: int, t_offset: int = 0) -> np.ndarray:
    """Plausible cell voltages: per-cell offset, slow common charge/discharge swing, 1.5 mV noise."""
    offset = 3.30 + rng.normal(0, 0.008, cells)
    swing = 0.05 * np.sin(2 * np.pi * (np.arange(seconds) + t_offset) / 7200.0)
    return (offset[None, :] + swing[:, None] + rng.normal(0, 0.0015, (seconds, cells))).astype(np.float32)


def bench_write(tmp: Path, cells: int, per_rack: int, seconds: int) -> dict:
    rng = np.random.default_rng(1)
    racks = [min(per_rack, cells - r0) for r0 in range(0, cells, per_rack)]
    data = [cell_data(rng, seconds, k) for k in racks]
    names = [f"site.bess{1 + i // 20}.rack{1 + i % 20:02d}.cell_voltages_v" for i in range(len(racks))]
    db = tmp / "write.sqlite"
    store = HistorianStore(db, block_s=60)
    start = time.perf_counter()
    for s in range(seconds):
        b = Batch()
        b.vectors = [VectorSample(names[i], T0 + s, 0, data[i][s]) for i in range(len(racks))]
        store.write(b)
    store.close()
    elapsed = time.perf_counter() - start
    values = cells * seconds
    conn = HistorianStore(db).conn
    page, pages, free = (conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_size", "page_count",
                                                                            "freelist_count"))
    blobs = conn.execute("SELECT sum(length(header) + length(data)) FROM frames").fetchone()[0]
    conn.close()
    return {"write_values_per_s": round(values / elapsed), "bytes_per_value": round((pages - free) * page / values, 3),
            "frame_bytes_per_value": round(blobs / values, 3), "write_seconds_simulated": seconds,
            "racks": len(racks)}


def bench_read(tmp: Path, per_rack: int) -> dict:
    rng = np.random.default_rng(2)
    db = tmp / "day.sqlite"
    store = HistorianStore(db, block_s=300)
    name = "site.bess1.rack03.cell_voltages_v"
    start = time.perf_counter()
    for b0 in range(0, DAY, 3600):  # generate an hour at a time, write a block at a time
        hour = cell_data(rng, 3600, per_rack, b0)
        for k in range(0, 3600, 300):
            b = Batch()
            b.vectors = [VectorSample(name, T0 + b0 + k + i, 0, hour[k + i]) for i in range(300)]
            store.write(b)
    store.close()
    build_s = time.perf_counter() - start
    reader = HistorianReader(db)

    def timed(fn) -> float:
        times = []
        for _ in range(5):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return round(1000 * float(np.median(times)), 2)

    cell = per_rack // 2
    one = timed(lambda: reader.raw(name, T0, T0 + DAY, cell=cell))
    assert len(reader.raw(name, T0, T0 + DAY, cell=cell).t) == DAY
    bucket = nice_bucket(DAY, 1000)
    trend = timed(lambda: reader.downsample(name, T0, T0 + DAY, bucket))
    cell_trend = timed(lambda: reader.downsample(name, T0, T0 + DAY, bucket, cell=cell))
    raw_trend = timed(lambda: reader.downsample(name, T0, T0 + 3600, 10))
    reader.close()
    return {"read_24h_one_cell_ms": one, "read_24h_rack_trend_ms": trend, "read_24h_cell_trend_ms": cell_trend,
            "read_1h_rack_trend_raw_10s_ms": raw_trend, "trend_bucket_s": bucket,
            "read_day_cells": per_rack, "read_day_build_s": round(build_s, 1),
            "read_day_file_mb": round(os.path.getsize(db) / 2 ** 20, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object (last line)")
    ap.add_argument("--cells", type=int, default=50_000)
    ap.add_argument("--cells-per-rack", type=int, default=400)
    ap.add_argument("--seconds", type=int, default=0, help="simulated seconds to write (default: 6M values)")
    args = ap.parse_args()
    seconds = args.seconds or max(61, math.ceil(6_000_000 / args.cells))
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        figures = {"cells": args.cells}
        figures.update(bench_write(Path(d), args.cells, args.cells_per_rack, seconds))
        figures.update(bench_read(Path(d), args.cells_per_rack))
    figures["total_s"] = round(time.perf_counter() - t, 1)
    if not args.json:
        for k, v in figures.items():
            print(f"{k:32s} {v}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
