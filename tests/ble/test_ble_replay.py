"""BLE record -> replay -> decode: a session of the real BleDriver (bumble central) against a simulated
pack, recorded by its raw-frame monitor, replayed by the simulator's BleReplayPeripheral to a fresh
driver, gives the same points in the same order for JBD, JK02 (a timed notification stream) and Daly;
the committed JBD capture decodes to its annotated values."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.core.errors import UserError
from app.sim.ble_replay import ble_replay_link
from ble_site import ble_site, plant_for, serving, sim_links
from drivers.ble.driver import BleDriver
from support import Stack, Trail, assert_fields, rack_values, running, same_values, wait_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RACK = "site.bess1.rack01"
CURRENTS = (5.0, -12.5, 20.0)          # A, set on the plant one after the other during the live run


def _driver(site, stack: Stack) -> BleDriver:
    return BleDriver(site.link("pack1"), stack.bus, stack.router, stack.journal, stack.clock, racks=site.racks)


@pytest.mark.parametrize("options", ['protocol = "jbd"', 'protocol = "jk", variant = "jk02_24s"',
                                     'protocol = "daly"'])
def test_a_recorded_session_replays_to_the_same_points_in_the_same_order(options, tmp_path):
    site = ble_site([options])
    plant = plant_for(site, current_a=CURRENTS[0])
    model = plant.racks[RACK]
    capture = tmp_path / "pack1.log"
    live = Stack()
    (sim,) = sim_links(site, plant)
    driver = _driver(site, live)
    driver.monitor.start_recording(capture)
    currents = Trail(live.bus, f"{RACK}.current_a")
    with serving(sim), running(live, driver):
        for amps in CURRENTS:
            model.current_a = amps
            model.soc = model.soc - 0.01                   # cells and SOC move too
            wait_for(lambda: currents.values().count(amps) >= 3, timeout=8, what=f"{amps} A polled")
    recorded = rack_values(live, RACK)
    assert currents.distinct() == list(CURRENTS) and f"{RACK}.cell_voltages_v" in recorded

    again = Stack()
    replay = ble_replay_link(site.link("pack1"), site.racks, capture)
    driver = _driver(site, again)
    replayed = Trail(again.bus, f"{RACK}.current_a")
    with serving(replay), running(again, driver):
        wait_for(lambda: replayed.distinct()[:3] == list(CURRENTS) and same_values(rack_values(again, RACK), recorded),
                 timeout=10, what="the replay to reach the recorded points")
    assert replayed.distinct()[:3] == list(CURRENTS)
    assert replay.pack.unmatched == 0 and driver.stats.snapshot()["errors"] == 0


def test_the_jbd_field_capture_decodes_to_the_annotated_values():
    frames = {f["source"].rsplit(" ", 1)[-1]: f["expected"]
              for f in json.loads((FIXTURES / "bms" / "jbd.json").read_text()) if "SP04S034" in f["source"]}
    site = ble_site(['protocol = "jbd", temperature_sensors = 3'], modules=1, cells=4)   # the pack's 3 NTCs
    stack = Stack()
    replay = ble_replay_link(site.link("pack1"), site.racks, FIXTURES / "captures" / "jbd_ble.log")
    driver = _driver(site, stack)
    cells = Trail(stack.bus, f"{RACK}.cell_voltages_v")
    temperatures = Trail(stack.bus, f"{RACK}.temperatures_c")
    with serving(replay), running(stack, driver):
        wait_for(lambda: len(cells.distinct()) == 2 and len(cells.values()) >= 3, timeout=5,
                 what="both recorded cycles, then the last one repeated")
    # each request is answered as recorded, in order: pdus lines 1 + 3, then lines 2 + 4 (repeating)
    np.testing.assert_allclose(cells.distinct(), [frames["3"]["cell_voltages_v"], frames["4"]["cell_voltages_v"]],
                               atol=1e-6)
    np.testing.assert_allclose(temperatures.distinct(), [frames["1"]["temperatures_c"], frames["2"]["temperatures_c"]])
    assert_fields(stack, RACK, frames["2"])                  # the last recorded 0x03 answer repeats
    assert replay.pack.unmatched == 0 and driver.stats.snapshot()["errors"] == 0


def test_a_malformed_capture_line_names_file_and_line(tmp_path):
    site = ble_site(['protocol = "jbd"'])
    bad = tmp_path / "pack.log"
    bad.write_text("# JBD\n1.0 tx dda50300fffd77\n1.1 rx dd03zz\n")
    with pytest.raises(UserError, match=r"pack\.log:3: not a capture line"):
        ble_replay_link(site.link("pack1"), site.racks, bad)
    bad.write_text("1.1 rx dd0400080f450f3d0f370f3dfec677\n")
    with pytest.raises(UserError, match=r"pack\.log: no request \(tx line\) to answer"):
        ble_replay_link(site.link("pack1"), site.racks, bad)
