"""DataBus: the latest value of every point, shared by all threads. No Qt, no I/O.

Producers (driver threads) call `publish`/`publish_many`. Consumers either read the latest values at
their own pace (`snapshot`, `get`, `take_dirty` — the GUI at ≈10 Hz) or `subscribe` a queue to receive
every sample (protection, historian).
"""
from __future__ import annotations

import fnmatch
import queue
import re
import threading
from dataclasses import dataclass
from typing import Iterable, Mapping

from app.core.sample import Sample


@dataclass(frozen=True)
class Subscription:
    pattern: str
    queue: "queue.Queue[tuple[str, Sample]]"
    regex: re.Pattern


class DataBus:
    """Thread-safe latest-value store with per-consumer dirty sets and pattern subscriptions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[str, Sample] = {}
        self._dirty: dict[str, dict[str, Sample]] = {}
        self._subs: list[Subscription] = []
        self._route_cache: dict[str, tuple[Subscription, ...]] = {}
        self._forced: dict[str, Sample] = {}          # point -> the operator's MANUAL sample
        self._raw: dict[str, Sample] = {}             # point -> what the source last published while forced

    def publish(self, point: str, sample: Sample) -> None:
        """Store `sample` as the latest value of `point` and forward it to matching subscribers."""
        self.publish_many(((point, sample),))

    def publish_many(self, items: Iterable[tuple[str, Sample]]) -> None:
        """Publish several samples under one lock (a driver's whole poll cycle)."""
        with self._lock:
            for point, sample in items:
                if point in self._forced and sample is not self._forced[point]:
                    self._raw[point] = sample         # the source goes on; the operator's value stays
                    continue
                self._latest[point] = sample
                for dirty in self._dirty.values():
                    dirty[point] = sample
                subs = self._route_cache.get(point)
                if subs is None:
                    subs = tuple(s for s in self._subs if s.regex.match(point))
                    self._route_cache[point] = subs
                for sub in subs:
                    sub.queue.put((point, sample))

    def force(self, point: str, sample: Sample) -> None:
        """Override a point with a MANUAL sample until `release`; sources keep publishing underneath."""
        with self._lock:
            if point not in self._forced and point in self._latest:
                self._raw[point] = self._latest[point]
            self._forced[point] = sample
        self.publish(point, sample)

    def release(self, point: str) -> bool:
        """End an override; the source's latest value is published again. False if it was not forced."""
        with self._lock:
            if self._forced.pop(point, None) is None:
                return False
            raw = self._raw.pop(point, None)
        if raw is not None:
            self.publish(point, raw)
        return True

    def forced(self) -> list[str]:
        with self._lock:
            return sorted(self._forced)

    def get(self, point: str) -> Sample | None:
        with self._lock:
            return self._latest.get(point)

    def snapshot(self) -> Mapping[str, Sample]:
        """A copy of the latest samples (samples are immutable, so the copy is cheap and safe)."""
        with self._lock:
            return dict(self._latest)

    def take_dirty(self, consumer: str = "gui") -> dict[str, Sample]:
        """Points changed since this consumer's previous call (the first call returns everything)."""
        with self._lock:
            dirty = self._dirty.get(consumer)
            if dirty is None:
                self._dirty[consumer] = {}
                return dict(self._latest)
            self._dirty[consumer] = {}
            return dirty

    def subscribe(self, pattern: str, q: "queue.Queue[tuple[str, Sample]] | None" = None) -> Subscription:
        """Receive every future sample whose point matches the glob `pattern` on queue `q`."""
        sub = Subscription(pattern, q if q is not None else queue.SimpleQueue(),
                           re.compile(fnmatch.translate(pattern)))
        with self._lock:
            self._subs.append(sub)
            self._route_cache.clear()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs = [s for s in self._subs if s is not sub]
            self._route_cache.clear()

    def points(self, pattern: str = "*") -> list[str]:
        with self._lock:
            return sorted(fnmatch.filter(self._latest, pattern))
