"""Protection of racks whose pack reports N temperature sensors (`temperatures_c`: BLE packs, Pylontech CAN
without per-cell temperature frames): the link decides it once (rack_points); the ladders, derating,
plausibility and dT/dt / runaway run per sensor and name `temperatures_c[j]`; missing, stale or wrongly
sized sensor data is the rack's safe state like its voltages."""
from __future__ import annotations

import numpy as np
import pytest

from app.core.clock import ManualClock
from app.core.commands import CommandRouter
from app.core.databus import DataBus
from app.core.errors import ConfigError
from app.core.events import EventJournal
from app.core.sample import Sample
from app.protection.cell_source import PACK_SENSORS, TEMPERATURE_EXTREMES, VOLTAGE_EXTREMES, CellSource
from app.protection.ladder import Level
from app.protection.rack_check import RackCheck
from app.protection.thread import ProtectionThread
from drivers.registry import rack_points
from protection_cases import CAPACITY_AH, CELLS, CELLS_PER_MODULE, MODULES, limits, mid_voltage
from support import make_site

RACK = "site.bess1.rack01"


def _pack(n: int) -> CellSource:
    return CellSource(temperatures=(PACK_SENSORS,), pack_sensors=n)


@pytest.mark.parametrize("options, source", [
    ({"bms_ble": 'protocol = "jbd"'}, _pack(2)),                                 # one probe per module
    ({"bms_ble": 'protocol = "daly", temperature_sensors = 3'}, _pack(3)),
    ({"bms_ble": 'protocol = "jk", variant = "jk02_24s"'}, _pack(2)),            # T1, T2
    ({"bms_can": True, "can_options": "cell_temperature_frames = false"}, _pack(1)),   # 0x356
    ({"bms_can": True}, CellSource()),                                           # per-cell frames win
])
def test_the_link_decides_which_temperatures_a_rack_is_checked_on(tmp_path, options, source):
    site = make_site(tmp_path, racks=1, modules=2, cells=4, **options)
    assert CellSource.of(rack_points(site)[RACK], RACK) == source


def test_per_cell_temperatures_then_pack_sensors_then_extremes():
    both = {"cell_voltages_v": 8, "cell_temperatures_c": 8, PACK_SENSORS: 1}
    assert CellSource.of(both, RACK) == CellSource()
    daly = {"cell_voltages_v": 8, PACK_SENSORS: 4, "min_temperature_c": 1, "max_temperature_c": 1}
    assert CellSource.of(daly, RACK) == _pack(4)
    assert CellSource.of(dict.fromkeys(VOLTAGE_EXTREMES + TEMPERATURE_EXTREMES, 1), RACK) == \
        CellSource(VOLTAGE_EXTREMES, TEMPERATURE_EXTREMES)


@pytest.mark.parametrize("options, message", [
    ('protocol = "jk", variant = "jk02_24s", temperature_sensors = 4', "a JK02 frame carries 2 probes"),
    ('protocol = "jbd", temperature_sensors = 9', "9 probes for the 8 cells of site.bess1.rack01"),
])
def test_a_ble_pack_cannot_report_more_sensors_than_its_frames_or_cells_hold(tmp_path, options, message):
    site = make_site(tmp_path, racks=1, modules=2, cells=4, bms_ble=options)
    with pytest.raises(ConfigError, match=f"options.temperature_sensors: {message}"):
        rack_points(site)


def _check(sensors: int) -> RackCheck:
    return RackCheck(limits("lfp"), CAPACITY_AH, 1, MODULES, CELLS_PER_MODULE, CELLS, _pack(sensors))


def _run(check: RackCheck, seconds: float, temps, current_a: float = 0.0, t0: float = 0.0, rate_c_per_s=0.0,
         volts=None):
    """Frames every 0.5 s; `rate_c_per_s` (scalar or per sensor) added over time; `volts(t)` per frame."""
    v = np.full(CELLS, mid_voltage(limits("lfp")), np.float32)
    verdict = None
    for k in range(int(seconds / 0.5) + 1):
        t = t0 + 0.5 * k
        temps_now = (np.asarray(temps, np.float64) + np.asarray(rate_c_per_s) * 0.5 * k).astype(np.float32)
        verdict = check.step(t, t, v if volts is None else volts(t), temps_now, current_a, None, 50.0)
    return verdict


def test_a_hot_sensor_trips_and_the_cause_derating_and_alarm_point_name_it():
    check = _check(4)
    v = _run(check, 12.0, [25.0, 25.0, 70.0, 25.0], current_a=-50.0)
    assert v.level == Level.TRIP
    assert v.cause == "discharge overtemperature: temperatures_c[3] at 70.0 C (limit 60.0 C)"
    assert check.reading("discharge_overtemperature", v.ladder["discharge_overtemperature"].index) == \
        "temperatures_c[3]"
    assert v.derating.dcl_a == 0.0 and v.derating.dcl_reason == "DCL 0 A: temperatures_c[3] at 70.0 C"
    assert v.sensors.level == Level.NORMAL


