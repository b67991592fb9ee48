"""AlarmManager: the ISA-18.2 alarm state machine for every configured alarm. Pure: no threads, no
I/O, no clock of its own; every call takes `now` (s, the caller's clock.time()).

One thread owns a manager (the protection thread): it feeds process values once per cycle with
`cycle(now, values, conditions)` (or `update`/`evaluate` per tag, then `tick(now)`), applies
operator actions (`ack`, `shelve`, `reset`...) taken from its command queue, and hands the frozen
`summary()` to the GUI. Every call returns the AlarmTransition records it produced, oldest first.

State diagram (latching alarms stay UNACK/ACKED with `latched` set until an authorised reset):

    NORMAL --active--> UNACK --ack--> ACKED --clear--> NORMAL
                       UNACK --clear--> RTN_UNACK --ack--> NORMAL;  RTN_UNACK --active--> UNACK
    NORMAL (timed only) or annunciated --shelve--> SHELVED --unshelve/expiry/one-shot clear--> by condition
    NORMAL or annunciated --suppression on--> SUPPRESSED --suppression off--> by condition
    any state but SHELVED --out_of_service--> OUT_OF_SERVICE --return_to_service--> by condition
    "by condition": SUPPRESSED if its suppression holds, else UNACK if active or latched, else NORMAL.
"""
from __future__ import annotations

import collections
import types
from typing import Any, Callable, Iterable, Mapping

from app.alarms.chatter import ChatterDetector
from app.alarms.condition import DelayFilter, limit_exceeded
from app.alarms.first_out import FirstOutEntry, FirstOutRecord, FirstOutRecorder
from app.alarms.flood import FloodDetector
from app.alarms.messages import alarm_message, fmt_value, reading
from app.alarms.model import (ANNUNCIATED, HIDDEN, AlarmDefinition, AlarmRefused, AlarmState, AlarmSummary,
                              AlarmTransition, AlarmView, Direction, FloodEpisode, Priority, Shelf)
from app.core.errors import UserError

S = AlarmState
SYSTEM = "system"


class _Alarm:
    """Mutable run-time state of one alarm; only the manager touches it."""

    __slots__ = ("defn", "state", "state_since", "point", "value", "raw", "raw_since", "filter",
                 "condition", "latched", "activated_at", "shelf", "oos", "chattering", "shown_value",
                 "message", "view")

    def __init__(self, defn: AlarmDefinition, now: float) -> None:
        self.defn = defn
        self.state = S.NORMAL
        self.state_since = now
        self.point = defn.point
        self.value: Any = None
        self.raw = False                      # condition before delays (with deadband hysteresis)
        self.raw_since = now                  # when the raw condition last became true
        self.filter = DelayFilter(defn.on_delay_s, defn.off_delay_s)
        self.condition = False                # condition after delays
        self.latched = False
        self.activated_at: float | None = None
        self.shelf: Shelf | None = None
        self.oos: tuple[str, str] | None = None
        self.chattering = False
        self.shown_value: Any = None          # value at the last transition (what the GUI shows)
        self.message = ""
        self.view: AlarmView | None = None


