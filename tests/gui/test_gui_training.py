"""Training mode with pytest-qt over the real runtime: an engineer injects a fault from the dialog (active
in the plant, audited, its symptom on the bus, TRAINING shown), clears it; an operator is refused; the
dialog explains each kind and names a bad parameter; no Training menu without an in-process simulator."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from app.core.clock import SystemClock
from app.core.commands import Command, CommandRouter
from app.core.events import EventJournal
from app.core.site import load_site
from app.runtime import Runtime
from app.security.passwords import HashParams
from app.security.roles import Role
from app.security.service import SecuritySettings
from app.sim.plant_faults import FAULT_KINDS
from app.sim.simulator import Simulator
from app.sim.training import TrainingFaults
from support import PASSWORD, add_accounts, charging_ems, free_port, main_window, make_site, site_text, wait_for

RACK = "site.bess1.rack01"
SPEC = f"cell_drift:rack={RACK},cell=3,rate_v_per_min=6"


def _runtime(site, data_dir) -> Runtime:
    rt = Runtime(site, data_dir, security=SecuritySettings(hash_params=HashParams.cheap()), **charging_ems(site))
    add_accounts(rt.security, (Role.ENGINEER, Role.OPERATOR))
    return rt


@pytest.fixture
def window(tmp_path, qtbot):
    rt = _runtime(make_site(tmp_path, racks=2, modules=2, cells=8, poll_s=0.2), tmp_path / "data")
    with main_window(rt, qtbot) as w:
        yield w


def _login(w, role: Role) -> None:
    w.session.session = w.runtime.security.login(role.value, PASSWORD[role], "test")


def _audit(w, action: str):
    return [r for r in w.runtime.security.audit.records(0) if r.action == action]


def test_engineer_injects_a_cell_drift_from_the_dialog_and_clears_it(window, qtbot):
    _login(window, Role.ENGINEER)
    point = f"{RACK}.cell_voltages_v"
    before = wait_for(lambda: window.runtime.bus.get(point), what="cell voltages").value.copy()

    def fill():
        dialog = QtWidgets.QApplication.activeModalWidget()
        dialog.select("cell_drift")
        dialog.rack.setCurrentText(RACK)
        dialog.cell.setValue(3)
        dialog.param.setText("6")
        dialog.reason.setText("drill 1: cell overvoltage")
        assert dialog.spec_label.text() == SPEC
        dialog.inject_button.click()
    QtCore.QTimer.singleShot(200, fill)
    window.training.inject_action.trigger()

    assert window.runtime.simulator.plant.racks[RACK].drift_v_per_s[2] == pytest.approx(0.1)
    [record] = _audit(window, "inject_fault")
    assert (record.user, record.target, json.loads(record.new_value), record.result, record.detail) == \
        ("engineer", "site.sim", SPEC, "ok", "drill 1: cell overvoltage")
    assert window.training.status.text() == "TRAINING: 1 simulated fault active"
    assert "TRAINING: 1 simulated fault active" in window.windowTitle()
    assert window.training.dock.isVisible() and window.training.dock.table.item(0, 1).text() == SPEC

    def cell3_rose():
        v = window.runtime.bus.get(point).value
        return v[2] > before[2] + 0.1 and np.all(np.abs(np.delete(v - before, 2)) < 0.05)
    wait_for(cell3_rose, timeout=10.0, what="cell 3 voltage rising on the bus")

    window.training.dock.table.cellWidget(0, 5).click()
    assert window.runtime.simulator.plant.racks[RACK].drift_v_per_s[2] == 0.0
    assert window.runtime.training.active == ()
    assert [r.result for r in _audit(window, "clear_fault")] == ["ok"]
    assert not window.training.status.isVisible() and "TRAINING" not in window.windowTitle()


def test_operator_may_not_inject_a_fault(window, qtbot, monkeypatch):
    _login(window, Role.OPERATOR)
    refusals = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "warning", lambda *a: refusals.append(a[2]))
    assert not window.training.inject(SPEC, "")
    assert refusals == ["role operator may not simulate_fault"]
    assert window.runtime.training.active == ()
    assert window.runtime.simulator.plant.racks[RACK].drift_v_per_s[2] == 0.0
    assert [r.result for r in _audit(window, "inject_fault")] == ["refused"]


def test_the_dialog_explains_each_kind_and_names_a_bad_parameter(tmp_path, qtbot):
    from app.qt.training import InjectFaultDialog
    sim = Simulator(make_site(tmp_path, racks=2, modules=2, cells=8), SystemClock())
    training = TrainingFaults(sim, CommandRouter(), EventJournal(), SystemClock())
    sent = []
    dialog = InjectFaultDialog(None, sim.site, training, lambda spec, reason: sent.append(spec) or True)
    qtbot.addWidget(dialog)

    dialog.select("internal_short")
    assert dialog.help.text() == FAULT_KINDS["internal_short"].help
    assert dialog.param_label.text() == "ohms (Ω)" and dialog.param.text() == ""
    assert "computed" in dialog.param.placeholderText()
    dialog.select("bms_reboot")
    assert (dialog.param_label.text(), dialog.param.text()) == ("seconds (s)", "10")
    assert not dialog.form.isRowVisible(dialog.cell) and dialog.form.isRowVisible(dialog.rack)
    dialog.select("link_latency")
    assert [dialog.link.itemText(i) for i in range(dialog.link.count())] == ["bms1", "pcs1"]
    assert dialog.spec_label.text() == "link_latency:link=bms1,ms=500"

    dialog.select("cell_drift")
    dialog.param.setText("fast")
    dialog.inject_button.click()
    assert "'rate_v_per_min' must be a number, got 'fast'" in dialog.error.text() and not sent
    dialog.param.setText("")
    dialog.inject_button.click()
    assert "missing key 'rate_v_per_min'" in dialog.error.text() and not sent
    dialog.param.setText("-0.5")
    dialog.inject_button.click()
    assert sent == [f"cell_drift:rack={RACK},cell=1,rate_v_per_min=-0.5"] and dialog.error.text() == ""
    assert dialog.result() == QtWidgets.QDialog.DialogCode.Accepted


def test_no_training_menu_without_an_in_process_simulator(tmp_path, qtbot):
    from app.qt.main_window import MainWindow
    path = tmp_path / "site.toml"
    path.write_text(site_text(free_port(), free_port()).replace("enabled = true", "enabled = false"))
    rt = _runtime(load_site(path), tmp_path / "data")
    w = MainWindow(rt)
    qtbot.addWidget(w)
    try:
        assert rt.training is None and w.training is None
        assert "&Training" not in [a.text() for a in w.menuBar().actions()]
        result = rt.router.submit(Command("site.sim", "inject_fault", SPEC)).result(1.0)
        assert not result.ok and "no link owns site.sim" in result.message
    finally:
        w.close()
        assert rt.stop() == []
