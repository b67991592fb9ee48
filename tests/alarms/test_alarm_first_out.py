"""First-out: which latched condition of a trip group came first, with the values at the trip."""
from __future__ import annotations

import numpy as np
import pytest
from alarm_cases import CELL, RACK, TRIP, ov_trip

from app.alarms.manager import AlarmManager
from app.alarms.model import Priority
from app.core.clock import ManualClock

CURRENT = f"{RACK}.current_a"
OC = f"{CURRENT}.oc_trip"
RACK4 = "site.bess1.rack04"


def overcurrent(**overrides):
    return ov_trip(**{**dict(tag=OC, point=CURRENT, rule="rack overcurrent trip", limit=250.0, deadband=10.0,
                             unit="A", priority=Priority.URGENT), **overrides})


class Snapshots:
    """The caller's view of a rack at the trip instant (what the protection thread read this cycle)."""

    def __init__(self) -> None:
        self.values = {f"{RACK}.cell_voltages_v": np.array([3.30, 3.71, 3.31], dtype=np.float32),
                       CURRENT: 180.0}
        self.calls: list[str] = []

    def __call__(self, group: str):
        self.calls.append(group)
        return self.values


def test_first_latched_condition_is_first_out_with_the_rack_values_at_that_instant():
    clock, snap = ManualClock(), Snapshots()
    m = AlarmManager([ov_trip(), overcurrent()], snapshot_of=snap)
    m.update(OC, 300.0, clock.time())
    t_first = clock.time()
    snap.values[f"{RACK}.cell_voltages_v"][1] = 3.80        # caller's array changes later
    clock.advance(0.3)
    m.update(TRIP, 3.70, clock.time())
    [rec] = m.first_outs(RACK)
    assert (rec.group, rec.start, rec.end) == (RACK, t_first, None)
    assert rec.first.tag == OC and rec.first.message.startswith("URGENT rack overcurrent trip: ")
    assert [e.tag for e in rec.later] == [TRIP] and rec.later[0].point == CELL
    assert snap.calls == [RACK]                             # one snapshot per trip, at the first latch
    volts = rec.snapshot[f"{RACK}.cell_voltages_v"]
    assert volts[1] == pytest.approx(3.71) and not volts.flags.writeable
    assert rec.snapshot[CURRENT] == 180.0
    with pytest.raises(TypeError):
        rec.snapshot[CURRENT] = 0.0


def test_in_one_cycle_the_condition_that_started_earlier_is_first_out():
    clock = ManualClock()
    m = AlarmManager([ov_trip(on_delay_s=0.5), overcurrent(on_delay_s=0.2)])
    m.update(TRIP, 3.70, clock.time())                      # cell condition begins first
    clock.advance(0.3)
    m.update(OC, 300.0, clock.time())
    clock.advance(0.2)
    latched = m.cycle(clock.time(), {TRIP: 3.70, OC: 300.0})
    assert [t.tag for t in latched] == [TRIP, OC]           # both latch in the same pass
    rec = m.first_outs(RACK)[0]
    assert rec.first.tag == TRIP and rec.first.since == rec.first.time - 0.5


def test_trip_records_are_kept_after_reset_and_later_trips_newest_first():
    clock = ManualClock()
    m = AlarmManager([ov_trip(), overcurrent(), ov_trip(tag="r4", point=f"{RACK4}.current_a", group=RACK4)],
                     snapshot_of=lambda group: {"group": group})
    m.update(TRIP, 3.70, clock.time())
    m.update(OC, 300.0, clock.time())
    m.cycle(clock.time(), {TRIP: 3.5, OC: 100.0})
    m.reset(TRIP, "alice", True, clock.time())
    assert m.first_outs(RACK)[0].end is None                # the overcurrent trip still stands
    clock.advance(10)
    m.reset(OC, "alice", True, clock.time())
    [first] = m.first_outs(RACK)
    assert first.end == clock.time()
    clock.advance(10)
    m.update(OC, 300.0, clock.time())
    m.update("r4", 3.7, clock.time())
    second = m.first_outs(RACK)[0]
    assert second.first.tag == OC and second.id != first.id
    assert [r.id for r in m.first_outs(RACK)] == [second.id, first.id]
    assert m.first_outs(RACK4)[0].snapshot == {"group": RACK4}
    assert len(m.first_outs()) == 3


def test_first_out_history_is_bounded():
    clock = ManualClock()
    m = AlarmManager([ov_trip()], first_out_keep=3)
    for _ in range(5):
        m.update(TRIP, 3.70, clock.time())
        m.update(TRIP, 3.40, clock.time())
        m.reset(TRIP, "alice", True, clock.time())
        clock.advance(61)
    assert len(m.first_outs(RACK)) == 3
