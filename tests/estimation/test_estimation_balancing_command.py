"""The balancing decision reaches the BMS: estimation thread -> CommandRouter -> link driver -> the
simulated BMS over a real protocol on loopback, which bleeds the cell; protocols without a balancing
command are reported as such. The Modbus rig runs on a ManualClock, stepped in lock-step with the plant."""
from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest

from app.core.clock import ManualClock
from app.core.commands import Command
from app.core.site import load_site
from app.core.supervisor import Supervisor
from app.estimation.balancing import BalancingSettings
from app.estimation.balancing_sender import timeout_for
from app.estimation.live import EstimationThread
from app.sim.simulator import Simulator
from drivers.registry import build_driver
from support import Stack, free_port, running, site_text, wait_for

STEP_S = 120.0            # plant step = poll period = estimation period
RACK = "site.bess1.rack01"
HIGH_CELL = 5


class Rig:
    """Simulator (Modbus TCP on loopback) + Modbus driver thread + estimation, on one ManualClock:
    `frame()` runs one estimation cycle, then `tick()` steps the plant (taking the BMS's register
    writes) and lets the driver write queued commands and poll once."""

    def __init__(self, tmp_path) -> None:
        path = tmp_path / "site.toml"
        path.write_text(site_text(free_port(), free_port(), racks=1, modules=2, cells=8, chemistry="nmc",
                                  capacity_ah=5.0, poll_s=STEP_S))
        site = load_site(path)
        self.stack = Stack()
        self.clock = self.stack.clock = ManualClock()
        self.stack.supervisor = Supervisor(self.stack.journal, self.clock)
        self.sim = Simulator(site, self.clock)
        self.model = self.sim.plant.racks[RACK]
        self.model.true_soc = np.full(16, 0.5)
        self.model.true_soc[HIGH_CELL - 1] = 0.55          # ~47 mV above the others (NMC at 50 %)
        self.sim.step(0.0)
        self.driver = build_driver(site, site.link("bms1"), self.stack.bus, self.stack.router,
                                   self.stack.journal, self.clock)
        self.est = EstimationThread(site, self.stack.bus, self.clock, router=self.stack.router,
                                    journal=self.stack.journal)

    @contextlib.contextmanager
    def running(self):
        self.sim.start_endpoints()
        try:
            with running(self.stack, self.driver):
                wait_for(lambda: self.value("cell_voltages_v") is not None, what="first poll")
                yield self
        finally:
            self.sim.stop_endpoints()

    def value(self, name: str):
        return self.stack.value(f"{RACK}.{name}")

    def frame(self) -> None:
        self.est.cycle()
        self.tick()

    def tick(self) -> None:
        self.sim.step(STEP_S)
        self.clock.advance(STEP_S)
        now = self.clock.time()
        wait_for(lambda: self.stack.bus.get(f"{RACK}.cell_voltages_v").source_ts == now, timeout=5,
                 what="the driver's poll", journal=self.stack.journal)

    def frames_until(self, predicate, limit: int, what: str) -> int:
        for n in range(limit):
            if predicate():
                return n
            self.frame()
        raise AssertionError(f"no {what} within {limit} frames of {STEP_S:g} s")

    def commands(self) -> list[str]:
        return [e.message for e in self.stack.journal.since(0) if e.kind == "balancing_command"]


@pytest.fixture
def rig(tmp_path):
    with Rig(tmp_path).running() as r:
        yield r


def test_a_high_cell_is_bled_over_modbus_until_the_spread_is_below_the_stop_threshold(rig):
    stop_dv = BalancingSettings().stop_dv_v
    bled_from = rig.model.true_soc[HIGH_CELL - 1]
    rig.frames_until(lambda: rig.value("balancing_command") == "sent: 5", 4, "accepted command")  # timeout first
    assert rig.value("balancing_cells_command") == "5"                # the BMS's register, read back by the poll
    assert rig.value("balancing_timeout_s") == timeout_for(STEP_S) == 6 * STEP_S
    rig.frame()
    assert rig.model.bleed.tolist() == [c == HIGH_CELL for c in range(1, 17)]
    assert rig.commands()[0].startswith(f"{RACK}: balance cells 5: ΔV ")

    rig.frames_until(lambda: rig.value("balancing_cells") == "", 150, "end of balancing")
    assert rig.value("balancing_dv_v") <= stop_dv + 1e-6               # stopped because ΔV fell below the stop
    rig.frames_until(lambda: rig.value("balancing_command") == "sent: none", 3, "accepted clear")
    rig.frame()
    assert not rig.model.bleed.any() and rig.value("balancing_cells_command") == ""
    assert "stop balancing: ΔV" in rig.commands()[-1] and len(rig.commands()) == 2

    bled_wh = (bled_from - rig.model.true_soc[HIGH_CELL - 1]) * rig.model.capacity_ah[HIGH_CELL - 1] * 3.77
    assert rig.value("balancing_energy_wh") == pytest.approx(bled_wh, rel=0.1)
    others = np.delete(rig.model.true_soc, HIGH_CELL - 1)
    assert np.ptp(others) < 1e-3 and (rig.model.true_soc[HIGH_CELL - 1] - others.mean()) < 0.02
    for _ in range(5):                                                  # the cell relaxes, nothing restarts
        rig.frame()
        assert rig.value("balancing_cells") == "" and rig.value("balancing_dv_v") < BalancingSettings().start_dv_v
    assert len(rig.commands()) == 2


