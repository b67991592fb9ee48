"""Modbus RTU over a pty pair (the RS485 line on loopback): several racks on one line, CRC errors
counted as errors, a pulled line recovering without restarting the driver, and the simulator serving
a site's modbus-rtu link."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from app.core.clock import SystemClock
from app.core.commands import CommandRouter
from app.core.databus import DataBus
from app.core.events import EventJournal
from app.core.site import Link, parse_site
from app.sim.faults import FaultInjector
from app.sim.simulator import Simulator
from drivers.modbus.driver import ModbusDevice
from drivers.modbus.regmap import load_regmap
from drivers.modbus.rtu_server import ModbusRtuServerThread, PtyLine
from drivers.modbus.server import RegisterDevice
from drivers.registry import build_driver
from modbus_harness import make_driver, quality, running
from support import free_port, site_text, wait_for

CELLS = 16


def _rack(unit_id: int) -> RegisterDevice:
    rmap = load_regmap("rack_generic")
    dev = RegisterDevice(unit_id, rmap.table_size("input", CELLS), rmap.table_size("holding", CELLS))
    img = np.zeros(dev.sizes["input"], np.uint16)
    rmap.write_into({"input": img}, {"soc_pct": 50.0 + unit_id, "cell_voltages_v": np.full(CELLS, 3.2 + unit_id / 100),
                                     "heartbeat": unit_id}, CELLS)
    dev.publish("input", img)
    return dev


@pytest.fixture
def line(tmp_path):
    server = ModbusRtuServerThread(PtyLine(str(tmp_path / "ttyRS485")), [_rack(u) for u in (1, 2, 3)], "rtu-test")
    server.start()
    link = Link("rs485", "modbus-rtu", server.device_path, poll_period_s=0.1, timeout_s=0.2,
                options={"baudrate": 19200, "parity": "N", "stopbits": 1})
    devices = [ModbusDevice(f"site.bess1.rack0{u}", u, load_regmap("rack_generic"), CELLS) for u in (1, 2, 3)]
    driver = make_driver(link, devices)
    try:
        yield server, driver
    finally:
        server.stop()


def test_three_racks_share_one_rs485_line(line):
    server, driver = line
    with running(driver):
        for u in (1, 2, 3):
            volts = wait_for(lambda: driver.bus.get(f"site.bess1.rack0{u}.cell_voltages_v"), timeout=5)
            assert np.allclose(volts.value, 3.2 + u / 100, atol=1e-3)
            assert driver.bus.get(f"site.bess1.rack0{u}.soc_pct").value == pytest.approx(50.0 + u)
    snap = driver.stats.snapshot()
    assert snap["errors"] == snap["timeouts"] == 0 and snap["frames_ok"] >= 6


def test_crc_errors_are_counted_as_errors_and_the_line_recovers(line):
    server, driver = line
    faults = FaultInjector({"rs485": server})
    point = "site.bess1.rack02.cell_voltages_v"
    with running(driver):
        wait_for(lambda: quality(driver, point) == "GOOD", timeout=5)
        before = driver.stats.snapshot()
        faults.crc_errors("rs485")
        wait_for(lambda: quality(driver, point) == "COMM_LOST", timeout=5, what="COMM_LOST on CRC errors")
        wait_for(lambda: driver.stats.snapshot()["errors"] >= before["errors"] + 2, timeout=5)
        during = driver.stats.snapshot()
        assert during["timeouts"] == before["timeouts"]          # bytes came back: corrupt, not silent
        assert "corrupt response" in during["last_error"]
        faults.clear("rs485")
        wait_for(lambda: quality(driver, point) == "GOOD", timeout=5, what="recovery")


def test_pulled_line_goes_comm_lost_and_recovers_without_restarting_the_driver(line):
    server, driver = line
    point = "site.bess1.rack03.soc_pct"
    with running(driver):
        wait_for(lambda: quality(driver, point) == "GOOD", timeout=5)
        server.stop()                                            # the pty closes: the port disappears
        wait_for(lambda: quality(driver, point) == "COMM_LOST", timeout=5, what="COMM_LOST on a pulled line")
        plugged = time.monotonic()
        server.start()                                           # a new pty behind the same path
        wait_for(lambda: quality(driver, point) == "GOOD", timeout=5, what="recovery")
        recovered_s = time.monotonic() - plugged
    assert recovered_s < 5.0
    assert driver.stats.snapshot()["reconnects"] >= 2


def test_simulator_serves_a_sites_modbus_rtu_link(tmp_path):
    tty = tmp_path / "ttyBMS"
    bms_port = free_port()
    text = site_text(bms_port, free_port(), racks=2, modules=2, cells=4).replace(
        f'kind = "modbus-tcp"\naddress = "127.0.0.1:{bms_port}"',
        f'kind = "modbus-rtu"\naddress = "{tty}"\noptions = {{ baudrate = 115200 }}')
    site = parse_site(text)
    clock = SystemClock()
    sim = Simulator(site, clock)
    sim.start_endpoints("bms1")
    link = next(link for link in site.links if link.name == "bms1")
    driver = build_driver(site, link, DataBus(), CommandRouter(), EventJournal(), clock)
    stop = threading.Event()
    try:
        with running(driver):
            for rack in ("rack01", "rack02"):
                volts = wait_for(lambda: driver.bus.get(f"site.bess1.{rack}.cell_voltages_v"), timeout=5)
                assert volts.value.shape == (8,) and 2.9 < float(volts.value.mean()) < 3.6
    finally:
        stop.set()
        sim.stop_endpoints()
    assert not tty.exists()                                      # stopping the simulator pulls the line
