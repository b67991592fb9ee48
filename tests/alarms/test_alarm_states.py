"""Every transition of the ISA-18.2 state diagram, driven with an injected ManualClock."""
from __future__ import annotations

import pytest
from alarm_cases import CELL, CONTACTOR_OPEN, FAULT, RACK, TRIP, UV, WARN, frontend_fault, ov_trip, ov_warn, uv_warn

from app.alarms.manager import AlarmManager
from app.alarms.model import AlarmDefinition, AlarmRefused, AlarmState as S, Direction, Priority
from app.core.clock import ManualClock
from app.core.errors import UserError
from app.core.events import Severity


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def states(transitions):
    return [(t.tag, t.action, t.from_state, t.to_state) for t in transitions]


def test_activation_names_priority_rule_point_value_and_limit(clock):
    m = AlarmManager([ov_warn()])
    [t] = m.update(WARN, 3.612, clock.time())
    assert (t.from_state, t.to_state, t.action, t.who) == (S.NORMAL, S.UNACK, "activate", "system")
    assert t.message == f"HIGH cell overvoltage warn: {CELL} = 3.612 V > 3.600 V"
    assert (t.value, t.limit, t.priority, t.time, t.announce) == (3.612, 3.600, Priority.HIGH, clock.time(), True)
    assert m.view(WARN).state is S.UNACK


def test_ack_while_active_then_clear_goes_to_normal(clock):
    m = AlarmManager([ov_warn()])
    m.update(WARN, 3.7, clock.time())
    clock.advance(5)
    t = m.ack(WARN, "alice", clock.time())
    assert (t.from_state, t.to_state, t.who, t.action) == (S.UNACK, S.ACKED, "alice", "ack")
    assert "acknowledged" in t.message and "by alice" in t.message and "3.700 V > 3.600 V" in t.message
    [t] = m.update(WARN, 3.5, clock.time())
    assert (t.from_state, t.to_state, t.action) == (S.ACKED, S.NORMAL, "clear")
    assert t.message == f"HIGH cell overvoltage warn returned to normal: {CELL} = 3.500 V <= 3.600 V"


def test_return_to_normal_before_ack_waits_for_ack(clock):
    m = AlarmManager([ov_warn()])
    m.update(WARN, 3.7, clock.time())
    [t] = m.update(WARN, 3.5, clock.time())
    assert (t.from_state, t.to_state) == (S.UNACK, S.RTN_UNACK)
    t = m.ack(WARN, "alice", clock.time())
    assert (t.from_state, t.to_state) == (S.RTN_UNACK, S.NORMAL)


def test_reactivation_before_ack_is_a_new_unacknowledged_alarm(clock):
    m = AlarmManager([ov_warn()])
    m.update(WARN, 3.7, clock.time())
    m.update(WARN, 3.5, clock.time())
    clock.advance(1)
    [t] = m.update(WARN, 3.71, clock.time())
    assert (t.from_state, t.to_state, t.action) == (S.RTN_UNACK, S.UNACK, "activate")
    assert m.view(WARN).activated_at == clock.time()


def test_ack_with_nothing_to_acknowledge_returns_none_and_ack_all_skips(clock):
    m = AlarmManager([ov_warn(), uv_warn()])
    assert m.ack(WARN, "alice", clock.time()) is None
    m.update(WARN, 3.7, clock.time())
    m.ack(WARN, "alice", clock.time())
    assert m.ack(WARN, "bob", clock.time()) is None
    m.update(UV, 2.5, clock.time())
    assert states(m.ack_all([WARN, UV], "bob", clock.time())) == [(UV, "ack", S.UNACK, S.ACKED)]


def test_one_shot_shelve_ends_when_the_alarm_returns_to_normal(clock):
    m = AlarmManager([ov_warn()])
    m.update(WARN, 3.7, clock.time())
    t = m.shelve(WARN, "alice", "sensor drift, ticket 42", clock.time())
    assert (t.from_state, t.to_state, t.why) == (S.UNACK, S.SHELVED, "sensor drift, ticket 42")
    assert "until it returns to normal" in t.message
    clock.advance(3600 * 24)
    assert m.tick(clock.time()) == []
    assert m.update(WARN, 3.8, clock.time()) == []          # still active: stays shelved, silent
    [t] = m.update(WARN, 3.5, clock.time())
    assert (t.from_state, t.to_state, t.action) == (S.SHELVED, S.NORMAL, "clear")
    assert m.view(WARN).shelf is None
    [t] = m.update(WARN, 3.7, clock.time())                 # the next occurrence annunciates again
    assert t.to_state is S.UNACK and t.announce


