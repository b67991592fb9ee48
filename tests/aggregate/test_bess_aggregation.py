import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from app.aggregator import BessAggregator
from app.core.aggregate import PackReading, aggregate
from app.core.clock import ManualClock
from app.core.databus import DataBus
from app.core.sample import Quality, Sample, vector
from app.protection.cell_source import cell_sources
from drivers.registry import rack_points
from support import make_site


def test_currents_add_extremes_keep_their_location_and_the_weakest_pack_limits():
    packs = [PackReading("site.b.rack01", 10.0, 50.0, np.array([3.30, 3.41, 3.29]), 100.0, 120.0, 58.4, 44.0),
             PackReading("site.b.rack02", 12.0, 55.0, np.array([3.31, 3.32, 3.10]), 60.0, 150.0, 57.6, 46.0)]
    out = aggregate(packs, total=3)
    assert out["current_a"] == 22.0 and out["packs_online"] == 2 and out["packs_total"] == 3
    assert out["max_cell"] == "site.b.rack01#2" and out["max_cell_voltage_v"] == 3.41
    assert out["min_cell"] == "site.b.rack02#3" and out["min_cell_voltage_v"] == 3.10
    assert out["charge_current_limit_a"] == 120.0                   # 2 x the weakest 60 A
    assert out["charge_current_limit_by"] == "site.b.rack02"
    assert out["discharge_current_limit_a"] == 240.0
    assert out["charge_voltage_limit_v"] == 57.6 and out["discharge_voltage_limit_v"] == 46.0


@given(st.lists(st.floats(0, 500), min_size=1, max_size=8))
def test_bess_limit_never_exceeds_the_sum_nor_online_times_the_weakest(limits):
    packs = [PackReading(f"p{i}", charge_current_limit_a=x) for i, x in enumerate(limits)]
    out = aggregate(packs, len(packs))
    assert out["charge_current_limit_a"] <= sum(limits) + 1e-9
    assert out["charge_current_limit_a"] <= len(limits) * min(limits) + 1e-9


def test_no_pack_online_gives_nan_not_zero():
    out = aggregate([], total=4)
    assert out["packs_online"] == 0 and math.isnan(out["current_a"])


def test_worker_skips_racks_without_usable_data(tmp_path):
    site = make_site(tmp_path, racks=3, modules=1, cells=4)
    bus, clock = DataBus(), ManualClock()
    t = clock.time()
    for i, q in ((1, Quality.GOOD), (2, Quality.COMM_LOST), (3, Quality.GOOD)):
        rack = f"site.bess1.rack0{i}"
        bus.publish(f"{rack}.cell_voltages_v", Sample(vector([3.3, 3.3 + i / 100, 3.3, 3.3]), t, t, t, q))
        bus.publish(f"{rack}.current_a", Sample(5.0, t, t, t, q))
        bus.publish(f"{rack}.ccl_a", Sample(40.0 * i, t, t, t))
    BessAggregator(site, bus, clock).cycle()
    assert bus.get("site.bess1.packs_online").value == 2
    assert bus.get("site.bess1.current_a").value == 10.0
    assert bus.get("site.bess1.max_cell").value == "site.bess1.rack03#2"
    assert bus.get("site.bess1.charge_current_limit_a").value == 80.0


def _cycle(site, values: dict[str, object], quality=Quality.GOOD) -> DataBus:
    """One aggregator cycle over `values` (point suffix per rack path) with each rack's CellSource."""
    bus, clock = DataBus(), ManualClock()
    t = clock.time()
    for point, v in values.items():
        bus.publish(point, Sample(vector(v) if isinstance(v, list) else v, t, t, t, quality))
    BessAggregator(site, bus, clock, sources=cell_sources(site, rack_points(site))).cycle()
    return bus


def test_racks_reporting_only_extremes_are_online_with_their_extremes(tmp_path):
    site = make_site(tmp_path, racks=3, modules=1, cells=4, rack_regmap="sunspec_803")
    values = {}
    for i in (1, 2, 3):
        rack = f"site.bess1.rack0{i}"
        values |= {f"{rack}.min_cell_voltage_v": 3.30 - i / 100, f"{rack}.max_cell_voltage_v": 3.32 + i / 100,
                   f"{rack}.min_temperature_c": 20.0 + i, f"{rack}.max_temperature_c": 30.0 - i}
    del values["site.bess1.rack03.max_cell_voltage_v"]                 # rack03 misses an extreme: offline
    bus = _cycle(site, values)
    got = {k: bus.get(f"site.bess1.{k}").value for k in ("packs_online", "max_cell_voltage_v", "max_cell",
                                                         "min_cell_voltage_v", "min_cell", "max_temperature_c",
                                                         "max_temperature_at", "min_temperature_c",
                                                         "min_temperature_at")}
    assert got == {"packs_online": 2, "max_cell_voltage_v": pytest.approx(3.34),
                   "max_cell": "site.bess1.rack02.max_cell_voltage_v", "min_cell_voltage_v": pytest.approx(3.28),
                   "min_cell": "site.bess1.rack02.min_cell_voltage_v", "max_temperature_c": 29.0,
                   "max_temperature_at": "site.bess1.rack01.max_temperature_c", "min_temperature_c": 21.0,
                   "min_temperature_at": "site.bess1.rack01.min_temperature_c"}


@pytest.mark.parametrize("options, sensors, hottest, coldest", [
    ({"bms_ble": 'protocol = "jbd"', "racks": 1}, {"rack01": [24.0, 31.5]},            # one pack, two probes
     "rack01.temperatures_c[2]", "rack01.temperatures_c[1]"),
    ({"bms_can": True, "can_options": "cell_temperature_frames = false", "racks": 2},   # 0x356: one each
     {"rack01": [24.0], "rack02": [31.5]}, "rack02.temperatures_c[1]", "rack01.temperatures_c[1]"),
])
def test_pack_sensors_give_the_temperature_extremes_of_ble_and_can_packs(tmp_path, options, sensors, hottest,
                                                                         coldest):
    site = make_site(tmp_path, modules=2, cells=4, **options)
    values = {}
    for rack, temps in sensors.items():
        values |= {f"site.bess1.{rack}.cell_voltages_v": [3.3] * 8, f"site.bess1.{rack}.temperatures_c": temps}
    bus = _cycle(site, values)
    assert bus.get("site.bess1.packs_online").value == len(sensors)
    assert (bus.get("site.bess1.max_temperature_c").value, bus.get("site.bess1.max_temperature_at").value) == \
        (31.5, f"site.bess1.{hottest}")
    assert (bus.get("site.bess1.min_temperature_c").value, bus.get("site.bess1.min_temperature_at").value) == \
        (24.0, f"site.bess1.{coldest}")
    assert bus.get("site.bess1.max_cell").value == "site.bess1.rack01#1"


def test_no_rack_online_publishes_no_extremes_rather_than_keeping_old_ones(tmp_path):
    site = make_site(tmp_path, racks=2, modules=1, cells=4)
    bus = _cycle(site, {"site.bess1.rack01.cell_voltages_v": [3.3] * 4}, Quality.COMM_LOST)
    assert bus.get("site.bess1.packs_online").value == 0
    assert math.isnan(bus.get("site.bess1.max_cell_voltage_v").value) and bus.get("site.bess1.max_cell").value == ""
    assert math.isnan(bus.get("site.bess1.min_temperature_c").value)
