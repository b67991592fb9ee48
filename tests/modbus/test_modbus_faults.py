"""Link faults injected at the simulator's Modbus TCP server: each one seen on the wire (the driver's
capture of raw frames) and in the driver's link statistics and point quality."""
from __future__ import annotations


import numpy as np
import pytest

from app.core.clock import SystemClock
from app.core.commands import CommandRouter
from app.core.databus import DataBus
from app.core.errors import UserError
from app.core.events import EventJournal
from app.core.site import Link
from app.sim.faults import FaultInjector
from app.sim.simulator import Simulator
from drivers.modbus.driver import ModbusDevice
from drivers.modbus.recording import read_capture
from drivers.modbus.regmap import load_regmap
from drivers.modbus.server import ModbusTcpServerThread, RegisterDevice
from drivers.registry import build_driver
from modbus_harness import make_driver, quality, running
from support import free_port, make_site, wait_for

CELLS = 8
POINT = "site.bess1.rack01.cell_voltages_v"


def _rack(unit_id: int) -> RegisterDevice:
    rmap = load_regmap("rack_generic")
    dev = RegisterDevice(unit_id, rmap.table_size("input", CELLS), rmap.table_size("holding", CELLS))
    img = np.zeros(dev.sizes["input"], np.uint16)
    rmap.write_into({"input": img}, {"cell_voltages_v": np.full(CELLS, 3.3), "heartbeat": 5}, CELLS)
    dev.publish("input", img)
    return dev


@pytest.fixture
def link(tmp_path):
    """(injector, driver, capture path) for one TCP link with one rack; the driver records its traffic."""
    port = free_port()
    server = ModbusTcpServerThread("127.0.0.1", port, [_rack(1)], "sim-bms")
    server.start()
    capture = tmp_path / "capture.log"
    lk = Link("bms", "modbus-tcp", f"127.0.0.1:{port}", poll_period_s=0.1, timeout_s=0.25,
              options={"record": str(capture)})
    driver = make_driver(lk, [ModbusDevice("site.bess1.rack01", 1, load_regmap("rack_generic"), CELLS)])
    try:
        with running(driver):
            wait_for(lambda: quality(driver, POINT) == "GOOD", timeout=5)
            yield FaultInjector({"bms": server}), driver, capture
    finally:
        server.stop()


def _frames_after(capture, t0):
    return [f for f in read_capture(capture)[1] if f.time >= t0]


def _now(driver):
    return driver.clock.time()


def test_drop_gives_timeouts_and_comm_lost_then_recovers(link):
    faults, driver, capture = link
    before, t0 = driver.stats.snapshot(), _now(driver)
    faults.drop("bms")
    wait_for(lambda: quality(driver, POINT) == "COMM_LOST", timeout=5)
    wait_for(lambda: driver.stats.snapshot()["timeouts"] >= before["timeouts"] + 2, timeout=5)
    assert driver.stats.snapshot()["errors"] == before["errors"]
    frames = _frames_after(capture, t0 + 0.05)
    assert any(f.direction == "tx" for f in frames) and not any(f.direction == "rx" for f in frames)  # silence
    faults.drop("bms", on=False)
    wait_for(lambda: quality(driver, POINT) == "GOOD", timeout=5)


def test_latency_shows_in_link_latency_and_beyond_the_timeout_as_timeouts(link):
    faults, driver, capture = link
    faults.latency("bms", 120)
    t0 = _now(driver)
    wait_for(lambda: len([f for f in _frames_after(capture, t0) if f.direction == "rx"]) >= 4, timeout=5)
    frames = _frames_after(capture, t0)
    gaps = [b.time - a.time for a, b in zip(frames, frames[1:]) if a.direction == "tx" and b.direction == "rx"]
    assert min(gaps[1:]) >= 0.115                                          # on the wire: answers 120 ms late
    wait_for(lambda: driver.stats.snapshot()["latency_p50_ms"] >= 115, timeout=10, what="latency in stats")
    assert quality(driver, POINT) == "GOOD"
    before = driver.stats.snapshot()
    faults.latency("bms", 400)                                             # longer than the 250 ms timeout
    wait_for(lambda: quality(driver, POINT) == "COMM_LOST", timeout=5)
    assert driver.stats.snapshot()["timeouts"] > before["timeouts"]
    faults.clear()
    wait_for(lambda: quality(driver, POINT) == "GOOD", timeout=5)


