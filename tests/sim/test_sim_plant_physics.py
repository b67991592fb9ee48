"""The plant's cells, racks and PCS behave like the physics says (no links: the pure model)."""
from __future__ import annotations

import numpy as np
import pytest

from app.sim.plant import Plant
from sim_site import sim_site

RACK1, RACK2 = "site.bess1.rack01", "site.bess1.rack02"


def _no_hvac(plant: Plant) -> None:
    for r in plant.racks.values():
        r.thermal.hvac_enabled = False


def test_charging_raises_soc_and_cell_voltages():
    plant = Plant(sim_site(), seed=1)
    rack = plant.racks[RACK1]
    soc0, v0 = rack.soc.copy(), rack.cell_voltages().copy()
    plant.pcs["pcs1"].setpoint_kw = plant.pcs["pcs1"].pcs.rated_power_kw
    for _ in range(600):
        plant.step(1.0)
    assert rack.current_a > 0
    assert np.all(rack.soc > soc0 + 0.05)
    assert np.all(rack.cell_voltages() > v0)


def test_coulomb_count_matches_the_soc_change():
    plant = Plant(sim_site(), seed=2)
    plant.pcs["pcs1"].setpoint_kw = -2.0
    rack = plant.racks[RACK1]
    charge0 = rack.soc * rack.capacity_ah
    counted_ah = 0.0
    for _ in range(1800):
        plant.step(2.0)
        counted_ah += rack.current_a * 2.0 / 3600.0
    assert counted_ah < -4.0
    # every series cell carries the rack current, and loses its own self-discharge on top
    self_discharge_ah = rack.self_discharge_per_s * 3600.0 * rack.capacity_ah
    assert np.allclose(rack.soc * rack.capacity_ah - charge0, counted_ah - self_discharge_ah, rtol=0, atol=1e-9)


def test_heating_goes_with_the_square_of_the_current_and_decays_to_ambient():
    plant = Plant(sim_site(), seed=3)
    _no_hvac(plant)
    a, b = plant.racks[RACK1], plant.racks[RACK2]
    a.temp_c = np.full(16, 25.0)
    b.temp_c = np.full(16, 25.0)
    for _ in range(60):
        a.current_a, b.current_a = 50.0, 100.0
        a.step(1.0, 25.0)
        b.step(1.0, 25.0)
    rise_a, rise_b = a.temp_c.mean() - 25.0, b.temp_c.mean() - 25.0
    assert rise_a > 0.002
    assert rise_b / rise_a == pytest.approx(4.0, rel=0.05)
    for _ in range(1800):                    # an hour at 1C, then rest for two days
        b.current_a = 100.0
        b.step(2.0, 25.0)
    assert b.temp_c.max() > 28.0
    b.current_a = 0.0
    b.step(48 * 3600.0, 25.0)
    assert np.all(np.abs(b.temp_c - 25.0) < 0.3)


def test_neighbour_coupling_spreads_heat_along_the_module():
    plant = Plant(sim_site(modules=2, cells=8), seed=4)
    _no_hvac(plant)
    rack = plant.racks[RACK1]
    temps = np.full(16, 25.0)
    temps[3] = 60.0                          # module 1, cell 4
    rack.temp_c = temps
    rack.step(600.0, 25.0)
    rise = rack.temp_c - 25.0
    assert rise[3] < 35.0 - 1.0                           # it lost heat ...
    assert rise[2] > 1.0 and rise[4] > 1.0                # ... to its neighbours in the row
    assert rise[2] > 3 * rise[0] and rise[4] > 3 * rise[7]   # less and less further away
    assert rise[2] > 10 * rise[8 + 2]                     # and hardly to module 2 (only through the air)


