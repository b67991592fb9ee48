"""Hypothesis state machine: random process values, time steps and operator actions against the
ISA-18.2 invariants (transition chains are consistent, SHELVED is left only by unshelve, expiry or
a one-shot return to normal, a latched alarm reaches NORMAL only by reset, ...)."""
from __future__ import annotations

from alarm_cases import CONTACTOR_OPEN, FAULT, RACK, TRIP, WARN, frontend_fault, ov_trip, ov_warn
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from app.alarms.manager import AlarmManager
from app.alarms.model import ANNUNCIATED, AlarmRefused, AlarmState as S

TAGS = (WARN, TRIP, FAULT)
ACTION_TAGS = st.sampled_from([TRIP, WARN, TRIP, FAULT])    # trips are where the latching rules bite
VOLTS = st.sampled_from([3.30, 3.549, 3.58, 3.61, 3.62, 3.66, 3.80, float("nan")])
LEAVE_SHELVED = {"unshelve", "shelve_expired"}


class AlarmMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 1_700_000_000.0
        self.m = AlarmManager([ov_warn(on_delay_s=0.5, off_delay_s=0.3, suppressed_by=CONTACTOR_OPEN, group=None),
                               ov_trip(on_delay_s=0.2), frontend_fault()], now=self.now)
        self.views = {tag: self.m.view(tag) for tag in TAGS}

    # --- process ---------------------------------------------------------------------------
    @rule(warn=VOLTS, trip=st.sampled_from([3.30, 3.62, 3.80]), bit=st.booleans(), cycles=st.integers(1, 5))
    def process_cycles(self, warn, trip, bit, cycles):
        for _ in range(cycles):                             # the protection thread's 100 ms passes
            self.now += 0.1
            self.check(self.m.cycle(self.now, {WARN: warn, TRIP: trip}, [(FAULT, bit, bit)]))

    @rule(dt=st.sampled_from([0.25, 5.0, 61.0, 700.0]))
    def time_passes(self, dt):
        self.now += dt
        self.check(self.m.tick(self.now))

    @rule(active=st.booleans())
    def contactor(self, active):
        self.check(self.m.set_suppression(CONTACTOR_OPEN, active, self.now))

    # --- operator --------------------------------------------------------------------------
    @rule(tag=ACTION_TAGS)
    def ack(self, tag):
        t = self.m.ack(tag, "alice", self.now)
        assert (t is None) == (self.views[tag].state not in (S.UNACK, S.RTN_UNACK))
        self.check([t] if t else [])

    @rule()
    def ack_all(self):
        self.check(self.m.ack_all(TAGS, "alice", self.now))

    @rule(tag=ACTION_TAGS, duration=st.sampled_from([None, 30.0, 600.0]))
    def shelve(self, tag, duration):
        self.act(lambda: self.m.shelve(tag, "alice", "testing", self.now, duration))

    @rule(tag=ACTION_TAGS)
    def unshelve(self, tag):
        self.act(lambda: self.m.unshelve(tag, "alice", self.now))

    @rule(tag=ACTION_TAGS)
    def out_of_service(self, tag):
        self.act(lambda: self.m.set_out_of_service(tag, "tech", "maintenance", self.now))

    @rule(tag=ACTION_TAGS)
    def return_to_service(self, tag):
        self.act(lambda: self.m.return_to_service(tag, "tech", self.now))

    @rule(tag=ACTION_TAGS, authorised=st.booleans())
    def reset(self, tag, authorised):
        done = self.act(lambda: self.m.reset(tag, "alice", authorised, self.now))
        if done:
            assert authorised and self.views[tag].state is S.NORMAL
            assert not self.views[tag].condition

    @precondition(lambda self: self.views[TRIP].latched and not self.views[TRIP].condition)
    @rule(hidden=st.booleans())
    def maintain_a_cleared_trip(self, hidden):
        """A cleared trip is reset, or taken out of service and back first (the latch must survive)."""
        if hidden and self.act(lambda: self.m.set_out_of_service(TRIP, "tech", "sensor check", self.now)):
            self.act(lambda: self.m.return_to_service(TRIP, "tech", self.now))
            assert self.views[TRIP].latched
        self.act(lambda: self.m.reset(TRIP, "alice", True, self.now))

    # --- checks ----------------------------------------------------------------------------
    def act(self, action) -> bool:
        try:
            t = action()
        except AlarmRefused:
            assert {tag: self.m.view(tag) for tag in TAGS} == self.views   # a refusal changes nothing
            return False
        self.check([t])
        return True

    def check(self, transitions) -> None:
        state = {tag: v.state for tag, v in self.views.items()}
        latched = {tag: v.latched for tag, v in self.views.items()}
        one_shot = {tag: v.shelf is not None and v.shelf.until is None for tag, v in self.views.items()}
        for t in transitions:
            assert t.from_state is state[t.tag] and t.from_state is not t.to_state
            if t.from_state is S.SHELVED:
                assert t.action in LEAVE_SHELVED or (t.action == "clear" and one_shot[t.tag]), t
            if t.to_state is S.NORMAL and latched[t.tag]:
                assert t.action == "reset", t
            if t.announce:
                assert t.to_state is S.UNACK
            assert t.time == self.now and t.point in t.message
            state[t.tag], latched[t.tag] = t.to_state, t.latched
            if t.action == "shelve":
                one_shot[t.tag] = self.m.view(t.tag).shelf.until is None
        self.views = {tag: self.m.view(tag) for tag in TAGS}
        assert state == {tag: v.state for tag, v in self.views.items()}

    @invariant()
    def states_agree_with_conditions(self):
        for tag in TAGS:
            v = self.m.view(tag)
            if v.state in (S.UNACK, S.ACKED):
                assert v.condition or v.latched
            if v.state is S.RTN_UNACK:
                assert not v.condition and not v.latched
            assert (v.shelf is not None) == (v.state is S.SHELVED)
            assert (v.out_of_service is not None) == (v.state is S.OUT_OF_SERVICE)
            assert not v.latched or (tag == TRIP and v.state is not S.NORMAL)

    @invariant()
    def summary_counts_everything(self):
        s = self.m.summary()
        assert sum(s.by_state.values()) == len(TAGS)
        assert sorted(v.tag for v in s.active) == sorted(t for t in TAGS if self.m.view(t).state in ANNUNCIATED)

    @invariant()
    def first_out_record_is_open_exactly_while_the_trip_is_latched(self):
        records = self.m.first_outs(RACK)
        open_records = [r for r in records if r.end is None]
        assert len(open_records) == (1 if self.m.view(TRIP).latched else 0)


AlarmMachine.TestCase.settings = settings(max_examples=80, stateful_step_count=60, deadline=None,
                                          derandomize=True, database=None)
test_alarm_state_machine = AlarmMachine.TestCase
