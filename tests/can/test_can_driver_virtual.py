"""CanDriver on a python-can virtual bus in-process: simulator endpoint -> driver thread -> DataBus."""
from __future__ import annotations

import dataclasses
import time

import can
import numpy as np
import pytest

from app.core.commands import Command, CommandStatus
from app.core.errors import ConfigError
from app.sim.can_endpoint import CanSimLink
from can_site import can_site, plant_for
from drivers.can.driver import CanDriver
from drivers.can.layout import CELL_TEMPERATURES
from support import Stack, running, wait_for

POLL_S = 0.2


def _setup(channel, racks=1, **kw):
    site = can_site('interface = "virtual"', address=channel, racks=racks, poll_s=POLL_S, **kw)
    plant = plant_for(site)
    stack = Stack()
    sim = CanSimLink(site.link("bms1"), list(plant.racks.values()), stack.clock)
    driver = CanDriver(site.link("bms1"), stack.bus, stack.router, stack.journal, stack.clock, racks=site.racks)
    return site, plant, stack, sim, driver


def test_points_of_every_rack_match_the_plant():
    site, plant, stack, sim, driver = _setup("test-drv-values", racks=2)
    plant.racks[site.racks[1].path].current_a = -30.0         # rack 2 in another state than rack 1
    sim.start()
    try:
        with running(stack, driver):
            for rack in site.racks:
                wait_for(lambda: stack.value(f"{rack.path}.cell_temperatures_c") is not None, timeout=5,
                         what=f"{rack.path} cells")
    finally:
        sim.stop()
    for rack in site.racks:
        model = plant.racks[rack.path]
        p = rack.path
        assert stack.value(f"{p}.pack_voltage_v") == pytest.approx(model.pack_voltage, abs=0.005)
        assert stack.value(f"{p}.current_a") == pytest.approx(model.current_a)
        assert stack.value(f"{p}.soc_pct") == round(np.mean(model.soc) * 100)
        assert stack.value(f"{p}.soh_pct") == 100
        assert stack.value(f"{p}.charge_current_limit_a") == pytest.approx(50.0, abs=0.1)
        assert stack.value(f"{p}.charge_voltage_limit_v") == pytest.approx(16 * 3.6)
        assert stack.value(f"{p}.discharge_enable") is True
        assert stack.value(f"{p}.manufacturer") == "ESMS-SIM"
        assert stack.value(f"{p}.alarms") == ""
        assert stack.value(f"{p}.cell_count") == 16
        volts = stack.value(f"{p}.cell_voltages_v")
        assert volts.dtype == np.float32 and volts.shape == (16,) and not volts.flags.writeable
        np.testing.assert_allclose(volts, model.cell_voltages(), atol=0.0006)
        np.testing.assert_allclose(stack.value(f"{p}.cell_temperatures_c"), model.temp_c, atol=0.06)
        assert stack.quality(f"{p}.cell_voltages_v") == "GOOD"
    assert stack.value("site.links.bms1.status") == "ONLINE"
    assert driver.stats.snapshot()["errors"] == 0


def test_a_link_without_cell_temperature_frames_has_only_the_pack_temperature():
    """The site file decides: its simulated packs send no 0x361, and its driver ignores any 0x361."""
    without = can_site('interface = "virtual", cell_temperature_frames = false', address="test-drv-no-0x361",
                       poll_s=POLL_S)
    plant = plant_for(without)
    quiet = CanSimLink(without.link("bms1"), list(plant.racks.values()), Stack().clock)
    assert CELL_TEMPERATURES not in {m.arbitration_id for m in quiet.endpoints[0].frames()}
    with_frames = can_site('interface = "virtual"', address="test-drv-no-0x361", poll_s=POLL_S)
    stack = Stack()
    sim = CanSimLink(with_frames.link("bms1"), list(plant.racks.values()), stack.clock)
    driver = CanDriver(without.link("bms1"), stack.bus, stack.router, stack.journal, stack.clock, racks=without.racks)
    sim.start()
    try:
        with running(stack, driver):
            wait_for(lambda: stack.value("site.bess1.rack01.cell_voltages_v") is not None
                     and driver.ignored_frames >= 4, timeout=5, what="a cycle with its 0x361 frames ignored")
    finally:
        sim.stop()
    assert stack.value("site.bess1.rack01.cell_temperatures_c") is None
    np.testing.assert_allclose(stack.value("site.bess1.rack01.temperatures_c"),
                               [np.mean(plant.racks["site.bess1.rack01"].temp_c)], atol=0.06)
    assert driver.stats.snapshot()["errors"] == 0


