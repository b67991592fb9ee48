import math

import numpy as np
from hypothesis import given, strategies as st

from app.aggregator import BessAggregator
from app.core.aggregate import PackReading, aggregate
from app.core.clock import ManualClock
from app.core.databus import DataBus
from app.core.sample import Quality, Sample, vector
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
