"""BLE link throughput: notifications per second a BleDriver takes in from simulated packs over bumble.

A 16-cell JBD pack is polled back to back (0x03 + 0x04 per cycle, answered in 20-byte notifications),
first on the in-process air, then through the simulator's HCI-over-TCP server on loopback; pack,
BLE loop and driver share this process (one GIL). ble_notifications_per_s is the in-process figure:
notifications reassembled into frames and decoded into canonical values, per wall second.
Prints one JSON object last.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.clock import SystemClock  # noqa: E402
from app.core.commands import CommandRouter  # noqa: E402
from app.core.databus import DataBus  # noqa: E402
from app.core.events import EventJournal  # noqa: E402
from app.core.site import parse_site  # noqa: E402
from app.sim.ble_endpoint import BleSimLink  # noqa: E402
from app.sim.plant import Plant  # noqa: E402
from drivers.ble.driver import BleDriver  # noqa: E402
from drivers.ble.loop import BLE_LOOP  # noqa: E402

SITE = """
[site]
name = "BLE bench"
[[link]]
name = "pack1"
kind = "ble"
address = "C0:00:00:00:0B:01"
timeout_s = 1.0
options = {{ protocol = "jbd", transport = "bumble"{port} }}
[[link]]
name = "pcs1"
kind = "modbus-tcp"
address = "127.0.0.1:1502"
[[pcs]]
id = "pcs1"
link = "pcs1"
rated_power_kw = 10.0
[[bess]]
id = "bess1"
chemistry = "lfp"
cell_capacity_ah = 100.0
pcs = "pcs1"
modules_per_rack = 2
cells_per_module = 8
racks = [ {{ link = "pack1", unit_id = 1 }} ]
"""


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(seconds: float, port: int | None) -> dict:
    site = parse_site(SITE.format(port=f", port = {port}" if port else ""))
    plant = Plant(site, seed=1)
    sim = BleSimLink(site.link("pack1"), list(plant.racks.values()))
    driver = BleDriver(site.link("pack1"), DataBus(), CommandRouter(), EventJournal(), SystemClock(), racks=site.racks)
    BLE_LOOP.acquire()
    sim.start()
    try:
        driver.open()
        cycles = 0
        start_notes = driver.session.notifications
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            driver.poll()
            cycles += 1
        elapsed = time.perf_counter() - started
        notes = driver.session.notifications - start_notes
        snap = driver.stats.snapshot()
        driver.close()
    finally:
        sim.stop()
        BLE_LOOP.release()
    return {"notifications_per_s": notes / elapsed, "cycles_per_s": cycles / elapsed,
            "round_trip_p50_ms": snap["latency_p50_ms"], "errors": snap["errors"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--cells", type=int, default=None, help="ignored (fixed 16-cell pack)")
    args = parser.parse_args()
    local = measure(args.seconds, None)
    tcp = measure(args.seconds, _free_port())
    figures = {
        "ble_notifications_per_s": round(local["notifications_per_s"], 1),
        "ble_cycles_per_s": round(local["cycles_per_s"], 1),
        "ble_round_trip_p50_ms": round(local["round_trip_p50_ms"], 3),
        "ble_hci_tcp_notifications_per_s": round(tcp["notifications_per_s"], 1),
        "ble_hci_tcp_round_trip_p50_ms": round(tcp["round_trip_p50_ms"], 3),
        "errors": local["errors"] + tcp["errors"],
    }
    if not args.json:
        for key, value in figures.items():
            print(f"{key}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
