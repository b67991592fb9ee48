"""Every plant fault of FAULT_KINDS, injected into the running Simulator, shows its symptom on the wire.

The simulator serves its links on loopback and is stepped by hand in simulated time (`sim.step`, never
`run`); the symptom is observed only through what the real ESMS drivers publish on a DataBus: Modbus TCP
for every kind, plus CAN (socketcand, DBC cell frames) and BLE (bumble over HCI/TCP, each pack protocol)
for the cell sensor faults, since each link kind encodes cells differently. A new fault kind without a
check here fails `test_every_fault_kind_has_a_wire_check`.
"""
from __future__ import annotations

import contextlib
import math
import time

import numpy as np
import pytest

from app.core.clock import ScaledClock
from app.core.commands import Command
from app.core.site import Site, load_site
from app.sim.plant import SENSOR_RAIL_V
from app.sim.plant_faults import FAULT_KINDS, PlantFaultInjector
from app.sim.profiles import NOMINAL_HZ
from app.sim.simulator import Simulator
from drivers.registry import build_driver
from support import Stack, free_port, make_site, running, site_text, wait_for

POLL_S = 0.05
EVENING = 20_000 * 86400.0 + 19 * 3600.0     # load above PV: an island runs on the battery
RACK, OTHER, PCS, METER = "site.bess1.rack01", "site.bess1.rack02", "site.pcs1", "site.meter"
VOLTS, TEMPS = f"{RACK}.cell_voltages_v", f"{RACK}.cell_temperatures_c"


class Wire:
    """The simulator stepped by hand, seen only through the drivers' DataBus."""

    def __init__(self, site: Site, sim: Simulator, stack: Stack) -> None:
        self.sim, self.stack = sim, stack
        self.faults = PlantFaultInjector.for_simulator(sim)
        self._links = {d.path: d.link for d in (*site.pcs, *site.meters, *site.racks)}
        self._stepped = time.monotonic()
        self._fresh: dict[str, float] = {}

    def inject(self, spec: str) -> None:
        self.faults.inject(spec)

    def step(self, seconds: float) -> None:
        """Advance the plant `seconds` of simulated time (client writes applied first, registers re-encoded)."""
        self.sim.step(seconds)
        self._stepped = time.monotonic()

    def command(self, target: str, value: float) -> None:
        """A write through the owning driver (the plant takes it at the next step)."""
        result = self.stack.router.submit(Command(target, "write", value, "test")).result(5)
        assert result.ok, result

    def read(self, point: str):
        """The point as the driver published it from a poll that began after the last step."""
        self._await_poll(self._links[point.rpartition(".")[0]])
        return self.stack.value(point)

    def _await_poll(self, link: str) -> None:
        if self._fresh.get(link, -math.inf) > self._stepped:
            return
        status = f"site.links.{link}.status"

        def published_after(t: float) -> float | None:
            s = self.stack.bus.get(status)
            return s.recv_mono if s is not None and s.value == "ONLINE" and s.recv_mono > t else None

        first = wait_for(lambda: published_after(self._stepped), what=f"a poll of {link}")
        self._fresh[link] = wait_for(lambda: published_after(first), what=f"a whole poll of {link}")


@contextlib.contextmanager
def _serve(site: Site):
    """Simulator serving `site` on loopback (plant clock at EVENING; never run, only stepped), and the
    drivers of every link running into a DataBus."""
    sim = Simulator(site, ScaledClock(1.0, start_wall=EVENING))   # the CAN broadcaster waits on this clock
    stack = Stack()
    drivers = [build_driver(site, link, stack.bus, stack.router, stack.journal, stack.clock) for link in site.links]
    sim.start_endpoints()
    try:
        with running(stack, *drivers):
            wire = Wire(site, sim, stack)
            wire.step(1.0)
            yield wire
    finally:
        sim.stop_endpoints()


@pytest.fixture
def wire(tmp_path):
    with _serve(make_site(tmp_path, poll_s=POLL_S)) as served:
        yield served


def _others(values: np.ndarray, cell: int) -> np.ndarray:
    return np.delete(values, cell - 1)


def _plausible(values: np.ndarray) -> bool:
    return bool(np.all((values > 3.0) & (values < 3.6)))


def _charge(wire: Wire, kw: float) -> None:
    wire.command(f"{PCS}.active_power_setpoint_kw", kw)
    wire.step(5.0)


# --- one check per fault kind (Modbus TCP) ----------------------------------------------------------------

def cell_drift(wire: Wire) -> None:
    before = wire.read(VOLTS)
    wire.inject(f"cell_drift:rack={RACK},cell=12,rate_v_per_min=0.02")
    for minutes in (5, 10):
        wire.step(300.0)
        moved = wire.read(VOLTS) - before
        assert moved[11] == pytest.approx(0.02 * minutes, abs=0.003)
        assert np.abs(_others(moved, 12)).max() < 0.005


