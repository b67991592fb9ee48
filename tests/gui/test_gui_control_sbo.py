"""Override panel over the real runtime (simulator on loopback): every command select-before-operate,
read-back from the plant, confirmation timeout, interlock and role refusals shown in the panel,
re-authentication for critical commands, commands whose target has no owner yet, and the grid breaker
as the overview shows it."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PySide6 import QtWidgets

from app.core.sample import Sample
from app.qt.screens.control import ControlScreen
from app.qt.screens.overview import OverviewScreen
from app.qt.session import OperatorSession
from app.runtime import Runtime
from app.security.passwords import HashParams
from app.security.roles import Role
from app.security.service import SecuritySettings
from app.security.sessions import SessionPolicy
from support import PASSWORD, add_accounts, make_site, wait_for

RACK = "site.bess1.rack01"


@pytest.fixture
def start(tmp_path, qtbot):
    """start(**settings) -> ControlScreen on a running runtime with one account per role."""
    made = []

    def make(**settings) -> ControlScreen:
        site = make_site(tmp_path, racks=2, modules=2, cells=8, poll_s=0.2)
        rt = Runtime(site, tmp_path / "data", dispatch=False,
                     security=SecuritySettings(hash_params=HashParams.cheap(), **settings))
        sec = rt.security
        add_accounts(sec, (Role.OPERATOR, Role.ENGINEER, Role.VIEWER), logout_admin=False)
        host = QtWidgets.QWidget()
        qtbot.addWidget(host)
        session = OperatorSession(sec, rt.router, host)
        made.append((rt, session))
        rt.start()
        screen = ControlScreen(rt, session)
        qtbot.addWidget(screen)
        screen.resize(1230, 660)
        screen.show()
        wait_for(lambda: all(_usable(rt, p) for p in (f"{RACK}.cell_temperatures_c", f"{RACK}.pack_voltage_v",
                                                      "site.pcs1.dc_voltage_v", f"{RACK}.soc_pct")),
                 what="plant values on the bus")
        return screen

    yield make
    for rt, session in made:
        session.timer.stop()
        assert rt.stop() == []


def _usable(rt, point):
    s = rt.bus.get(point)
    return s is not None and s.quality.usable


def _login(screen, role: Role) -> None:
    screen.session.session = screen.runtime.security.login(role.value, PASSWORD[role], "test")


def _audit(screen, action: str):
    return [r for r in screen.runtime.security.audit.records(0) if r.action == action]


def _result(screen, qtbot, headline: str) -> str:
    qtbot.waitUntil(lambda: screen.panel.result.text().startswith(headline), timeout=5000)
    return screen.panel.result.text()


def test_setpoint_is_selected_confirmed_and_read_back_from_the_plant(start, qtbot):
    screen = start()
    _login(screen, Role.OPERATOR)
    screen.kw.setValue(2.0)

    assert screen.set_active_power()
    assert screen.panel.result.text().startswith("▶ SELECTED: Set the active power of pcs1 to +2.0 kW (charging)")
    assert "site.pcs1.active_power_setpoint_kw: 0 → 2" in screen.panel.change.text()
    assert "no interlock refuses it" in screen.panel.checks.text()
    assert screen.panel.countdown.text().startswith("Confirm within 15 s")
    assert screen.runtime.simulator.plant.pcs["pcs1"].setpoint_kw == 0.0       # nothing sent on select

    screen.panel.confirm()
    text = _result(screen, qtbot, "✔ VERIFIED")
    assert "read-back 2 (requested 2)" in text
    wait_for(lambda: screen.runtime.simulator.plant.pcs["pcs1"].setpoint_kw == 2.0, what="setpoint in the plant")
    execute = _audit(screen, "command.execute")[-1]
    assert (execute.user, execute.result) == ("operator", "verified")
    assert json.loads(execute.new_value)["readback"] == 2.0
    assert [r.result for r in _audit(screen, "command.select")] == ["selected"]
    assert [r.result for r in _audit(screen, "command.confirm")] == ["confirmed"]


def test_an_unconfirmed_selection_times_out_and_sends_nothing(start, qtbot):
    screen = start(sbo_timeout_s=0.5)
    _login(screen, Role.OPERATOR)
    screen.kw.setValue(2.0)
    assert screen.set_active_power()
    assert screen.panel.confirm_button.isEnabled()

    text = _result(screen, qtbot, "⌛ TIMED OUT")
    assert "not confirmed within 0.5 s, nothing was sent" in text
    assert not screen.panel.confirm_button.isEnabled()
    screen.panel.confirm()                                  # too late: nothing happens
    assert [r.result for r in _audit(screen, "command.confirm")] == ["timeout"]
    assert not _audit(screen, "command.execute")
    assert screen.runtime.simulator.plant.pcs["pcs1"].setpoint_kw == 0.0


def test_leaving_the_screen_cancels_the_selection(start, qtbot):
    screen = start()
    _login(screen, Role.OPERATOR)
    assert screen.run_pcs(False)
    screen.hide()
    assert screen.panel.result.text() == "○ CANCELLED: STOP pcs1: its power goes to 0 kW whatever the setpoint: " \
                                         "nothing was sent"
    assert [r.result for r in _audit(screen, "command.cancel")] == ["cancelled"]
    assert screen.runtime.simulator.plant.pcs["pcs1"].run


def test_contactor_opens_verified_but_closing_against_a_voltage_mismatch_is_refused(start, qtbot):
    screen = start()
    sim, bus = screen.runtime.simulator, screen.runtime.bus
    _login(screen, Role.OPERATOR)
    screen.rack.setCurrentText(RACK)
    assert screen.contactor(False)
    screen.panel.confirm()
    _result(screen, qtbot, "✔ VERIFIED")
    wait_for(lambda: not sim.plant.racks[RACK].contactor_closed, what="contactor open in the plant")

    before = bus.get(f"{RACK}.pack_voltage_v").value
    with sim.lock:                                          # the open rack now sits ~14 V below the DC bus
        for cell in range(1, 17):
            sim.plant.inject_cell_offset(RACK, cell, -0.9)
    wait_for(lambda: bus.get(f"{RACK}.pack_voltage_v").value < before - 14, what="rack voltage down")
    assert not screen.contactor(True)
    text = _result(screen, qtbot, "✖ REFUSED")
    assert re.search(rf"close {RACK}.contactor_command: rack [\d.]+ V and DC bus [\d.]+ V differ by [\d.]+ V "
                     r"\(> 10.0 V\): precharge or match voltages first", text), text
    assert screen.panel.checks.text() == "Refused at select: nothing was sent."
    assert not screen.panel.confirm_button.isEnabled()
    assert not sim.plant.racks[RACK].contactor_closed
    assert _audit(screen, "command.select")[-1].result == "refused"


def test_charging_a_frozen_lfp_battery_is_refused(start, qtbot):
    screen = start()
    sim = screen.runtime.simulator
    with sim.lock:
        sim.plant.ambient_c = -10.0
        for rack in sim.plant.racks.values():
            rack.temp_c = np.full_like(rack.temp_c, -5.0)
    wait_for(lambda: screen.runtime.bus.get(f"{RACK}.cell_temperatures_c").value.max() < 0, what="cold cells")
    _login(screen, Role.OPERATOR)
    screen.kw.setValue(2.0)

    assert not screen.set_active_power()
    text = _result(screen, qtbot, "✖ REFUSED")
    assert "charge via site.pcs1.active_power_setpoint_kw: LFP cell at -5.0 °C is below 0.0 °C" in text
    assert sim.plant.pcs["pcs1"].setpoint_kw == 0.0


def test_a_viewer_cannot_operate_and_nobody_logged_in_cannot_either(start, qtbot):
    screen = start()
    screen.kw.setValue(1.0)
    assert not screen.set_active_power()
    assert "log in to setpoint" in _result(screen, qtbot, "✖ REFUSED")

    _login(screen, Role.VIEWER)
    assert not screen.run_pcs(False)
    assert "role viewer may not setpoint" in _result(screen, qtbot, "✖ REFUSED")
    assert [r.user for r in _audit(screen, "command.select")] == ["(nobody)", "viewer"]
    assert screen.runtime.simulator.plant.pcs["pcs1"].run


def test_a_critical_command_asks_for_the_password_first(start, qtbot, monkeypatch):
    screen = start(session=SessionPolicy(reauth_window_s=1.0))     # shorter than the 15 s to confirm
    _login(screen, Role.OPERATOR)
    asked = []

    def reauth() -> bool:
        asked.append(True)
        screen.session.session = screen.runtime.security.reauthenticate(screen.session.session,
                                                                          PASSWORD[Role.OPERATOR])
        return True
    monkeypatch.setattr(screen.session, "reauthenticate", reauth)
    assert screen.contactor(False)
    assert asked == [True]
    screen.panel.confirm()
    _result(screen, qtbot, "✔ VERIFIED")
    assert [r.action for r in screen.runtime.security.audit.records(0)][-4:] == \
        ["reauth", "command.select", "command.confirm", "command.execute"]

    monkeypatch.setattr(screen.session, "reauthenticate", lambda: False)       # password dialog cancelled
    screen.session.session = screen.runtime.security.login("operator", PASSWORD[Role.OPERATOR], "test")
    wait_for(lambda: not screen.session.session.auth_fresh(screen.runtime.clock.monotonic()), what="auth stale")
    assert not screen.contactor(True)
    assert "contactor is critical: re-enter the password of 'operator'" in _result(screen, qtbot, "✖ REFUSED")


@pytest.mark.parametrize("press, target", [
    (lambda s: s.set_mode(), "site.ems"),                   # dispatch=False: no EMS thread owns it
])
def test_a_command_nobody_owns_yet_is_shown_as_failed(start, qtbot, press, target):
    screen = start()
    _login(screen, Role.ENGINEER)
    screen.force_point.setEditText(f"{RACK}.soc_pct")
    screen.force_value.setText("42")
    screen.force_reason.setText("SOC estimator under test")
    assert press(screen)
    screen.panel.confirm()
    assert f"no link owns {target}" in _result(screen, qtbot, "✖ FAILED")
    assert _audit(screen, "command.execute")[-1].result == "failed"


def test_an_engineer_forces_a_point_to_manual_and_releases_it(start, qtbot):
    screen = start()
    _login(screen, Role.ENGINEER)
    point = f"{RACK}.soc_pct"
    wait_for(lambda: screen.runtime.bus.get(point), what="SOC published")
    screen.force_point.setEditText(point)
    screen.force_value.setText("42")
    screen.force_reason.setText("SOC estimator under test")
    assert screen.force()
    screen.panel.confirm()
    _result(screen, qtbot, "✔")
    sample = screen.runtime.bus.get(point)
    assert sample.value == 42.0 and sample.quality.value == "MANUAL"
    assert screen.release()
    screen.panel.confirm()
    wait_for(lambda: screen.runtime.bus.get(point).quality.value == "GOOD", what="released")


def test_an_alarm_is_taken_out_of_service_with_a_reason(start, qtbot):
    screen = start()
    tag = "site.links.bms1.comm_lost"
    _login(screen, Role.ENGINEER)
    screen.alarm_tag.setEditText(tag)
    assert not screen.inhibit_alarm()
    assert "enter the alarm and the reason" in screen.panel.result.text()
    screen.inhibit_reason.setText("gateway replaced, work order 4711")
    assert screen.inhibit_alarm()
    screen.panel.confirm()
    assert "out of service" in _result(screen, qtbot, "✔ VERIFIED")
    wait_for(lambda: screen.runtime.protection.alarms.view(tag).state.value == "OUT_OF_SERVICE",
             what="alarm out of service")


def _publish(rt, point: str, value) -> None:
    now = rt.clock
    rt.bus.publish(point, Sample(value, now.time(), now.monotonic(), now.time()))


def test_an_operator_opens_the_grid_breaker_with_a_reason_and_the_overview_flags_it(start, qtbot):
    screen = start()
    rt = screen.runtime
    wait_for(lambda: _usable(rt, "site.meter.breaker_closed") and _usable(rt, "site.meter.grid_available"),
             what="breaker status on the bus")
    overview = OverviewScreen(rt.site)
    qtbot.addWidget(overview)
    overview.update_values(rt.bus.snapshot())
    assert overview.grid.values["Breaker"].text() == "CLOSED"
    assert overview.grid.values["Load feeder"].text() == "ON"
    assert overview.pcs["pcs1"].values["Mode"].text() == "grid-following"
    _login(screen, Role.OPERATOR)

    assert not screen.breaker(False)                        # no reason: nothing selected, nothing audited
    assert "enter the reason" in screen.panel.result.text()
    assert not _audit(screen, "command.select")
    screen.grid_reason.setText("maintenance on the transformer, work order 815")
    assert screen.breaker(False)
    assert "site.meter.breaker_command: 1 → 0" in screen.panel.change.text()
    screen.panel.confirm()
    _result(screen, qtbot, "✔ VERIFIED")
    wait_for(lambda: not rt.simulator.plant.breaker_closed, what="breaker open in the plant")
    execute = _audit(screen, "command.execute")[-1]
    assert (execute.target, execute.user, execute.result) == ("site.meter.breaker_command", "operator", "verified")
    assert json.loads(execute.new_value)["kind"] == "contactor"
    assert [r.detail for r in _audit(screen, "command.select")] == ["maintenance on the transformer, work order 815"]

    wait_for(lambda: rt.bus.get("site.meter.breaker_closed").value is False, what="breaker read open")
    overview.update_values(rt.bus.snapshot())
    label = overview.grid.values["Breaker"]
    assert (label.text(), label.property("state")) == ("✕ OPEN with the grid available", "alarm")
    _publish(rt, "site.ems.island_state", "isolating")     # the EMS sequence opened it: expected
    overview.update_values(rt.bus.snapshot())
    assert (label.text(), label.property("state")) == ("OPEN", "")
    island = overview.grid.values["Island"]
    assert (island.text(), island.property("state")) == ("ISLAND: isolating", "alarm")


def test_an_operator_switches_the_load_feeder_off(start, qtbot):
    screen = start()
    _login(screen, Role.OPERATOR)
    screen.grid_reason.setText("feeder inspection")
    assert screen.feeder(False)
    screen.panel.confirm()
    _result(screen, qtbot, "✔ VERIFIED")
    wait_for(lambda: not screen.runtime.simulator.plant.feeder_closed, what="feeder off in the plant")
    assert _audit(screen, "command.execute")[-1].target == "site.meter.load_feeder_enable"


def test_a_viewer_may_not_switch_the_grid_breaker(start, qtbot):
    screen = start()
    _login(screen, Role.VIEWER)
    screen.grid_reason.setText("curious")
    assert not screen.breaker(False)
    assert "role viewer may not contactor" in _result(screen, qtbot, "✖ REFUSED")
    assert not screen.pcs_mode(True)
    assert "role viewer may not mode" in _result(screen, qtbot, "✖ REFUSED")
    assert [r.result for r in _audit(screen, "command.select")] == ["refused", "refused"]
    assert screen.runtime.simulator.plant.breaker_closed


def test_a_manual_breaker_close_is_refused_while_the_ems_islands(start, qtbot):
    screen = start()
    rt = screen.runtime
    _login(screen, Role.OPERATOR)
    screen.grid_reason.setText("back on grid")
    _publish(rt, "site.ems.island_state", "islanded")       # dispatch=False: no EMS thread overwrites it
    assert not screen.breaker(True)
    text = _result(screen, qtbot, "✖ REFUSED")
    assert ("close site.meter.breaker_command: the EMS islanding sequence is active (phase islanded); it closes "
            "the breaker itself once the island is in sync with the grid") in text
    assert screen.breaker(False)                            # opening is not interlocked
    screen.panel.cancel()
    _publish(rt, "site.ems.island_state", "connected")
    assert screen.breaker(True)