def test_hvac_cools_a_warm_rack_below_a_hot_day_and_not_when_it_fails():
    plant = Plant(sim_site(), seed=5, ambient_c=35.0)
    cooled, failed = plant.racks[RACK1], plant.racks[RACK2]
    failed.thermal.hvac_enabled = False
    for r in (cooled, failed):
        r.contactor_closed = False
        r.temp_c = np.full(16, 35.0)
    for _ in range(36):
        plant.step(600.0)
    assert cooled.temp_c.max() < 30.5          # within the thermostat's band (on at 30 C, off at 26 C)
    assert failed.temp_c.min() > 34.5 and not failed.thermal.hvac_on


def test_cold_cells_show_a_higher_resistance():
    plant = Plant(sim_site(), seed=6)
    cold, warm = plant.racks[RACK1], plant.racks[RACK2]
    for r, t in ((cold, 10.0), (warm, 25.0)):
        r.temp_c = np.full(16, t)
        r.soc = np.full(16, 0.5)
    rest_cold, rest_warm = cold.cell_voltages().copy(), warm.cell_voltages().copy()
    cold.current_a = warm.current_a = 50.0
    rise_cold = (cold.cell_voltages() - rest_cold) / cold.r0_ohm
    rise_warm = (warm.cell_voltages() - rest_warm) / warm.r0_ohm
    assert np.allclose(rise_cold / rise_warm, 1.22, rtol=1e-3)   # the LFP table's factor at 10 C


def test_large_steps_stay_stable_and_agree_with_small_steps():
    fine, coarse = Plant(sim_site(), seed=7), Plant(sim_site(), seed=7)
    for p in (fine, coarse):
        p.pcs["pcs1"].setpoint_kw = 2.0
        _no_hvac(p)
    for _ in range(1440):
        fine.step(5.0)
    for _ in range(36):
        coarse.step(200.0)                   # x1000 with the simulator's 0.2 s step
    for path in (RACK1, RACK2):
        f, c = fine.racks[path], coarse.racks[path]
        assert np.allclose(f.soc, c.soc, atol=2e-3)
        assert np.allclose(f.temp_c, c.temp_c, atol=0.3)
    coarse.step(7 * 86400.0)                 # a week in one call: sub-stepped, bounded
    for r in coarse.racks.values():
        assert np.all(np.isfinite(r.cell_voltages()))
        assert np.all((r.soc >= 0.0) & (r.soc <= 1.0))
        assert 20.0 < r.temp_c.min() and r.temp_c.max() < 60.0


def test_cell_spread_is_seeded():
    a, b, c = (Plant(sim_site(), seed=s).racks[RACK1] for s in (11, 11, 12))
    assert np.array_equal(a.capacity_ah, b.capacity_ah) and np.array_equal(a.r0_ohm, b.r0_ohm)
    assert not np.array_equal(a.capacity_ah, c.capacity_ah)
    assert 0.002 < np.std(a.capacity_ah / 100.0) < 0.03
    assert 0.01 < np.std(a.r0_ohm) / np.mean(a.r0_ohm) < 0.1


def test_self_discharge_differs_from_cell_to_cell():
    plant = Plant(sim_site(), seed=8)
    rack = plant.racks[RACK1]
    rack.soc = np.full(16, 0.8)
    rack.step(10 * 86400.0, 25.0)
    lost = 0.8 - rack.soc                    # median 3 %/month
    assert np.all(lost > 0.002) and np.all(lost < 0.03)
    assert lost.max() - lost.min() > 0.004


def test_an_open_contactor_carries_no_current_and_without_dc_the_pcs_gives_nothing():
    plant = Plant(sim_site(), seed=9)
    pcs = plant.pcs["pcs1"]
    pcs.setpoint_kw = 3.0
    plant.racks[RACK2].contactor_closed = False
    plant.step(5.0)
    assert plant.racks[RACK2].current_a == 0.0 and plant.racks[RACK1].current_a > 0
    assert pcs.power_kw == pytest.approx(3.0)
    plant.racks[RACK1].contactor_closed = False
    plant.step(1.0)
    assert pcs.power_kw == 0.0 and pcs.dc_current_a == 0.0


