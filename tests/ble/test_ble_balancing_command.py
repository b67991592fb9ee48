"""The balancing command over BLE: a JK pack's balancer switch is written (byte-exact frame) and the
simulated pack balances while it is on; JBD and Daly packs have no balancing command."""
from __future__ import annotations

from concurrent.futures import Future

import numpy as np
import pytest

from app.core.commands import Command, CommandStatus, PendingCommand
from app.estimation.live import EstimationThread
from ble_site import ble_site, plant_for, serving, sim_links
from drivers.ble.driver import BleDriver
from drivers.bms import jk
from support import Stack, running, wait_for

RACK = "site.bess1.rack01"


def test_the_jk_balancer_switch_frames_are_byte_exact():
    # the request layout as tested on a JK02 pack (syssi/esphome-jk-bms PR #128: balance trigger 3 mV)
    assert jk.request(0x06, 3, 4).hex().upper() == "AA5590EB060403000000000000000000000000" "87"
    assert jk.balancer_switch(True).hex().upper() == "AA5590EB1F0401000000000000000000000000" "9E"
    assert jk.balancer_switch(False).hex().upper() == "AA5590EB1F0400000000000000000000000000" "9D"
    assert jk.parse_request(jk.balancer_switch(True)) == (jk.REGISTER_BALANCER, 4, 1)


@pytest.mark.parametrize("protocol", ["jbd", "daly"])
def test_jbd_and_daly_packs_have_no_balancing_command(protocol):
    site = ble_site([f'protocol = "{protocol}"'])
    stack = Stack()
    driver = BleDriver(site.links[0], stack.bus, stack.router, stack.journal, stack.clock, racks=site.racks)
    pending = PendingCommand(Command(f"{RACK}.balancing_cells_command", "write", (3,)), Future())
    driver.execute(pending)
    result = pending.future.result(0)
    assert result.status is CommandStatus.REJECTED
    assert result.message == f"{RACK}.balancing_cells_command: {protocol} has no balancing command"
    driver.on_stopped()


def test_a_jk_pack_balances_while_the_estimation_wants_it_and_stops_when_switched_off():
    site = ble_site(['protocol = "jk", variant = "jk02_24s"'], chemistry="nmc")
    plant = plant_for(site, current_a=0.0)
    model = plant.racks[RACK]
    model.soc = np.full(8, 0.5)
    model.true_soc[1] = 0.55                                   # cell 2 ~47 mV above the others
    model.temp_c = np.full(8, 25.0)
    stack = Stack()
    (sim,) = sim_links(site, plant)
    driver = BleDriver(site.links[0], stack.bus, stack.router, stack.journal, stack.clock, racks=site.racks)
    est = EstimationThread(site, stack.bus, stack.clock, router=stack.router, journal=stack.journal)

    def frames_until(predicate, what):
        def step():
            seen = stack.bus.get(f"{RACK}.cell_voltages_v")
            wait_for(lambda: stack.bus.get(f"{RACK}.cell_voltages_v") is not seen, timeout=5, what="a JK frame")
            est.cycle()
            return predicate()
        wait_for(step, timeout=10, interval=0.0, what=what)

    with serving(sim), running(stack, driver):
        frames_until(lambda: stack.value(f"{RACK}.balancing_command") == "sent: 2", "the balancer switched on")
        frames_until(lambda: stack.value(f"{RACK}.balancing_active") is True, "the pack balancing")
        assert model.bleed.tolist() == [c == 1 for c in range(8)]            # the JK balancer picked cell 2
        stack.router.submit(Command("site.bess1.balancing", "write", 0, "engineer"))
        frames_until(lambda: stack.value(f"{RACK}.balancing_command") == "sent: none", "the balancer switched off")
        frames_until(lambda: stack.value(f"{RACK}.balancing_active") is False, "the pack idle")
        assert not model.bleed.any()
    messages = [e.message for e in stack.journal.since(0) if e.kind == "balancing_command"]
    assert len(messages) == 2 and "balance cells 2: ΔV" in messages[0]
