"""The EMS thread against a real DataBus and CommandRouter with a fake PCS command owner."""
from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pytest

from app.core.clock import ManualClock
from app.core.commands import Command, CommandRouter, CommandStatus
from app.core.databus import DataBus
from app.core.errors import UserError
from app.core.events import EventJournal, Severity
from app.core.sample import Quality, Sample
from app.ems.settings import EmsSettings, with_param
from app.ems.worker import EmsThread
from tests.support import make_site, wait_for


class FakePcs:
    """Owns site.pcs1 (or `prefix`) on the router like a driver would: accepts writes and records them."""

    def __init__(self, router: CommandRouter, prefix: str = "site.pcs1"):
        self.q = router.register(prefix)
        self.writes: list[float] = []
        self.commands: list[Command] = []

    def drain(self) -> list[float]:
        while True:
            try:
                p = self.q.get_nowait()
            except queue.Empty:
                return self.writes
            self.writes.append(p.command.value)
            self.commands.append(p.command)
            p.reply(CommandStatus.ACCEPTED, readback=p.command.value)


@pytest.fixture
def plant(tmp_path):
    site = make_site(tmp_path, racks=2)
    clock, bus, router = ManualClock(start=1_700_000_000.0), DataBus(), CommandRouter()
    return site, clock, bus, router, FakePcs(router)


def publish(bus, clock, values: dict, quality=Quality.GOOD):
    now, wall = clock.monotonic(), clock.time()
    bus.publish_many((k, Sample(v, wall, now, wall, quality)) for k, v in values.items())


def healthy(bus, clock, load=300.0, pv=0.0, soc=50.0, hold=False, **extra):
    publish(bus, clock, {"site.pcs1.protection_hold": hold, "site.pcs1.active_power_kw": 0.0,
                         "site.pcs1.grid_frequency_hz": 50.0, "site.bess1.rack01.soc_pct": soc,
                         "site.bess1.rack02.soc_pct": soc, "site.meter.load_kw": load, "site.meter.pv_kw": pv,
                         "site.meter.grid_kw": load - pv, "site.meter.grid_available": True, **extra})


def test_peak_shaving_writes_the_setpoint_once_and_publishes_why(plant):
    site, clock, bus, router, pcs = plant
    ems = EmsThread(site, bus, router, clock, mode="peak_shaving",           # the test PCS is 5.12 kW
                    settings=EmsSettings(peak_threshold_kw=8.0, island_on_grid_loss=False))
    healthy(bus, clock, load=10.0)
    ems.cycle()
    ems.cycle()
    assert pcs.drain() == [-2.0]                      # written once, not every cycle
    assert bus.get("site.ems.mode").value == "peak_shaving"
    assert bus.get("site.ems.why").value == "peak shaving: import 10 kW > 8 kW limit -> discharge 2.0 kW"
    assert bus.get("site.ems.setpoint_kw").value == -2.0
    healthy(bus, clock, load=10.5)                    # below the write deadband
    ems.cycle()
    assert pcs.drain() == [-2.0]
    healthy(bus, clock, load=20.0)                    # limited by the PCS rating
    ems.cycle()
    assert pcs.drain() == [-2.0, -5.1]


def test_held_pcs_is_never_commanded_and_is_resent_after_release(plant):
    site, clock, bus, router, pcs = plant
    ems = EmsThread(site, bus, router, clock, mode="manual", settings=EmsSettings(manual_kw=2.0))
    healthy(bus, clock, hold=True)
    ems.cycle()
    assert pcs.drain() == []
    assert bus.get("site.ems.setpoint_kw").value == 0.0
    healthy(bus, clock, hold=False)
    ems.cycle()
    assert pcs.drain() == [2.0]


def test_stale_or_bad_data_counts_as_missing(plant):
    site, clock, bus, router, pcs = plant
    ems = EmsThread(site, bus, router, clock, mode="self_consumption")
    healthy(bus, clock, load=1.0, pv=3.0)
    publish(bus, clock, {"site.meter.pv_kw": 3.0}, Quality.COMM_LOST)
    publish(bus, clock, {"site.pcs1.active_power_kw": 0.5}, Quality.BAD)
    ems.cycle()
    assert "no valid" in bus.get("site.ems.why").value       # PV lost, battery power bad: no demand
    assert bus.get("site.ems.setpoint_kw").value == 0.0
    healthy(bus, clock, load=1.0, pv=3.0)
    ems.cycle()
    assert bus.get("site.ems.setpoint_kw").value == 2.0
    clock.advance(10.0)            # older than stale_after_s: missing, the hold status too -> no command
    ems.cycle()
    assert bus.get("site.ems.setpoint_kw").value == 0.0 and pcs.drain() == [0.0, 2.0]


