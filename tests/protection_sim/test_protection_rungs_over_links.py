"""Every ladder of every chemistry driven through the simulator over the real Modbus links, in simulated
time (x20): the plant is pushed past a quantity's limits, and the test checks that the rung alarms come
in order warn -> alarm -> trip, that the trip latches with its configured on-delay (in simulated time),
that the trip sequence reaches the plant (PCS 0 kW, then the rack's contactor opens) and that the rack's
first-out record names the quantity."""
from __future__ import annotations

import time

import numpy as np
import pytest

from app.core.commands import Command
from app.core.site import load_site
from app.protection.limit_file import QUANTITIES, load_limits
from app.runtime import Runtime
from support import free_port, site_text, wait_for

SPEED = 20.0
RACK = "site.bess1.rack01"
CAPACITY_AH = 100.0
CHEMISTRIES = ("lfp", "nmc", "lto", "naion")


def _site(tmp_path, chemistry: str):
    text = site_text(free_port(), free_port(), racks=2, modules=1, cells=8, poll_s=0.5, stale_after_s=3.0,
                     chemistry=chemistry)
    text = text.replace("[simulator]\nenabled = true", f"[simulator]\nenabled = true\nspeed = {SPEED}")
    text = text.replace("period_s = 0.05", "period_s = 0.25").replace("cell_overvoltage_trip_delay_s = 0.2\n", "")
    text = text.replace("rated_power_kw = ", "rated_power_kw = 60.0 # ")
    path = tmp_path / "site.toml"
    path.write_text(text)
    return load_site(path)


