"""Select-before-operate: happy path through a CommandRouter, timeout, refusals, every step audited."""
from __future__ import annotations

import pytest

from app.core.commands import Command, CommandRouter, CommandStatus
from app.security.interlocks import SetpointWithinRating
from app.security.roles import CommandKind as K, Role
from app.security.sbo import CommandRefused

from security_accounts import PASSWORDS

SP = "site.pcs1.active_power_setpoint_kw"
VALUES = {SP: 0.0}


@pytest.fixture
def sbo(staffed):
    return staffed.sbo([SetpointWithinRating(SP, rated_kw=100.0)])


@pytest.fixture
def operator(staffed):
    return staffed.login("operator", PASSWORDS[Role.OPERATOR], "console")


def trail(service):
    return [(r.action, r.result) for r in service.audit.records() if r.action.startswith("command.")]


def serve_one(router_queue, registers: dict, readback: bool = True) -> None:
    """The owning link's side: take one pending command, apply it, reply with the read-back."""
    pending = router_queue.get(timeout=1)
    registers[pending.command.target] = pending.command.value
    pending.reply(CommandStatus.ACCEPTED, "written", registers[pending.command.target] if readback else None)


def test_select_confirm_execute_verified_is_audited_step_by_step(staffed, sbo, operator, clock):
    router, registers = CommandRouter(), {}
    owner = router.register("site.pcs1")
    token = sbo.select(Command(SP, "write", 40.0, reason="evening peak"), K.SETPOINT, operator,
                       clock.monotonic(), VALUES)
    clock.advance(14.9)
    cmd = sbo.confirm(token.id, operator, clock.monotonic(), VALUES)
    assert cmd.user == "operator" and cmd.value == 40.0
    future = router.submit(cmd)
    serve_one(owner, registers)
    assert sbo.record_result(token.id, future.result(timeout=1)) == "verified"
    assert registers == {SP: 40.0}
    assert trail(staffed) == [("command.select", "selected"), ("command.confirm", "confirmed"),
                              ("command.execute", "verified")]
    last = staffed.audit.records()[-1]
    assert (last.target, last.user, last.old_value, last.detail) == (SP, "operator", "0.0", "written")
    assert '"readback":40.0' in last.new_value and '"kind":"setpoint"' in last.new_value


def test_result_without_readback_is_executed_and_a_rejection_is_failed(staffed, sbo, operator, clock):
    router, registers = CommandRouter(), {}
    owner = router.register("site.pcs1")
    token = sbo.select(Command(SP, "write", 10.0), K.SETPOINT, operator, clock.monotonic(), VALUES)
    future = router.submit(sbo.confirm(token.id, operator, clock.monotonic(), VALUES))
    serve_one(owner, registers, readback=False)
    assert sbo.record_result(token.id, future.result(timeout=1)) == "executed"
    token = sbo.select(Command("site.pcs9.active_power_setpoint_kw", "write", 1.0), K.SETPOINT, operator,
                       clock.monotonic(), VALUES)
    future = router.submit(sbo.confirm(token.id, operator, clock.monotonic(), VALUES))   # nobody owns pcs9
    assert sbo.record_result(token.id, future.result(timeout=1)) == "failed"
    assert staffed.audit.records()[-1].detail == "no link owns site.pcs9.active_power_setpoint_kw"


def test_confirm_after_15_s_times_out_and_must_select_again(staffed, sbo, operator, clock):
    token = sbo.select(Command(SP, "write", 40.0), K.SETPOINT, operator, clock.monotonic(), VALUES)
    clock.advance(15.01)
    with pytest.raises(CommandRefused, match="timed out after 15 s"):
        sbo.confirm(token.id, operator, clock.monotonic(), VALUES)
    with pytest.raises(CommandRefused, match="no such selection"):
        sbo.confirm(token.id, operator, clock.monotonic(), VALUES)
    assert trail(staffed) == [("command.select", "selected"), ("command.confirm", "timeout")]
    assert sbo.select(Command(SP, "write", 40.0), K.SETPOINT, operator, clock.monotonic(), VALUES)