def test_mode_and_param_commands_over_the_router_while_running(plant):
    site, clock, bus, router, pcs = plant
    ems = EmsThread(site, bus, router, clock, mode="manual", settings=EmsSettings(manual_kw=0.0, period_s=0.5))
    healthy(bus, clock, load=1.0, pv=4.0)
    stop = threading.Event()
    t = threading.Thread(target=ems.run, args=(stop,), name="ems")
    t.start()

    def step_until(pred):
        clock.advance(0.5)           # the thread's clock only moves when the test moves it
        pcs.drain()
        return pred()

    def ask(action, value):
        fut = router.submit(Command("site.ems", action, value, user="op"))
        wait_for(lambda: step_until(fut.done), what=f"reply to {action}")
        return fut.result()
    try:
        ok, bad = ask("set_mode", "self_consumption"), ask("set_mode", "warp_drive")
        param = ask("set_param", {"no_such": 1})
        assert ok.ok and not bad.ok and "warp_drive" in bad.message and not param.ok
        wait_for(lambda: step_until(lambda: 3.0 in pcs.writes), what="self-consumption charge of the surplus")
        assert ask("set_mode", "manual").ok and ask("set_param", {"manual_kw": -4}).ok
        wait_for(lambda: step_until(lambda: pcs.writes[-1] == -4.0), what="manual setpoint")
    finally:
        stop.set()
        t.join(5)
    assert router.submit(Command("site.ems", "set_mode", "manual")).result(1).status is CommandStatus.REJECTED


def test_schedule_mode_cannot_start_without_a_plan(plant):
    site, clock, bus, router, _ = plant
    with pytest.raises(UserError, match="send set_schedule"):
        EmsThread(site, bus, router, clock, mode="schedule")


def test_grid_loss_switches_to_islanding(plant):
    site, clock, bus, router, pcs = plant
    ems = EmsThread(site, bus, router, clock, mode="manual", settings=EmsSettings(manual_kw=3.0))
    healthy(bus, clock)
    ems.cycle()
    publish(bus, clock, {"site.meter.grid_available": False})
    ems.cycle()
    assert bus.get("site.ems.island_state").value == "isolating"
    assert bus.get("site.ems.setpoint_kw").value == 0.0


def _written(owner) -> list[tuple[str, object]]:
    owner.drain()
    return [(c.target, c.value) for c in owner.commands]


def test_islanding_writes_breaker_feeder_and_pcs_mode_once_each_and_waits_for_their_status(plant):
    site, clock, bus, router, pcs = plant
    meter = FakePcs(router, "site.meter")
    ems = EmsThread(site, bus, router, clock, mode="manual", settings=EmsSettings(manual_kw=3.0))
    healthy(bus, clock, **{"site.meter.breaker_closed": True, "site.pcs1.state": 1})
    ems.cycle()
    assert _written(meter) == [] and _written(pcs) == [("site.pcs1.active_power_setpoint_kw", 3.0)]
    publish(bus, clock, {"site.meter.grid_available": False})
    ems.cycle()
    clock.advance(1.0)
    healthy(bus, clock, **{"site.meter.grid_available": False, "site.meter.breaker_closed": True, "site.pcs1.state": 0})
    ems.cycle()                                           # breaker still reads closed: no black start yet
    assert bus.get("site.ems.island_state").value == "isolating"
    assert _written(meter) == [("site.meter.breaker_command", 0), ("site.meter.load_feeder_enable", 0)]
    publish(bus, clock, {"site.meter.breaker_closed": False})
    ems.cycle()
    assert bus.get("site.ems.island_state").value == "energising"
    assert _written(pcs)[-1] == ("site.pcs1.operating_mode", 1)
    cmd = pcs.commands[-1]
    assert cmd.user == "ems" and cmd.reason == "EMS islanding: energising"


def test_a_held_pcs_gets_no_islanding_command(plant):
    site, clock, bus, router, pcs = plant
    meter = FakePcs(router, "site.meter")
    ems = EmsThread(site, bus, router, clock, mode="manual", settings=EmsSettings(manual_kw=3.0))
    lost = {"site.meter.grid_available": False, "site.meter.breaker_closed": False}
    for _ in range(3):
        healthy(bus, clock, hold=True, **lost)
        ems.cycle()
        clock.advance(1.0)
    assert bus.get("site.ems.island_state").value == "shed"
    assert "no PCS free (protection hold)" in bus.get("site.ems.why").value
    assert _written(pcs) == []                            # not even the shed's grid-following mode
    assert _written(meter) == [("site.meter.breaker_command", 0), ("site.meter.load_feeder_enable", 0)]


