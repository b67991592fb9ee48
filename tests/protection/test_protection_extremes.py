"""Protection of racks that report only min/max cell data (SunSpec 802/803): which data a rack is
checked on comes from its register map; the ladders, derating and dT/dt run on the extremes and name
the point; a rack without temperatures derates by its BMS's own limits; missing or stale extremes are
the rack's safe state."""
from __future__ import annotations

import numpy as np
import pytest

from app.core.clock import ManualClock
from app.core.commands import CommandRouter
from app.core.databus import DataBus
from app.core.errors import ConfigError
from app.core.events import EventJournal
from app.core.sample import Sample
from app.protection.cell_source import TEMPERATURE_EXTREMES, VOLTAGE_EXTREMES, CellSource
from app.protection.ladder import Level
from app.protection.rack_check import RackCheck
from app.protection.thread import ProtectionThread
from drivers.modbus.regmap import load_regmap
from drivers.registry import rack_points
from protection_cases import CAPACITY_AH, CELLS_PER_MODULE, MODULES, limits
from support import make_site

ON_802 = CellSource(VOLTAGE_EXTREMES, ())
ON_803 = CellSource(VOLTAGE_EXTREMES, TEMPERATURE_EXTREMES)


@pytest.mark.parametrize("regmap, source", [("rack_generic", CellSource()), ("sunspec_802", ON_802),
                                            ("sunspec_803", ON_803), ("sunspec_805", CellSource())])
def test_the_register_map_decides_what_a_rack_is_checked_on(regmap, source):
    assert CellSource.of({f.point for f in load_regmap(regmap).fields}, "rack") == source


def test_a_rack_reporting_no_cell_voltages_cannot_be_protected():
    with pytest.raises(ConfigError, match="site.bess1.rack01 .*: reports neither cell_voltages_v nor"):
        CellSource.of({"soc_pct", "max_cell_voltage_v"}, "site.bess1.rack01 (register map 'x')")


def _check(source: CellSource) -> RackCheck:
    return RackCheck(limits("lfp"), CAPACITY_AH, 1, MODULES, CELLS_PER_MODULE, MODULES * CELLS_PER_MODULE, source)


def _run(check: RackCheck, seconds: float, volts, temps, current_a: float = 0.0, limits_a=None, t0: float = 0.0,
         temp_rate_c_per_s: float = 0.0):
    verdict = None
    for k in range(int(seconds / 0.5) + 1):
        t = t0 + 0.5 * k
        temps_now = np.asarray(temps, np.float32) + np.float32(temp_rate_c_per_s * 0.5 * k)
        verdict = check.step(t, t, np.asarray(volts, np.float32), temps_now, current_a, 3.3 * 64, 50.0,
                             bms_current_limits_a=limits_a)
    return verdict


def test_an_overvoltage_on_the_max_trips_and_the_cause_names_the_point():
    check = _check(ON_803)
    v = _run(check, 1.0, [3.30, 3.35], [24.0, 26.0])
    assert v.level == Level.NORMAL and v.derating.ccl_reason == "CCL 140 A: not derated"
    v = _run(check, 12.0, [3.30, 3.70], [24.0, 26.0], t0=2.0)
    assert v.level == Level.TRIP
    assert v.cause == "cell overvoltage: max_cell_voltage_v at 3.700 V (limit 3.650 V)"
    assert check.reading("cell_overvoltage", v.ladder["cell_overvoltage"].index) == "max_cell_voltage_v"
    assert v.derating.ccl_a == 0.0 and v.derating.ccl_reason == "CCL 0 A: max_cell_voltage_v at 3.70 V"


def test_undervoltage_and_overtemperature_name_the_min_voltage_and_the_max_temperature():
    check = _check(ON_803)
    v = _run(check, 12.0, [2.40, 3.30], [25.0, 25.0])
    assert v.cause.startswith("cell undervoltage: min_cell_voltage_v at 2.400 V")
    check = _check(ON_803)
    v = _run(check, 20.0, [3.30, 3.31], [25.0, 70.0], current_a=-50.0)
    assert "discharge overtemperature: max_temperature_c at 70.0 C" in v.cause
    assert check.reading("discharge_overtemperature", v.ladder["discharge_overtemperature"].index) == \
        "max_temperature_c"


