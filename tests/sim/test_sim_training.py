"""The training-fault handler on `site.sim`: plant and link faults injected and cleared by Command,
listed in `active`, journalled; bad specs and ids rejected naming what to fix."""
from __future__ import annotations

import pytest

from app.core.commands import Command, CommandStatus
from app.sim.simulator import Simulator
from app.sim.training import TARGET, TrainingFaults
from support import Stack, make_site, running, wait_for

RACK = "site.bess1.rack01"


@pytest.fixture
def stack(tmp_path):
    """(stack, simulator, handler): the handler runs; the simulator only when a test starts it."""
    s = Stack()
    sim = Simulator(make_site(tmp_path, racks=2, modules=2, cells=8), s.clock)
    handler = TrainingFaults(sim, s.router, s.journal, s.clock, period_s=0.02)
    with running(s, handler):
        yield s, sim, handler


def _send(stack: Stack, action: str, value=None):
    return stack.router.submit(Command(TARGET, action, value, "trainer", "drill")).result(3.0)


def test_a_cell_drift_is_injected_listed_journalled_and_cleared(stack):
    s, sim, handler = stack
    result = _send(s, "inject_fault", f"cell_drift:rack={RACK},cell=3,rate_v_per_min=6")
    assert result.ok, result.message
    rack = sim.plant.racks[RACK]
    assert rack.drift_v_per_s[2] == pytest.approx(0.1) and not rack.drift_v_per_s[[0, 1, 3]].any()
    [fault] = handler.active
    assert (fault.id, fault.spec, fault.target, fault.user) == \
        (result.readback, f"cell_drift:rack={RACK},cell=3,rate_v_per_min=6", f"{RACK} cell 3", "trainer")
    assert any(e.kind == "inject_fault" and "TRAINING" in e.message and "drill" in e.message
               for e in s.journal.since(0))
    assert _send(s, "clear_fault", fault.id).ok
    assert rack.drift_v_per_s[2] == 0.0 and handler.active == ()


def test_link_faults_reach_the_server_and_clear_all_ends_every_fault(stack):
    s, sim, handler = stack
    faults = sim.servers["bms1"].faults
    assert _send(s, "inject_fault", "link_latency:link=bms1,ms=250").ok
    assert _send(s, "inject_fault", "link_drop:link=pcs1").ok
    assert _send(s, "inject_fault", "pcs_trip:pcs=pcs1").ok
    assert faults.latency_s == 0.25 and sim.servers["pcs1"].faults.drop
    assert sim.plant.pcs["pcs1"].state_code != 0 and len(handler.active) == 3
    result = _send(s, "clear_all_faults")
    assert result.ok and result.message == "3 training faults cleared"
    assert not faults.active and not sim.servers["pcs1"].faults.active and handler.active == ()


def test_the_same_kind_on_the_same_target_replaces_the_earlier_fault(stack):
    s, sim, handler = stack
    _send(s, "inject_fault", f"cell_drift:rack={RACK},cell=3,rate_v_per_min=6")
    _send(s, "inject_fault", f"cell_drift:rack={RACK},cell=3,rate_v_per_min=-3")
    _send(s, "inject_fault", "link_latency:link=bms1,ms=100")
    _send(s, "inject_fault", "link_latency:link=bms1,ms=300")
    assert [f.spec for f in handler.active] == [f"cell_drift:rack={RACK},cell=3,rate_v_per_min=-3",
                                               "link_latency:link=bms1,ms=300"]
    assert sim.plant.racks[RACK].drift_v_per_s[2] == pytest.approx(-0.05)
    assert sim.servers["bms1"].faults.latency_s == 0.3


@pytest.mark.parametrize("action, value, reason", [
    ("inject_fault", "cell_melt:rack=site.bess1.rack01", "unknown kind 'cell_melt'"),
    ("inject_fault", f"cell_drift:rack={RACK},cell=99,rate_v_per_min=1", "'cell' must be 1..16"),
    ("inject_fault", f"cell_drift:rack={RACK},cell=2", "missing key 'rate_v_per_min'"),
    ("inject_fault", "link_latency:link=can9", "'link' can9 is not a simulated Modbus link (links: bms1, pcs1)"),
    ("inject_fault", "link_latency:link=bms1,ms=-5", "'ms' must be > 0"),
    ("inject_fault", "link_crc:link=bms1", "CRC errors exist only on Modbus RTU links"),
    ("clear_fault", 99, "no active training fault #99"),
    ("reboot", None, "no action 'reboot'"),
])
def test_bad_commands_are_rejected_naming_what_to_fix(stack, action, value, reason):
    s, _, handler = stack
    result = _send(s, action, value)
    assert result.status is CommandStatus.REJECTED and reason in result.message
    assert handler.active == ()


def test_a_bms_reboot_leaves_the_list_once_it_has_ended(stack):
    s, sim, handler = stack
    s.supervisor.start(sim, "drivers")
    assert _send(s, "inject_fault", f"bms_reboot:rack={RACK},seconds=0.5").ok
    assert [f.spec for f in handler.active] == [f"bms_reboot:rack={RACK},seconds=0.5"]
    wait_for(lambda: handler.active == (), timeout=5.0, what="reboot over")
    assert sim.plant.racks[RACK].online
