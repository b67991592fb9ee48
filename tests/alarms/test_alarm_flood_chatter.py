"""Flood (> 10 new alarms in 10 min per operator position) and chattering (>= 3 changes a minute)."""
from __future__ import annotations

from alarm_cases import WARN, ov_warn

from app.alarms.chatter import ChatterDetector
from app.alarms.flood import FloodDetector
from app.alarms.manager import AlarmManager
from app.alarms.model import AlarmState as S, FloodEpisode
from app.core.clock import ManualClock


def many(n, position="main"):
    return [ov_warn(tag=f"{WARN}.{position}{i}", position=position) for i in range(n)]


def test_ten_new_alarms_in_ten_minutes_is_not_a_flood_the_eleventh_starts_one():
    clock = ManualClock()
    m = AlarmManager(many(12))
    for i in range(10):
        m.update(f"{WARN}.main{i}", 3.7, clock.time())
        clock.advance(55)
    assert m.summary().floods == ()
    m.update(f"{WARN}.main10", 3.7, clock.time())
    assert m.summary().floods == (FloodEpisode("main", clock.time(), None, 11),)
    clock.advance(1)
    m.update(f"{WARN}.main11", 3.7, clock.time())
    [flood] = m.summary().floods
    assert flood.count == 12 and flood.end is None


def test_flood_ends_when_the_rate_drops_and_goes_to_history():
    clock = ManualClock()
    m = AlarmManager(many(11))
    start = clock.time()
    m.cycle(clock.time(), {f"{WARN}.main{i}": 3.7 for i in range(11)})
    assert m.summary().floods[0].start == start
    clock.advance(599)
    assert m.cycle(clock.time()) == [] and m.summary().floods
    clock.advance(1)
    m.cycle(clock.time())
    assert m.summary().floods == ()
    assert m.flood_history() == (FloodEpisode("main", start, clock.time(), 11),)


def test_flood_is_counted_per_operator_position():
    m = AlarmManager(many(8, "rack_room") + many(8, "control_room"))
    m.cycle(0.0, {d.tag: 3.7 for d in many(8, "rack_room") + many(8, "control_room")})
    assert m.summary().floods == ()


def test_flood_detector_hysteresis():
    f = FloodDetector(window_s=600, start_above=10, end_below=5)
    for i in range(11):
        f.new_alarm("main", float(i))
    assert f.current()
    assert not f.expire(605.0)                              # 6 left in the window: still a flood
    assert f.expire(606.0)                                  # 4 left: ended
    assert f.current() == () and f.history()[0].end == 606.0


def test_third_condition_change_in_a_minute_flags_chattering_and_silences_announcements():
    clock = ManualClock()
    m = AlarmManager([ov_warn()])
    assert m.update(WARN, 3.7, clock.time())[0].announce
    clock.advance(20)
    m.update(WARN, 3.5, clock.time())
    clock.advance(20)
    [t] = m.update(WARN, 3.7, clock.time())
    assert (t.to_state, t.announce) == (S.UNACK, False)     # still reported, not re-announced
    assert t.message.endswith("chattering, not announced")
    assert m.view(WARN).chattering and m.summary().chattering == (WARN,)
    clock.advance(20)
    assert m.update(WARN, 3.5, clock.time())[0].to_state is S.RTN_UNACK
    clock.advance(60)
    m.tick(clock.time())
    assert not m.view(WARN).chattering and m.summary().chattering == ()
    assert m.update(WARN, 3.7, clock.time())[0].announce


def test_two_changes_a_minute_is_not_chattering():
    d = ChatterDetector(window_s=60, threshold=3)
    assert not d.change("t", 0.0)
    assert not d.change("t", 30.0)
    assert not d.change("t", 60.0)                          # the change at 0 s left the window
    assert d.change("t", 61.0)
    assert d.expire(89.0) == []                             # 30, 60, 61 still in the window
    assert d.expire(90.0) == ["t"]


def test_chattering_alarms_do_not_feed_the_flood_count():
    clock = ManualClock()
    m = AlarmManager([ov_warn()])
    for _ in range(30):
        m.update(WARN, 3.7, clock.time())
        m.update(WARN, 3.5, clock.time())
        clock.advance(1)
    assert m.summary().floods == ()