def test_dt_dt_runs_on_the_max_temperature():
    check = _check(ON_803)
    v = _run(check, 60.0, [3.30, 3.31], [25.0, 25.0], temp_rate_c_per_s=3.0 / 60)       # 3 C/min
    assert v.thermal_status.level == Level.ALARM and "C/min at max_temperature_c" in v.thermal_status.cause


def test_without_temperatures_derating_follows_the_bms_limits_and_no_limit_means_zero():
    check = _check(ON_802)
    v = _run(check, 1.0, [3.30, 3.32], [], limits_a=(60.0, 280.0))
    assert v.level == Level.NORMAL and v.sensors.level == Level.NORMAL
    assert v.derating.ccl_a == pytest.approx(60.0) and v.derating.ccl_reason == \
        "CCL 60 A: BMS limit 60 A (no cell temperatures)"
    assert v.derating.dcl_a == pytest.approx(280.0)
    assert all(np.isnan(v.ladder[q].value) for q in ("charge_overtemperature", "temperature_spread"))
    v = _run(check, 1.0, [3.30, 3.32], [], limits_a=(float("nan"), float("nan")), t0=2.0)
    assert (v.derating.ccl_a, v.derating.dcl_a) == (0.0, 0.0)
    assert v.derating.ccl_reason == "CCL 0 A: no BMS current limit (no cell temperatures)"


def test_an_implausible_extreme_is_a_sensor_fault_that_trips():
    check = _check(ON_802)
    _run(check, 1.0, [3.30, 3.32], [], limits_a=(60.0, 60.0))
    v = _run(check, 0.0, [3.30, float("nan")], [], limits_a=(60.0, 60.0), t0=2.0)
    assert v.level == Level.TRIP and v.cause == "sensors degraded: 1 voltage and 0 temperature sensors faulty"
    assert [(f.kind, f.index, f.fault) for f in v.sensors.faults] == [("voltage", 1, "open_circuit")]


def _thread(tmp_path):
    site = make_site(tmp_path, racks=2, rack_regmap="sunspec_802")
    clock = ManualClock()
    bus = DataBus()
    protection = ProtectionThread(site, bus, CommandRouter(), EventJournal(), clock, rack_points(site))
    return protection, bus, clock


def _publish(bus: DataBus, clock: ManualClock, rack: str, skip: str = "") -> None:
    values = {"min_cell_voltage_v": 3.30, "max_cell_voltage_v": 3.32, "pack_voltage_v": 52.9, "current_a": 0.0,
              "soc_pct": 50.0, "charge_current_limit_a": 50.0, "discharge_current_limit_a": 50.0,
              "contactor_closed": 1}
    bus.publish_many((f"{rack}.{p}", Sample(v, clock.time(), clock.monotonic(), clock.time()))
                     for p, v in values.items() if p != skip)


def test_an_802_rack_runs_normal_on_its_extremes_and_a_stale_extreme_is_its_safe_state(tmp_path):
    protection, bus, clock = _thread(tmp_path)
    racks = [g.rack.path for g in protection.guards]
    for rack in racks:
        _publish(bus, clock, rack)
    protection.cycle(clock.monotonic())
    assert [bus.get(f"{r}.protection_state").value for r in racks] == ["NORMAL", "NORMAL"]
    assert bus.get("site.pcs1.protection_hold").value is False
    assert bus.get(f"{racks[0]}.ccl_reason").value == "CCL 50 A: not derated"
    clock.advance(2.0)
    _publish(bus, clock, racks[0], skip="min_cell_voltage_v")
    _publish(bus, clock, racks[1])
    protection.cycle(clock.monotonic())
    assert [bus.get(f"{r}.protection_state").value for r in racks] == ["STALE", "NORMAL"]
    assert bus.get("site.pcs1.protection_hold").value is True
    fault = protection.alarms.view(f"{racks[0]}.data_fault")
    assert fault.point == f"{racks[0]}.min_cell_voltage_v" and "stale 2.0 s > 1.0 s" in fault.message
