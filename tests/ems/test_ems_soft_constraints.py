"""Conflicting constraints: the planner still answers, relaxes the least important and says so."""
import numpy as np
import pytest
from ems_cases import build

from app.ems.optimiser import optimise
from app.ems.resimulate import resimulate


def _replay(scn):
    plan = optimise(scn)
    return plan, resimulate(scn, plan.battery_kw, plan.curtail_kw)


def test_load_above_import_limit_plus_discharge_gives_a_plan_and_a_warning():
    scn = build(grid={"import_limit_kw": 4.0},
                battery={"final_soc_min_pct": 10, "initial_soc_pct": 90},
                series={"load_kw": [3.0, 12.0, 3.0, 3.0], "pv_kw": [0.0] * 4})
    plan, replay = _replay(scn)
    assert [w.split(" ")[0] for w in plan.warnings] == ["grid.import_limit_kw"]
    # the battery discharges at its limit, the unavoidable 3 kW excess is all that is left
    assert plan.battery_kw[1] == pytest.approx(-5.0)
    assert replay.import_kw[1] == pytest.approx(7.0)
    assert replay.violation_kinds() == {"import"}


def test_import_excess_is_minimal_when_energy_runs_short():
    # 12 kWh of load above the limit over three steps, only 8 kWh usable in the battery
    scn = build(grid={"import_limit_kw": 2.0},
                battery={"initial_soc_pct": 90, "final_soc_min_pct": 10, "discharge_efficiency": 1.0},
                series={"load_kw": [6.0, 6.0, 6.0, 2.0], "pv_kw": [0.0] * 4})
    plan, replay = _replay(scn)
    excess = np.maximum(replay.import_kw - 2.0, 0).sum()
    assert excess == pytest.approx(12.0 - 8.0, abs=1e-5)
    assert any(w.startswith("grid.import_limit_kw relaxed") for w in plan.warnings)


def test_import_limit_outranks_the_final_soc_target():
    scn = build(grid={"import_limit_kw": 2.0},
                battery={"initial_soc_pct": 50, "final_soc_min_pct": 90},
                series={"load_kw": [1.0, 1.0, 1.0, 1.0], "pv_kw": [0.0] * 4})
    plan, replay = _replay(scn)
    assert replay.violation_kinds() == {"final_soc"}
    assert np.all(replay.import_kw <= 2.0 + 1e-6)
    # 1 kW of headroom per hour at 0.95 lifts 9.5 % per step: 88 % is the best reachable
    assert replay.soc_pct[-1] == pytest.approx(88.0, abs=1e-4)
    assert [w.split(" ")[0] for w in plan.warnings] == ["battery.final_soc_min_pct"]


def test_final_target_above_the_band_ends_at_the_band():
    scn = build(battery={"final_soc_min_pct": 95, "soc_max_pct": 90})
    plan, replay = _replay(scn)
    assert replay.soc_pct[-1] == pytest.approx(90.0, abs=1e-4)
    assert "battery.final_soc_min_pct 95 relaxed" in plan.warnings[0]


def test_negative_load_beyond_export_limit_with_a_full_battery_relaxes_export():
    scn = build(grid={"export_limit_kw": 1.0},
                battery={"initial_soc_pct": 90, "final_soc_min_pct": 0},
                series={"load_kw": [-4.0, 1.0, 1.0, 1.0], "pv_kw": [2.0, 0.0, 0.0, 0.0]})
    plan, replay = _replay(scn)
    assert plan.curtail_kw[0] == pytest.approx(2.0)     # curtail first, still 3 kW over
    assert replay.export_kw[0] == pytest.approx(4.0)
    assert replay.violation_kinds() == {"export"}
    assert any(w.startswith("grid.export_limit_kw relaxed") for w in plan.warnings)


