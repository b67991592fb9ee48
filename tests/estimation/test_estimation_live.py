"""The live estimation thread against a DataBus fed by the plant model's racks (no network)."""
import numpy as np
import pytest

from app.core.clock import ManualClock
from app.core.databus import DataBus
from app.core.events import EventJournal
from app.core.sample import Quality, Sample, vector
from app.core.supervisor import Supervisor
from app.estimation.live import EstimationThread
from app.sim.plant import RackModel
from support import make_site, wait_for


class PlantFeed:
    """The simulator's rack models (true SOC known), published like a BMS driver would."""

    def __init__(self, site, bus, clock, soc):
        rng = np.random.default_rng(3)
        bess = site.bess[0]
        self.bus, self.clock, self.t = bus, clock, clock.time()
        self.models = {r.path: RackModel.create(r, bess.chemistry, bess.cell_capacity_ah, rng) for r in bess.racks}
        for m, s in zip(self.models.values(), soc):
            m.soc = np.clip(s + rng.normal(0, 0.02, m.soc.size), 0.05, 0.95)
        self.quality = {p: Quality.GOOD for p in self.models}
        self.temperatures = {p: True for p in self.models}

    def step(self, current_a, dt=1.0):
        self.t += dt
        items = []
        for path, m in self.models.items():
            m.current_a = current_a
            m.step(dt, 25.0)
            q = self.quality[path]
            items += [(f"{path}.cell_voltages_v", Sample(vector(m.cell_voltages()), self.t, self.t, self.t, q)),
                      (f"{path}.current_a", Sample(m.current_a, self.t, self.t, self.t, q))]
            if self.temperatures[path]:
                items.append((f"{path}.cell_temperatures_c", Sample(vector(m.temp_c), self.t, self.t, self.t, q)))
        self.bus.publish_many(items)


@pytest.fixture
def rig(tmp_path):
    site = make_site(tmp_path, racks=2, modules=2, cells=8, chemistry="nmc")
    bus, clock = DataBus(), ManualClock()
    return site, bus, clock, PlantFeed(site, bus, clock, soc=(0.3, 0.7))


def _profile(t):
    """A rest, then 0.3 C discharge / charge blocks (100 Ah cells)."""
    return 0.0 if t < 120 else (-30.0 if (t // 300) % 2 else 30.0)


def test_live_estimation_follows_the_plant_and_publishes_every_point(rig):
    site, bus, clock, feed = rig
    est = EstimationThread(site, bus, clock)
    for t in range(900):
        feed.step(_profile(t))
        assert est.cycle() == 2
    for rack in site.racks:
        truth = 100.0 * feed.models[rack.path].true_soc
        cell_soc = bus.get(f"{rack.path}.cell_soc_pct").value
        assert cell_soc.dtype == np.float32 and cell_soc.shape == (rack.cell_count,)
        assert np.abs(cell_soc - truth).max() < 3.0
        assert (bus.get(f"{rack.path}.cell_soc_std_pct").value < 5.0).all()
        pack = bus.get(f"{rack.path}.soc_est_pct").value
        assert cell_soc.min() <= pack <= cell_soc.max()
        low, soh, high = (bus.get(f"{rack.path}.soh_pct{s}").value for s in ("_low", "", "_high"))
        assert low <= soh <= high and low <= 100.0 <= high
        assert bus.get(f"{rack.path}.cell_soh_capacity_pct").value.shape == (rack.cell_count,)
        assert bus.get(f"{rack.path}.cell_soh_resistance_pct").value.shape == (rack.cell_count,)
        assert isinstance(bus.get(f"{rack.path}.balancing_cells").value, str)
        assert bus.get(f"{rack.path}.balancing_energy_wh").value >= 0.0
        assert bus.get(f"{rack.path}.soc_est_pct").source_ts == feed.t
    racks = sorted(site.racks, key=lambda r: r.number)
    assert bus.get(f"{racks[0].path}.soc_est_pct").value < bus.get(f"{racks[1].path}.soc_est_pct").value


def test_a_rack_with_unusable_data_is_skipped_and_its_outputs_marked(rig):
    site, bus, clock, feed = rig
    est = EstimationThread(site, bus, clock)
    lost, kept = (r.path for r in site.racks)
    for _ in range(5):
        feed.step(0.0)
        est.cycle()
    before = bus.get(f"{lost}.cell_soc_pct")
    feed.quality[lost] = Quality.COMM_LOST
    for _ in range(3):
        feed.step(-30.0)
        assert est.cycle() == 1
    after = bus.get(f"{lost}.cell_soc_pct")
    assert after.quality is Quality.COMM_LOST and np.array_equal(after.value, before.value)
    assert bus.get(f"{lost}.soh_pct").quality is Quality.COMM_LOST
    assert bus.get(f"{kept}.cell_soc_pct").quality is Quality.GOOD
    assert bus.get(f"{kept}.cell_soc_pct").source_ts == feed.t
    feed.quality[lost] = Quality.GOOD
    feed.step(0.0)
    assert est.cycle() == 2 and bus.get(f"{lost}.cell_soc_pct").quality is Quality.GOOD


def test_missing_temperatures_are_tolerated(rig):
    site, bus, clock, feed = rig
    feed.temperatures = {p: False for p in feed.temperatures}
    est = EstimationThread(site, bus, clock)
    for t in range(200):
        feed.step(_profile(t))
        est.cycle()
    for rack in site.racks:
        soc = bus.get(f"{rack.path}.cell_soc_pct").value
        assert np.isfinite(soc).all()
        assert np.abs(soc - 100.0 * feed.models[rack.path].true_soc).max() < 5.0


def test_no_new_frame_means_no_step(rig):
    site, bus, clock, feed = rig
    est = EstimationThread(site, bus, clock)
    feed.step(0.0)
    assert est.cycle() == 2
    assert est.cycle() == 0  # same frames: nothing to do


def test_the_thread_runs_under_the_supervisor_and_stops_cleanly(rig):
    site, bus, clock, feed = rig
    journal = EventJournal()
    supervisor = Supervisor(journal, clock)
    est = EstimationThread(site, bus, clock, period_s=1.0)
    supervisor.start(est, "estimation")
    try:
        feed.step(0.0)
        for _ in range(3):
            clock.advance(1.0)
            done = est.cycles
            wait_for(lambda: est.cycles > done, timeout=5.0, what="an estimation cycle", journal=journal)
        path = site.racks[0].path
        wait_for(lambda: bus.get(f"{path}.soc_est_pct") is not None, timeout=5.0, what="soc_est_pct")
    finally:
        assert supervisor.stop_all(["estimation"]) == []
    assert supervisor.restarts("estimation") == 0