def test_pcs_ramps_and_stays_within_its_rating():
    plant = Plant(sim_site(), seed=10)
    pcs = plant.pcs["pcs1"]
    pcs.ramp_kw_per_s = 2.0
    pcs.setpoint_kw = 10 * pcs.pcs.rated_power_kw
    plant.step(1.0)
    assert pcs.power_kw == pytest.approx(2.0)
    plant.step(60.0)
    assert pcs.power_kw == pytest.approx(pcs.pcs.rated_power_kw)
    pcs.setpoint_kvar = 100.0
    plant.step(1.0)
    assert pcs.power_kw ** 2 + pcs.reactive_kvar ** 2 <= pcs.pcs.rated_power_kw ** 2 + 1e-6


def test_parallel_racks_share_the_dc_current_by_their_state():
    plant = Plant(sim_site(), seed=11)
    low, high = plant.racks[RACK1], plant.racks[RACK2]
    low.soc, high.soc = np.full(16, 0.15), np.full(16, 0.85)
    plant.step(1.0)                          # idle PCS: the fuller rack charges the emptier one
    assert low.current_a > 1.0 and high.current_a == pytest.approx(-low.current_a)
    pcs = plant.pcs["pcs1"]
    pcs.setpoint_kw = -4.0
    plant.step(10.0)
    assert low.current_a + high.current_a == pytest.approx(pcs.dc_current_a)
    assert pcs.dc_voltage_v * pcs.dc_current_a == pytest.approx(pcs.dc_power_w(), rel=1e-6)
    assert pcs.dc_power_w() == pytest.approx(-4000.0 / pcs.efficiency)


def test_pcs_tapers_charging_at_the_top_of_the_battery_and_overcharged_cells_show_it():
    plant = Plant(sim_site(), seed=12)
    pcs = plant.pcs["pcs1"]
    pcs.setpoint_kw = pcs.pcs.rated_power_kw
    for _ in range(200):
        plant.step(60.0)
    assert pcs.power_kw < 0.05 * pcs.pcs.rated_power_kw
    for r in plant.racks.values():
        assert np.all(r.true_soc > 0.97) and np.all(r.true_soc < 1.04)
        over = r.true_soc > 1.0              # past the table: the cell voltage runs away (no charge clipped)
        assert np.all(r.cell_voltages()[over] > r.chem.v_max) and np.all(r.soc <= 1.0)


def test_commanded_cells_bleed_through_their_resistor_and_its_heat_stays_off_the_cell():
    plant = Plant(sim_site(racks=1, capacity_ah=10.0), seed=4)
    _no_hvac(plant)
    rack = plant.racks[RACK1]
    rack.current_a = 0.0
    rack.soc = np.full(16, 0.6)
    rack.temp_c = np.full(16, 25.0)
    rack.self_discharge_per_s[:] = 0.0
    rack.command_bleed((3, 9))
    v = rack.true_cell_voltages()[[2, 8]]
    assert v == pytest.approx(rack.chem.ocv(0.6, 25.0) * np.ones(2), abs=0.01)      # a small IR drop only
    for _ in range(360):
        rack.step(10.0, 25.0)
    drained_ah = (0.6 - rack.soc) * rack.capacity_ah
    assert drained_ah[[2, 8]] == pytest.approx(v / rack.bleed_resistor_ohm, rel=0.02)  # V/R for an hour
    assert np.all(np.delete(drained_ah, [2, 8]) == 0.0)
    resistor_k = v * v / rack.bleed_resistor_ohm * 3600.0 / rack.thermal.heat_capacity_j_per_k[[2, 8]]
    assert np.all(rack.temp_c[[2, 8]] - 25.0 < 0.01 * resistor_k)         # only the cell's own I^2 R
    rack.reboot(3600.0)                                                               # the BMS is down:
    soc = rack.true_soc.copy()
    rack.step(600.0, 25.0)
    assert np.array_equal(rack.true_soc, soc)                                         # no bleeding
    rack.reboot(0.0)
    rack.command_bleed(())
    rack.step(600.0, 25.0)
    assert np.array_equal(rack.true_soc, soc)