def internal_short(wire: Wire) -> None:
    with wire.sim.lock:                       # on the slope of the LFP curve, where charge shows
        wire.sim.plant.racks[RACK].soc = np.full(16, 0.15)
    wire.step(1.0)
    v, t = [wire.read(VOLTS)[4]], [wire.read(TEMPS)[4]]
    wire.inject(f"internal_short:rack={RACK},cell=5,ohms=0.2")
    for _ in range(2):
        wire.step(1800.0)
        v.append(wire.read(VOLTS)[4])
        t.append(wire.read(TEMPS)[4])
    assert v[0] > v[1] > v[2] and t[0] < t[1] < t[2]
    volts, temps = wire.read(VOLTS), wire.read(TEMPS)
    assert volts[4] < _others(volts, 5).min() - 0.02
    assert temps[4] > _others(temps, 5).max() + 1.0


def thermal_runaway(wire: Wire) -> None:
    v0 = wire.read(VOLTS)[8]
    t_prev = wire.read(TEMPS)[8]
    wire.inject(f"thermal_runaway:rack={RACK},cell=9")
    elapsed, chunk, minute, second = 0.0, 60.0, None, None
    while second is None:
        assert elapsed < 3600.0, "no runaway within an hour"
        wire.step(chunk)
        elapsed += chunk
        t = wire.read(TEMPS)[8]
        rate, t_prev = (t - t_prev) / chunk, t
        if minute is None and rate > 1.0 / 60.0:
            minute, h2_minute = elapsed, wire.read(f"{RACK}.h2_ppm")
        if rate > 1.0:
            second, h2_second, v_second = elapsed, wire.read(f"{RACK}.h2_ppm"), wire.read(VOLTS)[8]
        chunk = min(60.0, max(1.0, round(2.0 / max(rate, 1e-3))))    # about 2 C per reading as it speeds up
    assert minute is not None and 60.0 < minute < second
    assert 10 < h2_minute < h2_second and wire.read(f"{RACK}.co_ppm") > 0
    assert v_second < v0 - 0.2                   # the cell's voltage collapsing as its separator fails


def sensor_stuck(wire: Wire) -> None:
    _charge(wire, 5.0)
    wire.inject(f"sensor_stuck:rack={RACK},cell=7")
    wire.step(1.0)
    held = wire.read(VOLTS)
    wire.step(1800.0)
    now = wire.read(VOLTS)
    assert now[6] == held[6]
    assert np.median(_others(now - held, 7)) > 0.005


def sensor_open(wire: Wire) -> None:
    wire.inject(f"sensor_open:rack={RACK},cell=3")
    wire.step(1.0)
    v = wire.read(VOLTS)
    assert v[2] == pytest.approx(SENSOR_RAIL_V, abs=0.0006) and _plausible(_others(v, 3))


def sensor_zero(wire: Wire) -> None:
    wire.inject(f"sensor_zero:rack={RACK},cell=3")
    wire.step(1.0)
    v = wire.read(VOLTS)
    assert v[2] == 0.0 and _plausible(_others(v, 3))


def current_offset(wire: Wire) -> None:
    _charge(wire, 2.0)
    before = wire.read(f"{RACK}.current_a") - wire.read(f"{OTHER}.current_a")
    wire.inject(f"current_offset:rack={RACK},amps=7.5")
    wire.step(1.0)
    after = wire.read(f"{RACK}.current_a") - wire.read(f"{OTHER}.current_a")
    assert after - before == pytest.approx(7.5, abs=0.3)


def contactor_welded(wire: Wire) -> None:
    _charge(wire, 3.0)
    wire.inject(f"contactor_welded:rack={RACK}")
    wire.command(f"{RACK}.contactor_command", 0)
    wire.command(f"{OTHER}.contactor_command", 0)     # the same command to a healthy rack
    wire.step(1.0)
    assert wire.read(f"{RACK}.contactor_closed") is True and wire.read(f"{OTHER}.contactor_closed") is False
    assert wire.read(f"{RACK}.current_a") > 10.0 and wire.read(f"{OTHER}.current_a") == 0.0


def bms_reboot(wire: Wire) -> None:
    for _ in range(3):
        wire.step(1.0)
    beat = wire.read(f"{RACK}.heartbeat")
    wire.inject(f"bms_reboot:rack={RACK},seconds=4")
    for _ in range(2):
        wire.step(1.5)
        assert not wire.read(VOLTS).any() and not wire.read(TEMPS).any()
        assert (wire.read(f"{RACK}.pack_voltage_v"), wire.read(f"{RACK}.soc_pct")) == (0.0, 0.0)
        assert wire.read(f"{RACK}.heartbeat") == 0 and wire.read(f"{RACK}.contactor_closed") is False
    wire.step(1.5)
    assert wire.read(f"{RACK}.heartbeat") == 1 < beat
    assert _plausible(wire.read(VOLTS)) and wire.read(f"{RACK}.contactor_closed") is True


