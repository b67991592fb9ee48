"""Every plant/cell fault shows its symptom in the plant's readings, and clears; specs parse strictly."""
from __future__ import annotations

import numpy as np
import pytest

from app.core.errors import UserError
from app.sim.plant import SENSOR_RAIL_V, Plant
from app.sim.plant_faults import FAULT_KINDS, PlantFault, PlantFaultInjector, parse_fault
from sim_site import sim_site

RACK = "site.bess1.rack01"


@pytest.fixture
def plant() -> Plant:
    return Plant(sim_site(), seed=5)


@pytest.fixture
def faults(plant) -> PlantFaultInjector:
    return PlantFaultInjector(plant)


def _others(values: np.ndarray, cell: int) -> np.ndarray:
    return np.delete(values, cell - 1)


def test_cell_drift_moves_one_cell_at_its_rate_and_clears(plant, faults):
    rack = plant.racks[RACK]
    fid = faults.inject(f"cell_drift:rack={RACK},cell=12,rate_v_per_min=0.02")
    before = rack.cell_voltages().copy()
    for _ in range(10):
        plant.step(60.0)
    moved = rack.cell_voltages() - before
    assert moved[11] == pytest.approx(0.2, abs=0.01)
    assert np.all(np.abs(_others(moved, 12)) < 0.01)
    faults.clear(fid)
    assert abs(rack.cell_voltages()[11] - before[11]) < 0.01


def test_internal_short_heats_sags_and_drains_the_cell(plant, faults):
    rack = plant.racks[RACK]
    rack.soc = np.full(16, 0.15)              # on the slope of the LFP curve, where charge shows
    faults.inject(f"internal_short:rack={RACK},cell=5,ohms=0.2")
    for _ in range(60):
        plant.step(60.0)
    v, t, soc = rack.cell_voltages(), rack.temp_c, rack.soc
    assert v[4] < _others(v, 5).min() - 0.02
    assert t[4] > _others(t, 5).max() + 1.0
    assert soc[4] < _others(soc, 5).min() - 0.1


