"""CPU of the whole acquisition path at 1 Hz: Modbus TCP driver threads + DataBus + historian writer,
against the plant simulator running in another process over loopback.

Prints one JSON object (last line): cells, cpu_pct_of_core (ESMS process CPU / wall over the window),
plus links, requests per second and the historian's committed frames as a sanity check.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.clock import SystemClock  # noqa: E402
from app.core.commands import CommandRouter  # noqa: E402
from app.core.databus import DataBus  # noqa: E402
from app.core.events import EventJournal  # noqa: E402
from app.core.site import load_site  # noqa: E402
from app.core.supervisor import Supervisor  # noqa: E402
from app.historian.writer import HistorianWriter  # noqa: E402
from benchmarks._plant import SimProcess, site_toml, wait_until  # noqa: E402
from drivers.registry import build_driver  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int, default=50_000)
    ap.add_argument("--seconds", type=float, default=20.0, help="measurement window")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        site_file = Path(tmp) / "site.toml"
        site_file.write_text(site_toml(args.cells))
        site = load_site(site_file)
        sim = SimProcess(site_file)
        clock, bus, journal, router = SystemClock(), DataBus(), EventJournal(), CommandRouter()
        sup = Supervisor(journal)
        try:
            drivers = [build_driver(site, link, bus, router, journal, clock) for link in site.links]
            sup.start(HistorianWriter(Path(tmp) / "historian.sqlite", bus, journal, clock), "historian")
            for d in drivers:
                sup.start(d, "drivers")
            racks = [f"{r.path}.cell_voltages_v" for r in site.racks]
            if not wait_until(lambda: all(bus.get(p) is not None for p in racks), 30):
                raise SystemExit("racks did not come online within 30 s")
            time.sleep(2.0)                                    # settle: every link polled a few times
            frames0 = sum(d.stats.snapshot()["frames_ok"] for d in drivers)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            time.sleep(args.seconds)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            frames = sum(d.stats.snapshot()["frames_ok"] for d in drivers) - frames0
        finally:
            sup.stop_all(["drivers", "historian"])
            sim.stop()
    result = {"cells": site.cell_count, "cpu_pct_of_core": round(100.0 * cpu / wall, 1),
              "links": len(site.links), "racks": len(site.racks),
              "modbus_requests_per_s": round(frames / wall, 1), "window_s": round(wall, 1)}
    print(json.dumps(result) if args.json else result)


if __name__ == "__main__":
    main()