def test_expire_drops_unconfirmed_selections_and_frees_the_target(staffed, sbo, operator, clock):
    sbo.select(Command(SP, "write", 40.0), K.SETPOINT, operator, clock.monotonic(), VALUES)
    with pytest.raises(CommandRefused, match="already selected by 'operator'"):
        sbo.select(Command(SP, "write", 50.0), K.SETPOINT, operator, clock.monotonic(), VALUES)
    clock.advance(16)
    assert [t.command.value for t in sbo.expire(clock.monotonic())] == [40.0]
    assert sbo.select(Command(SP, "write", 50.0), K.SETPOINT, operator, clock.monotonic(), VALUES)


def test_unauthorised_or_interlocked_select_is_refused_and_audited(staffed, sbo, clock):
    viewer = staffed.login("viewer", PASSWORDS[Role.VIEWER], "console")
    with pytest.raises(CommandRefused, match="viewer may not setpoint"):
        sbo.select(Command(SP, "write", 40.0), K.SETPOINT, viewer, clock.monotonic(), VALUES)
    with pytest.raises(CommandRefused, match="log in"):
        sbo.select(Command(SP, "write", 40.0), K.SETPOINT, None, clock.monotonic(), VALUES)
    op = staffed.login("operator", PASSWORDS[Role.OPERATOR], "console")
    with pytest.raises(CommandRefused, match="above the rated 100.0 kW"):
        sbo.select(Command(SP, "write", 400.0), K.SETPOINT, op, clock.monotonic(), VALUES)
    assert trail(staffed) == [("command.select", "refused")] * 3
    assert [r.user for r in staffed.audit.records() if r.action == "command.select"] == \
        ["viewer", "(nobody)", "operator"]


def test_only_the_selecting_session_can_confirm(staffed, sbo, operator, clock):
    other = staffed.login("engineer", PASSWORDS[Role.ENGINEER], "console2")
    token = sbo.select(Command(SP, "write", 40.0), K.SETPOINT, operator, clock.monotonic(), VALUES)
    with pytest.raises(CommandRefused, match="only the session that selected it"):
        sbo.confirm(token.id, other, clock.monotonic(), VALUES)
    assert sbo.confirm(token.id, operator, clock.monotonic(), VALUES)


def test_critical_command_needs_reauth_at_confirm_if_the_window_closed(staffed, operator, clock):
    sbo = staffed.sbo()
    clock.advance(110)
    operator = staffed.touch(operator)
    token = sbo.select(Command("site.bess1.rack01.contactor_command", "write", 1), K.CONTACTOR, operator,
                       clock.monotonic(), {})
    clock.advance(11)                                             # 121 s since the password: window closed
    operator = staffed.touch(operator)
    with pytest.raises(CommandRefused) as exc:
        sbo.confirm(token.id, operator, clock.monotonic(), {})
    assert exc.value.needs_reauth
    operator = staffed.reauthenticate(operator, PASSWORDS[Role.OPERATOR])
    assert sbo.confirm(token.id, operator, clock.monotonic(), {}).target.endswith("contactor_command")


def test_cancel_frees_the_target(staffed, sbo, operator, clock):
    token = sbo.select(Command(SP, "write", 40.0), K.SETPOINT, operator, clock.monotonic(), VALUES)
    sbo.cancel(token.id, clock.monotonic())
    with pytest.raises(CommandRefused):
        sbo.confirm(token.id, operator, clock.monotonic(), VALUES)
    assert trail(staffed) == [("command.select", "selected"), ("command.cancel", "cancelled")]


def test_emergency_stop_bypasses_select_before_operate(sbo, operator, clock):
    with pytest.raises(ValueError, match="executed at once"):
        sbo.select(Command("site", "emergency_stop"), K.EMERGENCY_STOP, operator, clock.monotonic(), {})
