"""CAN record -> replay -> decode: a session of the real CanDriver against the simulator, recorded by its
raw-frame monitor as a candump log, replayed by the simulator's CanReplayLink (virtual bus in-process,
socketcand across TCP) to a fresh driver, gives the same points in the same order; the committed
Pylontech capture decodes to its annotated values."""
from __future__ import annotations

import json
from pathlib import Path

import can
import numpy as np
import pytest

from app.core.errors import UserError
from app.sim.can_endpoint import CanSimLink
from app.sim.can_replay import CanReplayLink
from can_site import can_site, plant_for
from drivers.can.driver import CanDriver
from support import Stack, Trail, assert_fields, free_port, rack_values, running, same_values, wait_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
POLL_S = 0.2
RACK = "site.bess1.rack01"
CURRENTS = (5.0, -12.5, 20.0)          # A, set on the plant one after the other during the live run


def _site(interface: str, channel: str):
    if interface == "virtual":
        return can_site('interface = "virtual"', address=channel, poll_s=POLL_S)
    return can_site(f'interface = "socketcand", host = "127.0.0.1", port = {free_port()}', poll_s=POLL_S)


def _driver(site, stack: Stack) -> CanDriver:
    return CanDriver(site.link("bms1"), stack.bus, stack.router, stack.journal, stack.clock, racks=site.racks)


def _polls_with(trail: Trail, value, polls: int):
    return lambda: sum(1 for v in trail.values() if v == value) >= polls


@pytest.mark.parametrize("interface", ["virtual", "socketcand"])
def test_a_recorded_session_replays_to_the_same_points_in_the_same_order(interface, tmp_path):
    site = _site(interface, f"test-can-replay-{interface}")
    plant = plant_for(site, current_a=CURRENTS[0])
    capture = tmp_path / "bms1.log"
    live = Stack()
    sim = CanSimLink(site.link("bms1"), list(plant.racks.values()), live.clock)
    driver = _driver(site, live)
    driver.monitor.start_recording(capture)
    currents = Trail(live.bus, f"{RACK}.current_a")
    sim.start()
    try:
        with running(live, driver):
            for n, amps in enumerate(CURRENTS):
                plant.racks[RACK].current_a = amps
                plant.racks[RACK].soc = plant.racks[RACK].soc - 0.01       # cells and SOC move too
                # the first value long enough for the replay's driver to be listening already
                wait_for(_polls_with(currents, amps, 5 if n == 0 else 3), timeout=8, what=f"{amps} A polled")
            sim.stop()
            wait_for(lambda: driver.stats.snapshot()["timeouts"] >= 1, timeout=5, what="the last window closed")
    finally:
        sim.stop()
    recorded = rack_values(live, RACK)
    assert currents.distinct() == list(CURRENTS) and f"{RACK}.cell_voltages_v" in recorded
    assert capture.read_text().startswith("(")

    again = Stack()
    replay = CanReplayLink(site.link("bms1"), capture)
    driver = _driver(site, again)
    replayed = Trail(again.bus, f"{RACK}.current_a")
    try:
        if interface == "socketcand":        # the driver connects to the replay's server
            replay.start()
        with running(again, driver):
            if interface == "virtual":       # the driver listens before the first frame goes out
                wait_for(lambda: driver.stats.snapshot()["reconnects"] >= 1, timeout=5, what="driver listening")
                replay.start()
            wait_for(lambda: replay.finished.is_set() and same_values(rack_values(again, RACK), recorded),
                     timeout=15, what="the replay to end with the recorded points")
    finally:
        replay.stop()
    assert replayed.distinct() == list(CURRENTS)
    assert replay.sent == len(capture.read_text().splitlines())
    assert driver.stats.snapshot()["errors"] == 0


def test_the_pylontech_field_capture_decodes_to_the_annotated_values():
    frames = [f for f in json.loads((FIXTURES / "bms" / "pylon_can.json").read_text()) if "pull/1213" in f["source"]]
    expected = {name: value for f in frames for name, value in f["expected"].items()}
    site = can_site('interface = "virtual"', address="test-can-replay-fixture", poll_s=POLL_S)
    stack = Stack()
    replay = CanReplayLink(site.link("bms1"), FIXTURES / "captures" / "pylon_can.log", speed=10, loop=True)
    driver = _driver(site, stack)
    with running(stack, driver):
        replay.start()
        try:
            wait_for(lambda: all(stack.value(f"{RACK}.{name}") is not None for name in expected), timeout=5,
                     what="every annotated field")
            wait_for(lambda: replay.sent > len(replay.frames), timeout=5, what="the capture to play again (loop)")
        finally:
            replay.stop()
    assert_fields(stack, RACK, expected)
    assert stack.value(f"{RACK}.manufacturer") == "PYLON"
    assert driver.stats.snapshot()["errors"] == 0


def test_frames_keep_the_recorded_gaps_divided_by_the_speed(tmp_path):
    log = tmp_path / "gaps.log"
    log.write_text("".join(f"({100 + 0.5 * i:.6f}) can0 355#{i:02X}006400\n" for i in range(4)))
    site = can_site('interface = "virtual"', address="test-can-replay-gaps")
    replay = CanReplayLink(site.link("bms1"), log, speed=2.5)
    listener = can.Bus(interface="virtual", channel="test-can-replay-gaps")
    try:
        replay.start()
        got = [listener.recv(2.0) for _ in range(4)]
        assert replay.finished.wait(2.0)
    finally:
        replay.stop()
        listener.shutdown()
    assert [m.data[0] for m in got] == [0, 1, 2, 3]
    gaps = np.diff([m.timestamp for m in got])
    assert all(0.18 <= g < 0.6 for g in gaps), gaps         # 0.5 s recorded / 2.5


def test_a_29_bit_frame_is_replayed_as_one_and_ignored_by_the_driver(tmp_path):
    log = tmp_path / "mixed.log"
    log.write_text("(10.000000) can0 00000355#1A006400\n(10.001000) can0 355#32006400\n"
                   "(10.002000) can0 305#R\n(10.003000) can0 20000004#0000000000000000\n")
    site = can_site('interface = "virtual"', address="test-can-replay-ext", poll_s=POLL_S)
    stack = Stack()
    replay = CanReplayLink(site.link("bms1"), log, speed=20, loop=True)
    driver = _driver(site, stack)
    assert len(replay.frames) == 2                      # the remote and the error frame are not replayed
    with running(stack, driver):
        replay.start()
        try:
            wait_for(lambda: driver.ignored_frames >= 2 and stack.value(f"{RACK}.soc_pct") is not None, timeout=5)
        finally:
            replay.stop()
    assert stack.value(f"{RACK}.soc_pct") == 50             # from the 11-bit 0x355, never the 29-bit one


def test_a_capture_with_a_malformed_line_is_refused_naming_file_and_line(tmp_path):
    log = tmp_path / "field.log"
    log.write_text("(1.0) can0 351#1402740E740ECC01\n(1.1) can0 35G#00\n")
    with pytest.raises(UserError, match=r"field\.log:2: not a candump log line"):
        CanReplayLink(can_site('interface = "virtual"').link("bms1"), log)