def test_one_shot_shelve_needs_an_active_alarm(clock):
    m = AlarmManager([ov_warn()])
    with pytest.raises(AlarmRefused, match="give a duration"):
        m.shelve(WARN, "alice", "noisy", clock.time())


def test_timed_shelve_outlives_return_to_normal_and_expires_to_the_condition(clock):
    m = AlarmManager([ov_warn()])
    m.update(WARN, 3.7, clock.time())
    m.ack(WARN, "alice", clock.time())
    t = m.shelve(WARN, "alice", "work on rack 3", clock.time(), duration_s=600)
    assert (t.from_state, t.to_state) == (S.ACKED, S.SHELVED)
    assert m.view(WARN).shelf.until == clock.time() + 600
    assert m.update(WARN, 3.5, clock.time()) == []          # timed: clearing does not unshelve
    assert m.update(WARN, 3.7, clock.time()) == []
    clock.advance(599.9)
    assert m.tick(clock.time()) == []
    clock.advance(0.1)
    [t] = m.tick(clock.time())
    assert (t.from_state, t.to_state, t.action, t.announce) == (S.SHELVED, S.UNACK, "shelve_expired", True)


def test_timed_shelve_of_a_normal_alarm_expires_to_normal(clock):
    m = AlarmManager([ov_warn()])
    m.shelve(WARN, "alice", "commissioning", clock.time(), duration_s=60)
    clock.advance(60)
    [t] = m.tick(clock.time())
    assert (t.from_state, t.to_state) == (S.SHELVED, S.NORMAL)


def test_unshelve_reannunciates_an_active_alarm(clock):
    m = AlarmManager([ov_warn()])
    m.update(WARN, 3.7, clock.time())
    m.ack(WARN, "alice", clock.time())
    m.shelve(WARN, "alice", "noisy", clock.time(), duration_s=600)
    t = m.unshelve(WARN, "bob", clock.time())
    assert (t.from_state, t.to_state, t.who) == (S.SHELVED, S.UNACK, "bob")
    clock.advance(600)
    assert m.tick(clock.time()) == []                       # the old expiry is gone
    with pytest.raises(AlarmRefused, match="not shelved"):
        m.unshelve(WARN, "bob", clock.time())


@pytest.mark.parametrize("kwargs, match", [
    (dict(reason="  "), "needs a reason"),
    (dict(reason="x", duration_s=0), "duration must be between"),
    (dict(reason="x", duration_s=9 * 3600), "duration must be between"),
])
def test_shelve_refusals_name_what_to_fix(clock, kwargs, match):
    m = AlarmManager([ov_warn()])
    m.update(WARN, 3.7, clock.time())
    with pytest.raises(AlarmRefused, match=match):
        m.shelve(WARN, "alice", now=clock.time(), **kwargs)
    assert m.view(WARN).state is S.UNACK


def test_trip_alarms_cannot_be_shelved(clock):
    m = AlarmManager([ov_trip()])
    m.update(TRIP, 3.7, clock.time())
    with pytest.raises(AlarmRefused, match="latching trip alarm and cannot be shelved"):
        m.shelve(TRIP, "alice", "nuisance", clock.time(), duration_s=60)


def test_suppression_by_design_hides_and_restores_by_condition(clock):
    m = AlarmManager([uv_warn()])
    m.update(UV, 2.5, clock.time())
    [t] = m.set_suppression(CONTACTOR_OPEN, True, clock.time())
    assert (t.from_state, t.to_state, t.action) == (S.UNACK, S.SUPPRESSED, "suppress")
    assert CONTACTOR_OPEN in t.why
    clock.advance(61)
    assert m.update(UV, 3.2, clock.time()) == []            # changes while suppressed are silent
    clock.advance(61)
    assert m.update(UV, 2.0, clock.time()) == []
    assert m.view(UV).condition
    [t] = m.set_suppression(CONTACTOR_OPEN, False, clock.time())
    assert (t.from_state, t.to_state, t.action, t.announce) == (S.SUPPRESSED, S.UNACK, "unsuppress", True)
    m.ack(UV, "alice", clock.time())
    m.set_suppression(CONTACTOR_OPEN, True, clock.time())
    m.update(UV, 3.2, clock.time())
    [t] = m.set_suppression(CONTACTOR_OPEN, False, clock.time())
    assert t.to_state is S.NORMAL
    assert m.set_suppression(CONTACTOR_OPEN, False, clock.time()) == []


