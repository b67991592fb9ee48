"""EMS screen over the real runtime (simulator on loopback): mode, why, island, savings and protection hold;
the MPC plan plotted step for step; a rule mode says it has no plan; the mode selector goes through
select-before-operate (refused without permission); the plan row flags a missing, stale or ended plan."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
from PySide6 import QtWidgets

from app.ems.plan_snapshot import PlanSnapshot
from app.ems.settings import EmsSettings
from app.qt.history import HistoryQueries
from app.qt.screens.ems import EmsScreen, plan_status
from app.qt.session import OperatorSession
from app.runtime import Runtime
from app.security.passwords import HashParams
from app.security.roles import Role
from app.security.service import SecuritySettings
from app.sim.profiles import SiteProfiles
from support import PASSWORD, add_accounts, make_site, wait_for

SETTINGS = EmsSettings(mpc_step_minutes=60.0, mpc_horizon_h=12.0)


@pytest.fixture
def start(tmp_path, qtbot):
    """start(mode) -> EmsScreen on a running runtime whose EMS runs `mode` (MPC seeded with 2 days of the
    simulated site's load and PV, so it plans at once)."""
    made = []

    def make(mode: str) -> EmsScreen:
        site = make_site(tmp_path, racks=2, modules=2, cells=8, poll_s=0.2)
        step_s = SETTINGS.mpc_step_minutes * 60
        history = SiteProfiles.for_site(site, site.simulator.seed).step_means(
            math.floor(time.time() / step_s) * step_s, step_s, 48)
        rt = Runtime(site, tmp_path / "data", security=SecuritySettings(hash_params=HashParams.cheap()),
                     ems_mode=mode, ems=SETTINGS, ems_history=history)
        add_accounts(rt.security, (Role.OPERATOR,), logout_admin=False)
        host = QtWidgets.QWidget()
        qtbot.addWidget(host)
        session = OperatorSession(rt.security, rt.router, host)
        queries = HistoryQueries(rt.data_dir / "historian.sqlite", host)
        made.append((rt, session, queries))
        rt.start()
        screen = EmsScreen(rt, session, rt.security.sbo(), queries)
        qtbot.addWidget(screen)
        screen.resize(1300, 760)
        screen.show()
        wait_for(lambda: rt.bus.get("site.ems.why") is not None, what="the EMS publishing")
        return screen

    yield make
    for rt, session, queries in made:
        session.timer.stop()
        queries.wait()
        assert rt.stop() == []


def _curve(plot, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the named curve as drawn (empty when there is nothing to draw)."""
    item = next(item for item in plot.getPlotItem().listDataItems() if item.name() == name)
    return tuple(np.zeros(0) if a is None else np.asarray(a) for a in (item.xData, item.yData))


def _shows(screen, row: str, text) -> bool:
    screen.refresh()
    return screen.values[row].text() == text()


def test_header_shows_mode_why_savings_and_a_protection_hold_and_a_rule_mode_has_no_plan(start, qtbot):
    screen = start("rules")
    bus = screen.runtime.bus
    qtbot.waitUntil(lambda: _shows(screen, "Why", lambda: bus.get("site.ems.why").value), timeout=5000)
    qtbot.waitUntil(lambda: _shows(screen, "Savings", lambda: f"{bus.get('site.ems.savings').value:+.2f} EUR "
                                   "since start (energy cost vs no battery)"), timeout=5000)
    assert screen.values["Mode"].text() == "rules"
    assert screen.values["Island"].text() == "connected"
    assert screen.values["Protection"].text() == "free"
    assert screen.values["Plan"].text() == "mode rules follows rules; no plan"
    assert screen.values["Plan"].property("state") == ""
    assert _curve(screen.power_plot, "planned battery (+ charge)")[1].size == 0
    assert _curve(screen.soc_plot, "planned SOC")[1].size == 0

    screen.runtime.emergency_stop("test")                  # protection holds every PCS: abnormal, in words
    qtbot.waitUntil(lambda: _shows(screen, "Protection", lambda: "HELD by protection: pcs1 at 0 kW"), timeout=5000)
    assert screen.values["Protection"].property("state") == "alarm"


def test_the_mpc_plan_is_plotted_step_for_step_next_to_the_measured_history(start, qtbot):
    screen = start("mpc")
    ems = screen.runtime.dispatch
    plan: PlanSnapshot = wait_for(ems.plan_snapshot, what="an MPC plan")
    screen.refresh()

    assert screen.values["Plan"].text().startswith("MPC plan, 12 × 60 min")
    assert screen.values["Plan"].property("state") == ""
    t, kw = _curve(screen.power_plot, "planned battery (+ charge)")
    assert kw.tolist() == plan.battery_kw.tolist() and t.size == 13 and (t[0], t[-1]) == (plan.start, plan.end)
    t, soc = _curve(screen.soc_plot, "planned SOC")
    assert soc.tolist() == plan.soc_pct.tolist() and t[0] == plan.start + 3600
    assert _curve(screen.power_plot, "planned grid (+ import)")[1].tolist() == plan.grid_kw.tolist()
    assert _curve(screen.price_plot, "import price")[1].tolist() == plan.import_price.tolist()
    assert screen.now_lines[0].value() == pytest.approx(screen.runtime.clock.time(), abs=2)
    assert screen.power_plot.value_at("planned battery (+ charge)", plan.start + 5400) == plan.battery_kw[1]
    assert f"planned battery (+ charge) = {plan.battery_kw[0]:.4g}" in screen.readout.text()    # cursor at now

    qtbot.waitUntil(lambda: np.isfinite(_curve(screen.soc_plot, "measured SOC")[1]).any(), timeout=10000)
    racks = [screen.runtime.bus.get(f"site.bess1.rack0{i}.soc_pct").value for i in (1, 2)]
    assert np.nanmax(_curve(screen.soc_plot, "measured SOC")[1]) == pytest.approx(np.mean(racks), abs=1.0)


def test_the_mode_selector_is_select_before_operate_and_refused_without_permission(start, qtbot):
    screen = start("rules")
    rt, panel = screen.runtime, screen.panel
    screen.mode.setCurrentText("peak_shaving")
    assert not screen.set_mode()                            # no reason given
    assert panel.result.text() == "✖ NOT SELECTED: Mode: enter the reason"

    screen.reason.setText("evening peak expected")
    assert not screen.set_mode()                            # nobody logged in
    assert panel.result.text().startswith("✖ REFUSED") and "log in to mode" in panel.result.text()

    panel.session.session = rt.security.login("operator", PASSWORD[Role.OPERATOR], "test")
    assert screen.set_mode()
    assert panel.result.text() == "▶ SELECTED: Switch the EMS operating mode to 'peak_shaving'"
    assert rt.bus.get("site.ems.mode").value == "rules"     # nothing sent on select
    panel.confirm()
    qtbot.waitUntil(lambda: panel.result.text().startswith("● EXECUTED"), timeout=5000)
    wait_for(lambda: rt.bus.get("site.ems.mode").value == "peak_shaving", what="the EMS in peak shaving")
    qtbot.waitUntil(lambda: _shows(screen, "Mode", lambda: "peak_shaving"), timeout=3000)
    audit = [r for r in rt.security.audit.records(0) if r.action.startswith("command.")]
    assert [(r.action, r.user, r.result) for r in audit] == [
        ("command.select", "(nobody)", "refused"), ("command.select", "operator", "selected"),
        ("command.confirm", "operator", "confirmed"), ("command.execute", "operator", "executed")]
    assert audit[1].detail == "evening peak expected"


def _plan(made_at: float, steps: int = 4) -> PlanSnapshot:
    values = np.zeros(steps)
    return PlanSnapshot("MPC plan", made_at, made_at, 60.0, *[values] * 7)


def test_the_plan_row_flags_mpc_without_a_plan_and_a_stale_or_ended_plan():
    now, settings = 1_700_000_000.0, EmsSettings(mpc_replan_minutes=15.0)
    text, state = plan_status("mpc", None, now, settings)
    assert state == "warn" and text.startswith("MPC HAS NO PLAN YET: following the rule set")
    assert plan_status("tou", None, now, settings) == ("mode tou follows rules; no plan", "")
    assert plan_status("mpc", _plan(now - 600), now, settings)[1] == ""
    text, state = plan_status("mpc", _plan(now - 3600), now, settings)
    assert state == "warn" and text.startswith("PLAN STALE (re-planned every 15 min)") and "made 60 min ago" in text
    text, state = plan_status("schedule", _plan(now - 5 * 3600), now, settings)
    assert state == "warn" and text.startswith("PLAN ENDED: the EMS idles")