def test_pv_surplus_above_export_limit_is_curtailed_not_warned():
    scn = build(grid={"export_limit_kw": 1.0},
                battery={"initial_soc_pct": 90, "final_soc_min_pct": 0, "degradation_cost_per_kwh": 0.01},
                series={"load_kw": [1.0] * 4, "pv_kw": [8.0, 8.0, 0.0, 0.0],
                        "export_price_per_kwh": [0.05] * 4})
    plan, replay = _replay(scn)
    assert plan.warnings == () and replay.violations == ()
    assert replay.export_kw[:2] == pytest.approx([1.0, 1.0])
    assert plan.curtail_kw[:2] == pytest.approx([6.0, 6.0])


def test_initial_soc_below_band_charges_at_the_limit_until_back_in_band():
    # 2 kWh missing below 30 %; 1 kW charge limit at 0.95 -> 0.95 kWh per step: back during step 2
    scn = build(battery={"initial_soc_pct": 10, "soc_min_pct": 30, "max_charge_kw": 1.0,
                         "final_soc_min_pct": 30},
                series={"load_kw": [2.0] * 4, "pv_kw": [0.0] * 4,
                        "import_price_per_kwh": [0.9, 0.9, 0.1, 0.1]})
    plan, replay = _replay(scn)
    assert plan.battery_kw[:2] == pytest.approx([1.0, 1.0])   # expensive, but the band comes first
    assert replay.soc_pct[:2] == pytest.approx([19.5, 29.0])
    assert np.all(replay.soc_pct[2:] >= 30 - 1e-4)
    assert replay.violations == ()
    assert "back in the band at the end of step 2" in plan.warnings[0]


def test_initial_soc_below_band_never_discharges_even_above_the_import_limit():
    scn = build(grid={"import_limit_kw": 1.0},
                battery={"initial_soc_pct": 5, "soc_min_pct": 20, "final_soc_min_pct": 20},
                series={"load_kw": [4.0] * 4, "pv_kw": [0.0] * 4})
    plan, replay = _replay(scn)
    assert np.all(plan.battery_kw >= -1e-6)
    assert np.all(np.diff(np.concatenate(([5.0], replay.soc_pct))) >= -1e-6)
    assert replay.violation_kinds() == {"import", "final_soc"}
    kinds = [w.split(" ")[0] for w in plan.warnings]
    assert kinds == ["battery.initial_soc_pct", "grid.import_limit_kw", "battery.final_soc_min_pct"]
    assert "still outside the band" in plan.warnings[0]


def test_initial_soc_above_band_discharges_as_fast_as_load_and_export_allow():
    # 95 % of 10 kWh, band tops at 60 %: 3.5 kWh to shed; export limit 1 kW + load 2 kW -> 3 kW
    scn = build(grid={"export_limit_kw": 1.0},
                battery={"initial_soc_pct": 95, "soc_max_pct": 60, "final_soc_min_pct": 0,
                         "discharge_efficiency": 1.0},
                series={"load_kw": [2.0] * 4, "pv_kw": [3.0] * 4,
                        "import_price_per_kwh": [0.1] * 4, "export_price_per_kwh": [-0.5] * 4})
    plan, replay = _replay(scn)
    assert plan.battery_kw[0] == pytest.approx(-3.0)       # exporting costs, the band comes first
    assert plan.curtail_kw[0] == pytest.approx(3.0)
    assert replay.soc_pct[0] == pytest.approx(65.0)
    assert np.all(replay.soc_pct[1:] <= 60 + 1e-4)
    assert replay.violations == ()


@pytest.mark.parametrize("step_minutes", [5, 15, 60])
def test_recovery_time_scales_with_the_step(step_minutes):
    scn = build(step_minutes=step_minutes,
                battery={"initial_soc_pct": 0, "soc_min_pct": 10, "max_charge_kw": 1.0,
                         "charge_efficiency": 1.0, "final_soc_min_pct": 0},
                series={"load_kw": [0.0] * 24, "pv_kw": [0.0] * 24, "import_price_per_kwh": [1.0] * 24,
                        "export_price_per_kwh": [0.0] * 24})
    _, replay = _replay(scn)
    # 1 kWh at 1 kW takes one hour
    in_band = np.flatnonzero(replay.soc_pct >= 10 - 1e-6)[0]
    assert in_band == round(60 / step_minutes) - 1
    assert replay.violations == ()
