"""Every EMS mode on the simulated plant: the in-process simulator serves Modbus TCP on 127.0.0.1, the
ESMS drivers poll it, protection guards it and the EMS thread dispatches it. Each case sets the site's
load, PV or grid frequency with the simulator's profile overrides and asserts what the mode did to the
plant (PCS power, the meter's grid exchange, SOC), not only what the EMS decided. The test PCS is
5.12 kW on a 10 kWh BESS. Islanding on grid loss (the wrapper over every mode) is off here.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import time

import numpy as np
import pytest

from app.core.clock import ScaledClock
from app.core.commands import Command
from app.ems.settings import MODES, EmsSettings
from app.ems.worker import EmsThread
from app.runtime import Runtime
from app.sim.profiles import Curve
from tests.support import make_site, wait_for

BASE = EmsSettings(period_s=0.2, write_deadband_kw=0.1, island_on_grid_loss=False)
TOL_KW = 0.15           # setpoint and power registers carry 0.1 kW


def local(hour: int, minute: int = 0, second: int = 0) -> float:
    """Epoch seconds of a local time of day on Monday 15 January 2024 (the EMS's windows are local)."""
    return time.mktime((2024, 1, 15, hour, minute, second, 0, 0, -1))


class OnSim:
    """A running stack: read the plant, set its load/PV/frequency, talk to the EMS."""

    def __init__(self, rt: Runtime) -> None:
        self.rt, self.plant = rt, rt.simulator.plant

    @property
    def pcs_kw(self) -> float:
        return self.plant.pcs["pcs1"].power_kw

    @property
    def grid_kw(self) -> float:
        return self.plant.grid_import_kw

    def value(self, point: str):
        sample = self.rt.bus.get(point)
        return None if sample is None else sample.value

    def hour(self) -> float:
        t = time.localtime(self.rt.clock.time())
        return t.tm_hour + t.tm_min / 60 + t.tm_sec / 3600

    def soc_pct(self) -> float:
        """The BESS's SOC as the racks' BMSs report it over the wire."""
        return float(np.mean([self.value(f"{r.path}.soc_pct") for r in self.rt.site.racks]))

    def set(self, *, load_kw: float | None = None, pv_kw: float | None = None, hz: float | None = None,
            pv: Curve | None = None) -> None:
        """Hold the site's load, PV (a value or a Curve) or grid frequency from now on."""
        profiles = self.plant.profiles
        with self.rt.simulator.lock:
            if load_kw is not None:
                profiles.load_override = Curve.constant(load_kw)
            if pv_kw is not None or pv is not None:
                profiles.pv_override = pv or Curve.constant(pv_kw)
            if hz is not None:
                profiles.hz_override = Curve.constant(hz)

    def state(self) -> str:
        return f"PCS {self.pcs_kw:+.2f} kW, grid {self.grid_kw:+.2f} kW, EMS: {self.value('site.ems.why')}"

    def settle(self, predicate, what: str, timeout: float = 10.0) -> None:
        try:
            wait_for(predicate, timeout, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {self.state()}") from None

    def settle_at(self, kw: float, what: str, timeout: float = 10.0) -> None:
        self.settle(lambda: abs(self.pcs_kw - kw) <= TOL_KW, f"{what}: PCS at {kw:+.2f} kW", timeout)

    def holds(self, check, sim_s: float, what: str) -> None:
        """`check()` stays true for `sim_s` seconds of plant time (sampled)."""
        end = self.plant.now_s + sim_s
        while self.plant.now_s < end:
            assert check(), f"{what}: {self.state()}"
            time.sleep(0.05)

    def command(self, action: str, value) -> None:
        result = self.rt.router.submit(Command("site.ems", action, value, user="operator")).result(5)
        assert result.ok, result.message


@contextlib.contextmanager
def on_sim(path, mode: str, *, load_kw: float, pv_kw: float = 0.0, hz: float | None = None, speed: float = 2.0,
           at: float | None = None, soc_pct: float | None = None, ambient_c: float | None = None,
           history=None, **params):
    """The whole stack for `mode` (EmsSettings `params` over BASE) on a plant holding the given load,
    PV, frequency, SOC and temperature from its first poll; clock `speed` times real time from `at`. The
    EMS thread is built here rather than by the Runtime so that a case can seed its MPC `history`."""
    path.mkdir(exist_ok=True)
    site = make_site(path, poll_s=0.2, stale_after_s=1.0 + speed)
    clock = ScaledClock(speed, start_wall=at)
    rt = Runtime(site, path / "data", clock=clock, dispatch=False)
    plant = rt.simulator.plant
    plant.profiles.load_override, plant.profiles.pv_override = Curve.constant(load_kw), Curve.constant(pv_kw)
    if hz is not None:
        plant.profiles.hz_override = Curve.constant(hz)
    if ambient_c is not None:
        plant.ambient_c = ambient_c
    for rack in plant.racks.values():
        if soc_pct is not None:
            rack.soc = np.full(rack.rack.cell_count, soc_pct / 100)
        if ambient_c is not None:
            rack.temp_c = np.full(rack.rack.cell_count, ambient_c)
    rt.simulator.step(1e-3)                   # the servers hold that state before the drivers connect
    ems = EmsThread(site, rt.bus, rt.router, clock, mode, dataclasses.replace(BASE, **params), history)
    rt.start()
    rt.supervisor.start(ems, "ems")
    try:
        yield OnSim(rt)
    finally:
        assert rt.stop() == []


# --- one case per mode ----------------------------------------------------------------------------
def manual(tmp_path):
    """Follows manual_kw, and a new manual_kw from the operator's set_param."""
    with on_sim(tmp_path, "manual", load_kw=3.0, manual_kw=2.0) as s:
        s.settle_at(2.0, "manual charge")
        assert all(r.current_a > 0 for r in s.plant.racks.values())
        assert s.grid_kw == pytest.approx(5.0, abs=TOL_KW)
        s.command("set_param", {"manual_kw": -3.0})
        s.settle_at(-3.0, "manual discharge after set_param")
        assert all(r.current_a < 0 for r in s.plant.racks.values())


def peak_shaving(tmp_path):
    """Import at the meter stays at the threshold while the load exceeds it (the battery discharges the
    excess); below it the battery recharges without making a new peak."""
    with on_sim(tmp_path, "peak_shaving", load_kw=5.0, peak_threshold_kw=3.0, recharge_kw=1.5) as s:
        for load in (5.0, 6.5):
            s.set(load_kw=load)
            s.settle_at(3.0 - load, f"shaving a {load} kW load")
            s.settle(lambda: s.value("site.meter.grid_kw") <= 3.0 + TOL_KW, "the meter reading the shaved import")
            s.holds(lambda: s.grid_kw <= 3.0 + TOL_KW and s.value("site.meter.grid_kw") <= 3.0 + TOL_KW, 1.0,
                    "import above the 3 kW threshold")
        s.set(load_kw=2.0)
        s.settle_at(1.0, "recharging up to the threshold")
        s.holds(lambda: s.grid_kw <= 3.0 + TOL_KW, 1.0, "recharge made a new peak")


def tou(tmp_path):
    """Discharges (covering the site load, no export) in the 16-21 h peak window, charges from 21 h."""
    with on_sim(tmp_path, "tou", load_kw=3.0, at=local(20, 59, 50), charge_kw=2.5,
                discharge_kw=4.0) as s:
        s.settle_at(-3.0, "discharging the site load in the peak window")
        assert s.hour() < 21.0 and s.grid_kw >= -TOL_KW
        s.settle_at(2.5, "charging in the cheap window", timeout=15.0)
        assert s.hour() >= 21.0


def self_consumption(tmp_path):
    """PV surplus goes into the battery (no export), the load beyond PV comes out of it (no import)."""
    with on_sim(tmp_path, "self_consumption", load_kw=1.0, pv_kw=4.0) as s:
        s.settle_at(3.0, "storing the PV surplus")
        s.holds(lambda: abs(s.grid_kw) <= TOL_KW, 1.0, "exporting the surplus")
        s.set(load_kw=2.5, pv_kw=0.0)
        s.settle_at(-2.5, "covering the load")
        s.holds(lambda: abs(s.grid_kw) <= TOL_KW, 1.0, "importing the load")


def solar_smoothing(tmp_path):
    """A cloud edge takes 3 kW of PV away in 10 s; PV + battery at the grid ramps down at the set rate
    instead (60 %/min of 5 kW = 0.05 kW/s): the battery fills the gap and hands it back at the ramp."""
    ramp = 0.6 * 5.0 / 60                 # kW/s
    lag_kw = 0.3 * 1.5                    # PV's 0.3 kW/s over the loop's lag (poll, EMS, write, PCS ramp)
    with on_sim(tmp_path, "solar_smoothing", load_kw=0.5, pv_kw=4.0, speed=4.0, pv_rating_kw=5.0,
                ramp_pct_per_min=60.0) as s:
        s.settle(lambda: "solar smoothing" in (s.value("site.ems.why") or ""), "smoothing started")
        s.holds(lambda: abs(s.pcs_kw) <= TOL_KW, 1.0, "battery busy under steady PV")
        t0 = s.plant.now_s + 1.0
        s.set(pv=Curve(((t0, 4.0), (t0 + 10.0, 1.0))))
        samples = []
        while s.plant.now_s < t0 + 25.0:
            with s.rt.simulator.lock:
                samples.append((s.plant.now_s, s.plant.pv_kw, s.pcs_kw))
            time.sleep(0.02)
        t, pv, battery = np.array(samples).T
        out = pv - battery                                 # PV + battery discharge at the grid connection
        assert pv[0] - pv[-1] == pytest.approx(3.0) and battery.min() < -2.0
        fastest = max(float(np.max(np.abs(out[i:] - out[i]) - ramp * (t[i:] - t[i]))) for i in range(len(t)))
        assert fastest <= lag_kw, f"output moved {fastest:.2f} kW faster than the ramp"
        after = t >= t0 + 12.0                             # PV steady again, the battery still feeding
        assert np.polyfit(t[after], out[after], 1)[0] == pytest.approx(-ramp, rel=0.2)


def frequency_support(tmp_path):
    """Idle within the deadband; droop outside it (under-frequency discharges, over-frequency charges);
    FFR: full discharge at the trigger, held after the frequency recovers."""
    droop = 1.0
    with on_sim(tmp_path, "frequency_support", load_kw=2.0, hz=50.03, droop_pct=droop, deadband_hz=0.05,
                ffr_trigger_hz=49.7, ffr_hold_s=3.0) as s:
        rated = s.rt.site.pcs[0].rated_power_kw

        def droop_kw(hz):
            excess = max(abs(hz - 50.0) - 0.05, 0.0)
            return math.copysign(excess / (50.0 * droop / 100) * rated, hz - 50.0)

        s.settle(lambda: "deadband" in (s.value("site.ems.why") or ""), "idle in the deadband")
        s.holds(lambda: abs(s.pcs_kw) <= TOL_KW, 1.0, "battery moved within the deadband")
        for hz in (49.85, 50.25):
            s.set(hz=hz)
            s.settle_at(droop_kw(hz), f"droop at {hz} Hz")
        s.set(hz=49.6)
        s.settle_at(-rated, "FFR at 49.6 Hz")
        s.set(hz=50.0)
        s.holds(lambda: s.pcs_kw <= -rated + TOL_KW, 1.5, "FFR step not held")
        s.settle_at(0.0, "back to idle after the FFR hold")


def backup_reserve(tmp_path):
    """Below the reserve it recharges; at the reserve it holds (idle: the site load is not served from it)."""
    with on_sim(tmp_path, "backup_reserve", load_kw=3.0, soc_pct=49.8, speed=4.0, backup_reserve_pct=50.0,
                recharge_kw=4.0) as s:
        s.settle_at(4.0, "recharging to the reserve")
        assert s.soc_pct() < 50.0
        s.settle(lambda: s.soc_pct() >= 50.0 and abs(s.pcs_kw) <= TOL_KW, "idle at the reserve", timeout=20.0)
        s.holds(lambda: s.pcs_kw >= -TOL_KW and s.soc_pct() >= 49.85, 6.0, "reserve not held")


def schedule(tmp_path):
    """Follows an operator's set_schedule step by step, then idles at its end."""
    with on_sim(tmp_path, "manual", load_kw=3.0) as s:
        s.settle(lambda: s.value("site.ems.mode") == "manual", "EMS running")
        s.command("set_schedule", {"battery_kw": [2.0, -3.0], "step_minutes": 0.05})     # 3 s steps
        start = s.plant.now_s
        s.settle_at(2.0, "schedule step 1")
        assert s.value("site.ems.mode") == "schedule"
        s.settle_at(-3.0, "schedule step 2")
        assert s.plant.now_s - start >= 3.0
        s.settle_at(0.0, "idle after the schedule")
        assert s.plant.now_s - start >= 6.0


def mpc(tmp_path):
    """Without load/PV history it runs the rules (here: shaving a peak); with a day of history it plans
    and the PCS follows the plan's step (at 17:00, the evening peak in the dearest window: a discharge)."""
    with on_sim(tmp_path / "cold", "mpc", load_kw=5.0, peak_threshold_kw=3.0) as s:
        s.settle_at(-2.0, "rules fallback shaving the peak")
        assert s.value("site.ems.why").startswith("rules: peak shaving")
        assert s.grid_kw <= 3.0 + TOL_KW
    hours = (np.arange(48) + 17) % 24                        # hourly history ending at 17:00
    history = (np.where((hours >= 16) & (hours < 21), 5.0, 2.0), np.zeros(48))
    with on_sim(tmp_path / "warm", "mpc", load_kw=5.0, at=local(17), history=history, mpc_step_minutes=60.0,
                mpc_horizon_h=12.0) as s:
        s.settle(lambda: "MPC plan step 1/12" in (s.value("site.ems.why") or ""), "an MPC plan")
        planned = float(re.search(r"says ([-+][\d.]+) kW", s.value("site.ems.why")).group(1))
        assert planned < -0.5
        s.settle_at(s.value("site.ems.setpoint_kw"), "following the plan")
        assert s.value("site.ems.setpoint_kw") == pytest.approx(planned, abs=0.05)


def rules(tmp_path):
    """RuleBased on the plant at midday (no price window): stores PV surplus, shaves import over the
    threshold, otherwise idles."""
    with on_sim(tmp_path, "rules", load_kw=2.0, pv_kw=5.0, at=local(12), peak_threshold_kw=4.0) as s:
        s.settle_at(3.0, "storing the PV surplus")
        assert abs(s.grid_kw) <= TOL_KW
        s.set(load_kw=6.0, pv_kw=0.0)
        s.settle_at(-2.0, "shaving the peak")
        assert s.grid_kw <= 4.0 + TOL_KW
        s.set(load_kw=2.0)
        s.settle_at(0.0, "no rule applies")


CASES = {f.__name__: f for f in (manual, peak_shaving, tou, self_consumption, solar_smoothing, frequency_support,
                                 backup_reserve, schedule, mpc, rules)}


@pytest.mark.parametrize("mode", MODES)
def test_mode_acts_on_the_plant(mode, tmp_path):
    assert mode in CASES, f"EMS mode {mode!r} has no case on the simulator: add one to CASES"
    CASES[mode](tmp_path)


def test_cold_racks_clamp_the_setpoint_on_the_plant(tmp_path):
    """At 8 C protection derates the charge current (CCL); the EMS's 5 kW manual charge is cut to what
    the racks may take, on the PCS and in the rack currents."""
    with on_sim(tmp_path, "manual", load_kw=1.0, ambient_c=8.0, manual_kw=5.0) as s:
        s.settle(lambda: "limited by charge limit" in (s.value("site.ems.why") or ""), "the EMS limited")
        available = s.value("site.bess1.available_charge_kw")
        assert 0.5 < available < 4.0
        s.settle_at(available, "PCS at the derated limit")
        for path, rack in s.plant.racks.items():
            assert 0 < rack.current_a <= s.value(f"{path}.ccl_a") + 1.0
