"""BleDriver over bumble against simulated packs: several packs on the one BLE loop at once (in-process
air, HCI over TCP on loopback, a pack found by name), drops and recovery, garbage notifications, and
nothing left running afterwards."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from app.core.errors import ConfigError
from ble_site import ble_site, plant_for, serving, sim_links
from drivers.ble.driver import BleDriver
from drivers.ble.loop import BLE_LOOP
from support import Stack, free_port, running, wait_for

POLL_S = 0.2


def _drivers(site, stack):
    return [BleDriver(link, stack.bus, stack.router, stack.journal, stack.clock,
                      racks=[r for r in site.racks if r.link == link.name])
            for link in site.links if link.kind == "ble"]


def _cells(stack, n):
    return stack.value(f"site.bess1.rack{n:02d}.cell_voltages_v")


def test_several_packs_at_once_share_one_ble_loop_thread():
    site = ble_site(['protocol = "jbd"', 'protocol = "jk", variant = "jk02_24s"', 'protocol = "daly"',
                     'protocol = "jbd"'], poll_s=POLL_S,
                    addresses=["C0:00:00:00:01:01", "C0:00:00:00:01:02", "DL-SIM-PACK3", "A4:C1:38:00:00:04"],
                    ports=[None, free_port(), None, None])
    plant = plant_for(site)
    for n, model in enumerate(plant.racks.values(), start=1):
        model.current_a = 5.0 * n
    stack = Stack()
    drivers = _drivers(site, stack)
    with serving(*sim_links(site, plant)), running(stack, *drivers):
        wait_for(lambda: all(_cells(stack, n) is not None for n in range(1, 5)), timeout=8, what="all four packs")
        ble_threads = [t for t in threading.enumerate() if t.name == BLE_LOOP.thread_name]
        assert len(ble_threads) == 1
        for n, model in enumerate(plant.racks.values(), start=1):
            np.testing.assert_allclose(_cells(stack, n), model.cell_voltages(), atol=0.0006)
            assert stack.value(f"site.bess1.rack{n:02d}.current_a") == pytest.approx(5.0 * n, abs=0.06)
    assert all(d.stats.snapshot()["errors"] == 0 for d in drivers)
    assert not any(t.name == BLE_LOOP.thread_name for t in threading.enumerate())


@pytest.mark.parametrize("options", ['protocol = "jbd"', 'protocol = "jk", variant = "jk02_32s"'])
def test_a_dropped_connection_recovers_without_restarting_the_driver_within_5_s(options):
    site = ble_site([options], poll_s=POLL_S)
    plant = plant_for(site)
    stack = Stack()
    (sim,) = sim_links(site, plant)
    (driver,) = _drivers(site, stack)
    with serving(sim), running(stack, driver):
        wait_for(lambda: driver.stats.snapshot()["frames_ok"] >= 2, timeout=5, what="first polls")
        before = driver.stats.snapshot()["frames_ok"]
        dropped = time.monotonic()
        sim.drop_connections()
        wait_for(lambda: driver.stats.snapshot()["reconnects"] >= 2, timeout=5, what="reconnect")
        wait_for(lambda: driver.stats.snapshot()["frames_ok"] > before + 1, timeout=5, what="polls after reconnect")
        recovery = time.monotonic() - dropped
        assert stack.supervisor.restarts(driver.name) == 0
    assert recovery < 5.0
    assert "dropped" in driver.stats.snapshot()["last_error"]


def test_a_pack_that_goes_away_gives_comm_lost_and_recovers_within_5_s_of_coming_back():
    site = ble_site(['protocol = "daly"'], poll_s=POLL_S, connect_timeout_s=0.5, ports=[free_port()])
    plant = plant_for(site)
    stack = Stack()
    (sim,) = sim_links(site, plant)
    (driver,) = _drivers(site, stack)
    point = "site.bess1.rack01.cell_voltages_v"
    with serving(sim), running(stack, driver):
        wait_for(lambda: stack.quality(point) == "GOOD", timeout=5, what="GOOD")
        sim.stop()                                          # powered off: connection timeout, no adverts
        wait_for(lambda: stack.quality(point) == "COMM_LOST", timeout=5, what="COMM_LOST")
        assert stack.value("site.links.pack1.status") == "COMM_LOST"
        wait_for(lambda: driver.stats.snapshot()["timeouts"] + driver.stats.snapshot()["errors"] >= 2, timeout=5,
                 what="failed reconnect attempts while the pack is away")
        back = time.monotonic()
        sim.start()
        wait_for(lambda: stack.quality(point) == "GOOD", timeout=6, what="recovery")
        recovery = time.monotonic() - back
        assert stack.supervisor.restarts(driver.name) == 0
    assert recovery < 5.0
    assert [e.kind for e in stack.journal.since(0)].count("link_restored") == 1


def test_a_silent_pack_times_out_and_the_link_reconnects():
    site = ble_site(['protocol = "jbd"'], poll_s=POLL_S)
    plant = plant_for(site)
    stack = Stack()
    (sim,) = sim_links(site, plant)
    (driver,) = _drivers(site, stack)
    with serving(sim), running(stack, driver):
        wait_for(lambda: driver.stats.snapshot()["frames_ok"] >= 2, timeout=5)
        sim.pack.muted = True
        wait_for(lambda: driver.stats.snapshot()["timeouts"] >= 1, timeout=5, what="a timeout")
        sim.pack.muted = False
        ok = driver.stats.snapshot()["frames_ok"]
        wait_for(lambda: driver.stats.snapshot()["frames_ok"] > ok, timeout=5, what="answers again")
    assert "no answer to JBD register" in driver.stats.snapshot()["last_error"]


def test_garbage_notifications_are_counted_and_good_frames_keep_arriving():
    site = ble_site(['protocol = "jk", variant = "jk02_24s"'], poll_s=POLL_S)
    plant = plant_for(site)
    stack = Stack()
    (sim,) = sim_links(site, plant)
    (driver,) = _drivers(site, stack)
    with serving(sim), running(stack, driver):
        wait_for(lambda: driver.stats.snapshot()["frames_ok"] >= 2, timeout=5)
        for junk in (b"\x00" * 7, bytes(range(20)), bytes.fromhex("55aaeb9002") + b"\xee" * 15):
            sim.inject(junk)
        ok = driver.stats.snapshot()["frames_ok"]
        wait_for(lambda: driver.stats.snapshot()["frames_ok"] >= ok + 3, timeout=5, what="frames after garbage")
        assert stack.quality("site.bess1.rack01.cell_voltages_v") == "GOOD"
    snap = driver.stats.snapshot()
    assert snap["errors"] >= 2 and snap["reconnects"] == 1
    assert driver.session is None                        # closed on stop


def test_commands_to_a_ble_rack_are_rejected():
    from app.core.commands import Command
    site = ble_site(['protocol = "jbd"'], poll_s=POLL_S)
    plant = plant_for(site)
    stack = Stack()
    (sim,) = sim_links(site, plant)
    (driver,) = _drivers(site, stack)
    with serving(sim), running(stack, driver):
        wait_for(lambda: driver.stats.snapshot()["frames_ok"] >= 1, timeout=5)
        result = stack.router.submit(Command("site.bess1.rack01", "open_contactor")).result(timeout=5)
    assert not result.ok and "read-only" in result.message


@pytest.mark.parametrize("options, message", [
    ('protocol = "victron"', "options.protocol"),
    ('protocol = "jk"', "options.variant"),
    ('protocol = "jbd", host = "192.168.1.5", port = 1', "loopback"),
    ('protocol = "jbd", colour = "red"', "options.colour"),
])
def test_bad_link_options_name_the_key_to_fix(options, message):
    site = ble_site([options])
    stack = Stack()
    with pytest.raises(ConfigError, match=message):
        _drivers(site, stack)


def test_a_jk_pack_with_more_cells_than_the_variant_holds_is_a_config_error():
    site = ble_site(['protocol = "jk", variant = "jk02_24s"'], modules=5, cells=5)
    with pytest.raises(ConfigError, match="25 cells do not fit the 24 slots"):
        _drivers(site, Stack())
