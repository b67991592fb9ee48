"""`sim --site FILE --replay LINK=CAPTURE`: the simulator as a subprocess serves a CAN link (socketcand),
a BLE link (HCI over TCP) and a Modbus TCP link from captures, and real drivers in this process decode
what the captures hold; bad replay arguments exit 2 with one line naming what to fix."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.core.clock import SystemClock
from app.core.site import Link, load_site
from app.sim.simulator import Simulator
from drivers.registry import build_driver
from support import Stack, assert_fields, driver_polls, free_port, running, same_values, site_text, wait_for

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
BLE_PACK = """
[[link]]
name = "pack1"
kind = "ble"
address = "C0:00:00:00:01:01"
poll_period_s = 0.2
timeout_s = 0.5
options = {{ protocol = "jbd", temperature_sensors = 3, transport = "bumble", port = {port}, connect_timeout_s = 2.0 }}

[[bess]]
id = "bess2"
chemistry = "lfp"
cell_capacity_ah = 100.0
pcs = "pcs1"
modules_per_rack = 1
cells_per_module = 4
racks = [{{ link = "pack1", unit_id = 1 }}]
"""


def _esms(*args: str, **kwargs):
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def _expected(fixture: str, source: str) -> dict:
    frames = json.loads((FIXTURES / "bms" / fixture).read_text())
    return {k: v for f in frames if source in f["source"] for k, v in f["expected"].items()}


def test_sim_replays_can_ble_and_modbus_captures_to_real_drivers(tmp_path):
    site_file = tmp_path / "site.toml"
    site_file.write_text(site_text(free_port(), free_port(), poll_s=0.2, bms_can=True)
                         + BLE_PACK.format(port=free_port()))
    site = load_site(site_file)
    pcs1 = site.link("pcs1")
    capture = tmp_path / "pcs1.log"
    sim = Simulator(site, SystemClock())                # the session to capture: PCS and meter over Modbus TCP
    sim.plant.pcs["pcs1"].setpoint_kw = 20.0
    sim.start_endpoints("pcs1")
    try:
        recorded = driver_polls(site, Link(pcs1.name, pcs1.kind, pcs1.address, options={"record": str(capture)}), 3,
                                between=lambda: sim.step(60.0))
    finally:
        sim.stop_endpoints()
    assert not same_values(recorded[0], recorded[-1])

    proc = _esms("sim", "--site", str(site_file), "--replay", f"bms1={FIXTURES / 'captures' / 'pylon_can.log'}",
                 "--replay", f"pack1={FIXTURES / 'captures' / 'jbd_ble.log'}", "--replay", f"pcs1={capture}",
                 "--replay-speed", "10", "--replay-loop", "--duration", "60")
    try:
        banner = proc.stdout.readline()
        assert "serving" in banner and "bms1=can0 (replay of" in banner and "pcs1=127.0.0.1" in banner, (
            banner + proc.stderr.read() if proc.poll() is not None else banner)
        assert [same_values(r, p) for r, p in zip(recorded, driver_polls(site, pcs1, 3))] == [True] * 3
        stack = Stack()
        drivers = [build_driver(site, site.link(name), stack.bus, stack.router, stack.journal, stack.clock)
                   for name in ("bms1", "pack1")]
        pylon, jbd = _expected("pylon_can.json", "pull/1213"), _expected("jbd.json", "SP04S034")
        with running(stack, *drivers):
            wait_for(lambda: all(stack.value(f"site.bess1.rack01.{k}") is not None for k in pylon)
                     and (cells := stack.value("site.bess2.rack01.cell_voltages_v")) is not None
                     and np.allclose(cells, jbd["cell_voltages_v"]),
                     timeout=15, what="the replayed CAN pack and the last recorded cycle of the BLE pack")
            assert_fields(stack, "site.bess1.rack01", pylon)
            assert_fields(stack, "site.bess2.rack01", jbd)
        assert all(d.stats.snapshot()["errors"] == 0 for d in drivers)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err


@pytest.mark.parametrize("replay, message", [
    ("bms1", "expected LINK=CAPTURE"),
    ("bms9={capture}", "has no [[link]] named 'bms9'"),
    ("bms1={tmp}/missing.log", "no capture file"),
    ("bms1={capture}", "{capture}:2: not a candump log line"),
])
def test_bad_replay_arguments_exit_2_with_one_line(tmp_path, replay, message):
    capture = tmp_path / "bad.log"
    capture.write_text("(1.0) can0 351#1402740E740ECC01\n(1.1) can0 351#zz\n")
    site_file = tmp_path / "site.toml"
    site_file.write_text(site_text(free_port(), free_port(), bms_can=True))
    proc = _esms("sim", "--site", str(site_file), "--duration", "1",
                 "--replay", replay.format(capture=capture, tmp=tmp_path))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert message.format(capture=capture) in err