def hvac_fail(wire: Wire) -> None:
    wire.command(f"{PCS}.active_power_setpoint_kw", wire.sim.site.pcs[0].rated_power_kw)
    wire.step(1.0)
    assert abs(wire.read(TEMPS).mean() - wire.read(f"{OTHER}.cell_temperatures_c").mean()) < 0.5
    wire.inject(f"hvac_fail:rack={RACK}")
    wire.step(3 * 3600.0)
    assert wire.read(TEMPS).mean() > wire.read(f"{OTHER}.cell_temperatures_c").mean() + 1.0


def pcs_trip(wire: Wire) -> None:
    _charge(wire, 4.0)
    assert wire.read(f"{PCS}.state") == 1 and wire.read(f"{PCS}.active_power_kw") == pytest.approx(4.0)
    wire.inject("pcs_trip:pcs=pcs1")
    wire.step(1.0)
    assert (wire.read(f"{PCS}.state"), wire.read(f"{PCS}.active_power_kw")) == (2, 0.0)
    assert abs(wire.read(f"{RACK}.current_a")) < 2.0 and abs(wire.read(f"{OTHER}.current_a")) < 2.0


def grid_loss(wire: Wire) -> None:
    _charge(wire, 3.0)
    assert wire.read(f"{METER}.grid_available") is True and wire.read(f"{PCS}.state") == 1
    wire.inject("grid_loss")
    wire.step(10.0)
    assert wire.read(f"{METER}.grid_available") is False and wire.read(f"{METER}.grid_kw") == 0.0
    # breaker still closed, PCS grid-following: the site blacks out
    assert (wire.read(f"{PCS}.state"), wire.read(f"{PCS}.active_power_kw")) == (0, 0.0)
    assert (wire.read(f"{PCS}.grid_frequency_hz"), wire.read(f"{METER}.pv_kw")) == (0.0, 0.0)
    wire.command(f"{METER}.breaker_command", 0)                             # black start over the wire
    wire.command(f"{PCS}.operating_mode", 1)
    wire.step(10.0)
    assert wire.read(f"{METER}.breaker_closed") is False
    demand = wire.read(f"{METER}.load_kw") - wire.read(f"{METER}.pv_kw")
    assert demand > 0.5
    assert wire.read(f"{PCS}.state") == 3                                   # island: forming the grid
    assert wire.read(f"{PCS}.active_power_kw") == pytest.approx(-demand, abs=0.25)
    assert wire.read(f"{PCS}.grid_frequency_hz") < NOMINAL_HZ - 0.005      # droop below its +3 kW reference
    wire.inject("pcs_trip:pcs=pcs1")                                        # nothing forms it: blackout
    wire.step(1.0)
    assert (wire.read(f"{PCS}.state"), wire.read(f"{PCS}.active_power_kw")) == (2, 0.0)
    assert (wire.read(f"{PCS}.grid_frequency_hz"), wire.read(f"{METER}.pv_kw")) == (0.0, 0.0)


CHECKS = {f.__name__: f for f in (cell_drift, internal_short, thermal_runaway, sensor_stuck, sensor_open,
                                  sensor_zero, current_offset, contactor_welded, bms_reboot, hvac_fail, pcs_trip,
                                  grid_loss)}


def test_every_fault_kind_has_a_wire_check():
    assert sorted(CHECKS) == sorted(FAULT_KINDS)


@pytest.mark.parametrize("kind", list(FAULT_KINDS))
def test_fault_shows_on_modbus_tcp(wire, kind):
    CHECKS[kind](wire)


# --- cell faults on the other link kinds ------------------------------------------------------------------

def _sensor_faults_show(wire: Wire) -> None:
    """An open sense wire on cell 3 reads the rail, a zero sensor on cell 5 reads 0 V (kept, not dropped)."""
    wire.inject(f"sensor_open:rack={RACK},cell=3")
    wire.inject(f"sensor_zero:rack={RACK},cell=5")
    wire.step(1.0)
    v = wire.read(VOLTS)
    assert v.shape == (16,) and v[2] == pytest.approx(SENSOR_RAIL_V, abs=0.0006) and v[4] == 0.0
    assert _plausible(np.delete(v, [2, 4]))


def test_cell_sensor_faults_in_the_can_cell_frames(tmp_path):
    with _serve(make_site(tmp_path, racks=1, poll_s=0.2, bms_can=True)) as wire:
        _sensor_faults_show(wire)


@pytest.mark.parametrize("protocol", ['protocol = "jbd"', 'protocol = "jk", variant = "jk02_24s"',
                                      'protocol = "daly"'])
def test_cell_sensor_faults_in_the_ble_pack_frames(tmp_path, protocol):
    bms_port = free_port()
    text = site_text(bms_port, free_port(), racks=1, poll_s=0.2).replace(
        f'kind = "modbus-tcp"\naddress = "127.0.0.1:{bms_port}"',
        f'kind = "ble"\naddress = "C0:00:00:00:01:01"\n'
        f'options = {{ {protocol}, transport = "bumble", port = {bms_port} }}')
    (tmp_path / "site.toml").write_text(text)
    with _serve(load_site(tmp_path / "site.toml")) as wire:
        _sensor_faults_show(wire)
