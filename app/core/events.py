"""Events: things that happened (trips, link loss, thread restarts, operator actions).

The journal keeps a bounded in-memory tail for the GUI and fans every event out to subscribers
(historian). Alarm semantics (ack, shelve, ISA-18.2 states) live in app/alarms, not here.
"""
from __future__ import annotations

import collections
import enum
import itertools
import queue
import threading
from dataclasses import dataclass, field


class Severity(enum.IntEnum):
    INFO = 0
    WARNING = 1
    ALARM = 2
    TRIP = 3


@dataclass(frozen=True)
class Event:
    """One journal entry. Alarm-worthy events name the point, the value and the limit."""

    time: float
    source: str
    kind: str
    message: str
    severity: Severity = Severity.INFO
    point: str | None = None
    value: float | None = None
    limit: float | None = None
    seq: int = field(default=0, compare=False)


class EventJournal:
    """Thread-safe event log: `post` from any thread, `since(seq)` for pollers, `subscribe` for writers."""

    def __init__(self, keep: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._tail: collections.deque[Event] = collections.deque(maxlen=keep)
        self._seq = itertools.count(1)
        self._subs: list[queue.SimpleQueue] = []

    def post(self, event: Event) -> Event:
        with self._lock:
            event = Event(**{**event.__dict__, "seq": next(self._seq)})
            self._tail.append(event)
            for q in self._subs:
                q.put(event)
        return event

    def since(self, seq: int) -> list[Event]:
        """Events with a sequence number above `seq`, oldest first (bounded by the in-memory tail)."""
        with self._lock:
            return [e for e in self._tail if e.seq > seq]

    def subscribe(self) -> queue.SimpleQueue:
        q: queue.SimpleQueue = queue.SimpleQueue()
        with self._lock:
            self._subs.append(q)
        return q

    def unsubscribe(self, q: queue.SimpleQueue) -> None:
        with self._lock:
            self._subs = [s for s in self._subs if s is not q]