def test_thermal_runaway_accelerates_past_1_c_per_min_then_1_c_per_s(plant, faults):
    rack = plant.racks[RACK]
    faults.inject(f"thermal_runaway:rack={RACK},cell=9")
    v0 = rack.cell_voltages()[8]
    t_prev, gas = rack.temp_c[8], []
    minute = second = None
    for k in range(1, 4 * 3600):
        plant.step(1.0)
        t = rack.temp_c[8]
        rate, t_prev = t - t_prev, t
        gas.append(rack.gas_h2_ppm)
        if minute is None and rate > 1.0 / 60.0:
            minute, v_minute = k, rack.cell_voltages()[8]
        if second is None and rate > 1.0:
            second, v_second = k, rack.cell_voltages()[8]
            break
    assert minute is not None and second is not None and 60 < minute < second
    assert gas[minute] > 10.0 and gas[second - 1] > gas[minute] and rack.gas_co_ppm > 0.0
    assert gas[minute // 2] < gas[minute]
    assert v0 - 0.02 < v_minute and v_second < v0 - 0.3          # voltage collapsing as the separator fails
    for _ in range(600):
        plant.step(1.0)
    assert rack.dead[8] and rack.cell_voltages()[8] < 0.05


@pytest.mark.parametrize("kind, reading", [("sensor_open", SENSOR_RAIL_V), ("sensor_zero", 0.0)])
def test_open_and_zero_voltage_sensors_read_their_value(plant, faults, kind, reading):
    rack = plant.racks[RACK]
    fid = faults.inject(f"{kind}:rack={RACK},cell=3")
    plant.step(1.0)
    v = rack.cell_voltages()
    assert v[2] == reading and np.all((_others(v, 3) > 3.0) & (_others(v, 3) < 3.6))
    faults.clear(fid)
    assert 3.0 < rack.cell_voltages()[2] < 3.6


def test_a_stuck_sensor_holds_while_the_cell_charges(plant, faults):
    rack = plant.racks[RACK]
    plant.pcs["pcs1"].setpoint_kw = 5.0
    plant.step(5.0)
    faults.inject(f"sensor_stuck:rack={RACK},cell=7")
    held = rack.cell_voltages()[6]
    for _ in range(60):
        plant.step(30.0)
    assert rack.cell_voltages()[6] == held
    assert rack.true_cell_voltages()[6] > held + 0.005


def test_current_sensor_offset_shows_only_in_the_reading(plant, faults):
    rack = plant.racks[RACK]
    plant.pcs["pcs1"].setpoint_kw = 2.0
    plant.step(5.0)
    faults.inject(f"current_offset:rack={RACK},amps=7.5")
    plant.step(1.0)
    assert rack.current_a == pytest.approx(rack.true_current_a + 7.5)


def test_a_welded_contactor_ignores_the_open_command(plant, faults):
    rack = plant.racks[RACK]
    plant.pcs["pcs1"].setpoint_kw = 3.0
    fid = faults.inject(f"contactor_welded:rack={RACK}")
    rack.contactor_closed = False            # as the simulator applies a Modbus write
    plant.step(5.0)
    assert rack.contactor_closed and not rack.contactor_command and rack.current_a > 0
    faults.clear(fid)                        # repaired: the standing open command takes effect
    assert not rack.contactor_closed
    plant.step(1.0)
    assert rack.current_a == 0.0


def test_pcs_trip_goes_to_fault_at_zero_kw_until_cleared(plant, faults):
    pcs = plant.pcs["pcs1"]
    pcs.setpoint_kw = 4.0
    plant.step(5.0)
    fid = faults.inject("pcs_trip:pcs=pcs1")
    plant.step(1.0)
    assert (pcs.state, pcs.state_code, pcs.power_kw) == ("fault", 2, 0.0)
    assert all(r.current_a == pytest.approx(0.0, abs=2.0) for r in plant.racks.values())  # circulating only
    faults.clear(fid)
    plant.step(10.0)
    assert pcs.state == "running" and pcs.power_kw == pytest.approx(4.0)


def test_bms_reboot_zeroes_the_readings_for_its_duration(plant, faults):
    rack = plant.racks[RACK]
    plant.step(3.0)
    assert rack.heartbeat == 1
    faults.inject(f"bms_reboot:rack={RACK},seconds=4")
    assert rack.heartbeat == 0 and not rack.online and not rack.contactor_closed
    assert not rack.cell_voltages().any() and not rack.temp_c.any() and not rack.soc.any()
    assert rack.current_a == 0.0 and rack.pack_voltage == 0.0
    plant.step(2.0)
    assert rack.heartbeat == 0 and [f.fault.kind for f in faults.active().values()] == ["bms_reboot"]
    plant.step(2.5)
    assert rack.online and rack.contactor_closed and rack.heartbeat == 1
    assert 3.0 < rack.cell_voltages().min() and faults.active() == {}


def test_hvac_failure_lets_a_working_rack_warm_up(plant, faults):
    warm = plant.racks[RACK]
    faults.inject(f"hvac_fail:rack={RACK}")
    plant.pcs["pcs1"].setpoint_kw = plant.pcs["pcs1"].pcs.rated_power_kw
    for _ in range(180):
        plant.step(60.0)
    cooled = plant.racks["site.bess1.rack02"]
    assert not warm.thermal.hvac_enabled and not warm.thermal.ventilation
    assert warm.temp_c.mean() > cooled.temp_c.mean() + 1.0


def test_inject_cell_offset_and_clear_faults_still_work(plant, faults):
    rack = plant.racks[RACK]
    v = rack.cell_voltages()[10]
    plant.inject_cell_offset(RACK, 11, 0.5)
    faults.inject(f"sensor_zero:rack={RACK},cell=2")
    faults.inject("grid_loss")
    assert rack.cell_voltages()[10] == pytest.approx(v + 0.5)
    plant.clear_faults()
    assert rack.cell_voltages()[10] == pytest.approx(v) and rack.cell_voltages()[1] > 3.0
    assert plant.grid_connected


def test_injecting_the_same_fault_again_replaces_it(faults, plant):
    first = faults.inject(f"current_offset:rack={RACK},amps=1")
    second = faults.inject(f"current_offset:rack={RACK},amps=3")
    assert list(faults.active()) == [second] and first != second
    assert plant.racks[RACK].current_offset_a == 3.0
    faults.clear_all()
    assert faults.active() == {} and plant.racks[RACK].current_offset_a == 0.0
    with pytest.raises(UserError, match="no active plant fault with id"):
        faults.clear(second)


def test_spec_round_trips_and_every_kind_is_documented():
    spec = "cell_drift:rack=site.bess1.rack01,cell=12,rate_v_per_min=0.02"
    fault = parse_fault(spec, sim_site())
    assert fault == PlantFault("cell_drift", rack="site.bess1.rack01", cell=12, value=0.02)
    assert str(fault) == spec and parse_fault("bms_reboot:rack=bess1.rack02").value == 10.0
    assert all(k.help for k in FAULT_KINDS.values())


@pytest.mark.parametrize("spec, named", [
    ("cell_drift:rack=site.bess1.rack01,cell=12,rate=0.02", "unknown key 'rate'"),
    ("cell_drift:rack=site.bess1.rack01,rate_v_per_min=0.02", "missing key 'cell'"),
    ("cell_drift:rack=site.bess1.rack01,cell=twelve,rate_v_per_min=1", "'cell' must be an integer"),
    ("cell_drift:rack=site.bess1.rack01,cell=99,rate_v_per_min=1", "'cell' must be 1..16"),
    ("cell_drift:rack=site.bess1.rack09,cell=1,rate_v_per_min=1", "'rack' site.bess1.rack09 is not in the site"),
    ("internal_short:rack=site.bess1.rack01,cell=1,ohms=0", "'ohms' must be > 0"),
    ("pcs_trip:pcs=pcs7", "'pcs' pcs7 is not in the site"),
    ("meltdown:rack=site.bess1.rack01", "unknown kind 'meltdown'"),
    ("grid_loss:rack=site.bess1.rack01", "unknown key 'rack'"),
    ("current_offset:rack=site.bess1.rack01,amps", "'amps' needs a value"),
])
def test_bad_specs_raise_a_user_error_naming_what_to_fix(spec, named):
    with pytest.raises(UserError, match=named):
        parse_fault(spec, sim_site())