class AlarmManager:
    """All alarms of a site. Not thread-safe: one owner thread calls it (see module docstring).

    snapshot_of(group) -> {point: value or numpy array}: called by the owner thread at the instant
    the first latching alarm of a trip group latches; its result is kept (read-only) for first-out
    review. max_shelve_s bounds timed shelving. Flood/chatter detectors are injectable for tuning.
    """

    def __init__(self, definitions: Iterable[AlarmDefinition] = (), *,
                 snapshot_of: Callable[[str], Mapping[str, Any]] | None = None,
                 flood: FloodDetector | None = None, chatter: ChatterDetector | None = None,
                 first_out_keep: int = 200, max_shelve_s: float = 8 * 3600.0, now: float = 0.0) -> None:
        self._snapshot_of = snapshot_of
        self._flood = flood or FloodDetector()
        self._chatter = chatter or ChatterDetector()
        self._first_out = FirstOutRecorder(first_out_keep)
        self.max_shelve_s = max_shelve_s
        self._alarms: dict[str, _Alarm] = {}
        self._by_suppressor: dict[str, list[_Alarm]] = collections.defaultdict(list)
        self._by_group: dict[str, list[_Alarm]] = collections.defaultdict(list)
        self._suppressions: set[str] = set()
        self._pending: dict[str, _Alarm] = {}        # a delay is being timed
        self._timed_shelves: dict[str, _Alarm] = {}
        self._not_normal: dict[str, _Alarm] = {}
        self._version = 0
        self._summary: AlarmSummary | None = None
        for defn in definitions:
            self.define(defn, now)

    # --- configuration ---------------------------------------------------------------------
    def define(self, defn: AlarmDefinition, now: float = 0.0) -> None:
        """Add one alarm (NORMAL, or SUPPRESSED if its suppression condition already holds)."""
        if defn.tag in self._alarms:
            raise UserError(f"alarm tag {defn.tag!r} is defined twice; alarm tags must be unique")
        a = _Alarm(defn, now)
        self._alarms[defn.tag] = a
        if defn.suppressed_by is not None:
            self._by_suppressor[defn.suppressed_by].append(a)
            if defn.suppressed_by in self._suppressions:
                a.state = S.SUPPRESSED
                self._not_normal[defn.tag] = a
        if defn.group is not None:
            self._by_group[defn.group].append(a)
        self._touch(a)

    # --- process input (owner thread, once per cycle) --------------------------------------
    def update(self, tag: str, value: Any, now: float, point: str | None = None) -> list[AlarmTransition]:
        """Feed a HIGH/LOW alarm with a reading; the manager compares it with limit and deadband.
        `point` names where the value came from if not the definition's point (the worst cell)."""
        a = self._get(tag)
        d = a.defn
        if d.direction is Direction.DISCRETE:
            raise TypeError(f"alarm {tag!r} is DISCRETE: feed it with evaluate(tag, active, value, now)")
        out: list[AlarmTransition] = []
        self._feed(a, limit_exceeded(d.direction, d.limit, d.deadband, value, a.raw), value, point, now, out)
        return out

    def evaluate(self, tag: str, active: bool, value: Any, now: float,
                 point: str | None = None) -> list[AlarmTransition]:
        """Feed any alarm with a condition the caller decided (`active`, before delays) and the
        value to name in messages (e.g. a BMS alarm bit)."""
        out: list[AlarmTransition] = []
        self._feed(self._get(tag), bool(active), value, point, now, out)
        return out

    def cycle(self, now: float, values: Mapping[str, Any] | None = None,
              conditions: Iterable[tuple[str, bool, Any]] = ()) -> list[AlarmTransition]:
        """One evaluation pass: `values` {tag: reading} for HIGH/LOW alarms, `conditions`
        (tag, active, value) for any alarm, then `tick(now)`. Tags not fed keep their condition."""
        out: list[AlarmTransition] = []
        for tag, value in (values or {}).items():
            a = self._get(tag)
            d = a.defn
            if d.direction is Direction.DISCRETE:
                raise TypeError(f"alarm {tag!r} is DISCRETE: pass it in `conditions`, not `values`")
            self._feed(a, limit_exceeded(d.direction, d.limit, d.deadband, value, a.raw), value, None, now, out)
        for tag, active, value in conditions:
            self._feed(self._get(tag), bool(active), value, None, now, out)
        out.extend(self.tick(now))
        return out

    def tick(self, now: float) -> list[AlarmTransition]:
        """Advance time without new readings: running on/off-delays, timed shelving expiry, chatter
        and flood windows. Call once per cycle (cycle() does)."""
        out: list[AlarmTransition] = []
        for a in list(self._pending.values()):
            self._feed(a, a.raw, a.value, None, now, out)
        for a in [a for a in self._timed_shelves.values() if a.shelf.until <= now]:
            shelf = a.shelf
            self._unshelf(a)
            self._exit_hidden(a, "shelve_expired", SYSTEM, "shelving time expired", now, out,
                              f"shelved by {shelf.user} for {shelf.until - shelf.since:g} s")
        for tag in self._chatter.expire(now):
            a = self._alarms[tag]
            a.chattering = False
            self._touch(a)
        if self._flood.expire(now):
            self._changed()
        return out

    def set_suppression(self, condition: str, active: bool, now: float) -> list[AlarmTransition]:
        """Switch a design-suppression condition (e.g. "site.bess1.rack03.contactor_open") on or
        off; the alarms defined with suppressed_by=condition enter or leave SUPPRESSED."""
        out: list[AlarmTransition] = []
        if active == (condition in self._suppressions):
            return out
        if active:
            self._suppressions.add(condition)
            for a in self._by_suppressor.get(condition, ()):
                if a.state in ANNUNCIATED or a.state is S.NORMAL:
                    self._transition(a, S.SUPPRESSED, "suppress", SYSTEM, f"suppressed by design: {condition}",
                                     now, out, f"{condition} holds")
        else:
            self._suppressions.discard(condition)
            for a in self._by_suppressor.get(condition, ()):
                if a.state is S.SUPPRESSED:
                    self._exit_hidden(a, "unsuppress", SYSTEM, f"{condition} ended", now, out, f"{condition} ended")
        return out

    # --- operator actions ------------------------------------------------------------------
    def ack(self, tag: str, user: str, now: float) -> AlarmTransition | None:
        """Acknowledge: UNACK -> ACKED, RTN_UNACK -> NORMAL. None if there was nothing to acknowledge
        (already acknowledged, e.g. by another operator, or hidden)."""
        a = self._get(tag)
        out: list[AlarmTransition] = []
        if a.state is S.UNACK:
            self._transition(a, S.ACKED, "ack", user, "acknowledged", now, out, f"by {user}")
        elif a.state is S.RTN_UNACK:
            self._transition(a, S.NORMAL, "ack", user, "acknowledged", now, out, f"by {user}")
        return out[0] if out else None

    def ack_all(self, tags: Iterable[str], user: str, now: float) -> list[AlarmTransition]:
        """Acknowledge every listed alarm that needs it (e.g. the page the operator sees)."""
        tags = list(tags)
        for tag in tags:
            self._get(tag)                           # all or nothing: refuse before any change
        return [t for t in (self.ack(tag, user, now) for tag in tags) if t is not None]

    def shelve(self, tag: str, user: str, reason: str, now: float,
               duration_s: float | None = None) -> AlarmTransition:
        """Shelve an alarm: one-shot (duration_s None: until it returns to normal; it must be active)
        or timed (until now + duration_s, at most max_shelve_s). Latching alarms cannot be shelved."""
        a = self._get(tag)
        what = self._what(a)
        if not reason.strip():
            raise AlarmRefused(f"shelving {what} needs a reason")
        if a.defn.latching:
            raise AlarmRefused(f"{what} is a latching trip alarm and cannot be shelved")
        if a.state in HIDDEN:
            raise AlarmRefused(f"{what} is {a.state.value}; it cannot be shelved")
        if duration_s is None and not a.condition:
            raise AlarmRefused(f"{what} is not active: one-shot shelving needs an active alarm; give a duration")
        if duration_s is not None and not 0 < duration_s <= self.max_shelve_s:
            raise AlarmRefused(f"shelving {what}: duration must be between 0 and {self.max_shelve_s:g} s, "
                               f"got {duration_s:g} s")
        a.shelf = Shelf(user, reason, now, None if duration_s is None else now + duration_s)
        if duration_s is not None:
            self._timed_shelves[tag] = a
        span = "until it returns to normal" if duration_s is None else f"for {duration_s:g} s"
        out: list[AlarmTransition] = []
        return self._transition(a, S.SHELVED, "shelve", user, reason, now, out, f"by {user} {span}: {reason}")

    def unshelve(self, tag: str, user: str, now: float) -> AlarmTransition:
        """End shelving now; the alarm re-annunciates if it is still active."""
        a = self._get(tag)
        if a.state is not S.SHELVED:
            raise AlarmRefused(f"{self._what(a)} is {a.state.value}, not shelved")
        self._unshelf(a)
        out: list[AlarmTransition] = []
        return self._exit_hidden(a, "unshelve", user, "unshelved", now, out, f"by {user}")

    def set_out_of_service(self, tag: str, user: str, reason: str, now: float) -> AlarmTransition:
        """Take an alarm out of service (maintenance). A shelved alarm must be unshelved first."""
        a = self._get(tag)
        what = self._what(a)
        if not reason.strip():
            raise AlarmRefused(f"taking {what} out of service needs a reason")
        if a.state is S.SHELVED:
            raise AlarmRefused(f"{what} is shelved; unshelve it before taking it out of service")
        if a.state is S.OUT_OF_SERVICE:
            raise AlarmRefused(f"{what} is already out of service")
        a.oos = (user, reason)
        out: list[AlarmTransition] = []
        return self._transition(a, S.OUT_OF_SERVICE, "out_of_service", user, reason, now, out,
                                f"by {user}: {reason}")

    def return_to_service(self, tag: str, user: str, now: float) -> AlarmTransition:
        """Put an out-of-service alarm back; it annunciates if active or still latched."""
        a = self._get(tag)
        if a.state is not S.OUT_OF_SERVICE:
            raise AlarmRefused(f"{self._what(a)} is {a.state.value}, not out of service")
        a.oos = None
        out: list[AlarmTransition] = []
        return self._exit_hidden(a, "return_to_service", user, "returned to service", now, out, f"by {user}")

    def reset(self, tag: str, user: str, authorised: bool, now: float) -> AlarmTransition:
        """Reset a latched alarm to NORMAL (this also acknowledges it). `authorised`: whether the
        user's role may reset trips (the caller's security check). Refused while the condition
        persists (including a running off-delay)."""
        a = self._get(tag)
        what = self._what(a)
        if not a.latched:
            raise AlarmRefused(f"{what} is not latched; nothing to reset" if a.defn.latching else
                               f"{what} is not a latching alarm; acknowledge it instead")
        if a.state in HIDDEN:
            raise AlarmRefused(f"{what} is {a.state.value}; return it to service before resetting it")
        if not authorised:
            raise AlarmRefused(f"user {user!r} is not authorised to reset {what}")
        if a.condition or a.raw:
            raise AlarmRefused(f"cannot reset {what}: the condition persists "
                               f"({reading(a.defn, a.point, a.value)}{self._clears_at(a)})")
        a.latched = False
        out: list[AlarmTransition] = []
        t = self._transition(a, S.NORMAL, "reset", user, "reset", now, out, f"by {user}")
        group = a.defn.group
        if group is not None and not any(b.latched for b in self._by_group[group]):
            self._first_out.close(group, now)
        return t

    # --- read side -------------------------------------------------------------------------
    def view(self, tag: str) -> AlarmView:
        """The current frozen view of one alarm."""
        return self._view(self._get(tag))

    def summary(self) -> AlarmSummary:
        """Counts and sorted lists for the GUI; cached until something changes (cost grows with the
        number of alarms that are not NORMAL, not with the number defined)."""
        if self._summary is not None and self._summary.version == self._version:
            return self._summary
        views = [self._view(a) for a in self._not_normal.values()]

        def key(v: AlarmView) -> tuple[int, float]:
            return v.priority, -(v.activated_at if v.activated_at is not None else v.state_since)

        active = tuple(sorted((v for v in views if v.state in ANNUNCIATED), key=key))
        hidden = tuple(sorted((v for v in views if v.state in HIDDEN), key=key))
        by_state = dict.fromkeys(AlarmState, 0)
        for v in views:
            by_state[v.state] += 1
        by_state[S.NORMAL] = len(self._alarms) - len(views)
        by_priority = dict.fromkeys(Priority, 0)
        unacked = dict.fromkeys(Priority, 0)
        for v in active:
            by_priority[v.priority] += 1
            if v.state is not S.ACKED:
                unacked[v.priority] += 1
        self._summary = AlarmSummary(self._version, types.MappingProxyType(by_priority),
                                     types.MappingProxyType(unacked), types.MappingProxyType(by_state),
                                     active, hidden, self._flood.current(), self._chatter.chattering())
        return self._summary

    def first_outs(self, group: str | None = None) -> tuple[FirstOutRecord, ...]:
        """Trip records (open and past, bounded), newest first, optionally for one group."""
        return self._first_out.records(group)

    def flood_history(self) -> tuple[FloodEpisode, ...]:
        """Ended alarm floods, newest first (current ones are in the summary)."""
        return self._flood.history()

    # --- internals -------------------------------------------------------------------------
    def _get(self, tag: str) -> _Alarm:
        try:
            return self._alarms[tag]
        except KeyError:
            raise UserError(f"unknown alarm tag {tag!r}") from None

    @staticmethod
    def _what(a: _Alarm) -> str:
        return f"{a.defn.priority.name} {a.defn.rule} on {a.point}"

    @staticmethod
    def _clears_at(a: _Alarm) -> str:
        d = a.defn
        if d.direction is Direction.HIGH:
            return f"; clears at <= {fmt_value(d.limit - d.deadband, d)}"
        if d.direction is Direction.LOW:
            return f"; clears at >= {fmt_value(d.limit + d.deadband, d)}"
        return ""

    def _feed(self, a: _Alarm, raw: bool, value: Any, point: str | None, now: float,
              out: list[AlarmTransition]) -> None:
        a.value = value
        if point is not None:
            a.point = point
        if raw and not a.raw:
            a.raw_since = now
        a.raw = raw
        f = a.filter
        if raw == f.state and f.pending_since is None:
            return                                   # fast path: nothing is changing
        condition = f.update(raw, now)
        if f.pending_since is None:
            self._pending.pop(a.defn.tag, None)
        else:
            self._pending[a.defn.tag] = a
        if condition != a.condition:
            self._on_condition(a, condition, now, out)

    def _on_condition(self, a: _Alarm, condition: bool, now: float, out: list[AlarmTransition]) -> None:
        a.condition = condition
        a.chattering = self._chatter.change(a.defn.tag, now)
        state = a.state
        if condition and state in (S.NORMAL, S.RTN_UNACK):
            self._transition(a, S.UNACK, "activate", SYSTEM, "condition active", now, out,
                             announce=True)
        elif not condition and not a.latched and state is S.UNACK:
            self._transition(a, S.RTN_UNACK, "clear", SYSTEM, "condition cleared", now, out)
        elif not condition and not a.latched and state is S.ACKED:
            self._transition(a, S.NORMAL, "clear", SYSTEM, "condition cleared", now, out)
        elif not condition and state is S.SHELVED and a.shelf.until is None:
            self._unshelf(a)
            self._exit_hidden(a, "clear", SYSTEM, "returned to normal: one-shot shelving ends", now, out,
                              "one-shot shelving ends")
        else:
            self._touch(a)                           # latched, hidden: only `condition` changes

    def _unshelf(self, a: _Alarm) -> None:
        a.shelf = None
        self._timed_shelves.pop(a.defn.tag, None)

    def _exit_hidden(self, a: _Alarm, action: str, who: str, why: str, now: float,
                     out: list[AlarmTransition], detail: str) -> AlarmTransition:
        if a.defn.suppressed_by in self._suppressions:
            to = S.SUPPRESSED
        elif a.condition or a.latched:
            to = S.UNACK
        else:
            to = S.NORMAL
        return self._transition(a, to, action, who, why, now, out, detail, announce=to is S.UNACK)

    def _transition(self, a: _Alarm, to: AlarmState, action: str, who: str, why: str, now: float,
                    out: list[AlarmTransition], detail: str = "", announce: bool = False) -> AlarmTransition:
        d = a.defn
        if to is S.UNACK:
            a.activated_at = now
            if a.condition and d.latching and not a.latched:
                self._latch(a, now)
        if a.chattering and announce:
            announce = False
            detail = f"{detail}; chattering, not announced" if detail else "chattering, not announced"
        if to is S.UNACK and a.latched:
            detail = f"{detail}; latched until reset" if detail else "latched until reset"
        t = AlarmTransition(now, d.tag, a.point, d.rule, action, a.state, to, who, why, a.value, d.limit,
                            d.priority, alarm_message(d, a.point, a.value, action, detail), a.latched, announce)
        a.state, a.state_since, a.message, a.shown_value = to, now, t.message, a.value
        if to is S.NORMAL:
            self._not_normal.pop(d.tag, None)
        else:
            self._not_normal[d.tag] = a
        if announce:
            self._flood.new_alarm(d.position, now)
        self._touch(a)
        out.append(t)
        return t

    def _latch(self, a: _Alarm, now: float) -> None:
        d = a.defn
        a.latched = True
        if d.group is None:
            return
        snapshot = None
        if self._snapshot_of is not None and not self._first_out.is_open(d.group):
            snapshot = self._snapshot_of(d.group)
        entry = FirstOutEntry(d.tag, a.point, d.rule, now, a.raw_since, a.value, d.limit,
                              alarm_message(d, a.point, a.value, "activate"))
        self._first_out.latched(d.group, entry, snapshot)

    def _touch(self, a: _Alarm) -> None:
        a.view = None
        self._changed()

    def _changed(self) -> None:
        self._version += 1

    def _view(self, a: _Alarm) -> AlarmView:
        if a.view is None:
            d = a.defn
            a.view = AlarmView(d.tag, a.point, d.rule, d.priority, d.alarm_class, d.group, a.state, a.state_since,
                               a.activated_at, a.condition, a.latched, a.chattering, a.shown_value, d.limit,
                               a.message, a.shelf, a.oos)
        return a.view
