"""Protection under load: sample -> trip latency and protection loop lateness, with the GUI running.

A publisher thread plays the drivers (every rack's cell voltages, temperatures, current, SOC at 1 Hz, as
the Modbus/CAN threads publish them); the real ProtectionThread runs on its own thread; the GUI (bus
poller + overview + cell heatmap) runs offscreen on the main thread. Trips are provoked by publishing a
rack frame with one cell above its trip level (the trip rung's on-delay is set to 0 for this measurement,
so the latency is the engine's, not the configured delay), then cleared and reset, repeatedly.

Prints one JSON object (last line): cells, trips, trip_latency_p50_ms, trip_latency_p99_ms,
loop_lateness_p50_ms, loop_lateness_p99_ms, gui_frames, and alarm_burst_1000_ms (1,000 alarms activating
in one pass, through the alarm manager to the alarm list on screen) with the rows it shows.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from app.core.clock import SystemClock  # noqa: E402
from app.core.commands import Command, CommandRouter, CommandStatus  # noqa: E402
from app.core.databus import DataBus  # noqa: E402
from app.core.events import EventJournal  # noqa: E402
from app.core.sample import Sample, vector  # noqa: E402
from app.core.site import load_site  # noqa: E402
from app.core.supervisor import Supervisor  # noqa: E402
from app.protection.thread import ProtectionThread  # noqa: E402
from benchmarks._plant import site_toml  # noqa: E402


def publisher(site, bus, clock, stop: threading.Event, trip_rack: dict, pcs_queue) -> None:
    """1 Hz frames for every rack; a rack named in trip_rack["path"] gets one cell at 3.9 V. Also plays
    the PCS link: accepts the protection's setpoint commands (drained once per frame round)."""
    rng = np.random.default_rng(1)
    base = {r.path: 3.30 + rng.normal(0, 0.003, r.cell_count) for r in site.racks}
    temps = {r.path: 25.0 + rng.normal(0, 0.3, r.cell_count) for r in site.racks}
    while not stop.is_set():
        t0 = clock.monotonic()
        for r in site.racks:
            v = base[r.path] + rng.normal(0, 0.001, r.cell_count)
            if trip_rack.get("path") == r.path:
                v[7] = 3.90
            mono, wall = clock.monotonic(), clock.time()
            bus.publish_many([
                (f"{r.path}.cell_voltages_v", Sample(vector(v), wall, mono, wall)),
                (f"{r.path}.cell_temperatures_c", Sample(vector(temps[r.path]), wall, mono, wall)),
                (f"{r.path}.current_a", Sample(10.0, wall, mono, wall)),
                (f"{r.path}.pack_voltage_v", Sample(float(v.sum()), wall, mono, wall)),
                (f"{r.path}.soc_pct", Sample(50.0, wall, mono, wall)),
            ])
        while not pcs_queue.empty():
            pcs_queue.get_nowait().reply(CommandStatus.ACCEPTED, "bench PCS")
        stop.wait(max(0.0, 1.0 - (clock.monotonic() - t0)))


def alarm_burst(app) -> tuple[float, int]:
    """1,000 alarms activating in one pass: manager + summary + alarm list on screen, wall ms."""
    from PySide6 import QtCore
    from app.alarms.manager import AlarmManager
    from app.alarms.model import AlarmDefinition, Direction, Priority
    from app.qt.screens.alarms import AlarmsScreen
    tags = [f"site.burst.a{i:04d}" for i in range(1000)]
    manager = AlarmManager([AlarmDefinition(t, t, "burst", Priority.HIGH, direction=Direction.DISCRETE)
                            for t in tags], now=0.0)
    screen = AlarmsScreen(lambda kind, cmd: True, lambda: ())
    screen.show()
    t0 = time.perf_counter()
    manager.cycle(1.0, conditions=[(t, True, 1) for t in tags])
    screen.set_summary(manager.summary())
    app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
    ms = (time.perf_counter() - t0) * 1000
    rows = screen.proxy.rowCount()
    screen.close()
    return round(ms, 1), rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=50_000)
    ap.add_argument("--trips", type=int, default=12)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from PySide6 import QtCore, QtWidgets
    from app.qt.bridge import BusPoller
    from app.qt.screens.cells import CellsScreen
    from app.qt.screens.overview import OverviewScreen

    with tempfile.TemporaryDirectory() as tmp:
        text = site_toml(args.cells).replace("[[link]]", "[protection.limits]\ncell_overvoltage_trip_delay_s = 0.0\n\n"
                                             "[[link]]", 1)
        site_file = Path(tmp) / "site.toml"
        site_file.write_text(text)
        site = load_site(site_file)
    clock, bus, journal, router = SystemClock(), DataBus(), EventJournal(), CommandRouter()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    overview, cells = OverviewScreen(site), CellsScreen(site)
    window = QtWidgets.QTabWidget()
    window.addTab(cells, "cells")
    window.addTab(overview, "overview")
    window.resize(1366, 768)
    window.show()
    frames = [0]
    poller = BusPoller(bus, journal)
    poller.changed.connect(lambda d: (overview.update_values(d), cells.update_values(d),
                                      frames.__setitem__(0, frames[0] + 1)))
    poller.start()
    protection = ProtectionThread(site, bus, router, journal, clock)
    sup = Supervisor(journal)
    sup.start(protection, "protection")
    stop = threading.Event()
    trip_rack: dict = {}
    pcs_queue = router.register("site.pcs1")
    pub = threading.Thread(target=publisher, args=(site, bus, clock, stop, trip_rack, pcs_queue), name="publisher")
    pub.start()
    rng = random.Random(2)

    def pump(seconds: float, until=lambda: False) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
            if until():
                return True
            time.sleep(0.005)
        return until()

    try:
        pump(3.0)
        protection.lateness_s.clear()
        for _ in range(args.trips):
            rack = rng.choice(site.racks)
            before = len(protection.trip_times)
            trip_rack["path"] = rack.path
            if not pump(5.0, lambda: len(protection.trip_times) > before):
                raise SystemExit(f"no trip within 5 s for {rack.path}")
            trip_rack.clear()
            pump(1.5)
            router.submit(Command("site.protection", "reset", rack.path, "bench"))
            pump(0.5, lambda: bus.get(f"{rack.path}.protection_state").value == "NORMAL")
    finally:
        stop.set()
        pub.join()
        sup.stop_all(["protection"])
        poller.timer.stop()
        window.close()
    burst_ms, burst_rows = alarm_burst(app)
    latency = np.array([(d - r) * 1000 for _, _, r, d, _ in protection.trip_times])
    lateness = np.array(protection.lateness_s) * 1000
    result = {"cells": site.cell_count, "racks": len(site.racks), "trips": int(latency.size),
              "trip_latency_p50_ms": round(float(np.percentile(latency, 50)), 2),
              "trip_latency_p99_ms": round(float(np.percentile(latency, 99)), 2),
              "loop_lateness_p50_ms": round(float(np.percentile(lateness, 50)), 2),
              "loop_lateness_p99_ms": round(float(np.percentile(lateness, 99)), 2),
              "gui_frames": frames[0], "alarm_burst_1000_ms": burst_ms, "alarm_burst_rows_shown": burst_rows}
    print(json.dumps(result) if args.json else result)


if __name__ == "__main__":
    main()
