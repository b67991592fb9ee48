"""Operator screens with pytest-qt over the real runtime (simulator on loopback): navigation, alarm
ack/shelve/reset with roles, drill-down, trends, emergency stop while logged out."""
from __future__ import annotations

import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from app.alarms.model import AlarmState
from app.runtime import Runtime
from app.security.passwords import HashParams
from app.security.roles import Role
from app.security.service import SecuritySettings
from support import PASSWORD, add_accounts, charging_ems, main_window, make_site, wait_for


@pytest.fixture
def window(tmp_path, qtbot):
    site = make_site(tmp_path, racks=2, modules=2, cells=8, poll_s=0.2)
    rt = Runtime(site, tmp_path / "data", security=SecuritySettings(hash_params=HashParams.cheap()),
                 **charging_ems(site))
    add_accounts(rt.security, (Role.OPERATOR, Role.VIEWER))
    with main_window(rt, qtbot) as w:
        yield w


def _login(w, role: Role) -> None:
    w.session.session = w.runtime.security.login(role.value, PASSWORD[role], "test")


def _trip(w, rack="site.bess1.rack01", cell=3):
    with w.runtime.simulator.lock:
        w.runtime.simulator.plant.inject_cell_offset(rack, cell, 0.6)
    return wait_for(lambda: next((a for a in w.runtime.protection.alarm_summary.active if a.latched), None),
                    what="latched trip alarm")


def _select(w, tag: str, qtbot) -> None:
    qtbot.waitUntil(lambda: any(a.tag == tag for a in w.alarms.model.rows), timeout=3000)
    row = next(r for r in range(w.alarms.proxy.rowCount())
               if w.alarms.model.rows[w.alarms.proxy.mapToSource(w.alarms.proxy.index(r, 0)).row()].tag == tag)
    w.alarms.table.selectRow(row)


def test_function_keys_reach_every_screen(window, qtbot):
    from app.qt.main_window import KEYS
    assert len(KEYS) == len(window.screens) and KEYS[:12] == tuple(f"F{i + 1}" for i in range(12))
    for i, key in enumerate(KEYS):
        combo = QtGui.QKeySequence(key)[0]
        qtbot.keyClick(window, combo.key(), combo.keyboardModifiers())
        assert window.stack.currentIndex() == i
        assert window.buttons[i].isChecked()


def test_operator_acknowledges_a_trip_and_resets_it_once_the_cause_is_gone(window, qtbot, monkeypatch):
    alarm = _trip(window)
    _login(window, Role.OPERATOR)
    _select(window, alarm.tag, qtbot)
    window.alarms.ack_selected()
    wait_for(lambda: window.runtime.protection.alarms.view(alarm.tag).state is AlarmState.ACKED, what="ACKED")
    qtbot.waitUntil(lambda: any(a.tag == alarm.tag and a.state is AlarmState.ACKED for a in window.alarms.model.rows),
                    timeout=3000)

    refusals = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "warning", lambda *a: refusals.append(a[2]))
    monkeypatch.setattr(window.session, "reauthenticate", lambda: _reauth(window))
    window.alarms.reset_selected()                   # the cause persists: refused, latched still
    assert refusals and "condition persists" in refusals[-1]
    assert window.runtime.protection.alarms.view(alarm.tag).latched

    with window.runtime.simulator.lock:
        window.runtime.simulator.plant.clear_faults()
    wait_for(lambda: not window.runtime.protection.alarms.view(alarm.tag).condition, what="cause gone")
    window.alarms.reset_selected()
    wait_for(lambda: window.runtime.bus.get("site.protection.state").value == "NORMAL", what="reset")
    records = window.runtime.security.audit.records(0)
    assert [r.action for r in records if r.target == "site.alarms"][-3:] == ["ack", "reset", "reset"]
    assert [r.result for r in records if r.action == "reset"] == ["failed", "ok"]


def _reauth(w) -> bool:
    w.session.session = w.runtime.security.reauthenticate(w.session.session, PASSWORD[Role.OPERATOR])
    return True


def test_viewer_cannot_acknowledge(window, qtbot, monkeypatch):
    alarm = _trip(window)
    _login(window, Role.VIEWER)
    refusals = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "warning", lambda *a: refusals.append(a[2]))
    _select(window, alarm.tag, qtbot)
    window.alarms.ack_selected()
    assert refusals and "viewer" in refusals[0]
    assert window.runtime.protection.alarms.view(alarm.tag).state is AlarmState.UNACK


def test_operator_shelves_a_link_alarm_with_a_reason(window, qtbot):
    _login(window, Role.OPERATOR)
    tag = "site.links.bms1.comm_lost"
    window.runtime.simulator.stop_endpoints("bms1")
    _select(window, tag, qtbot)

    def fill():
        dialog = QtWidgets.QApplication.activeModalWidget()
        dialog.reason_edit.setText("BMS gateway replaced, work order 4711")
        dialog.duration.setCurrentIndex(1)                  # 15 minutes
        dialog._accept()
    QtCore.QTimer.singleShot(200, fill)
    window.alarms.shelve_selected()
    view = wait_for(lambda: (v := window.runtime.protection.alarms.view(tag)).state is AlarmState.SHELVED and v,
                    what="SHELVED")
    assert view.shelf.reason == "BMS gateway replaced, work order 4711" and view.shelf.until is not None
    qtbot.waitUntil(lambda: any(a.tag == tag for a in window.runtime.protection.alarm_summary.hidden), timeout=3000)
    window.runtime.simulator.start_endpoints("bms1")