def test_suppression_also_suppresses_normal_alarms_and_new_definitions(clock):
    m = AlarmManager([uv_warn()])
    [t] = m.set_suppression(CONTACTOR_OPEN, True, clock.time())
    assert (t.from_state, t.to_state) == (S.NORMAL, S.SUPPRESSED)
    m.define(uv_warn(tag=f"{UV}2"), clock.time())
    assert m.view(f"{UV}2").state is S.SUPPRESSED


def test_shelved_alarm_stays_shelved_under_suppression_and_lands_suppressed(clock):
    m = AlarmManager([uv_warn()])
    m.update(UV, 2.5, clock.time())
    m.shelve(UV, "alice", "noisy", clock.time(), duration_s=60)
    assert m.set_suppression(CONTACTOR_OPEN, True, clock.time()) == []
    clock.advance(60)
    [t] = m.tick(clock.time())
    assert (t.from_state, t.to_state) == (S.SHELVED, S.SUPPRESSED)


def test_out_of_service_ignores_the_process_and_returns_by_condition(clock):
    m = AlarmManager([ov_warn()])
    m.update(WARN, 3.7, clock.time())
    t = m.set_out_of_service(WARN, "tech", "replacing cell sensor", clock.time())
    assert (t.from_state, t.to_state, t.why) == (S.UNACK, S.OUT_OF_SERVICE, "replacing cell sensor")
    assert m.view(WARN).out_of_service == ("tech", "replacing cell sensor")
    assert m.update(WARN, 3.5, clock.time()) == []
    assert m.update(WARN, 3.8, clock.time()) == []
    with pytest.raises(AlarmRefused, match="already out of service"):
        m.set_out_of_service(WARN, "tech", "again", clock.time())
    t = m.return_to_service(WARN, "tech", clock.time())
    assert (t.from_state, t.to_state) == (S.OUT_OF_SERVICE, S.UNACK)
    with pytest.raises(AlarmRefused, match="not out of service"):
        m.return_to_service(WARN, "tech", clock.time())


def test_out_of_service_refusals(clock):
    m = AlarmManager([ov_warn()])
    with pytest.raises(AlarmRefused, match="needs a reason"):
        m.set_out_of_service(WARN, "tech", "", clock.time())
    m.shelve(WARN, "alice", "noisy", clock.time(), duration_s=60)
    with pytest.raises(AlarmRefused, match="unshelve it before"):
        m.set_out_of_service(WARN, "tech", "sensor", clock.time())


def test_latched_trip_stays_active_until_authorised_reset_after_the_condition_is_gone(clock):
    m = AlarmManager([ov_trip()])
    [t] = m.update(TRIP, 3.70, clock.time())
    assert (t.to_state, t.latched) == (S.UNACK, True)
    assert t.message == f"URGENT cell overvoltage trip: {CELL} = 3.700 V > 3.650 V; latched until reset"
    assert t.as_event().severity is Severity.TRIP
    assert m.ack(TRIP, "alice", clock.time()).to_state is S.ACKED
    with pytest.raises(AlarmRefused, match=r"condition persists \(.* = 3\.700 V > 3\.650 V; clears at <= 3\.600 V"):
        m.reset(TRIP, "alice", True, clock.time())
    assert m.update(TRIP, 3.62, clock.time()) == []         # inside the deadband: still active
    with pytest.raises(AlarmRefused, match="condition persists"):
        m.reset(TRIP, "alice", True, clock.time())
    assert m.update(TRIP, 3.40, clock.time()) == []         # condition gone, but latched
    v = m.view(TRIP)
    assert (v.state, v.condition, v.latched) == (S.ACKED, False, True)
    with pytest.raises(AlarmRefused, match="'bob' is not authorised"):
        m.reset(TRIP, "bob", False, clock.time())
    t = m.reset(TRIP, "alice", True, clock.time())
    assert (t.from_state, t.to_state, t.action, t.who, t.latched) == (S.ACKED, S.NORMAL, "reset", "alice", False)
    with pytest.raises(AlarmRefused, match="nothing to reset"):
        m.reset(TRIP, "alice", True, clock.time())


