"""Scenario parsing: every user mistake raises ScenarioError naming the key to fix."""
import json

import numpy as np
import pytest
from ems_cases import scenario_dict, write

from app.core.errors import UserError
from app.ems.scenario import ScenarioError, load_scenario, parse_scenario


def test_valid_scenario_parses_into_read_only_arrays():
    scn = parse_scenario(scenario_dict(step_minutes=15))
    assert scn.steps == 4 and scn.dt_h == 0.25
    assert scn.battery.capacity_kwh == 10.0 and scn.grid.import_limit_kw == 100.0
    np.testing.assert_array_equal(scn.load_kw, [2, 2, 2, 2])
    with pytest.raises(ValueError):
        scn.pv_kw[0] = 1.0


def test_scenario_error_is_a_user_error():
    assert issubclass(ScenarioError, UserError)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["series"]["pv_kw"].pop(), "series.pv_kw has 3 values, expected 4"),
    (lambda d: d["series"]["export_price_per_kwh"].append(0.1),
     "series.export_price_per_kwh has 5 values, expected 4"),
    (lambda d: d["battery"].update(capacity_kwh=0), "battery.capacity_kwh must be > 0"),
    (lambda d: d["battery"].update(capacity_kwh=-5), "battery.capacity_kwh must be > 0"),
    (lambda d: d["battery"].update(charge_efficiency=0), "battery.charge_efficiency must be in (0, 1]"),
    (lambda d: d["battery"].update(discharge_efficiency=1.2),
     "battery.discharge_efficiency must be in (0, 1]"),
    (lambda d: d["battery"].update(soc_max_pct=120), "battery.soc_max_pct must be in [0, 100]"),
    (lambda d: d["battery"].update(soc_min_pct=95), "battery.soc_min_pct (95) must be <="),
    (lambda d: d["battery"].update(max_charge_kw=-1), "battery.max_charge_kw must be >= 0"),
    (lambda d: d["battery"].update(initial_soc_pct="50"), "battery.initial_soc_pct must be a finite number"),
    (lambda d: d["battery"].update(degradation_cost_per_kwh=True),
     "battery.degradation_cost_per_kwh must be a finite number"),
    (lambda d: d["grid"].update(export_limit_kw=-1), "grid.export_limit_kw must be >= 0"),
    (lambda d: d["grid"].update(demand_charge_per_kw=float("nan")),
     "grid.demand_charge_per_kw must be a finite number"),
    (lambda d: d.update(step_minutes=0), "step_minutes must be > 0"),
    (lambda d: d["battery"].pop("capacity_kwh"), "missing key 'battery.capacity_kwh'"),
    (lambda d: d["grid"].pop("existing_peak_kw"), "missing key 'grid.existing_peak_kw'"),
    (lambda d: d["series"].pop("load_kw"), "missing key 'series.load_kw'"),
    (lambda d: d.pop("battery"), "missing key 'battery'"),
    (lambda d: d.pop("step_minutes"), "missing key 'step_minutes'"),
    (lambda d: d.update(grid=[1, 2]), "grid must be a JSON object"),
    (lambda d: d["series"].update(load_kw=5), "series.load_kw must be a list of numbers"),
    (lambda d: d["series"]["load_kw"].__setitem__(2, None), "series.load_kw[2] must be a finite number"),
    (lambda d: d["series"]["pv_kw"].__setitem__(1, -3), "series.pv_kw[1] is -3, must be >= 0"),
    (lambda d: d["series"].update({k: [] for k in d["series"]}), "series.load_kw is empty"),
])
def test_each_validation_error_names_the_key(mutate, message):
    data = scenario_dict()
    mutate(data)
    with pytest.raises(ScenarioError) as err:
        parse_scenario(data)
    assert message in str(err.value)


def test_length_mismatch_on_a_96_step_day_reports_counts():
    n = 96
    data = scenario_dict(step_minutes=15, series={"load_kw": [1.0] * n, "pv_kw": [0.0] * 95,
                                                  "import_price_per_kwh": [0.1] * n,
                                                  "export_price_per_kwh": [0.0] * n})
    with pytest.raises(ScenarioError, match=r"series\.pv_kw has 95 values, expected 96"):
        parse_scenario(data)


def test_top_level_must_be_an_object():
    with pytest.raises(ScenarioError, match="scenario must be a JSON object"):
        parse_scenario([1, 2, 3])


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(ScenarioError, match=f"scenario file not found: {path}"):
        load_scenario(path)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ScenarioError, match="is a directory"):
        load_scenario(tmp_path)


def test_invalid_json_reports_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "step_minutes": 15,\n  "battery": {,}\n}')
    with pytest.raises(ScenarioError, match=r"bad\.json: invalid JSON at line 3 column 15"):
        load_scenario(path)


def test_file_round_trip(tmp_path):
    data = scenario_dict(step_minutes=5)
    scn = load_scenario(write(tmp_path, data))
    assert scn.step_minutes == 5 and scn.steps == 4
    assert json.loads((tmp_path / "scenario.json").read_text()) == data
