"""Deadband, on-delay and off-delay with injected time; property tests of the pure detectors."""
from __future__ import annotations

import math

from alarm_cases import UV, WARN, ov_warn, uv_warn
from hypothesis import given, settings, strategies as st

from app.alarms.condition import DelayFilter, limit_exceeded
from app.alarms.manager import AlarmManager
from app.alarms.model import AlarmState as S, Direction
from app.core.clock import ManualClock


def test_high_alarm_clears_only_past_limit_minus_deadband():
    m = AlarmManager([ov_warn()])                           # 3.600 V, deadband 0.050 V
    assert m.update(WARN, 3.600, 0.0) == []                 # at the limit is not above it
    assert m.update(WARN, 3.601, 1.0)[0].to_state is S.UNACK
    assert m.update(WARN, 3.599, 2.0) == []
    assert m.update(WARN, 3.551, 3.0) == []
    [t] = m.update(WARN, 3.549, 4.0)
    assert t.to_state is S.RTN_UNACK and t.value == 3.549
    assert m.update(WARN, 3.590, 5.0) == []                 # re-arming needs the limit again


def test_low_alarm_clears_only_past_limit_plus_deadband():
    m = AlarmManager([uv_warn()])                           # 2.900 V, deadband 0.050 V
    assert m.update(UV, 2.899, 0.0)[0].to_state is S.UNACK
    assert m.update(UV, 2.949, 1.0) == []
    assert m.update(UV, 2.951, 2.0)[0].to_state is S.RTN_UNACK


def test_zero_is_a_reading_and_a_missing_reading_changes_nothing():
    m = AlarmManager([uv_warn()])
    assert m.update(UV, 0.0, 0.0)[0].to_state is S.UNACK
    assert m.update(UV, math.nan, 1.0) == []
    assert m.update(UV, None, 2.0) == []
    assert m.view(UV).condition


def test_on_delay_needs_the_condition_to_persist_and_restarts_when_interrupted():
    clock = ManualClock()
    m = AlarmManager([ov_warn(on_delay_s=2.0)])
    assert m.update(WARN, 3.7, clock.time()) == []
    clock.advance(1.9)
    assert m.update(WARN, 3.7, clock.time()) == []
    assert m.update(WARN, 3.5, clock.time()) == []          # interrupted: timer restarts
    assert m.update(WARN, 3.7, clock.time()) == []
    clock.advance(1.9)
    assert m.tick(clock.time()) == []
    clock.advance(0.1)
    [t] = m.tick(clock.time())                              # no new reading needed to activate
    assert (t.to_state, t.time, t.value) == (S.UNACK, clock.time(), 3.7)


def test_off_delay_holds_the_alarm_until_the_condition_has_stayed_clear():
    clock = ManualClock()
    m = AlarmManager([ov_warn(off_delay_s=5.0)])
    m.update(WARN, 3.7, clock.time())
    assert m.update(WARN, 3.5, clock.time()) == []
    clock.advance(4.0)
    assert m.cycle(clock.time()) == []
    assert m.update(WARN, 3.7, clock.time()) == []          # came back: clear timer restarts
    assert m.update(WARN, 3.5, clock.time()) == []
    clock.advance(4.99)
    assert m.cycle(clock.time()) == []
    clock.advance(0.01)
    [t] = m.cycle(clock.time())
    assert t.to_state is S.RTN_UNACK


@settings(derandomize=True, database=None)
@given(st.sampled_from([Direction.HIGH, Direction.LOW]), st.floats(-10, 10), st.floats(0, 2),
       st.floats(-20, 20), st.booleans())
def test_limit_hysteresis_band(direction, limit, deadband, value, was_active):
    got = limit_exceeded(direction, limit, deadband, value, was_active)
    if direction is Direction.HIGH:
        beyond, back = value > limit, value <= limit - deadband
    else:
        beyond, back = value < limit, value >= limit + deadband
    if beyond:
        assert got                                          # beyond the limit: always active
    elif back:
        assert not got                                      # back past the deadband: always clear
    else:
        assert got == was_active                            # inside the band: unchanged


@settings(derandomize=True, database=None)
@given(st.floats(0, 5), st.floats(0, 5),
       st.lists(st.tuples(st.floats(0.01, 3), st.booleans()), min_size=1, max_size=60))
def test_delay_filter_changes_only_after_the_raw_condition_persisted(on_delay, off_delay, steps):
    f = DelayFilter(on_delay, off_delay)
    now, history, out = 0.0, [], False
    for dt, raw in steps:
        now += dt
        history.append((now, raw))
        new = f.update(raw, now)
        if new != out:
            assert new == raw
            run_start = now                                 # the start of the current run of `raw`
            for t, r in reversed(history):
                if r != raw:
                    break
                run_start = t
            assert now - run_start >= (on_delay if raw else off_delay)
        out = new
    assert f.pending == (raw != out)