def test_garbage_answers_count_as_errors_not_timeouts(link):
    faults, driver, capture = link
    before, t0 = driver.stats.snapshot(), _now(driver)
    faults.garbage("bms")
    wait_for(lambda: quality(driver, POINT) == "COMM_LOST", timeout=5)
    wait_for(lambda: driver.stats.snapshot()["errors"] >= before["errors"] + 2, timeout=5)
    assert driver.stats.snapshot()["timeouts"] == before["timeouts"]
    rx = [f for f in _frames_after(capture, t0 + 0.05) if f.direction == "rx"]
    assert rx and all(f.data[2:4] != b"\x00\x00" or f.data[7] not in (3, 4) for f in rx)   # not Modbus answers
    faults.garbage("bms", on=False)
    wait_for(lambda: quality(driver, POINT) == "GOOD", timeout=5)


def test_exception_responses_count_as_errors(link):
    faults, driver, capture = link
    before, t0 = driver.stats.snapshot(), _now(driver)
    faults.exception("bms", 4)
    wait_for(lambda: quality(driver, POINT) == "COMM_LOST", timeout=5)
    wait_for(lambda: driver.stats.snapshot()["errors"] >= before["errors"] + 2, timeout=5)
    rx = [f for f in _frames_after(capture, t0 + 0.05) if f.direction == "rx"]
    assert rx and all(f.data[7] & 0x80 and f.data[8] == 4 for f in rx)  # function code | 0x80, code 4
    assert "exception response" in driver.stats.snapshot()["last_error"]
    faults.exception("bms", 0)
    wait_for(lambda: quality(driver, POINT) == "GOOD", timeout=5)


def test_crc_errors_exist_only_on_rtu_links(link):
    faults, _, _ = link
    with pytest.raises(UserError, match="link 'bms' is Modbus TCP"):
        faults.crc_errors("bms")
    with pytest.raises(UserError, match="no simulated Modbus link 'nope'"):
        faults.drop("nope")


def test_bms_reboot_goes_silent_then_reads_zero_and_restarts_its_heartbeat(tmp_path):
    site = make_site(tmp_path, racks=2, modules=2, cells=4, poll_s=0.1)
    clock = SystemClock()
    sim = Simulator(site, clock)
    for _ in range(30):
        sim.step(0.2)                                                       # heartbeat 30
    sim.start_endpoints("bms1")
    bms1 = next(lk for lk in site.links if lk.name == "bms1")
    capture = tmp_path / "capture.log"
    bms1 = Link(bms1.name, bms1.kind, bms1.address, 0.1, 0.2, 2, {"record": str(capture)})
    driver = build_driver(site, bms1, DataBus(), CommandRouter(), EventJournal(), clock)
    faults = FaultInjector.for_simulator(sim)
    hb = "site.bess1.rack01.heartbeat"
    try:
        with running(driver):
            wait_for(lambda: quality(driver, hb) == "GOOD" and driver.bus.get(hb).value == 30, timeout=5)
            t0 = clock.time()
            faults.bms_reboot("bms1", unit_id=1, seconds=1.5, silent_s=0.6)
            wait_for(lambda: quality(driver, hb) == "COMM_LOST", timeout=5, what="silent while booting")
            assert driver.stats.snapshot()["timeouts"] >= 1
            wait_for(lambda: quality(driver, hb) == "GOOD", timeout=5, what="answers again")
            volts = driver.bus.get("site.bess1.rack01.cell_voltages_v").value
            assert driver.bus.get(hb).value == 0 and not volts.any()        # booting: every register zero
            assert driver.bus.get("site.bess1.rack02.cell_voltages_v").value.all()   # the other rack is fine
            wait_for(lambda: not sim.servers["bms1"].devices[0].rebooting, timeout=5)
            sim.step(0.2)
            wait_for(lambda: driver.bus.get(hb).value == 1, timeout=5, what="heartbeat restarted from zero")
            assert driver.bus.get("site.bess1.rack01.cell_voltages_v").value.all()
    finally:
        sim.stop_endpoints()
    rx = [f for f in _frames_after(capture, t0) if f.direction == "rx" and f.unit == 1 and f.data[7] == 4]
    assert any(len(f.data) > 9 and not any(f.data[9:]) for f in rx)      # on the wire: all-zero registers
