"""CanDriver with python-can's socketcand client across a TCP loopback connection to the simulator's
socketcand server: data flows, pulling the link gives COMM_LOST, restarting the server recovers."""
from __future__ import annotations

import time

import numpy as np
import pytest

from app.sim.can_endpoint import CanSimLink
from can_site import can_site, plant_for
from drivers.can.driver import CanDriver
from support import Stack, free_port, running, wait_for

POLL_S = 0.2
POINT = "site.bess1.rack01.cell_voltages_v"


@pytest.fixture
def link():
    port = free_port()
    site = can_site(f'interface = "socketcand", host = "127.0.0.1", port = {port}', poll_s=POLL_S)
    plant = plant_for(site, current_a=7.5)
    stack = Stack()
    sim = CanSimLink(site.link("bms1"), list(plant.racks.values()), stack.clock)
    driver = CanDriver(site.link("bms1"), stack.bus, stack.router, stack.journal, stack.clock, racks=site.racks)
    sim.start()
    yield site, plant, stack, sim, driver
    sim.stop()


def test_points_arrive_over_socketcand(link):
    site, plant, stack, sim, driver = link
    with running(stack, driver):
        wait_for(lambda: stack.value(POINT) is not None and stack.value("site.bess1.rack01.current_a") is not None,
                 timeout=5, what="rack points")
    model = plant.racks["site.bess1.rack01"]
    np.testing.assert_allclose(stack.value(POINT), model.cell_voltages(), atol=0.0006)
    assert stack.value("site.bess1.rack01.current_a") == 7.5
    snap = driver.stats.snapshot()
    assert snap["errors"] == 0 and snap["frames_ok"] >= 14
    assert 0.0 <= snap["latency_p50_ms"] < 100.0


def test_stopping_the_server_gives_comm_lost_and_restarting_it_recovers_within_5_s(link):
    site, plant, stack, sim, driver = link
    with running(stack, driver):
        wait_for(lambda: stack.quality(POINT) == "GOOD", timeout=5)
        pulled = time.monotonic()
        sim.stop()                                      # the server drops the TCP connection
        wait_for(lambda: stack.quality(POINT) == "COMM_LOST", timeout=5, what="COMM_LOST")
        lost_after = time.monotonic() - pulled
        assert stack.value("site.links.bms1.status") == "COMM_LOST"
        wait_for(lambda: "refused" in driver.stats.snapshot()["last_error"], timeout=5,
                 what="a reconnect refused while the server is down")
        restarted = time.monotonic()
        sim.start()
        wait_for(lambda: stack.quality(POINT) == "GOOD", timeout=6, what="recovery")
        recovery = time.monotonic() - restarted
        assert stack.supervisor.restarts(driver.name) == 0
    assert lost_after <= 3 * POLL_S + 0.3
    assert recovery < 5.0
    assert driver.stats.snapshot()["reconnects"] >= 2
    assert [e.kind for e in stack.journal.since(0)].count("link_restored") == 1
