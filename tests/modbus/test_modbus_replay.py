"""Record/replay: a session against the simulator is captured by the driver's trace hooks, then the
capture, served by the replay peer, gives a fresh driver the same decoded values."""
from __future__ import annotations

import numpy as np
import pytest

from app.core.clock import SystemClock
from app.core.errors import UserError
from app.core.site import Link, parse_site
from app.sim.replay import replay_server
from app.sim.simulator import Simulator
from drivers.modbus.recording import read_capture
from drivers.modbus.replay import ModbusReplayServerThread
from support import driver_polls, free_port, make_site, site_text


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_a_recorded_session_replays_to_the_same_decoded_values(tmp_path):
    site = make_site(tmp_path, racks=2, modules=2, cells=8)
    sim = Simulator(site, SystemClock())
    sim.plant.pcs["pcs1"].setpoint_kw = 20.0                      # values change from poll to poll
    sim.start_endpoints("bms1")
    bms1 = next(lk for lk in site.links if lk.name == "bms1")
    capture = tmp_path / "field-capture.log"
    try:
        recorded = driver_polls(site, Link(bms1.name, bms1.kind, bms1.address, options={"record": str(capture)}), 4,
                                between=lambda: sim.step(5.0))
    finally:
        sim.stop_endpoints()
    assert not _same(recorded[0], recorded[-1])
    kind, frames = read_capture(capture)
    assert kind == "modbus-tcp" and [f.direction for f in frames[:2]] == ["tx", "rx"]
    assert {f.unit for f in frames} == {1, 2}

    port = free_port()
    replay = ModbusReplayServerThread(capture, "127.0.0.1", port)
    replay.start()
    try:
        replayed = driver_polls(site, Link("bms1", "modbus-tcp", f"127.0.0.1:{port}"), 4)
    finally:
        replay.stop()
    assert all(_same(r, p) for r, p in zip(recorded, replayed))
    assert replay.unmatched == 0


def test_a_corrupt_capture_line_names_file_and_line(tmp_path):
    bad = tmp_path / "cap.log"
    bad.write_text("# esms modbus capture v1 kind=modbus-tcp address=x\n1.0 tx 1 00010000\n1.1 sideways 1 00\n")
    with pytest.raises(UserError, match=r"cap.log:3: not a capture line"):
        ModbusReplayServerThread(bad, "127.0.0.1", free_port())


@pytest.mark.parametrize("kind", ["modbus-tcp", "modbus-rtu"])
def test_captures_of_both_recorders_replay_on_their_link_kind(kind, tmp_path):
    """The driver's `record` capture and the raw-frame monitor's (the F8 record button) of one session
    each replay to the same decoded values, over TCP or over an RS485 pty pair."""
    bms_port = free_port()
    text = site_text(bms_port, free_port(), racks=2, modules=2, cells=4)
    rtu = f'kind = "modbus-rtu"\naddress = "{tmp_path / "ttySim"}"\noptions = {{ baudrate = 115200 }}'
    site = parse_site(text if kind == "modbus-tcp" else text.replace(
        f'kind = "modbus-tcp"\naddress = "127.0.0.1:{bms_port}"', rtu))
    sim = Simulator(site, SystemClock())
    sim.plant.pcs["pcs1"].setpoint_kw = 20.0
    sim.start_endpoints("bms1")
    bms1 = site.link("bms1")
    record, monitor = tmp_path / "record.log", tmp_path / "monitor.log"
    try:
        recorded = driver_polls(site, Link(bms1.name, kind, bms1.address, options={**bms1.options, "record": str(record)}),
                                3, between=lambda: sim.step(5.0), monitor_to=monitor)
    finally:
        sim.stop_endpoints()
    assert not _same(recorded[0], recorded[-1])
    assert monitor.read_text().split()[1:3] == ["tx", read_capture(record, kind)[1][0].data.hex()]
    for capture in (record, monitor):
        address = f"127.0.0.1:{free_port()}" if kind == "modbus-tcp" else str(tmp_path / "ttyReplay")
        replay_link = Link("bms1", kind, address, options=bms1.options)
        replay = replay_server(site, replay_link, capture)
        replay.start()
        try:
            replayed = driver_polls(site, replay_link, 3)
        finally:
            replay.stop()
        assert all(_same(r, p) for r, p in zip(recorded, replayed)), capture.name
        assert replay.unmatched == 0
