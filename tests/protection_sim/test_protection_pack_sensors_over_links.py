"""Racks whose pack reports a few temperature sensors (`temperatures_c`) under protection over the real
links: a BLE JBD pack (bumble) and a Pylontech CAN pack without per-cell temperature frames (socketcand)
run NORMAL on their sensors, and a sensor driven hot through the simulator trips the rack through its
overtemperature ladder, the alarm naming the sensor point, its value and the limit; a BLE pack whose
temperatures stop coming puts its rack in the safe state (STALE, PCS held)."""
from __future__ import annotations

import numpy as np
import pytest

from app.protection.thread import ProtectionThread
from app.sim.ble_replay import ble_replay_link
from app.sim.simulator import Simulator
from drivers.bms import jbd
from drivers.ble.driver import BleDriver
from drivers.registry import build_driver, rack_points
from support import Stack, Trail, make_site, running, wait_for

RACK = "site.bess1.rack01"
TRIP = f"{RACK}.discharge_overtemperature.trip"
# link -> site options, the cells the hot sensor covers (module 2 of 2 / the whole pack) and its point
LINKS = {"ble": ({"bms_ble": 'protocol = "jbd"'}, slice(4, 8), f"{RACK}.temperatures_c[2]"),
         "can": ({"bms_can": True, "can_options": "cell_temperature_frames = false"}, slice(0, 8),
                 f"{RACK}.temperatures_c[1]")}


@pytest.mark.parametrize("kind", sorted(LINKS))
def test_a_hot_pack_sensor_trips_the_rack_and_the_alarm_names_the_sensor(tmp_path, kind):
    options, hot, sensor = LINKS[kind]
    site = make_site(tmp_path, racks=1, modules=2, cells=4, stale_after_s=2.0, **options)
    stack = Stack()
    sim = Simulator(site, stack.clock)
    model = sim.plant.racks[RACK]
    model.temp_c = np.full(8, 58.0)                  # a warm pack: above the alarm rung, below the trip
    sim.start_endpoints()
    drivers = [build_driver(site, link, stack.bus, stack.router, stack.journal, stack.clock) for link in site.links]
    protection = ProtectionThread(site, stack.bus, stack.router, stack.journal, stack.clock, rack_points(site))
    value = stack.value
    with running(stack, sim, *drivers, protection):
        wait_for(lambda: protection.by_path[RACK].verdict is not None and value(f"{RACK}.protection_state") ==
                 "NORMAL" and value("site.pcs1.protection_hold") is False, timeout=15,
                 what="rack NORMAL on its pack sensors", journal=stack.journal)
        verdict = protection.by_path[RACK].verdict
        assert verdict.sensors.level == 0 and verdict.ladder["discharge_overtemperature"].value > 57.0
        assert value(f"{RACK}.cell_temperatures_c") is None
        for _ in range(2):                           # +2 C twice: plausible steps, no sustained runaway rise
            with sim.lock:
                t = model.true_temp_c.copy()
                t[hot] += 2.0
                model.temp_c = t
                target = float(t[hot].mean()) - 0.2
            wait_for(lambda: value(f"{RACK}.temperatures_c").max() > target, timeout=5, what="the step polled")
        wait_for(lambda: protection.alarms.view(TRIP).latched, timeout=10, what="overtemperature trip",
                 journal=stack.journal)
        wait_for(lambda: value(f"{RACK}.protection_state") == "TRIPPED" and sim.plant.pcs["pcs1"].setpoint_kw == 0.0,
                 timeout=10, what="rack TRIPPED, PCS 0 kW", journal=stack.journal)
    trip = next(e for e in stack.journal.since(0) if e.message.startswith("URGENT discharge overtemperature trip"))
    assert trip.point == sensor and 60.0 < trip.value < 62.5 and trip.limit == pytest.approx(60.0)
    assert trip.message == f"URGENT discharge overtemperature trip: {sensor} = {trip.value:.1f} °C > 60.0 °C; " \
                           "latched until reset"
    assert protection.by_path[RACK].verdict.cause.startswith(
        f"discharge overtemperature: {sensor.rsplit('.', 1)[1]} at ")


def _capture(path, with_temperatures: int) -> None:
    """A JBD pack over BLE whose first `with_temperatures` basic-info answers carry its two NTCs and every
    later one none."""
    cells = [3.301, 3.302, 3.300, 3.303, 3.299, 3.301, 3.302, 3.300]
    basic = dict(pack_voltage_v=sum(cells), current_a=0.0, remaining_capacity_ah=50.0, design_capacity_ah=100.0,
                 cycle_count=3, soc_pct=50, charge_fet_on=True, discharge_fet_on=True, cell_count=8)
    lines, t = [], 1718000000.0
    for k in range(with_temperatures + 1):
        temps = [24.5, 25.1] if k < with_temperatures else []
        for request, answer in ((jbd.request(jbd.REG_BASIC_INFO), jbd.encode_basic_info(**basic, temperatures_c=temps)),
                                (jbd.request(jbd.REG_CELL_VOLTAGES), jbd.encode_cell_voltages(cells))):
            lines += [f"{t:.6f} tx {request.hex()}", f"{t + 0.04:.6f} rx {answer.hex()}"]
            t += 0.1
    path.write_text("\n".join(lines) + "\n")


def test_a_ble_pack_whose_temperatures_stop_coming_puts_its_rack_in_the_safe_state(tmp_path):
    site = make_site(tmp_path, racks=1, modules=2, cells=4, stale_after_s=2.0, bms_ble=LINKS["ble"][0]["bms_ble"])
    capture = tmp_path / "pack1.log"
    _capture(capture, with_temperatures=3)
    stack = Stack()
    replay = ble_replay_link(site.link("bms1"), site.racks, capture)
    driver = BleDriver(site.link("bms1"), stack.bus, stack.router, stack.journal, stack.clock, racks=site.racks)
    protection = ProtectionThread(site, stack.bus, stack.router, stack.journal, stack.clock, rack_points(site))
    states = Trail(stack.bus, f"{RACK}.protection_state")
    replay.start()
    try:
        with running(stack, driver, protection):
            wait_for(lambda: stack.value(f"{RACK}.protection_state") == "STALE", timeout=15,
                     what="safe state once the temperatures are older than stale_after_s", journal=stack.journal)
            assert stack.value("site.pcs1.protection_hold") is True
            assert stack.quality(f"{RACK}.cell_voltages_v") == "GOOD"        # the voltages keep coming
    finally:
        replay.stop()
    assert states.distinct() == ["NORMAL", "STALE"]
    fault = protection.alarms.view(f"{RACK}.data_fault")
    assert fault.point == f"{RACK}.temperatures_c" and "stale" in fault.message
    event = next(e for e in stack.journal.since(0) if e.kind == "safe_state")
    assert event.message.startswith(f"SAFE STATE {RACK}: {RACK}.temperatures_c stale ")
