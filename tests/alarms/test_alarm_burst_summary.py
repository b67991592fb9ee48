"""A 1,000-alarm burst in one pass loses nothing; the GUI summary is sorted, counted and cached."""
from __future__ import annotations

from alarm_cases import WARN, ov_warn

from app.alarms.manager import AlarmManager
from app.alarms.model import AlarmState as S, Priority


def rack_alarms(n):
    return [ov_warn(tag=f"{WARN}.{i:04d}", priority=Priority(i % 4 + 1)) for i in range(n)]


def test_a_burst_of_one_thousand_alarms_in_one_pass_loses_none():
    defs = rack_alarms(1000)
    m = AlarmManager(defs + [ov_warn(tag=f"{WARN}.quiet{i}") for i in range(9000)])
    transitions = m.cycle(100.0, {d.tag: 3.7 for d in defs})
    assert len(transitions) == 1000
    assert {t.tag for t in transitions} == {d.tag for d in defs}
    assert all(t.to_state is S.UNACK and t.announce for t in transitions)
    s = m.summary()
    assert len(s.active) == 1000
    assert s.by_state[S.UNACK] == 1000 and s.by_state[S.NORMAL] == 9000
    assert dict(s.by_priority) == {p: 250 for p in Priority} == dict(s.unacked_by_priority)
    assert s.floods[0].count == 1000
    assert m.cycle(100.1, {d.tag: 3.7 for d in defs}) == []   # steady state: nothing new


def test_summary_lists_by_priority_then_newest_first_and_counts_states():
    m = AlarmManager(rack_alarms(8))
    for i in range(8):
        m.update(f"{WARN}.{i:04d}", 3.7, float(i))
    m.ack(f"{WARN}.0001", "alice", 10.0)
    m.update(f"{WARN}.0002", 3.5, 11.0)
    m.shelve(f"{WARN}.0003", "alice", "noisy", 12.0, duration_s=60)
    s = m.summary()
    assert [(v.priority, v.activated_at) for v in s.active] == [
        (Priority.URGENT, 4.0), (Priority.URGENT, 0.0), (Priority.HIGH, 5.0), (Priority.HIGH, 1.0),
        (Priority.MEDIUM, 6.0), (Priority.MEDIUM, 2.0), (Priority.LOW, 7.0)]
    assert [v.tag for v in s.hidden] == [f"{WARN}.0003"]
    assert s.by_state[S.ACKED] == 1 and s.by_state[S.RTN_UNACK] == 1 and s.by_state[S.SHELVED] == 1
    assert s.by_state[S.UNACK] == 5 and s.by_state[S.NORMAL] == 0
    assert s.unacked_by_priority[Priority.HIGH] == 1 and s.by_priority[Priority.HIGH] == 2
    assert s.active[5].value == 3.5 and "returned to normal" in s.active[5].message


def test_summary_is_reused_until_something_changes():
    m = AlarmManager(rack_alarms(4))
    m.update(f"{WARN}.0000", 3.7, 0.0)
    first = m.summary()
    m.cycle(1.0, {f"{WARN}.0000": 3.71, f"{WARN}.0001": 3.0})
    assert m.summary() is first
    m.ack(f"{WARN}.0000", "alice", 2.0)
    assert m.summary().version > first.version
    assert m.summary().active[0].state is S.ACKED and first.active[0].state is S.UNACK
