"""CAN link throughput: frames per second decoded by CanDriver (python-can bus -> pylon-can decoder and
cantools cell frames -> canonical values), one 64-cell pack's broadcast cycles as the frame mix.

can_frames_per_s: frames decoded by one CanDriver.poll() listening window on a python-can virtual bus
whose queue never runs dry (receive + decode + assemble, the driver thread alone), per wall second;
can_frames_per_cpu_s: the same per CPU second of that thread (what the figure would be on an idle
core when other processes compete for the CPU).
socketcand_frames_per_s: the same pack streamed through the simulator's socketcand server to the
driver's python-can socketcand client over TCP loopback, sender, server and driver in this process
(they share one GIL). Prints one JSON object last with --json.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import can  # noqa: E402

from app.core.clock import SystemClock  # noqa: E402
from app.core.commands import CommandRouter  # noqa: E402
from app.core.databus import DataBus  # noqa: E402
from app.core.events import EventJournal  # noqa: E402
from app.core.site import parse_site  # noqa: E402
from app.sim.can_endpoint import CanEndpoint  # noqa: E402
from app.sim.plant import Plant  # noqa: E402
from app.sim.socketcand_server import SocketcandServer  # noqa: E402
from drivers.can.driver import CanDriver  # noqa: E402

SITE = """
[site]
name = "CAN bench"
[[link]]
name = "bms1"
kind = "can"
address = "{address}"
poll_period_s = {window}
options = {{ {options} }}
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
modules_per_rack = 4
cells_per_module = 16
racks = [ {{ link = "bms1", unit_id = 1 }} ]
"""


def _driver(options: str, address: str, window: float) -> tuple[CanDriver, list[can.Message]]:
    site = parse_site(SITE.format(options=options, address=address, window=window))
    cycle = CanEndpoint(Plant(site, seed=1).racks[site.racks[0].path]).frames()
    driver = CanDriver(site.link("bms1"), DataBus(), CommandRouter(), EventJournal(), SystemClock(),
                       racks=site.racks)
    return driver, cycle


def virtual_rate(window: float, frames: int) -> tuple[float, float, int]:
    driver, cycle = _driver('interface = "virtual"', "bench-can", window)
    driver.open()
    sender = can.Bus(interface="virtual", channel="bench-can")
    try:
        for i in range(frames):
            sender.send(cycle[i % len(cycle)])
        cpu0 = time.thread_time()
        driver.poll()
        cpu = time.thread_time() - cpu0
    finally:
        sender.shutdown()
        driver.close()
    decoded = driver.stats.snapshot()["frames_ok"]
    if decoded >= frames:
        raise SystemExit(f"the queue ran dry ({frames} frames): raise --frames")
    return decoded / window, decoded / cpu, driver.stats.snapshot()["errors"]


def socketcand_rate(window: float) -> tuple[float, int]:
    server = SocketcandServer("127.0.0.1", 0, {"can0": {"interface": "virtual", "channel": "bench-sc"}})
    server.start()
    driver, cycle = _driver(f'interface = "socketcand", port = {server.port}', "can0", window)
    stop = threading.Event()
    sender = can.Bus(interface="virtual", channel="bench-sc")

    def stream() -> None:
        while not stop.is_set():
            for msg in cycle:
                sender.send(msg)
            time.sleep(0)

    thread = threading.Thread(target=stream, name="bench-sender")
    try:
        driver.open()
        thread.start()
        driver.poll()
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()
        driver.close()
        sender.shutdown()
        server.stop()
    return driver.stats.snapshot()["frames_ok"] / window, driver.stats.snapshot()["errors"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=float, default=0.5, help="listening window per measurement, s")
    ap.add_argument("--frames", type=int, default=80_000, help="frames queued for the virtual-bus window")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rate, cpu_rate, errors = virtual_rate(args.window, args.frames)
    sc_rate, sc_errors = socketcand_rate(args.window)
    result = {"can_frames_per_s": round(rate), "can_frames_per_cpu_s": round(cpu_rate),
              "socketcand_frames_per_s": round(sc_rate),
              "decode_errors": errors + sc_errors, "frame_mix": "64-cell pack: 6 Pylontech + 32 cell frames"}
    if not args.json:
        for key, value in result.items():
            print(f"{key:26s} {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