def test_plausibility_runs_per_sensor_stuck_from_three_sensors_on():
    check = _check(16)
    temps = np.full(16, 25.0)
    temps[1] = np.nan
    v = _run(check, 1.0, temps)
    assert v.sensors.level == Level.ALARM
    assert v.sensors.cause == "sensor fault: temperatures_c[2] open circuit (1 faulty)"
    check = _check(16)
    rates = np.full(16, 3.0 / 650)                   # every sensor warms 3 C ...
    rates[4] = 0.0                                    # ... but sensor 5
    v = _run(check, 650.0, np.full(16, 25.0), rate_c_per_s=rates)
    assert [(f.index, f.fault) for f in v.sensors.faults] == [(4, "stuck")]
    assert "temperatures_c[5] stuck" in v.sensors.cause
    check = _check(2)                                 # two probes: no median of others to compare with
    v = _run(check, 650.0, np.full(2, 25.0), rate_c_per_s=[6.0 / 650, 0.0])
    assert v.sensors.level == Level.NORMAL


def test_dt_dt_runs_per_sensor():
    check = _check(4)
    v = _run(check, 60.0, np.full(4, 25.0), rate_c_per_s=[0.0, 3.0 / 60, 0.0, 0.0])      # sensor 2: 3 C/min
    assert v.thermal_status.level == Level.ALARM and v.thermal_status.index == 1
    assert "C/min at temperatures_c[2]" in v.thermal_status.cause


@pytest.mark.parametrize("dropped_cell, runaway", [(20, True), (40, False)])
def test_runaway_needs_the_voltage_drop_in_the_cells_of_the_rising_sensor(dropped_cell, runaway):
    check = _check(4)                                 # sensor 2 covers cells 17..32
    v0 = mid_voltage(limits("lfp"))

    def volts(t: float) -> np.ndarray:
        v = np.full(CELLS, v0, np.float32)
        if t >= 10.0:
            v[dropped_cell - 1] -= 0.4
        return v

    _run(check, 9.5, np.full(4, 25.0), volts=volts)
    v = _run(check, 6.0, np.full(4, 25.0), t0=10.0, rate_c_per_s=[0.0, 1.5, 0.0, 0.0], volts=volts)
    assert (v.thermal_status.level == Level.TRIP) is runaway
    assert (v.thermal_status.runaway_sensors == (1,)) is runaway
    if runaway:
        assert v.thermal_status.cause.startswith("thermal runaway: temperatures_c[2] rising")


def _thread(tmp_path):
    site = make_site(tmp_path, racks=1, modules=2, cells=4, bms_ble='protocol = "jbd"')
    clock = ManualClock()
    bus = DataBus()
    return ProtectionThread(site, bus, CommandRouter(), EventJournal(), clock, rack_points(site)), bus, clock


def _publish(bus: DataBus, clock: ManualClock, temps=(24.0, 25.0)) -> None:
    values = {"cell_voltages_v": np.full(8, 3.3, np.float32), "pack_voltage_v": 26.4, "current_a": 0.0,
              "soc_pct": 50.0, "temperatures_c": None if temps is None else np.asarray(temps, np.float32)}
    bus.publish_many((f"{RACK}.{p}", Sample(v, clock.time(), clock.monotonic(), clock.time()))
                     for p, v in values.items() if v is not None)


def test_missing_stale_or_wrongly_sized_pack_temperatures_are_the_racks_safe_state(tmp_path):
    protection, bus, clock = _thread(tmp_path)

    def state_and_fault():
        protection.cycle(clock.monotonic())
        fault = protection.alarms.view(f"{RACK}.data_fault")
        return bus.get(f"{RACK}.protection_state").value, fault.point, fault.message

    _publish(bus, clock)
    assert state_and_fault()[0] == "NORMAL"
    assert bus.get(f"{RACK}.ccl_reason").value == "CCL 50 A: not derated"      # by its sensors
    clock.advance(2.0)
    _publish(bus, clock, temps=None)                      # the voltages come, the temperatures do not
    state, point, message = state_and_fault()
    assert (state, point) == ("STALE", f"{RACK}.temperatures_c") and "stale 2.0 s > 1.0 s" in message
    assert bus.get("site.pcs1.protection_hold").value is True
    _publish(bus, clock)
    assert state_and_fault()[0] == "NORMAL"
    _publish(bus, clock, temps=(24.0, 25.0, 26.0))
    state, point, message = state_and_fault()
    assert (state, point) == ("STALE", f"{RACK}.temperatures_c") and "3 values, 2 expected" in message


def test_a_pack_that_never_reports_its_temperatures_is_stale_after_the_start_up_grace(tmp_path):
    protection, bus, clock = _thread(tmp_path)
    _publish(bus, clock, temps=None)
    protection.cycle(clock.monotonic())
    assert bus.get(f"{RACK}.protection_state").value == "NORMAL"          # first poll may not be in yet
    clock.advance(1.5)
    _publish(bus, clock, temps=None)
    protection.cycle(clock.monotonic())
    assert bus.get(f"{RACK}.protection_state").value == "STALE"
    fault = protection.alarms.view(f"{RACK}.data_fault")
    assert fault.point == f"{RACK}.temperatures_c" and "no data" in fault.message
