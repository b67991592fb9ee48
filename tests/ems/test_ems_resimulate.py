"""The independent re-simulator against hand-computed plans."""
import numpy as np
import pytest
from ems_cases import build

from app.ems.resimulate import resimulate


def test_hand_computed_cost_and_soc():
    # 1 h steps, 10 kWh, eta 0.95 both ways; load 2 kW, pv [0, 6, 0, 0]
    scn = build(battery={"degradation_cost_per_kwh": 0.01, "final_soc_min_pct": 0},
                grid={"demand_charge_per_kw": 2.0, "existing_peak_kw": 1.0},
                series={"load_kw": [2.0, 2.0, 2.0, 2.0], "pv_kw": [0.0, 6.0, 0.0, 0.0],
                        "import_price_per_kwh": [0.1, 0.2, 0.3, 0.4],
                        "export_price_per_kwh": [0.05, 0.05, 0.05, 0.05]})
    replay = resimulate(scn, [1.0, 3.0, -2.0, 0.0], [0.0, 0.5, 0.0, 0.0])
    # energy: 5 + 0.95 -> 5.95 + 2.85 -> 8.8 - 2/0.95
    e = np.array([5.95, 8.8, 8.8 - 2 / 0.95, 8.8 - 2 / 0.95])
    np.testing.assert_allclose(replay.soc_pct, 10 * e)
    # grid: [3, 2 - 5.5 + 3 = -0.5, 0, 2]
    np.testing.assert_allclose(replay.import_kw, [3, 0, 0, 2])
    np.testing.assert_allclose(replay.export_kw, [0, 0.5, 0, 0])
    assert replay.energy_cost == pytest.approx(0.3 - 0.025 + 0.8)
    assert replay.demand_cost == pytest.approx(2.0 * 3)
    assert replay.degradation_cost == pytest.approx(0.01 * 6)
    assert replay.cost == pytest.approx(1.075 + 6 + 0.06)
    assert replay.violations == ()


def test_existing_peak_sets_the_demand_charge_floor():
    scn = build(grid={"demand_charge_per_kw": 10.0, "existing_peak_kw": 50.0}, battery={"final_soc_min_pct": 0})
    assert resimulate(scn, [0, 0, 0, 0]).demand_cost == pytest.approx(500.0)


@pytest.mark.parametrize("plan, curtail, kind", [
    ([5.6, 0, 0, 0], None, "power"),
    ([0, -5.6, 0, 0], None, "power"),
    ([0, 0, 0, 0], [0.6, 0, 0, 0], "curtail"),
    ([0, 0, 0, 0], [-0.6, 0, 0, 0], "curtail"),
    ([5, 5, 0, 0], None, "soc"),
    ([0, 0, 0, -4], None, "final_soc"),
])
def test_violations_beyond_tolerance_are_named(plan, curtail, kind):
    scn = build(battery={"soc_max_pct": 90, "final_soc_min_pct": 30})
    assert kind in resimulate(scn, plan, curtail).violation_kinds()


def test_grid_limit_violations():
    scn = build(grid={"import_limit_kw": 3.0, "export_limit_kw": 1.0}, battery={"final_soc_min_pct": 0},
                series={"load_kw": [2.0, 2.0, 2.0, 2.0], "pv_kw": [0.0, 4.0, 0.0, 0.0]})
    assert resimulate(scn, [1.4, 1.0, 0, 0]).violation_kinds() == set()
    assert resimulate(scn, [1.6, 1.0, 0, 0]).violation_kinds() == {"import"}
    assert resimulate(scn, [0, 0, 0, 0]).violation_kinds() == {"export"}      # 2 kW exported
    assert resimulate(scn, [0, 0, 0, 0], [0, 1, 0, 0]).violation_kinds() == set()


def test_recovery_rules_for_a_start_below_the_band():
    scn = build(battery={"initial_soc_pct": 0, "soc_min_pct": 20, "final_soc_min_pct": 0})
    # 5 kW at 0.95 lifts 4.75 % of 10 kWh per hour ... 47.5 %: band reached in step 0
    assert resimulate(scn, [5, 0, 0, 0]).violation_kinds() == set()
    assert resimulate(scn, [1, 4, 0, 0]).violation_kinds() == {"recovery"}
    assert resimulate(scn, [-0.1, 5, 0, 0]).violation_kinds() >= {"soc", "recovery"}


def test_plan_length_must_match():
    with pytest.raises(ValueError, match="expected 4"):
        resimulate(build(), [0, 0, 0])
