"""Thermal runaway tiers: dT/dt warn/alarm, runaway only after > 3 s of >= 1 C/s with a voltage
drop or over-temperature, gas raising the level, faulty sensors excluded, latch."""
from __future__ import annotations

import numpy as np

from app.protection.ladder import Level
from app.protection.thermal import ThermalMonitor
from protection_cases import CELLS, frame, limits

HOT = 9


def run(mon: ThermalMonitor, seconds: float, rate_c_per_s: float, *, start: float = 0.0, temp0: float = 25.0,
        drop_v: float = 0.0, step: float = 1.0, ok=None, **gas):
    """Feed frames every `step` s; sensor HOT rises at rate_c_per_s; return the last status."""
    lim = limits("lfp")
    status = None
    k = 0
    while k * step <= seconds + 1e-9:
        now = start + k * step
        v, t = frame(lim)
        t[HOT] = temp0 + rate_c_per_s * k * step
        v[HOT] -= drop_v if k * step >= seconds else 0.0
        status = mon.update(now, now, t, v, ok, **gas)
        k += 1
    return status


def monitor() -> ThermalMonitor:
    return ThermalMonitor(limits("lfp").thermal, CELLS, CELLS)


def test_steady_temperatures_are_normal():
    assert run(monitor(), 120, 0.0).level == Level.NORMAL


def test_one_and_a_half_degrees_per_minute_warns():
    s = run(monitor(), 120, 1.5 / 60)
    assert s.level == Level.WARN and s.index == HOT
    assert s.rate_c_per_min == np.float32(1.5) or abs(s.rate_c_per_min - 1.5) < 0.05
    assert "dT/dt 1.5 C/min at sensor 10" in s.cause


def test_three_degrees_per_minute_alarms():
    assert run(monitor(), 120, 3.0 / 60).level == Level.ALARM


def test_fast_rise_without_voltage_drop_or_overtemperature_is_not_runaway():
    s = run(monitor(), 10, 1.5)             # 25 -> 40 C: below the 60 C runaway temperature
    assert s.level == Level.ALARM and s.runaway_sensors == ()


def test_fast_rise_with_voltage_drop_is_runaway_only_after_more_than_three_seconds():
    at_three = run(monitor(), 3.0, 2.0, drop_v=0.5)
    assert at_three.level < Level.TRIP
    s = run(monitor(), 3.5, 2.0, drop_v=0.5, step=0.5)
    assert s.level == Level.TRIP and s.runaway_sensors == (HOT,)
    assert "thermal runaway: sensor 10" in s.cause and "voltage drop" in s.cause


def test_small_voltage_drop_is_not_enough():
    assert run(monitor(), 5.0, 2.0, drop_v=0.1).level < Level.TRIP


def test_fast_rise_into_overtemperature_is_runaway():
    s = run(monitor(), 5.0, 2.0, temp0=52.0)
    assert s.level == Level.TRIP and "C" in s.cause


def test_runaway_latches_until_reset():
    mon = monitor()
    run(mon, 5.0, 2.0, drop_v=0.5)
    lim = limits("lfp")
    v, t = frame(lim)
    assert mon.update(100.0, 100.0, t, v).level == Level.TRIP
    mon.reset()
    assert mon.update(101.0, 101.0, t, v).runaway_sensors == ()


def test_faulty_sensor_is_excluded_from_the_vote():
    ok = np.ones(CELLS, dtype=bool)
    ok[HOT] = False
    s = run(monitor(), 5.0, 2.0, drop_v=0.5, ok=ok)
    assert s.level == Level.NORMAL


def test_gas_raises_the_level_and_confirms_runaway_with_heating():
    lim = limits("lfp").thermal
    assert run(monitor(), 10, 0.0, h2_ppm=lim.h2_warn_ppm * 2).level == Level.WARN
    assert run(monitor(), 10, 0.0, co_ppm=lim.co_alarm_ppm * 2).level == Level.ALARM
    s = run(monitor(), 120, 3.0 / 60, h2_ppm=lim.h2_alarm_ppm * 2)
    assert s.level == Level.TRIP and "gas alarm" in s.cause


def test_fewer_sensors_than_cells_map_to_their_cells():
    lim = limits("lfp")
    mon = ThermalMonitor(lim.thermal, 4, CELLS)             # 16 cells per sensor
    for k in range(12):
        v, t = frame(lim)
        t4 = np.full(4, 25.0, dtype=np.float32)
        t4[1] = 25.0 + 2.0 * k * 0.5
        if k * 0.5 >= 4.0:
            v[16 + 5] -= 0.5                                 # a cell of sensor 2's group drops
        s = mon.update(k * 0.5, k * 0.5, t4, v)
    assert s.runaway_sensors == (1,)
