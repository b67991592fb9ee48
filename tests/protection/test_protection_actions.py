"""Trip sequence and isolation planner: only the faulty rack when the rest is healthy, the whole
BESS otherwise; contactors open after the PCS is near zero or a timeout; commands planned once."""
from __future__ import annotations

import pytest

from app.core.errors import ConfigError
from app.protection.actions import RackCondition, TripPlanner, load_trip_sequence
from app.protection.ladder import Level

RACKS = ("site.bess1.rack01", "site.bess1.rack02", "site.bess1.rack03")


def planner() -> TripPlanner:
    return TripPlanner("bess1", "pcs1", RACKS, load_trip_sequence())


def conditions(**levels) -> list[RackCondition]:
    out = []
    for i, path in enumerate(RACKS, 1):
        spec = levels.get(f"r{i}", Level.NORMAL)
        level, thermal, stale = (spec, False, False) if isinstance(spec, Level) else spec
        out.append(RackCondition(path, level, "cause", thermal, stale, charge_kw=100.0, discharge_kw=200.0))
    return out


def targets(plan) -> list[tuple[str, object]]:
    return [(c.target, c.value) for c in plan.commands]


def test_healthy_site_plans_nothing_and_reports_all_power():
    p = planner().plan(0.0, conditions(), 500.0)
    assert (p.scope, p.commands, p.available_charge_kw, p.available_discharge_kw) == ("none", (), 300.0, 600.0)


def test_one_derated_rack_limits_the_whole_bess_to_n_times_its_limit():
    racks = conditions()
    racks[1] = RackCondition(RACKS[1], Level.NORMAL, charge_kw=20.0, discharge_kw=50.0)
    p = planner().plan(0.0, racks, 0.0)
    assert (p.available_charge_kw, p.available_discharge_kw) == (60.0, 150.0)


def test_trip_opens_only_the_faulty_rack_after_the_pcs_is_near_zero():
    pl = planner()
    first = pl.plan(0.0, conditions(r2=Level.TRIP), 400.0)
    assert first.scope == "rack" and first.faulty == ("site.bess1.rack02",)
    assert targets(first) == [("site.protection", "site.bess1.rack02"),
                              ("site.pcs1.active_power_setpoint_kw", 0.0),
                              ("site.protection", "TRIP rack site.bess1.rack02 (rack isolation)")]
    assert (first.available_charge_kw, first.available_discharge_kw) == (200.0, 400.0)
    assert pl.plan(0.5, conditions(r2=Level.TRIP), 100.0).commands == ()       # PCS still ramping
    opened = pl.plan(0.6, conditions(r2=Level.TRIP), 3.0)
    assert targets(opened) == [("site.bess1.rack02.contactor_command", 0)]
    assert pl.plan(0.7, conditions(r2=Level.TRIP), 0.0).commands == ()         # planned once


def test_contactors_open_after_the_timeout_when_the_pcs_does_not_report():
    pl = planner()
    pl.plan(0.0, conditions(r1=Level.TRIP), None)
    assert pl.plan(1.9, conditions(r1=Level.TRIP), None).commands == ()
    assert targets(pl.plan(2.0, conditions(r1=Level.TRIP), None)) == [("site.bess1.rack01.contactor_command", 0)]


@pytest.mark.parametrize("others", [{"r3": Level.ALARM}, {"r3": (Level.NORMAL, False, True)}, {"r3": Level.TRIP}])
def test_whole_bess_trips_when_the_rest_is_not_healthy(others):
    p = planner().plan(0.0, conditions(r1=Level.TRIP, **others), 0.0)
    assert p.scope == "bess" and (p.available_charge_kw, p.available_discharge_kw) == (0.0, 0.0)
    assert {t for t, _ in targets(p) if t.endswith("contactor_command")} == {f"{r}.contactor_command" for r in RACKS}


def test_thermal_cause_trips_the_bess_and_starts_ventilation():
    p = planner().plan(0.0, conditions(r1=(Level.TRIP, True, False)), 0.0)
    assert p.scope == "bess"
    assert ("site.bess1.ventilation_command", 1) in targets(p)


def test_ventilation_only_for_thermal_causes():
    p = planner().plan(0.0, conditions(r1=Level.TRIP), 0.0)
    assert all("ventilation" not in t for t, _ in targets(p))


def test_scope_widens_when_a_second_rack_trips_and_never_narrows():
    pl = planner()
    pl.plan(0.0, conditions(r1=Level.TRIP), 0.0)
    wider = pl.plan(1.0, conditions(r1=Level.TRIP, r2=Level.TRIP), 0.0)
    assert wider.scope == "bess"
    assert {t for t, _ in targets(wider) if t.endswith("contactor_command")} == \
        {"site.bess1.rack02.contactor_command", "site.bess1.rack03.contactor_command"}
    assert pl.plan(2.0, conditions(), 0.0).scope == "bess"                  # latched until reset
    pl.reset()
    assert pl.plan(3.0, conditions(), 0.0).scope == "none"


def test_bad_sequence_file_names_the_line(tmp_path):
    f = tmp_path / "seq.toml"
    f.write_text('[[step]]\naction = "latch"\n\n[[step]]\naction = "explode"\n')
    with pytest.raises(ConfigError, match=r"seq.toml:5: step.1.action: unknown action 'explode'"):
        load_trip_sequence(f)


def test_contactors_before_pcs_zero_is_rejected(tmp_path):
    f = tmp_path / "seq.toml"
    f.write_text('[[step]]\naction = "open_contactors"\n\n[[step]]\naction = "pcs_zero"\n')
    with pytest.raises(ConfigError, match="open_contactors must come after pcs_zero"):
        load_trip_sequence(f)
