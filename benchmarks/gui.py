"""GUI under load: sample published -> pixel painted latency and GUI thread busy share.

A publisher thread plays the drivers (every rack's cell voltages/temperatures, current, SOC at 1 Hz);
the GUI thread runs the real BusPoller (≈10 Hz) feeding the overview and the cells heatmap (offscreen
platform). For every poll tick the handler updates the screens and repaints the heatmap synchronously;
latency = paint finished - the sample's receive time (for every rack sample shown), busy = time spent in
the handlers / wall time.

Prints one JSON object (last line): cells, latency_p50_ms, latency_p95_ms, frame_ms_p95, gui_busy_pct.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app.core.clock import SystemClock  # noqa: E402
from app.core.databus import DataBus  # noqa: E402
from app.core.events import EventJournal  # noqa: E402
from app.core.sample import Sample, vector  # noqa: E402
from app.core.site import load_site  # noqa: E402
from benchmarks._plant import site_toml  # noqa: E402


def publisher(site, bus, clock, stop: threading.Event) -> None:
    rng = np.random.default_rng(1)
    while not stop.is_set():
        t0 = clock.monotonic()
        for r in site.racks:
            mono, wall = clock.monotonic(), clock.time()
            bus.publish_many([
                (f"{r.path}.cell_voltages_v", Sample(vector(3.3 + rng.normal(0, 0.004, r.cell_count)), wall, mono, wall)),
                (f"{r.path}.cell_temperatures_c", Sample(vector(25 + rng.normal(0, 0.3, r.cell_count)), wall, mono, wall)),
                (f"{r.path}.current_a", Sample(10.0, wall, mono, wall)),
                (f"{r.path}.soc_pct", Sample(50.0, wall, mono, wall)),
            ])
        stop.wait(max(0.0, 1.0 - (clock.monotonic() - t0)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=50_000)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from PySide6 import QtCore, QtWidgets
    from app.qt.bridge import BusPoller
    from app.qt.screens.cells import CellsScreen
    from app.qt.screens.overview import OverviewScreen

    with tempfile.TemporaryDirectory() as tmp:
        site_file = Path(tmp) / "site.toml"
        site_file.write_text(site_toml(args.cells))
        site = load_site(site_file)
    clock, bus, journal = SystemClock(), DataBus(), EventJournal()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    overview, cells = OverviewScreen(site), CellsScreen(site)
    window = QtWidgets.QSplitter()
    window.addWidget(cells)
    window.addWidget(overview)
    window.resize(1920, 1080)
    window.show()
    latencies: list[float] = []
    frames: list[float] = []
    shown = {f"{r.path}.cell_voltages_v" for r in cells.racks}

    def on_changed(dirty):
        t0 = time.perf_counter()
        overview.update_values(dirty)
        cells.update_values(dirty)
        cells.heatmap.repaint()                                  # synchronous paint of the heatmap
        done = clock.monotonic()
        frames.append(time.perf_counter() - t0)
        latencies.extend(done - s.recv_mono for p, s in dirty.items() if p in shown)

    poller = BusPoller(bus, journal)
    poller.changed.connect(on_changed)
    poller.start()
    stop = threading.Event()
    pub = threading.Thread(target=publisher, args=(site, bus, clock, stop), name="publisher")
    pub.start()

    def pump(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
            time.sleep(0.002)

    try:
        pump(2.0)
        latencies.clear()
        frames.clear()
        t0 = time.perf_counter()
        pump(args.seconds)
        wall = time.perf_counter() - t0
    finally:
        stop.set()
        pub.join()
        poller.timer.stop()
        window.close()
    lat = np.array(latencies) * 1000
    fr = np.array(frames) * 1000
    result = {"cells": site.cell_count, "cells_on_screen": sum(r.cell_count for r in cells.racks),
              "latency_p50_ms": round(float(np.percentile(lat, 50)), 1),
              "latency_p95_ms": round(float(np.percentile(lat, 95)), 1),
              "frame_ms_p95": round(float(np.percentile(fr, 95)), 1),
              "gui_busy_pct": round(100 * float(fr.sum()) / 1000 / wall, 1)}
    print(json.dumps(result) if args.json else result)


if __name__ == "__main__":
    main()
