"""First-out: for each trip group (a rack), which latched condition came first, with the values of
the group captured at the trip instant, kept for review after later trips. Pure."""
from __future__ import annotations

import collections
import itertools
import types
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np


@dataclass(frozen=True, slots=True)
class FirstOutEntry:
    """One latched alarm of a trip: when it latched and since when its raw condition held."""

    tag: str
    point: str
    rule: str
    time: float
    since: float
    value: Any
    limit: float | None
    message: str


@dataclass(frozen=True, slots=True)
class FirstOutRecord:
    """One trip of one group: `first` latched first, `later` followed in order; `snapshot` holds the
    group's values (point -> value or read-only numpy array) at the first trip; `end` is when the
    last latched alarm of the group was reset (None while the trip stands)."""

    id: int
    group: str
    start: float
    first: FirstOutEntry
    later: tuple[FirstOutEntry, ...]
    snapshot: Mapping[str, Any]
    end: float | None


def freeze_snapshot(values: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy of `values`: numpy arrays are copied and made read-only."""
    frozen = {}
    for point, value in values.items():
        if isinstance(value, np.ndarray):
            value = value.copy()
            value.flags.writeable = False
        frozen[point] = value
    return types.MappingProxyType(frozen)


class FirstOutRecorder:
    """Collects latched alarms into per-group trip records; keeps the last `keep` records."""

    def __init__(self, keep: int = 200) -> None:
        self._open: dict[str, FirstOutRecord] = {}
        self._closed: collections.deque[FirstOutRecord] = collections.deque(maxlen=keep)
        self._ids = itertools.count(1)

    def latched(self, group: str, entry: FirstOutEntry, snapshot: Mapping[str, Any] | None) -> None:
        """Add a latched alarm; the first one of a group opens a record with `snapshot` (which is
        only read then, so pass a lazily built mapping if building it is expensive)."""
        record = self._open.get(group)
        if record is None:
            self._open[group] = FirstOutRecord(next(self._ids), group, entry.time, entry, (),
                                               freeze_snapshot(snapshot or {}), None)
            return
        entries = sorted((record.first, *record.later, entry), key=lambda e: (e.time, e.since))
        self._open[group] = FirstOutRecord(record.id, group, record.start, entries[0], tuple(entries[1:]),
                                           record.snapshot, None)

    def is_open(self, group: str) -> bool:
        return group in self._open

    def close(self, group: str, now: float) -> None:
        """The group's last latched alarm was reset: the record moves to history with its end."""
        record = self._open.pop(group, None)
        if record is not None:
            self._closed.append(FirstOutRecord(record.id, group, record.start, record.first, record.later,
                                               record.snapshot, now))

    def records(self, group: str | None = None) -> tuple[FirstOutRecord, ...]:
        """Open and past trip records, newest first, optionally of one group only."""
        found = sorted((*self._open.values(), *self._closed), key=lambda r: r.id, reverse=True)
        return tuple(r for r in found if group is None or r.group == group)
