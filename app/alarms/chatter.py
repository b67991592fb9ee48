"""Chattering detection: a tag whose alarm condition changes `threshold` times (default 3) within
`window_s` (default 60 s) is chattering until its change count in the window drops again. A
chattering alarm is still recorded, but its transitions are not announced again. Pure."""
from __future__ import annotations

import collections


class ChatterDetector:
    """Fed with `change(tag, now)` on every condition change and `expire(now)` once per cycle."""

    def __init__(self, window_s: float = 60.0, threshold: int = 3) -> None:
        self.window_s = window_s
        self.threshold = threshold
        self._times: dict[str, collections.deque[float]] = {}
        self._chattering: set[str] = set()

    def change(self, tag: str, now: float) -> bool:
        """Count one condition change of `tag`; returns whether the tag is chattering now."""
        times = self._times.setdefault(tag, collections.deque())
        times.append(now)
        self._prune(times, now)
        if len(times) >= self.threshold:
            self._chattering.add(tag)
        return tag in self._chattering

    def expire(self, now: float) -> list[str]:
        """Slide the windows to `now`; returns the tags that stopped chattering."""
        calmed = []
        for tag, times in list(self._times.items()):
            self._prune(times, now)
            if tag in self._chattering and len(times) < self.threshold:
                self._chattering.discard(tag)
                calmed.append(tag)
            if not times:
                del self._times[tag]
        return calmed

    def chattering(self) -> tuple[str, ...]:
        return tuple(sorted(self._chattering))

    def _prune(self, times: collections.deque[float], now: float) -> None:
        while times and times[0] <= now - self.window_s:
            times.popleft()
