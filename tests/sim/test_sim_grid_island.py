"""The site's power balance at the grid connection, islanding on grid loss, blackout and return."""
from __future__ import annotations

import numpy as np
import pytest

from app.sim.plant import NOMINAL_HZ, Plant
from app.sim.plant_faults import PlantFaultInjector
from sim_site import sim_site

NOON = 20_000 * 86400.0 + 12 * 3600.0
EVENING = NOON + 7 * 3600.0


def _plant(start: float) -> Plant:
    return Plant(sim_site(rated_kw=10.0), seed=1, start_time_s=start)


def test_grid_import_is_load_minus_pv_plus_battery_charging():
    plant = _plant(NOON)
    plant.pcs["pcs1"].setpoint_kw = 4.0
    for _ in range(30):
        plant.step(1.0)
        assert plant.grid_import_kw == pytest.approx(plant.load_kw - plant.pv_kw + plant.pcs["pcs1"].power_kw)
    assert plant.pv_kw > 0.0 and plant.load_kw > 0.0 and plant.unserved_load_kw == 0.0
    assert abs(plant.grid_hz - NOMINAL_HZ) < 0.1 and plant.pcs["pcs1"].grid_hz == plant.grid_hz


def test_on_grid_loss_the_pcs_islands_and_supplies_the_site_load_from_the_battery():
    plant = _plant(EVENING)
    pcs = plant.pcs["pcs1"]
    pcs.setpoint_kw = 3.0                    # charging from the grid ...
    plant.step(5.0)
    faults = PlantFaultInjector(plant)
    faults.inject("grid_loss")
    for _ in range(10):
        plant.step(1.0)
    assert pcs.island and pcs.state == "island" and pcs.state_code == 3
    demand = plant.load_kw - plant.pv_kw
    assert demand > 0.5
    assert pcs.power_kw == pytest.approx(-demand, rel=0.02)   # ... now discharging into the site
    assert plant.grid_import_kw == 0.0 and plant.unserved_load_kw < 0.02 * plant.load_kw
    assert all(r.current_a < 0 for r in plant.racks.values())
    assert plant.grid_hz < NOMINAL_HZ and plant.grid_v > 0.0     # the PCS forms the grid with a droop


def test_island_surplus_pv_charges_the_battery():
    plant = _plant(NOON)
    plant.profiles.load.peak_kw = 0.5        # a small load under the midday sun
    PlantFaultInjector(plant).inject("grid_loss")
    for _ in range(5):
        plant.step(1.0)
    assert plant.pv_kw > plant.load_kw
    assert plant.pcs["pcs1"].power_kw == pytest.approx(plant.pv_kw - plant.load_kw, rel=0.02)
    assert plant.grid_hz > NOMINAL_HZ


def test_grid_loss_without_a_working_pcs_is_a_blackout():
    plant = _plant(EVENING)
    faults = PlantFaultInjector(plant)
    faults.inject("pcs_trip:pcs=pcs1")
    faults.inject("grid_loss")
    plant.step(1.0)
    assert plant.unserved_load_kw == plant.load_kw > 0.0
    assert plant.pv_kw == 0.0 and plant.grid_hz == 0.0 and plant.grid_v == 0.0
    assert plant.pcs["pcs1"].power_kw == 0.0


def test_when_the_grid_returns_the_pcs_follows_its_setpoint_again():
    plant = _plant(EVENING)
    pcs = plant.pcs["pcs1"]
    pcs.setpoint_kw = 2.0
    faults = PlantFaultInjector(plant)
    fid = faults.inject("grid_loss")
    plant.step(5.0)
    assert pcs.power_kw < 0.0
    faults.clear(fid)
    plant.step(0.5)
    assert not pcs.island and pcs.state == "running"
    plant.step(10.0)
    assert pcs.power_kw == pytest.approx(2.0)
    assert plant.grid_import_kw == pytest.approx(plant.load_kw - plant.pv_kw + 2.0)
    assert np.isclose(plant.grid_hz, NOMINAL_HZ, atol=0.1)
