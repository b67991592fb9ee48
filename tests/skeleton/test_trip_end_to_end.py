"""The walking skeleton over real loopback links: simulator (Modbus TCP server) -> driver threads ->
DataBus -> protection -> PCS command over Modbus -> historian and the operator's event list."""
from __future__ import annotations

import pytest

from app.core.events import Severity
from app.runtime import Runtime
from support import charging_ems, make_site, wait_for


@pytest.fixture
def runtime(tmp_path):
    site = make_site(tmp_path, racks=2, modules=2, cells=8, poll_s=0.2)
    rt = Runtime(site, tmp_path / "data", **charging_ems(site))
    rt.start()
    yield rt
    assert rt.stop() == []


def _pcs(rt):
    return rt.simulator.plant.pcs["pcs1"]


def test_cell_overvoltage_trip_reaches_the_pcs_historian_and_event_list(runtime, qtbot):
    from app.qt.main_window import MainWindow
    window = MainWindow(runtime)
    qtbot.addWidget(window)
    wait_for(lambda: _pcs(runtime).setpoint_kw > 0, what="demo dispatch to charge")

    with runtime.simulator.lock:
        runtime.simulator.plant.inject_cell_offset("site.bess1.rack02", 11, 0.5)   # module 2, cell 3

    trip = wait_for(lambda: next((e for e in runtime.journal.since(0) if e.kind == "trip"), None),
                    what="trip event")
    assert trip.severity == Severity.TRIP
    assert trip.point == "site.bess1.rack02.module02.cell003.voltage_v"
    assert trip.value > 3.65 and trip.limit == pytest.approx(3.65)
    assert "cell 2-02-03" in trip.message

    # the trip sequence went over Modbus to the simulated plant: PCS to 0 kW, then, with the PCS
    # below 5 kW, only the faulty rack's contactor opens (the other rack is healthy: rack isolation)
    wait_for(lambda: _pcs(runtime).setpoint_kw == 0.0, what="PCS setpoint 0 kW over Modbus")
    plant = runtime.simulator.plant
    wait_for(lambda: not plant.racks["site.bess1.rack02"].contactor_closed, what="faulty rack isolated")
    assert plant.racks["site.bess1.rack01"].contactor_closed
    wait_for(lambda: runtime.bus.get("site.protection.state").value == "TRIPPED", what="protection TRIPPED")
    assert runtime.bus.get("site.bess1.trip_scope").value == "rack"

    # the site keeps running at reduced power on the healthy rack; the tripped rack stays latched out
    wait_for(lambda: _pcs(runtime).setpoint_kw > 0, what="dispatch resumes on the healthy rack")
    assert runtime.bus.get("site.bess1.rack02.protection_state").value == "TRIPPED"
    assert 0 < runtime.bus.get("site.bess1.available_charge_kw").value

    # on the operator's event list
    qtbot.waitUntil(lambda: any("TRIP cell overvoltage" in e.message for e in window.events.model.rows),
                    timeout=5000)
    assert window.banner.text() == "PROTECTION: TRIPPED"

    # and in the historian (committed by the writer thread within its flush period)
    from app.historian.reader import HistorianReader
    with HistorianReader(runtime.data_dir / "historian.sqlite") as reader:
        stored = wait_for(lambda: reader.events(trip.time - 1, trip.time + 1, Severity.TRIP),
                          what="trip event in the historian")
        assert stored[0].message == trip.message and stored[0].point == trip.point
        # and the overvoltage itself is in the per-cell history of that rack
        cell = reader.raw("site.bess1.rack02.cell_voltages_v", trip.time - 5, trip.time + 1, cell=11)
        assert cell.value.max() > 3.65


def test_reset_is_refused_while_the_cause_persists_and_accepted_after(runtime):
    from app.core.commands import Command
    with runtime.simulator.lock:
        runtime.simulator.plant.inject_cell_offset("site.bess1.rack01", 1, 0.6)
    wait_for(lambda: (s := runtime.bus.get("site.protection.state")) and s.value == "TRIPPED")
    refused = runtime.router.submit(Command("site.protection", "reset", user="engineer")).result(5)
    assert not refused.ok and "cause persists" in refused.message
    with runtime.simulator.lock:
        runtime.simulator.plant.clear_faults()
    wait_for(lambda: runtime.bus.get("site.bess1.rack01.cell_voltages_v").value.max() < 3.6)
    accepted = runtime.router.submit(Command("site.protection", "reset", user="engineer")).result(5)
    assert accepted.ok
    wait_for(lambda: runtime.bus.get("site.protection.state").value == "NORMAL")
    wait_for(lambda: _pcs(runtime).setpoint_kw != 0.0, what="dispatch resumes after the reset")
