"""Modbus link throughput: requests per second of one ModbusDriver link against the simulator's server
in another thread of this process (they share one GIL), over TCP loopback and over RTU on a pty pair.

modbus_tcp_req_per_s: register reads (one rack_generic rack of 16 cells: 3 blocks per poll) answered
and decoded per wall second, the driver polling back to back. modbus_rtu_req_per_s: the same over a
pty line at 115200 baud (a pty does not pace bytes, so this measures software, not the line rate).
Prints one JSON object last with --json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from app.core.clock import SystemClock  # noqa: E402
from app.core.commands import CommandRouter  # noqa: E402
from app.core.databus import DataBus  # noqa: E402
from app.core.events import EventJournal  # noqa: E402
from app.core.site import Link  # noqa: E402
from drivers.modbus.driver import ModbusDevice, ModbusDriver  # noqa: E402
from drivers.modbus.regmap import load_regmap  # noqa: E402
from drivers.modbus.rtu_server import ModbusRtuServerThread, PtyLine  # noqa: E402
from drivers.modbus.server import ModbusTcpServerThread, RegisterDevice  # noqa: E402

CELLS = 16


def _rack() -> RegisterDevice:
    rmap = load_regmap("rack_generic")
    dev = RegisterDevice(1, rmap.table_size("input", CELLS), rmap.table_size("holding", CELLS))
    img = np.zeros(dev.sizes["input"], np.uint16)
    rmap.write_into({"input": img}, {"cell_voltages_v": np.full(CELLS, 3.3)}, CELLS)
    dev.publish("input", img)
    return dev


def _rate(link: Link, seconds: float) -> float:
    device = ModbusDevice("site.bess1.rack01", 1, load_regmap("rack_generic"), CELLS)
    driver = ModbusDriver(link, DataBus(), CommandRouter(), EventJournal(), SystemClock(), [device])
    driver.open()
    try:
        driver.poll()
        polls, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            driver.poll()
            polls += 1
        return polls * len(device.blocks) / (time.perf_counter() - t0)
    finally:
        driver.close()
        driver.on_stopped()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tcp = ModbusTcpServerThread("127.0.0.1", port, [_rack()], "bench-tcp")
    tcp.start()
    try:
        tcp_rate = _rate(Link("bench", "modbus-tcp", f"127.0.0.1:{port}", timeout_s=1.0), args.seconds)
    finally:
        tcp.stop()
    with tempfile.TemporaryDirectory() as tmp:
        rtu = ModbusRtuServerThread(PtyLine(f"{tmp}/tty"), [_rack()], "bench-rtu")
        rtu.start()
        try:
            rtu_rate = _rate(Link("bench", "modbus-rtu", rtu.device_path, timeout_s=1.0,
                                  options={"baudrate": 115200}), args.seconds)
        finally:
            rtu.stop()
    figures = {"modbus_tcp_req_per_s": round(tcp_rate, 1), "modbus_rtu_req_per_s": round(rtu_rate, 1),
               "cells": CELLS, "blocks_per_poll": 3}
    if not args.json:
        for k, v in figures.items():
            print(f"{k}: {v}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
