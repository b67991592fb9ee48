"""`plan_file` and the `python main.py plan --scenario FILE --json` contract."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from ems_cases import scenario_dict, write

from app.ems.plan import plan_file
from app.ems.resimulate import resimulate
from app.ems.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "scenarios"


def test_plan_output_is_exactly_the_schema_object():
    path = FIXTURES / "schema_example_day_15min.json"
    out = plan_file(str(path))
    assert set(out) == {"battery_kw", "curtail_kw", "soc_pct", "cost", "warnings"}
    assert len(out["battery_kw"]) == len(out["curtail_kw"]) == len(out["soc_pct"]) == 96
    assert out["warnings"] == []
    json.dumps(out)  # JSON-ready: plain floats and lists
    replay = resimulate(load_scenario(path), out["battery_kw"], out["curtail_kw"])
    assert replay.violations == ()
    assert out["cost"] == pytest.approx(replay.cost, abs=1e-6)
    assert out["soc_pct"] == pytest.approx(list(replay.soc_pct), abs=1e-6)


def test_unreachable_import_limit_fixture_is_planned_with_a_warning():
    path = FIXTURES / "import_limit_unreachable_hourly.json"
    scn = load_scenario(path)
    out = plan_file(str(path))
    replay = resimulate(scn, out["battery_kw"], out["curtail_kw"])
    assert replay.violation_kinds() == {"import"}
    assert [w.split(" ")[0] for w in out["warnings"]] == ["grid.import_limit_kw"]
    # enough energy on board: the excess is exactly load - pv - max discharge - limit, step by step
    unavoidable = (scn.load_kw - scn.pv_kw - scn.battery.max_discharge_kw
                   - scn.grid.import_limit_kw).clip(0)
    assert (replay.import_kw - scn.grid.import_limit_kw).clip(0) == pytest.approx(unavoidable, abs=1e-5)


def test_bad_scenario_raises_scenario_error(tmp_path):
    data = scenario_dict()
    data["battery"]["charge_efficiency"] = 1.5
    with pytest.raises(ScenarioError, match="battery.charge_efficiency"):
        plan_file(str(write(tmp_path, data)))


def _cli(*args):
    if not (ROOT / "app" / "cli.py").exists():
        pytest.skip("app/cli.py does not exist yet")
    return subprocess.run([sys.executable, "main.py", "plan", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_cli_prints_one_json_object_matching_plan_file():
    path = FIXTURES / "schema_example_day_15min.json"
    proc = _cli("--scenario", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == plan_file(str(path))


@pytest.mark.parametrize("mutate, key", [
    (lambda d: d["series"]["pv_kw"].pop(), "series.pv_kw"),
    (lambda d: d["battery"].pop("capacity_kwh"), "battery.capacity_kwh"),
    (lambda d: d["battery"].update(capacity_kwh=-1), "battery.capacity_kwh"),
])
def test_cli_bad_scenario_exits_2_naming_the_key(tmp_path, mutate, key):
    data = scenario_dict()
    mutate(data)
    proc = _cli("--scenario", str(write(tmp_path, data)), "--json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert key in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_cli_missing_file_exits_2(tmp_path):
    proc = _cli("--scenario", str(tmp_path / "missing.json"), "--json")
    assert proc.returncode == 2 and "missing.json" in proc.stderr
