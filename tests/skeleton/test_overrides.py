"""Forcing a point: MANUAL everywhere (bus, journal), refused without a reason or for vectors, released."""
from __future__ import annotations

from app.core.commands import Command
from app.core.sample import Quality
from app.runtime import Runtime
from support import charging_ems, make_site, wait_for


def test_force_and_release_a_point_over_the_runtime(tmp_path):
    site = make_site(tmp_path, racks=1, modules=1, cells=8)
    rt = Runtime(site, tmp_path / "data", **charging_ems(site))
    rt.start()
    try:
        soc = "site.bess1.rack01.soc_pct"
        wait_for(lambda: rt.bus.get(soc))
        submit = lambda action, value, reason="": rt.router.submit(  # noqa: E731
            Command("site.overrides", action, value, "engineer", reason)).result(5)
        assert "reason is required" in submit("force", {"point": soc, "value": 5.0}).message
        assert "only scalar" in submit("force", {"point": "site.bess1.rack01.cell_voltages_v", "value": 1.0},
                                       "test").message
        assert submit("force", {"point": soc, "value": 5.0}, "sensor replaced, value known").ok
        wait_for(lambda: rt.bus.get(soc).quality is Quality.MANUAL and rt.bus.get(soc).value == 5.0)
        assert rt.overrides.active[soc].user == "engineer"
        assert any(e.kind == "force" and "MANUAL" in e.message for e in rt.journal.since(0))
        assert submit("release", {"point": soc}).ok
        wait_for(lambda: rt.bus.get(soc).quality is Quality.GOOD and rt.bus.get(soc).value > 20, what="source value")
    finally:
        assert rt.stop() == []


def test_operator_switches_balancing_off_and_on(tmp_path):
    site = make_site(tmp_path, racks=1, modules=1, cells=8)
    rt = Runtime(site, tmp_path / "data", **charging_ems(site))
    rt.start()
    try:
        write = lambda v: rt.router.submit(Command("site.bess1.balancing", "write", v, "engineer")).result(5)  # noqa: E731
        assert not write(7).ok
        assert write(0).ok
        wait_for(lambda: (s := rt.bus.get("site.bess1.rack01.balancing_inhibit")) and
                 s.value == "balancing off (operator)", what="balancing off")
        assert rt.bus.get("site.bess1.balancing").value is False
        assert rt.bus.get("site.bess1.rack01.balancing_cells").value == ""
        assert write(1).ok
        wait_for(lambda: rt.bus.get("site.bess1.rack01.balancing_inhibit").value != "balancing off (operator)")
    finally:
        assert rt.stop() == []
