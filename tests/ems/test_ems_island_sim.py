"""Islanding end to end over Modbus TCP: simulator <- drivers <- EMS (and protection), on a fast clock.
Grid loss -> breaker open -> PCS grid-forming -> loads back, battery carries load minus PV -> grid back
-> stable -> breaker closed in sync -> grid-following, the mode resumes. Without the EMS: a blackout."""
from __future__ import annotations

import pytest

from app.core.clock import ScaledClock
from app.ems.settings import EmsSettings
from app.runtime import Runtime
from app.sim.plant import NOMINAL_HZ
from app.sim.plant_faults import PlantFaultInjector
from support import make_site, wait_for

EVENING = 20_000 * 86400.0 + 19 * 3600.0      # load and no PV
SPEED = 4.0
STABLE_S = 3.0


def _runtime(tmp_path, island: bool) -> Runtime:
    site = make_site(tmp_path, racks=2, modules=2, cells=8, poll_s=0.2, stale_after_s=8.0)   # clock seconds
    ems = EmsSettings(manual_kw=1.0, period_s=0.25, stale_after_s=10.0, write_deadband_kw=0.05,
                      island_on_grid_loss=island, island_grid_stable_s=STABLE_S, island_device_timeout_s=8.0)
    return Runtime(site, tmp_path / "data", clock=ScaledClock(SPEED, start_wall=EVENING), ems_mode="manual", ems=ems)


@pytest.fixture
def runtime(tmp_path, request):
    rt = _runtime(tmp_path, island=request.param)
    rt.start()
    yield rt
    assert rt.stop() == []


def _on_grid(rt) -> None:
    plant = rt.simulator.plant
    wait_for(lambda: plant.pcs["pcs1"].power_kw == pytest.approx(1.0), what="manual mode charging 1 kW",
             journal=rt.journal)
    assert rt.bus.get("site.meter.breaker_closed").value is True and plant.unserved_load_kw == 0.0


def _phases(rt) -> list[str]:
    return [e.message.split(":")[0].split(" -> ")[1] for e in rt.journal.since(0) if e.kind == "island"]


@pytest.mark.parametrize("runtime", [True], indirect=True)
def test_grid_loss_islands_the_site_and_the_grid_return_resyncs_it(runtime):
    rt, plant = runtime, runtime.simulator.plant
    pcs = plant.pcs["pcs1"]
    value = rt.bus.get
    _on_grid(rt)
    faults = PlantFaultInjector.for_simulator(rt.simulator)
    fid = faults.inject("grid_loss")

    wait_for(lambda: value("site.ems.island_state").value == "islanded", what="islanded", journal=rt.journal)
    assert _phases(rt) == ["isolating", "energising", "picking_up", "islanded"]
    assert not plant.breaker_closed and value("site.meter.breaker_closed").value is False
    assert pcs.grid_forming and value("site.pcs1.operating_mode").value == 1 and value("site.pcs1.state").value == 3
    assert plant.feeder_closed and value("site.meter.load_feeder_enable").value == 1
    wait_for(lambda: abs(value("site.pcs1.grid_frequency_hz").value - NOMINAL_HZ) < 0.05,
             what="island frequency at nominal (the reference follows the load)", journal=rt.journal)
    with rt.simulator.lock:
        demand = plant.load_kw - plant.pv_kw
        assert demand > 0.5 and pcs.power_kw == pytest.approx(-demand, rel=0.02)     # battery carries load - PV
        assert plant.unserved_load_kw < 0.02 * plant.load_kw and plant.grid_import_kw == 0.0
    assert value("site.meter.grid_available").value is False and value("site.meter.grid_frequency_hz").value == 0.0

    faults.clear(fid)
    wait_for(lambda: value("site.ems.island_state").value == "connected", timeout=20, what="back on grid",
             journal=rt.journal)
    assert _phases(rt)[4:] == ["resync_wait", "synchronising", "reconnecting", "connected"]
    island = [e for e in rt.journal.since(0) if e.kind == "island"]
    assert island[5].time - island[4].time >= STABLE_S                       # the grid proved stable first
    assert "island in sync, closing the grid breaker" in island[5].message
    assert plant.breaker_closed and value("site.meter.breaker_closed").value is True
    assert not pcs.grid_forming and pcs.state == "running"
    wait_for(lambda: value("site.ems.why").value.startswith("manual") and pcs.power_kw == pytest.approx(1.0),
             what="the inner mode resumes", journal=rt.journal)
    assert plant.unserved_load_kw == 0.0 and plant.grid_import_kw > 0.0
    assert not [e for e in rt.journal.since(0) if e.kind == "island_alarm"]


@pytest.mark.parametrize("runtime", [True], indirect=True)
def test_emergency_stop_in_the_island_wins_and_the_ems_commands_no_pcs_after(runtime):
    rt, plant = runtime, runtime.simulator.plant
    _on_grid(rt)
    PlantFaultInjector.for_simulator(rt.simulator).inject("grid_loss")
    wait_for(lambda: rt.bus.get("site.ems.island_state").value == "islanded", what="islanded", journal=rt.journal)
    sent = []
    submit = rt.router.submit
    rt.router.submit = lambda c: (sent.append(c), submit(c))[1]      # a spy on our own router
    rt.emergency_stop("operator")
    wait_for(lambda: rt.bus.get("site.ems.island_state").value == "shed", what="island shed", journal=rt.journal)
    wait_for(lambda: not plant.feeder_closed and not any(r.contactor_closed for r in plant.racks.values()),
             what="loads off, contactors open", journal=rt.journal)
    with rt.simulator.lock:
        assert plant.unserved_load_kw == plant.load_kw and plant.pcs["pcs1"].power_kw == 0.0
    assert not [c for c in sent if c.user == "ems" and c.target.startswith("site.pcs1.")]


@pytest.mark.parametrize("runtime", [False], indirect=True)
def test_without_the_ems_islanding_grid_loss_blacks_the_site_out(runtime):
    rt, plant = runtime, runtime.simulator.plant
    _on_grid(rt)
    PlantFaultInjector.for_simulator(rt.simulator).inject("grid_loss")
    wait_for(lambda: rt.bus.get("site.pcs1.state").value == 0, what="PCS stopped (no grid voltage)",
             journal=rt.journal)
    assert rt.bus.get("site.meter.breaker_closed").value is True and rt.bus.get("site.pcs1.operating_mode").value == 0
    with rt.simulator.lock:
        assert plant.pcs["pcs1"].power_kw == 0.0 and plant.unserved_load_kw == plant.load_kw > 0.0
        assert plant.grid_hz == 0.0
