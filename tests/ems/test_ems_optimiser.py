"""Optimiser: feasibility by independent re-simulation, optimality against brute force and bounds."""
import numpy as np
import pytest
from ems_cases import ModeLP, build, dp_optimum, exhaustive_optimum, scenarios
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.ems.optimiser import optimise
from app.ems.resimulate import resimulate
from app.ems.scenario import parse_scenario

FAST = settings(deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
WARNING_KIND = {"grid.import_limit_kw": "import", "grid.export_limit_kw": "export",
                "battery.final_soc_min_pct": "final_soc"}


def _replay(scn):
    plan = optimise(scn)
    return plan, resimulate(scn, plan.battery_kw, plan.curtail_kw)


def _close(a, b, rel=1e-6):
    return abs(a - b) <= rel * (1 + abs(a) + abs(b))


@settings(FAST, max_examples=120)
@given(scenarios(max_steps=48))
def test_any_scenario_gets_a_plan_that_breaks_only_what_it_warns_about(data):
    scn = parse_scenario(data)
    plan, replay = _replay(scn)
    warned = {kind for w in plan.warnings for key, kind in WARNING_KIND.items() if w.startswith(key)}
    assert replay.violation_kinds() <= warned, (replay.violations, plan.warnings)
    assert np.all(np.abs(plan.battery_kw) <= max(scn.battery.max_charge_kw, scn.battery.max_discharge_kw))
    assert np.all((plan.curtail_kw >= 0) & (plan.curtail_kw <= scn.pv_kw))


@settings(FAST, max_examples=80)
@given(scenarios(max_steps=48, feasible=True))
def test_feasible_scenarios_get_a_clean_plan_whose_cost_matches_the_solver(data):
    scn = parse_scenario(data)
    plan, replay = _replay(scn)
    assert plan.warnings == ()
    assert replay.violations == ()
    assert _close(replay.cost, plan.objective, 1e-5)


@settings(FAST, max_examples=40)
@given(scenarios(max_steps=4, feasible=True))
def test_cost_equals_exhaustive_search_over_modes(data):
    scn = parse_scenario(data)
    best = exhaustive_optimum(scn)
    _, replay = _replay(scn)
    assert best is not None and _close(replay.cost, best), (replay.cost, best)


@settings(FAST, max_examples=40)
@given(scenarios(max_steps=24, feasible=True))
def test_never_worse_than_dynamic_programming_and_never_below_the_lp_bound(data):
    data["grid"]["demand_charge_per_kw"] = 0.0
    scn = parse_scenario(data)
    _, replay = _replay(scn)
    assert replay.cost <= dp_optimum(scn, scn.battery.capacity_kwh / 200) + 1e-6 * (1 + abs(replay.cost))
    lower = ModeLP(scn).solve()
    assert lower is not None and lower <= replay.cost + 1e-6 * (1 + abs(replay.cost))


@settings(FAST, max_examples=30)
@given(st.data())
def test_lossless_integer_cases_match_dp_exactly(draw):
    """With efficiency 1, integer data and no demand charge the problem is a min-cost flow with an
    integral optimum, so a 1 kWh SOC grid DP is exact, negative and inverted prices included."""
    n = draw.draw(st.integers(1, 10))
    ints = lambda lo, hi: st.lists(st.integers(lo, hi), min_size=n, max_size=n)  # noqa: E731
    price = draw.draw(ints(-3, 6))
    scn = build(battery={"charge_efficiency": 1.0, "discharge_efficiency": 1.0,
                         "capacity_kwh": 10.0, "soc_min_pct": 10, "soc_max_pct": 90,
                         "initial_soc_pct": 10 * draw.draw(st.integers(1, 9)),
                         "final_soc_min_pct": 10, "max_charge_kw": draw.draw(st.integers(0, 4)),
                         "max_discharge_kw": draw.draw(st.integers(0, 4)),
                         "degradation_cost_per_kwh": draw.draw(st.integers(0, 1))},
                grid={"import_limit_kw": 20.0, "export_limit_kw": draw.draw(st.integers(0, 6))},
                series={"load_kw": [float(x) for x in draw.draw(ints(0, 6))],
                        "pv_kw": [float(x) for x in draw.draw(ints(0, 8))],
                        "import_price_per_kwh": [float(p) for p in price],
                        "export_price_per_kwh": [float(p - s) for p, s in zip(price, draw.draw(ints(-2, 3)))]})
    _, replay = _replay(scn)
    assert _close(replay.cost, dp_optimum(scn, 1.0)), replay.cost


def test_negative_prices_charge_and_curtail_without_simultaneous_flows():
    # paid to import in steps 0-1, exporting costs money: fill the battery, curtail the PV
    scn = build(battery={"initial_soc_pct": 50, "final_soc_min_pct": 10, "charge_efficiency": 0.9,
                         "discharge_efficiency": 0.9},
                series={"load_kw": [1.0, 1.0, 3.0, 3.0], "pv_kw": [4.0, 4.0, 0.0, 0.0],
                        "import_price_per_kwh": [-0.2, -0.1, 0.3, 0.3],
                        "export_price_per_kwh": [-0.3, -0.3, 0.05, 0.05]})
    plan, replay = _replay(scn)
    assert replay.violations == ()
    assert plan.curtail_kw[:2] == pytest.approx([4.0, 4.0])          # all PV curtailed
    assert replay.import_kw[:2].sum() > 0 and replay.export_kw[:2].sum() == 0
    assert replay.soc_pct[1] == pytest.approx(90.0)
    assert _close(replay.cost, exhaustive_optimum(scn))


def test_burning_energy_when_paid_to_import_uses_exclusive_steps_and_stays_optimal():
    # full battery, large negative import price: only charge OR discharge per step is allowed
    scn = build(battery={"initial_soc_pct": 90, "final_soc_min_pct": 0, "charge_efficiency": 0.8,
                         "discharge_efficiency": 0.8},
                series={"load_kw": [0.0, 0.0, 0.0, 0.0], "pv_kw": [0.0, 0.0, 0.0, 0.0],
                        "import_price_per_kwh": [-1.0, -1.0, -1.0, -1.0],
                        "export_price_per_kwh": [-2.0, -2.0, -2.0, -2.0]})
    plan, replay = _replay(scn)
    assert replay.violations == ()
    assert _close(replay.cost, exhaustive_optimum(scn))
    assert _close(replay.cost, plan.objective)
    assert ModeLP(scn).solve() < replay.cost - 1e-3      # the LP relaxation would cheat


def test_export_price_above_import_price_does_not_fake_arbitrage():
    scn = build(battery={"final_soc_min_pct": 0, "max_charge_kw": 0.0, "max_discharge_kw": 0.0},
                series={"load_kw": [1.0, 1.0, 1.0, 1.0], "pv_kw": [3.0, 0.5, 0.0, 0.0],
                        "import_price_per_kwh": [0.1, 0.1, 0.1, 0.1],
                        "export_price_per_kwh": [0.3, 0.3, 0.3, 0.3]})
    plan, replay = _replay(scn)
    assert replay.cost == pytest.approx((-2 * 0.3 + 0.5 * 0.1 + 0.1 + 0.1))
    assert _close(replay.cost, plan.objective)


def test_demand_charge_shaves_the_peak_to_the_existing_peak():
    scn = build(battery={"initial_soc_pct": 90, "final_soc_min_pct": 10, "charge_efficiency": 1.0,
                         "discharge_efficiency": 1.0},
                grid={"demand_charge_per_kw": 10.0, "existing_peak_kw": 3.0},
                series={"load_kw": [2.0, 6.0, 7.0, 2.0], "pv_kw": [0.0, 0.0, 0.0, 0.0],
                        "import_price_per_kwh": [0.1, 0.1, 0.1, 0.1]})
    _, replay = _replay(scn)
    assert replay.import_kw.max() == pytest.approx(3.0)
    assert replay.demand_cost == pytest.approx(30.0)


@pytest.mark.parametrize("step_minutes", [5, 15, 60])
def test_single_step_horizon(step_minutes):
    scn = build(step_minutes=step_minutes, battery={"final_soc_min_pct": 40},
                series={"load_kw": [3.0], "pv_kw": [0.0], "import_price_per_kwh": [0.5],
                        "export_price_per_kwh": [0.0]})
    _, replay = _replay(scn)
    assert replay.violations == ()
    # discharge to the final target: (50 - 40) % of 10 kWh over dt, capped by the load
    dt = step_minutes / 60
    expected_discharge = min(3.0, 5.0, 1.0 * 0.95 / dt)
    assert replay.import_kw[0] == pytest.approx(3.0 - expected_discharge, abs=1e-6)


def test_zero_pv_and_idle_prices_leave_the_battery_idle():
    scn = build(battery={"degradation_cost_per_kwh": 0.01},
                series={"load_kw": [2.0] * 4, "pv_kw": [0.0] * 4, "import_price_per_kwh": [0.2] * 4,
                        "export_price_per_kwh": [0.1] * 4})
    plan, replay = _replay(scn)
    assert np.allclose(plan.battery_kw, 0) and np.allclose(plan.curtail_kw, 0)
    assert replay.cost == pytest.approx(4 * 2 * 0.2)