def test_emergency_stop_works_while_logged_out(window, qtbot):
    plant = window.runtime.simulator.plant
    wait_for(lambda: plant.pcs["pcs1"].setpoint_kw > 0, what="dispatch running")
    assert window.session.session is None
    qtbot.keyClick(window, QtCore.Qt.Key.Key_E, QtCore.Qt.KeyboardModifier.ControlModifier)
    wait_for(lambda: plant.pcs["pcs1"].setpoint_kw == 0.0, what="PCS 0 kW")
    wait_for(lambda: not any(r.contactor_closed for r in plant.racks.values()), what="contactors open")
    wait_for(lambda: window.runtime.bus.get("site.protection.state").value == "EMERGENCY_STOP")
    qtbot.waitUntil(lambda: "EMERGENCY_STOP" in window.banner.text(), timeout=3000)
    audit = [r for r in window.runtime.security.audit.records(0) if r.action == "emergency_stop"]
    assert audit and audit[0].user == "(nobody)"


def test_heatmap_click_drills_down_to_the_cell_detail(window, qtbot):
    wait_for(lambda: window.runtime.bus.get("site.bess1.rack02.cell_voltages_v"))
    window.show_screen(2)
    window.cells.heatmap.cellClicked.emit(2, 2, 3)          # rack02, module 2, cell 3 -> cell 11
    assert window.stack.currentWidget() is window.detail
    assert "2-02-03" in window.detail.title.text()
    qtbot.waitUntil(lambda: window.detail.rows["Voltage"].text().endswith(" V"), timeout=3000)


def test_trend_shows_a_cell_from_the_historian(window, qtbot):
    wait_for(lambda: window.runtime.historian.commits >= 2, what="historian commits")
    window.trends.add("site.bess1.rack01.cell_voltages_v#5")
    qtbot.waitUntil(lambda: "site.bess1.rack01.cell_voltages_v#5" in window.trends.plot._series, timeout=5000)
    assert "cell_voltages_v#5 = 3." in window.trends.plot.readout_text()


def test_history_screen_estimates_disk_use_and_exports_with_progress(window, qtbot, tmp_path):
    wait_for(lambda: window.runtime.historian.commits >= 3, what="historian commits")
    screen = window.history
    window.show_screen(window.stack.indexOf(screen))
    qtbot.waitUntil(lambda: screen.rows["Size now"].text().endswith("B"), timeout=5000)
    out = tmp_path / "export.csv"
    screen.out.setText(str(out))
    screen.pattern.setText("site.bess1.rack01.cell_voltages_v")
    screen.t_from.setDateTime(screen.t_from.dateTime().addSecs(-600))
    screen.t_to.setDateTime(screen.t_to.dateTime().addSecs(600))
    screen.start_export()
    qtbot.waitUntil(lambda: screen.status.text().startswith("✔"), timeout=10000)
    assert screen.progress.value() == 1000
    lines = out.read_text().splitlines()
    assert lines[0].startswith("t_s,") and len(lines) > 16          # one row per cell per sample


def test_links_screen_shows_raw_frames_and_records_them(window, qtbot, tmp_path):
    screen = window.links
    window.show_screen(window.stack.indexOf(screen))
    screen.table.selectRow(0)                                   # bms1 (Modbus TCP)
    qtbot.waitUntil(lambda: " rx " in screen.frames.toPlainText() and " tx " in screen.frames.toPlainText(),
                    timeout=5000)
    capture = tmp_path / "bms1.log"
    screen.toggle_recording(str(capture))
    assert "RECORDING" in screen.caption.text()
    wait_for(lambda: capture.exists() and capture.read_text().count(" rx ") >= 2, what="frames recorded")
    screen.toggle_recording()
    assert not window.runtime.drivers[0].monitor.recording
    first = capture.read_text().splitlines()[0].split()
    assert first[1] in ("tx", "rx") and bytes.fromhex(first[2])


def test_a_burst_of_1000_alarms_reaches_the_alarm_list_without_losing_one(qtbot):
    from app.alarms.manager import AlarmManager
    from app.alarms.model import AlarmDefinition, Direction, Priority
    from app.core.commands import Command
    from app.qt.screens.alarms import AlarmsScreen
    manager = AlarmManager([AlarmDefinition(f"site.burst.a{i:04d}", f"site.burst.a{i:04d}", "burst", Priority.HIGH,
                                            direction=Direction.DISCRETE) for i in range(1000)], now=0.0)
    sent: list[Command] = []
    screen = AlarmsScreen(lambda kind, cmd: sent.append(cmd) or True, lambda: ())
    qtbot.addWidget(screen)
    transitions = manager.cycle(1.0, conditions=[(f"site.burst.a{i:04d}", True, 1) for i in range(1000)])
    assert sum(t.action == "activate" for t in transitions) == 1000
    screen.set_summary(manager.summary())
    assert screen.proxy.rowCount() == 1000
    assert "ALARM FLOOD" in screen.flood.text()
    screen.ack_all_visible()
    assert len(sent) == 1 and len(sent[0].value) == 1000
