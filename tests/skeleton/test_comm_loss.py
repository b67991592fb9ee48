"""Killing the plant's BMS link: COMM_LOST within two poll periods, on screen, protection safe state;
restarting the simulator's server recovers without restarting the ESMS."""
from __future__ import annotations

import time

import pytest

from app.runtime import Runtime
from support import charging_ems, make_site, wait_for

POLL_S = 0.25


@pytest.fixture
def runtime(tmp_path):
    site = make_site(tmp_path, racks=2, modules=2, cells=8, poll_s=POLL_S, stale_after_s=1.0)
    rt = Runtime(site, tmp_path / "data", **charging_ems(site))
    rt.start()
    yield rt
    assert rt.stop() == []


def test_bms_link_loss_marks_comm_lost_shows_it_goes_safe_and_recovers(runtime, qtbot):
    from app.qt.main_window import MainWindow
    window = MainWindow(runtime)
    qtbot.addWidget(window)
    rack = "site.bess1.rack01.cell_voltages_v"
    wait_for(lambda: runtime.simulator.plant.pcs["pcs1"].setpoint_kw > 0, what="dispatch running")

    killed = time.monotonic()
    runtime.simulator.stop_endpoints("bms1")
    wait_for(lambda: runtime.bus.get(rack).quality.value == "COMM_LOST", timeout=5, what="COMM_LOST")
    assert time.monotonic() - killed <= 2 * POLL_S + 0.25          # within two poll periods (+ scheduling)
    assert runtime.bus.get("site.links.bms1.status").value == "COMM_LOST"

    # the screen shows it: link status text and the greyed, labelled racks on the heatmap
    qtbot.waitUntil(lambda: "COMM_LOST" in window.overview.link_labels["bms1"].text(), timeout=3000)
    qtbot.waitUntil(lambda: window.cells.heatmap._labels[0].textItem.toPlainText() == "COMM_LOST",
                    timeout=3000)

    # protection: safe state, the PCS (on its own, still healthy link) is driven to 0 kW
    wait_for(lambda: runtime.bus.get("site.protection.state").value == "STALE", what="protection safe state")
    wait_for(lambda: runtime.simulator.plant.pcs["pcs1"].setpoint_kw == 0.0, what="PCS 0 kW")
    assert any(e.kind == "safe_state" for e in runtime.journal.since(0))

    runtime.simulator.start_endpoints("bms1")
    wait_for(lambda: runtime.bus.get(rack).quality.value == "GOOD", timeout=5, what="link recovery")
    wait_for(lambda: runtime.bus.get("site.protection.state").value == "NORMAL", what="protection normal", journal=runtime.journal)
    wait_for(lambda: runtime.simulator.plant.pcs["pcs1"].setpoint_kw != 0.0, what="dispatch resumes", journal=runtime.journal)
    qtbot.waitUntil(lambda: "ONLINE" in window.overview.link_labels["bms1"].text(), timeout=3000)
    assert any(e.kind == "link_restored" for e in runtime.journal.since(0))