class Plant:
    """Drives the simulated plant along ramps in simulated time (under the simulator's lock)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt, self.sim, self.model = rt, rt.simulator, rt.simulator.plant.racks[RACK]

    def sim_time(self) -> float:
        return self.rt.clock.monotonic()

    def ramp(self, apply, start: float, end: float, rate_per_s: float) -> None:
        t0 = self.sim_time()
        duration = abs(end - start) / rate_per_s
        while True:
            f = min(1.0, (self.sim_time() - t0) / duration) if duration else 1.0
            with self.sim.lock:
                apply(start + (end - start) * f)
            if f >= 1.0:
                return
            time.sleep(0.002)

    def offsets(self, cells: list[int], volts: float) -> None:
        for c in cells:
            self.sim.plant.inject_cell_offset(RACK, c, volts)

    def temps(self, cells: list[int], value: float) -> None:
        t = self.model.true_temp_c.copy()
        t[[c - 1 for c in cells]] = value
        self.model.temp_c = t
        self.sim.plant.ambient_c = float(value) if len(cells) == self.model.true_temp_c.size else 25.0

    def pcs_kw(self, kw: float) -> None:
        assert self.rt.router.submit(Command("site.pcs1.active_power_setpoint_kw", "write", kw, "test")).result(5).ok


def _drive(plant: Plant, quantity: str, levels: tuple[float, float, float], side: str, n: int) -> None:
    """Push `quantity` of rack01 past its trip level, slowly enough to stay physically plausible."""
    trip = levels[2]
    margin = ((0.05 * n if quantity.startswith("pack_") else 0.15) if quantity.endswith("voltage")
              else 0.06 * abs(trip) + 0.5)
    beyond = trip + (1 if side == "high" else -1) * margin
    cell = plant.rt.bus.get(f"{RACK}.cell_voltages_v").value
    temps = plant.rt.bus.get(f"{RACK}.cell_temperatures_c").value
    all_cells = list(range(1, n + 1))
    if quantity in ("cell_overvoltage", "cell_undervoltage"):
        plant.ramp(lambda o: plant.offsets([3], o), 0.0, beyond - float(cell[2]), 0.4)
    elif quantity in ("pack_overvoltage", "pack_undervoltage"):
        target = beyond / n                                         # levels are per series cell x n
        plant.ramp(lambda o: plant.offsets(all_cells, o), 0.0, target - float(cell.mean()), 0.4)
    elif quantity == "cell_imbalance":
        plant.ramp(lambda o: plant.offsets([3], o), 0.0, -(trip + 0.03), 0.4)
    elif quantity in ("charge_overcurrent", "discharge_overcurrent"):
        amps = beyond
        pack_v = float(cell.sum())
        plant.pcs_kw((1 if quantity.startswith("charge") else -1) * 2 * amps * pack_v / 1000)
    elif quantity == "temperature_spread":
        plant.ramp(lambda t: plant.temps([3], t), float(temps[2]), float(temps.mean()) + beyond, 0.5)
    else:                                                           # charge_/discharge_ over/under temperature
        if quantity.startswith("charge"):
            plant.pcs_kw(2 * 0.05 * CAPACITY_AH * float(cell.sum()) / 1000)     # 0.05 C charging
        plant.ramp(lambda t: plant.temps(all_cells, t), float(temps.mean()), beyond, 0.5)


@pytest.mark.parametrize("chemistry", CHEMISTRIES)
@pytest.mark.parametrize("quantity", list(QUANTITIES))
def test_each_rung_through_the_simulator(tmp_path, chemistry, quantity):
    site = _site(tmp_path, chemistry)
    rt = Runtime(site, tmp_path / "data", dispatch=False)
    for model in rt.simulator.plant.racks.values():      # start from balanced packs: one quantity at a time
        model.soc = np.full_like(model.soc, 0.5)
    rt.start()
    try:
        plant = Plant(rt)
        wait_for(lambda: rt.bus.get(f"{RACK}.cell_voltages_v") and rt.bus.get(f"{RACK}.cell_temperatures_c"),
                 what="first poll")
        limits = load_limits(chemistry, site.protection.overrides)
        spec = limits.ladders[quantity]
        side, unit = QUANTITIES[quantity]
        n = site.racks[0].cell_count
        scale = n if quantity.startswith("pack_") else (CAPACITY_AH if unit == "crate" else 1.0)
        levels = tuple(x * scale for x in spec.levels)
        alarms = rt.protection.alarms
        # parallel racks share the PCS current: for currents, whichever rack exceeds first trips
        racks = [r.path for r in site.racks] if unit == "crate" else [RACK]
        _drive(plant, quantity, levels, side, n)
        rack = wait_for(lambda: next((r for r in racks if alarms.view(f"{r}.{quantity}.trip").latched), None),
                        timeout=30, what=f"{quantity} trip", journal=rt.journal)
        tags = [f"{rack}.{quantity}.{rung}" for rung in ("warn", "alarm", "trip")]
        warn, alarm, trip = (alarms.view(t).activated_at for t in tags)
        assert warn <= alarm <= trip                                 # the rungs come in order
        # the trip came its on-delay after the first frame beyond the trip level, in simulated time (the
        # protection's timing is monotonic: shift it to wall time), give or take two frames and a cycle
        _, _, _, decided, began = next(t for t in rt.protection.trip_times if t[:2] == (rack, quantity))
        delay = spec.delays_s[2]
        assert delay - 0.05 <= decided - began <= delay + 1.5, (decided - began, delay)
        assert abs(trip - (decided + rt.clock.time() - rt.clock.monotonic())) < 0.5   # that decision latched it
        # the trip sequence reaches the plant over the links: PCS to 0 kW, then the rack's contactor opens
        sim_plant = rt.simulator.plant
        wait_for(lambda: sim_plant.pcs["pcs1"].setpoint_kw == 0.0, what="PCS 0 kW", journal=rt.journal)
        wait_for(lambda: not sim_plant.racks[rack].contactor_closed, timeout=20, what="contactor open",
                 journal=rt.journal)
        record = wait_for(lambda: next((r for r in rt.protection.first_outs if r.group == rack), None),
                          what="first-out record")
        assert tags[2] in [record.first.tag] + [e.tag for e in record.later]
        assert f"{rack}.cell_voltages_v" in record.snapshot          # the rack's values at the trip instant
    finally:
        assert rt.stop() == []
