"""Sensor plausibility: each fault type flagged, excluded, cleared after a quiet time; too many
faults degrade to a safe decision; a broken sensor is never mistaken for a fire."""
from __future__ import annotations

import numpy as np
import pytest

from app.protection.ladder import Level
from app.protection.plausibility import SensorCheck
from app.protection.rack_check import RackCheck
from protection_cases import CAPACITY_AH, CELLS, CELLS_PER_MODULE, MODULES, frame, limits


def check() -> SensorCheck:
    return SensorCheck(limits("lfp").plausibility, CELLS, CELLS)


def faults_of(health, kind):
    return {(f.index, f.fault) for f in health.faults if f.kind == kind}


@pytest.mark.parametrize("reading,fault", [(np.nan, "open_circuit"), (-40.0, "rail"), (151.0, "rail"),
                                           (-37.0, "out_of_range"), (130.0, "out_of_range")])
def test_temperature_sensor_faults(reading, fault):
    v, t = frame(limits("lfp"))
    t[5] = reading
    h = check().update(0.0, v, t)
    assert faults_of(h, "temperature") == {(5, fault)}
    assert not h.temperature_ok[5] and h.temperature_ok.sum() == CELLS - 1
    assert h.level == Level.ALARM and "temperature 6" in h.cause


@pytest.mark.parametrize("reading,fault", [(np.nan, "open_circuit"), (0.0, "zero_voltage"),
                                           (-0.5, "out_of_range"), (5.5, "out_of_range")])
def test_voltage_sensor_faults_degrade_the_rack(reading, fault):
    v, t = frame(limits("lfp"))
    v[7] = reading
    h = check().update(0.0, v, t)
    assert faults_of(h, "voltage") == {(7, fault)}
    assert h.level == Level.TRIP and "degraded" in h.cause     # max_faulty_voltage_sensors = 0


def test_jump_larger_than_physics_allows():
    c = check()
    v, t = frame(limits("lfp"))
    c.update(0.0, v, t)
    t[3] = 60.0                                               # +35 C in one second
    assert faults_of(c.update(1.0, v, t), "temperature") == {(3, "jump")}


def test_stuck_sensor_while_neighbours_move():
    c = check()
    lim = limits("lfp")
    for k in range(0, 700, 10):
        v, t = frame(lim, temp_c=25.0 + 0.05 * k)            # the rack warms 35 C over 700 s
        t[4] = 25.0                                           # sensor 5 never changes
        h = c.update(float(k), v, t)
    assert (4, "stuck") in faults_of(h, "temperature")


def test_still_rack_is_not_stuck():
    c = check()
    v, t = frame(limits("lfp"))
    for k in range(0, 1000, 10):
        h = c.update(float(k), v, t)
    assert h.faults == ()


def test_fault_clears_only_after_a_quiet_time():
    c = check()
    lim = limits("lfp")
    v, t = frame(lim)
    t[2] = -40.0
    c.update(0.0, v, t)
    v, t = frame(lim)
    assert not c.update(1.0, v, t).temperature_ok[2]
    assert not c.update(1.0 + lim.plausibility.fault_clear_s - 2, v, t).temperature_ok[2]
    assert c.update(1.0 + lim.plausibility.fault_clear_s + 1, v, t).temperature_ok[2]


def test_too_many_temperature_faults_degrade():
    v, t = frame(limits("lfp"))
    t[: CELLS // 5] = np.nan
    h = check().update(0.0, v, t)
    assert h.level == Level.TRIP and "degraded" in h.cause


def rack() -> RackCheck:
    return RackCheck(limits("lfp"), CAPACITY_AH, 2, MODULES, CELLS_PER_MODULE, CELLS)


def test_open_circuit_sensor_is_a_sensor_fault_not_a_fire_nor_a_cold_trip():
    r = rack()
    lim = limits("lfp")
    for k in range(20):
        v, t = frame(lim)
        if k >= 5:
            t[8] = -40.0 if k % 2 else 150.0                  # flapping open/short circuit
        verdict = r.step(k * 0.5, k * 0.5, v, t, 30.0, None, 50.0)
    assert verdict.level == Level.ALARM and not verdict.thermal
    assert "sensor fault: temperature 9" in verdict.cause
    assert verdict.thermal_status.level == Level.NORMAL
    assert verdict.ladder.level == Level.NORMAL


def test_sensor_jumping_to_a_hot_value_is_not_runaway():
    r = rack()
    lim = limits("lfp")
    for k in range(20):
        v, t = frame(lim)
        if k >= 5:
            t[8] = 95.0
        verdict = r.step(k * 0.5, k * 0.5, v, t, 30.0, None, 50.0)
    assert verdict.thermal_status.runaway_sensors == ()
    assert verdict.level == Level.ALARM and "jump" in verdict.cause


def test_real_runaway_is_reported_as_thermal_trip():
    r = rack()
    lim = limits("lfp")
    for k in range(12):
        v, t = frame(lim)
        t[8] = 25.0 + 2.0 * k * 0.5
        if k >= 8:
            v[8] -= 0.6
        verdict = r.step(k * 0.5, k * 0.5, v, t, 30.0, None, 50.0)
    assert verdict.level == Level.TRIP and verdict.thermal and "thermal runaway" in verdict.cause
