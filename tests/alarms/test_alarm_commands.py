"""Operator alarm actions arriving as Commands on the owning thread's queue."""
from __future__ import annotations

from alarm_cases import TRIP, WARN, ov_trip, ov_warn

from app.alarms.commands import TARGET, execute
from app.alarms.manager import AlarmManager
from app.alarms.model import AlarmState as S
from app.core.commands import Command, CommandStatus


def manager():
    m = AlarmManager([ov_warn(), ov_trip()])
    m.cycle(0.0, {WARN: 3.7, TRIP: 3.7})
    return m


def test_ack_and_ack_all_return_the_transitions_as_readback():
    m = manager()
    r = execute(m, Command(TARGET, "ack", WARN, user="alice"), 1.0)
    assert r.ok and [t.to_state for t in r.readback] == [S.ACKED] and "by alice" in r.message
    r = execute(m, Command(TARGET, "ack_all", [WARN, TRIP], user="bob"), 2.0)
    assert r.ok and [t.tag for t in r.readback] == [TRIP]
    r = execute(m, Command(TARGET, "ack", WARN, user="bob"), 3.0)
    assert r.ok and r.readback == () and r.message == "ack: nothing to do"


def test_shelve_unshelve_and_out_of_service_carry_user_and_reason():
    m = manager()
    r = execute(m, Command(TARGET, "shelve", {"tag": WARN, "duration_s": 300}, user="alice", reason="drift"), 1.0)
    assert r.ok and m.view(WARN).shelf.until == 301.0
    assert execute(m, Command(TARGET, "unshelve", WARN, user="alice"), 2.0).ok
    r = execute(m, Command(TARGET, "out_of_service", WARN, user="tech", reason="sensor swap"), 3.0)
    assert r.ok and m.view(WARN).out_of_service == ("tech", "sensor swap")
    assert execute(m, Command(TARGET, "return_to_service", WARN, user="tech"), 4.0).ok


def test_refusals_and_malformed_commands_are_rejected_with_the_reason():
    m = manager()
    r = execute(m, Command(TARGET, "reset", {"tag": TRIP, "authorised": False}, user="bob"), 1.0)
    assert r.status is CommandStatus.REJECTED and "'bob' is not authorised" in r.message
    r = execute(m, Command(TARGET, "reset", {"tag": TRIP, "authorised": True}, user="alice"), 1.0)
    assert r.status is CommandStatus.REJECTED and "condition persists" in r.message
    m.update(TRIP, 3.4, 2.0)
    assert execute(m, Command(TARGET, "reset", {"tag": TRIP, "authorised": True}, user="alice"), 3.0).ok
    for cmd, match in [
        (Command(TARGET, "silence", WARN), "unknown alarm action 'silence'"),
        (Command(TARGET, "ack", 5), "needs an alarm tag"),
        (Command(TARGET, "ack_all", WARN), "needs a list"),
        (Command(TARGET, "shelve", WARN, reason="x"), "needs a dict value with 'tag'"),
        (Command(TARGET, "shelve", {"tag": WARN, "duration_s": "1h"}, reason="x"), "duration_s must be a number"),
        (Command(TARGET, "reset", {"tag": TRIP}), "missing 'authorised'"),
        (Command(TARGET, "ack", "site.nope"), "unknown alarm tag"),
    ]:
        r = execute(m, cmd, 4.0)
        assert r.status is CommandStatus.REJECTED and match in r.message, (cmd, r.message)