def test_the_operator_switch_clears_the_bms_command_and_restores_it(rig):
    switch = lambda on: rig.stack.router.submit(Command("site.bess1.balancing", "write", on, "engineer"))  # noqa: E731
    rig.frames_until(lambda: rig.model.bleed.any(), 4, "bleeding")
    off = switch(0)
    rig.frames_until(lambda: rig.value("balancing_command") == "sent: none", 3, "accepted clear")
    assert off.result(0).ok and "(balancing off (operator))" in rig.commands()[-1]
    rig.frame()
    assert not rig.model.bleed.any()
    switch(1)
    rig.frames_until(lambda: rig.value("balancing_command") == "sent: 5", 3, "command sent again")
    rig.frame()
    assert rig.model.bleed[HIGH_CELL - 1]


def test_stopping_the_estimation_thread_clears_the_bms_command_and_waits_for_it(rig):
    rig.frames_until(lambda: rig.model.bleed.any(), 4, "bleeding")
    stopping = threading.Thread(target=rig.est.on_stopped, name="estimation-stop")
    stopping.start()
    for _ in range(5):                           # the link thread writes the clear while on_stopped waits
        if not stopping.is_alive():
            break
        rig.tick()
    stopping.join(1.0)
    assert not stopping.is_alive() and rig.value("balancing_cells_command") == ""
    rig.tick()
    assert not rig.model.bleed.any()


def test_a_refreshed_set_keeps_bleeding_and_the_bms_stops_after_its_timeout_when_the_estimation_dies(rig):
    timeout, high = timeout_for(STEP_S), HIGH_CELL - 1
    rig.frames_until(lambda: rig.model.bleed.any(), 4, "bleeding")
    for _ in range(2 * round(timeout / STEP_S)):          # twice the timeout with the same cells: refreshed
        rig.frame()
        assert rig.model.bleed[high] and rig.model.bleed_age_s < timeout
    assert rig.value("balancing_cells") == "5" and len(rig.commands()) == 1   # refreshes are not journaled
    ticks = 0                                             # the thread dies: no decisions, no stop clear
    while rig.model.bleed.any() and ticks <= timeout / STEP_S:
        rig.tick()
        ticks += 1
    assert not rig.model.bleed.any() and rig.value("balancing_cells_command") == ""   # the BMS's register, polled


def test_a_lost_link_stops_the_bleeding_after_the_bms_timeout(rig):
    timeout = timeout_for(STEP_S)
    rig.frames_until(lambda: rig.model.bleed.any(), 4, "bleeding")
    rig.sim.stop_endpoints()                              # the link drops mid-balance
    for _ in range(round(timeout / STEP_S)):
        assert rig.model.bleed.any()
        rig.est.cycle()                                   # the estimation runs on, without frames
        rig.sim.step(STEP_S)
        rig.clock.advance(STEP_S)
    assert not rig.model.bleed.any()


def test_a_can_bms_reports_not_supported_and_is_not_asked_again(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text(site_text(free_port(), free_port(), racks=1, modules=2, cells=8, bms_can=True))
    site = load_site(path)
    stack = Stack()
    sim = Simulator(site, stack.clock)                  # Pylontech + cell frames served as socketcand
    driver = build_driver(site, site.link("bms1"), stack.bus, stack.router, stack.journal, stack.clock)
    est = EstimationThread(site, stack.bus, stack.clock, router=stack.router, journal=stack.journal)
    sim.start_endpoints()
    try:
        with running(stack, driver):
            for _ in range(4):
                seen = stack.bus.get(f"{RACK}.cell_voltages_v")
                wait_for(lambda: (s := stack.bus.get(f"{RACK}.cell_voltages_v")) is not None and s is not seen,
                         timeout=5, what="a new CAN frame")
                est.cycle()
    finally:
        sim.stop_endpoints()
    status = stack.value(f"{RACK}.balancing_command")
    assert status.startswith("not supported by the BMS:") and "pylon-can has no balancing command" in status
    assert len([e for e in stack.journal.since(0) if e.kind == "balancing_command"]) == 1
