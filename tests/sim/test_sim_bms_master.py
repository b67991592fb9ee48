"""BMS masters aggregate their slave racks: currents, SOC, extreme cells with their location, online."""
from __future__ import annotations

import numpy as np
import pytest

from app.sim.plant import Plant
from app.sim.plant_faults import PlantFaultInjector
from sim_site import sim_site


def test_master_sums_the_currents_and_locates_the_extreme_cells():
    plant = Plant(sim_site(racks=3, modules=4, cells=4), seed=1)
    plant.pcs["pcs1"].setpoint_kw = -3.0
    plant.step(5.0)
    r2 = plant.racks["site.bess1.rack02"]
    r2.temp_c = np.where(np.arange(16) == 6, 41.0, r2.temp_c)               # module 2, cell 3
    plant.inject_cell_offset("site.bess1.rack03", 13, -0.4)                # module 4, cell 1
    s = plant.masters["bess1"].summary()
    assert (s.racks, s.racks_online, s.racks_closed, s.cells) == (3, 3, 3, 48)
    assert s.current_a == pytest.approx(sum(r.current_a for r in plant.racks.values()))
    assert s.current_a == pytest.approx(plant.pcs["pcs1"].dc_current_a)
    assert s.max_temp_c.value == 41.0
    assert (s.max_temp_c.rack, s.max_temp_c.cell) == ("site.bess1.rack02", 7)
    assert s.max_temp_c.point == "site.bess1.rack02.module02.cell003.temperature_c"
    assert s.min_cell_v.point == "site.bess1.rack03.module04.cell001.voltage_v"
    assert s.min_cell_v.value == pytest.approx(plant.racks["site.bess1.rack03"].cell_voltages()[12])
    charge = sum(float(r.soc @ r.capacity_ah) for r in plant.racks.values())
    assert s.soc_pct == pytest.approx(100 * charge / sum(r.capacity_ah.sum() for r in plant.racks.values()))


def test_a_rebooting_slave_is_offline_and_left_out_of_the_extremes():
    plant = Plant(sim_site(racks=2), seed=2)
    faults = PlantFaultInjector(plant)
    plant.inject_cell_offset("site.bess1.rack02", 1, 0.3)
    faults.inject("bms_reboot:rack=site.bess1.rack02,seconds=5")
    s = plant.masters["bess1"].summary()
    assert (s.racks_online, s.racks_closed) == (1, 1)
    assert s.min_cell_v.value > 3.0 and s.max_cell_v.rack == "site.bess1.rack01"   # no zeros, no rack 2
    plant.step(6.0)
    s = plant.masters["bess1"].summary()
    assert s.racks_online == 2 and s.max_cell_v.rack == "site.bess1.rack02"


def test_fifty_thousand_cells_across_five_masters():
    plant = Plant(sim_site(bess=5, racks=10, modules=20, cells=50, capacity_ah=280.0), seed=3)
    assert sum(len(r.soc) for r in plant.racks.values()) == 50_000
    for pcs in plant.pcs.values():
        pcs.setpoint_kw = 0.3 * pcs.pcs.rated_power_kw
    for _ in range(5):
        plant.step(1.0)
    for b, master in plant.masters.items():
        s = master.summary()
        assert s.cells == 10_000 and s.racks_online == 10
        assert s.current_a == pytest.approx(plant.pcs[b.replace("bess", "pcs")].dc_current_a)
        assert s.current_a > 0