def test_garbage_wrong_length_and_error_frames_are_counted_not_fatal():
    site, plant, stack, sim, driver = _setup("test-drv-garbage")
    sim.start()
    injector = can.Bus(interface="virtual", channel="test-drv-garbage")
    bad = [
        can.Message(arbitration_id=0x356, is_extended_id=False, data=b"\x01\x02\x03"),      # too short
        can.Message(arbitration_id=0x351, is_extended_id=False, data=b"\x01"),
        can.Message(arbitration_id=0x35E, is_extended_id=False, data=b"\xff\xfe\x80"),      # not ASCII
        can.Message(arbitration_id=0x360, is_extended_id=False, data=b"\x00\x01\x02\x03"),  # cell frame, 4 bytes
        can.Message(arbitration_id=0x360, is_extended_id=False, data=b"\x09" + bytes(7)),   # group 9 of 4
        can.Message(arbitration_id=0x0, is_error_frame=True),
    ]
    foreign = [
        can.Message(arbitration_id=0x305, is_extended_id=False, data=bytes(8)),            # inverter keep-alive
        can.Message(arbitration_id=0x351, is_extended_id=True, data=bytes(8)),
        can.Message(arbitration_id=0x3F1, is_extended_id=False, data=bytes(8)),            # unit 5: not on link
        can.Message(arbitration_id=0x36A, is_extended_id=False, data=bytes(8)),            # unused id, unit 1
    ]
    try:
        with running(stack, driver):
            wait_for(lambda: stack.value("site.bess1.rack01.cell_voltages_v") is not None, timeout=5)
            for msg in bad + foreign:
                injector.send(msg)
            wait_for(lambda: driver.stats.snapshot()["errors"] == len(bad), timeout=3, what="errors counted")
            wait_for(lambda: driver.ignored_frames == len(foreign), timeout=3, what="foreign frames ignored")
            published = stack.bus.get("site.bess1.rack01.cell_voltages_v").recv_mono
            wait_for(lambda: stack.bus.get("site.bess1.rack01.cell_voltages_v").recv_mono > published,
                     timeout=3, what="publishing goes on")
            assert stack.supervisor.restarts(driver.name) == 0
            assert stack.value("site.links.bms1.errors") >= len(bad)
            assert driver.stats.snapshot()["last_error"] == "CAN error frame 0x0"
    finally:
        injector.shutdown()
        sim.stop()
    assert stack.quality("site.bess1.rack01.pack_voltage_v") == "GOOD"


def test_silence_marks_comm_lost_within_the_loss_periods_and_recovers_without_restart():
    site, plant, stack, sim, driver = _setup("test-drv-silence")
    point = "site.bess1.rack01.cell_voltages_v"
    sim.start()
    try:
        with running(stack, driver):
            wait_for(lambda: stack.quality(point) == "GOOD", timeout=5)
            pulled = time.monotonic()
            sim.stop()
            wait_for(lambda: stack.quality(point) == "COMM_LOST", timeout=5, what="COMM_LOST")
            lost_after = time.monotonic() - pulled
            assert stack.value("site.links.bms1.status") == "COMM_LOST"
            assert stack.quality("site.bess1.rack01.soc_pct") == "COMM_LOST"
            restored = time.monotonic()
            sim.start()
            wait_for(lambda: stack.quality(point) == "GOOD", timeout=5, what="recovery")
            recovery = time.monotonic() - restored
            assert stack.supervisor.restarts(driver.name) == 0
    finally:
        sim.stop()
    assert lost_after <= 3 * POLL_S + 0.2          # two silent windows (+ the one in progress)
    assert recovery < 5.0
    kinds = [e.kind for e in stack.journal.since(0)]
    assert "comm_lost" in kinds and "link_restored" in kinds
    assert driver.stats.snapshot()["timeouts"] >= 2


def test_commands_to_a_can_rack_are_rejected():
    site, plant, stack, sim, driver = _setup("test-drv-cmd")
    sim.start()
    try:
        with running(stack, driver):
            wait_for(lambda: stack.value("site.links.bms1.status") == "ONLINE", timeout=5)
            result = stack.router.submit(Command("site.bess1.rack01.contactor_command", "write", 0)).result(5)
    finally:
        sim.stop()
    assert result.status is CommandStatus.REJECTED and "listen-only" in result.message


@pytest.mark.parametrize("options, match", [
    ('interface = "usb2can"', r"options.interface: unknown CAN interface 'usb2can'"),
    ('interface = "socketcand"', r"options.port: a socketcand link needs"),
    ('interface = "virtual", baud = 5', r"options.baud: unknown option"),
    ('interface = "pcan", bitrate = "fast"', r"options.bitrate: expected a positive integer"),
    ('interface = "virtual", port = 5', r"options.port: only a socketcand link"),
    ('interface = "virtual", cell_temperature_frames = "no"', r"options.cell_temperature_frames: expected true or"),
])
def test_bad_link_options_name_the_key(options, match):
    site = can_site(options)
    stack = Stack()
    with pytest.raises(ConfigError, match=match):
        CanDriver(site.link("bms1"), stack.bus, stack.router, stack.journal, stack.clock, racks=site.racks)


def test_racks_must_fit_the_id_windows():
    site = can_site('interface = "virtual"')
    stack = Stack()
    rack = dataclasses.replace(site.racks[0], unit_id=38)
    with pytest.raises(ConfigError, match="unit_id 38 .* 1..37"):
        CanDriver(site.link("bms1"), stack.bus, stack.router, stack.journal, stack.clock, racks=[rack])
    with pytest.raises(ConfigError, match="no rack uses"):
        CanDriver(site.link("bms1"), stack.bus, stack.router, stack.journal, stack.clock, racks=[])
