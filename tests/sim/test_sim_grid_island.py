"""The site's power balance at the grid connection; on grid loss a blackout unless the site is islanded
(commanded: breaker open, PCS grid-forming, loads back; or by PCS with automatic islanding); resync."""
from __future__ import annotations

import numpy as np
import pytest

from app.sim.plant import NOMINAL_HZ, SYNC_WINDOW_HZ, Plant
from app.sim.plant_faults import PlantFaultInjector
from sim_site import sim_site

NOON = 20_000 * 86400.0 + 12 * 3600.0
EVENING = NOON + 7 * 3600.0


def _plant(start: float, auto_island: bool = False) -> Plant:
    plant = Plant(sim_site(rated_kw=10.0), seed=1, start_time_s=start)
    plant.auto_island = auto_island
    return plant


def test_grid_import_is_load_minus_pv_plus_battery_charging():
    plant = _plant(NOON)
    plant.pcs["pcs1"].setpoint_kw = 4.0
    for _ in range(30):
        plant.step(1.0)
        assert plant.grid_import_kw == pytest.approx(plant.load_kw - plant.pv_kw + plant.pcs["pcs1"].power_kw)
    assert plant.pv_kw > 0.0 and plant.load_kw > 0.0 and plant.unserved_load_kw == 0.0
    assert abs(plant.grid_hz - NOMINAL_HZ) < 0.1 and plant.pcs["pcs1"].grid_hz == plant.grid_hz


def test_on_grid_loss_an_auto_islanding_pcs_islands_and_supplies_the_site_load_from_the_battery():
    plant = _plant(EVENING, auto_island=True)
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
    plant = _plant(NOON, auto_island=True)
    plant.profiles.load.peak_kw = 0.5        # a small load under the midday sun
    PlantFaultInjector(plant).inject("grid_loss")
    for _ in range(5):
        plant.step(1.0)
    assert plant.pv_kw > plant.load_kw
    assert plant.pcs["pcs1"].power_kw == pytest.approx(plant.pv_kw - plant.load_kw, rel=0.02)
    assert plant.grid_hz > NOMINAL_HZ


def test_grid_loss_without_a_working_pcs_is_a_blackout():
    plant = _plant(EVENING, auto_island=True)
    faults = PlantFaultInjector(plant)
    faults.inject("pcs_trip:pcs=pcs1")
    faults.inject("grid_loss")
    plant.step(1.0)
    assert plant.unserved_load_kw == plant.load_kw > 0.0
    assert plant.pv_kw == 0.0 and plant.grid_hz == 0.0 and plant.grid_v == 0.0
    assert plant.pcs["pcs1"].power_kw == 0.0


def test_when_the_grid_returns_an_auto_islanding_pcs_follows_its_setpoint_again():
    plant = _plant(EVENING, auto_island=True)
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


def test_grid_loss_with_the_breaker_closed_and_the_pcs_grid_following_blacks_the_site_out():
    plant = _plant(EVENING)
    pcs = plant.pcs["pcs1"]
    pcs.setpoint_kw = -3.0
    plant.step(5.0)
    PlantFaultInjector(plant).inject("grid_loss")
    plant.step(1.0)
    assert plant.breaker_closed and not pcs.island and pcs.state == "stopped" and pcs.state_code == 0
    assert pcs.power_kw == 0.0 and plant.unserved_load_kw == plant.load_kw > 0.0
    assert plant.grid_hz == plant.mains_hz == 0.0
    pcs.grid_forming = True                  # forming through the closed breaker onto the dead grid: nothing
    plant.step(1.0)
    assert not pcs.island and plant.unserved_load_kw == plant.load_kw


def _black_start(plant: Plant) -> None:
    """What the EMS does on grid loss: breaker open, loads off, PCS grid-forming, then loads back on."""
    plant.breaker_command = plant.feeder_closed = False
    plant.step(0.2)
    plant.pcs["pcs1"].grid_forming = True
    plant.step(1.0)
    pcs = plant.pcs["pcs1"]
    assert not plant.breaker_closed and pcs.island and pcs.state_code == 3
    assert pcs.power_kw == 0.0 and plant.grid_hz == NOMINAL_HZ and plant.grid_v > 0.0   # energised, no load
    assert plant.unserved_load_kw == plant.load_kw
    plant.feeder_closed = True
    plant.step(1.0)


def test_black_start_forms_the_island_at_nominal_and_the_battery_carries_load_minus_pv():
    plant = _plant(EVENING)
    pcs = plant.pcs["pcs1"]
    PlantFaultInjector(plant).inject("grid_loss")
    plant.step(1.0)
    _black_start(plant)
    demand = plant.load_kw - plant.pv_kw
    assert demand > 0.5 and pcs.power_kw == pytest.approx(-demand, rel=0.02)
    assert plant.unserved_load_kw < 0.02 * plant.load_kw and plant.grid_import_kw == 0.0
    assert plant.grid_hz < NOMINAL_HZ - 0.1             # the load pulls the frequency down the droop ...
    pcs.setpoint_kw = pcs.power_kw                      # ... until the reference follows it
    plant.step(0.2)
    assert plant.grid_hz == pytest.approx(NOMINAL_HZ, abs=0.05)


def test_breaker_close_waits_for_the_island_to_be_in_sync_with_the_grid():
    plant = _plant(EVENING)
    pcs = plant.pcs["pcs1"]
    faults = PlantFaultInjector(plant)
    fid = faults.inject("grid_loss")
    plant.step(1.0)
    _black_start(plant)
    faults.clear(fid)
    plant.step(1.0)
    assert plant.grid_connected and not plant.breaker_closed and pcs.island     # grid back, still an island
    assert abs(plant.grid_hz - plant.mains_hz) > SYNC_WINDOW_HZ
    plant.breaker_command = True
    for _ in range(3):
        plant.step(1.0)
        assert not plant.breaker_closed                 # the sync check holds the close
    pcs.setpoint_kw = pcs.power_kw                      # island back to nominal, within the window
    plant.step(0.2)
    plant.step(0.2)
    assert plant.breaker_closed and plant.grid_hz == plant.mains_hz
    assert pcs.state_code == 3                          # still grid-forming, on the grid now
    pcs.grid_forming, pcs.setpoint_kw = False, 2.0
    plant.step(5.0)
    assert pcs.state == "running" and pcs.power_kw == pytest.approx(2.0)
    assert plant.unserved_load_kw == 0.0
    assert plant.grid_import_kw == pytest.approx(plant.load_kw - plant.pv_kw + 2.0)


def test_breaker_closes_at_once_onto_a_dead_site_bus():
    plant = _plant(EVENING)
    faults = PlantFaultInjector(plant)
    fid = faults.inject("grid_loss")
    plant.breaker_command = False
    plant.step(1.0)
    faults.clear(fid)
    plant.step(1.0)
    assert not plant.breaker_closed and plant.unserved_load_kw == plant.load_kw
    plant.breaker_command = True
    plant.step(0.2)
    assert plant.breaker_closed and plant.unserved_load_kw == 0.0 and plant.pcs["pcs1"].state == "running"