def test_reset_of_an_unacknowledged_cleared_trip_also_acknowledges_it(clock):
    m = AlarmManager([ov_trip()])
    m.update(TRIP, 3.7, clock.time())
    m.update(TRIP, 3.4, clock.time())
    assert m.view(TRIP).state is S.UNACK                   # latched: no RTN_UNACK
    assert m.reset(TRIP, "alice", True, clock.time()).from_state is S.UNACK
    assert m.view(TRIP).state is S.NORMAL


def test_reset_refused_during_off_delay_and_for_non_latching_alarms(clock):
    m = AlarmManager([ov_trip(off_delay_s=2.0), ov_warn()])
    m.update(TRIP, 3.7, clock.time())
    m.update(TRIP, 3.4, clock.time())
    with pytest.raises(AlarmRefused, match="condition persists"):
        m.reset(TRIP, "alice", True, clock.time())
    m.update(WARN, 3.7, clock.time())
    with pytest.raises(AlarmRefused, match="not a latching alarm; acknowledge it instead"):
        m.reset(WARN, "alice", True, clock.time())


def test_latch_survives_out_of_service(clock):
    m = AlarmManager([ov_trip()])
    m.update(TRIP, 3.7, clock.time())
    m.update(TRIP, 3.4, clock.time())
    m.set_out_of_service(TRIP, "tech", "sensor check", clock.time())
    with pytest.raises(AlarmRefused, match="return it to service"):
        m.reset(TRIP, "alice", True, clock.time())
    t = m.return_to_service(TRIP, "tech", clock.time())
    assert (t.to_state, t.latched) == (S.UNACK, True)


def test_latching_alarm_does_not_latch_while_suppressed(clock):
    m = AlarmManager([ov_trip(suppressed_by=CONTACTOR_OPEN)])
    m.set_suppression(CONTACTOR_OPEN, True, clock.time())
    m.update(TRIP, 3.7, clock.time())
    m.update(TRIP, 3.4, clock.time())
    assert m.view(TRIP).latched is False
    assert m.set_suppression(CONTACTOR_OPEN, False, clock.time())[0].to_state is S.NORMAL


def test_discrete_alarm_is_fed_with_the_callers_condition(clock):
    m = AlarmManager([frontend_fault()])
    [t] = m.evaluate(FAULT, True, True, clock.time())
    assert t.message == f"LOW BMS frontend fault: {FAULT} = active"
    assert t.as_event().severity is Severity.WARNING
    [t] = m.evaluate(FAULT, False, False, clock.time())
    assert t.to_state is S.RTN_UNACK
    with pytest.raises(TypeError, match="DISCRETE"):
        m.update(FAULT, 1.0, clock.time())


def test_operator_actions_post_info_events_naming_the_point():
    m = AlarmManager([ov_warn()])
    m.update(WARN, 3.7, 10.0)
    e = m.ack(WARN, "alice", 11.0).as_event()
    assert (e.source, e.kind, e.severity, e.point, e.value, e.limit) == (
        "alarms", "alarm_ack", Severity.INFO, CELL, 3.7, 3.6)


def test_unknown_tags_and_bad_definitions_are_user_errors():
    m = AlarmManager([ov_warn()])
    with pytest.raises(UserError, match="unknown alarm tag 'nope'"):
        m.ack("nope", "alice", 0.0)
    with pytest.raises(UserError, match="defined twice"):
        m.define(ov_warn())
    with pytest.raises(UserError, match="deadband must be >= 0"):
        ov_warn(deadband=-0.1)
    with pytest.raises(UserError, match="limit must be a finite number"):
        AlarmDefinition(tag="t", point=CELL, rule="r", priority=Priority.LOW)
    with pytest.raises(UserError, match="must not be set for a DISCRETE"):
        AlarmDefinition(tag="t", point=CELL, rule="r", priority=Priority.LOW, direction=Direction.DISCRETE, limit=1)
    with pytest.raises(UserError, match="priority must be one of"):
        AlarmDefinition(tag="t", point=CELL, rule="r", priority=2, limit=1.0)
    assert RACK in m.view(WARN).group