def test_a_breaker_that_does_not_open_raises_one_alarm_event(plant):
    site, clock, bus, router, pcs = plant
    meter, journal = FakePcs(router, "site.meter"), EventJournal()
    ems = EmsThread(site, bus, router, clock, mode="manual", journal=journal,
                    settings=EmsSettings(manual_kw=3.0, island_device_timeout_s=5.0))
    lost = {"site.meter.grid_available": False, "site.meter.breaker_closed": True}
    for _ in range(8):
        healthy(bus, clock, **lost)
        ems.cycle()
        clock.advance(1.0)
    assert bus.get("site.ems.island_state").value == "shed" and meter.drain()
    alarms = [e for e in journal.since(0) if e.kind == "island_alarm"]
    assert len(alarms) == 1 and alarms[0].severity == Severity.ALARM
    assert "grid breaker not reported open within 5 s" in alarms[0].message
    assert [e.message.split(":")[0] for e in journal.since(0) if e.kind == "island"] == [
        "connected -> isolating", "isolating -> shed"]


def test_mpc_plans_from_seeded_history_and_falls_back_to_rules_without(plant):
    site, clock, bus, router, pcs = plant
    settings = EmsSettings(mpc_step_minutes=60.0, mpc_horizon_h=12.0, capacity_kwh=100.0)
    cold = EmsThread(site, bus, router, clock, mode="mpc", settings=settings)
    healthy(bus, clock, load=5.0, pv=0.0)
    cold.cycle()
    assert bus.get("site.ems.why").value.startswith("rules:")
    hours = np.arange(48)
    load = 4 + 2 * np.sin(hours / 24 * 2 * np.pi)
    warm = EmsThread(site, bus, router, clock, mode="mpc", settings=settings, history=(load, np.zeros(48)))
    warm.cycle()
    assert "MPC plan step 1/12" in bus.get("site.ems.why").value


def test_mpc_plan_snapshot_holds_the_plan_its_tariff_and_what_it_expects(plant):
    site, clock, bus, router, pcs = plant
    settings = EmsSettings(mpc_step_minutes=60.0, mpc_horizon_h=12.0, capacity_kwh=100.0)
    hours = np.arange(48)
    ems = EmsThread(site, bus, router, clock, mode="mpc", settings=settings,
                    history=(4 + 2 * np.sin(hours / 24 * 2 * np.pi), np.zeros(48)))
    healthy(bus, clock, load=5.0, pv=0.0, soc=50.0)
    ems.cycle()

    plan = ems.plan_snapshot()
    assert (plan.source, plan.steps, plan.step_minutes) == ("MPC plan", 12, 60.0)
    assert plan.start == plan.made_at == clock.time() and plan.end == clock.time() + 12 * 3600
    assert f"MPC plan step 1/12 says {plan.battery_kw[0]:+.1f} kW" in bus.get("site.ems.why").value
    charge, discharge = max(plan.battery_kw[0], 0), max(-plan.battery_kw[0], 0)
    assert plan.soc_pct[0] == pytest.approx(50 + charge * 0.95 - discharge / 0.95)    # 100 kWh, 1 h steps
    local = [time.localtime(t) for t in plan.step_edges()[:-1]]
    assert plan.import_price.tolist() == settings.import_price([t.tm_hour + t.tm_min / 60 for t in local]).tolist()
    assert plan.export_price.tolist() == [settings.export_price] * 12
    np.testing.assert_allclose(plan.grid_kw, plan.load_kw - plan.pv_kw + plan.battery_kw, atol=1e-6)
    assert not plan.battery_kw.flags.writeable and not plan.soc_pct.flags.writeable

    router.submit(Command("site.ems", "set_mode", "rules"))
    ems.cycle()
    assert ems.plan_snapshot() is None                # a rule set follows no plan


def test_operator_schedule_snapshot_projects_the_soc_and_returns_with_its_mode(plant):
    site, clock, bus, router, pcs = plant
    ems = EmsThread(site, bus, router, clock, mode="manual", settings=EmsSettings(capacity_kwh=100.0))
    healthy(bus, clock, soc=50.0)
    ems.cycle()
    assert ems.plan_snapshot() is None
    made = clock.time()
    router.submit(Command("site.ems", "set_schedule", {"battery_kw": [2.0, -2.0, 0.0], "step_minutes": 30}))
    ems.cycle()

    plan = ems.plan_snapshot()
    assert (plan.source, plan.made_at, plan.start, plan.step_minutes) == ("operator plan", made, made, 30.0)
    assert plan.battery_kw.tolist() == [2.0, -2.0, 0.0]
    np.testing.assert_allclose(plan.soc_pct, [50.95, 50.95 - 1 / 0.95, 50.95 - 1 / 0.95])
    assert np.isnan(plan.load_kw).all() and np.isnan(plan.grid_kw).all()    # no forecast behind it

    router.submit(Command("site.ems", "set_mode", "manual"))
    clock.advance(1.0)
    ems.cycle()
    assert ems.plan_snapshot() is None
    router.submit(Command("site.ems", "set_mode", "schedule"))
    ems.cycle()
    assert ems.plan_snapshot() is plan                # the same plan, made when it was loaded


def test_the_tariff_currency_is_a_text_parameter():
    assert with_param(EmsSettings(), "currency", " USD ").currency == "USD"
    with pytest.raises(UserError, match="currency: bad value 3"):
        with_param(EmsSettings(), "currency", 3)
