"""Alarm flood detection per operator position (EEMUA 191 / ISA-18.2: more than 10 new alarms in
10 minutes). A flood starts when the count of new alarms in the sliding window exceeds `start_above`
and ends when it falls below `end_below` (hysteresis, so the banner does not flicker). Pure."""
from __future__ import annotations

import collections
from dataclasses import replace

from app.alarms.model import FloodEpisode


class FloodDetector:
    """Fed with `new_alarm(position, now)` for every announced new alarm and `expire(now)` once per
    cycle; `current()` are the floods in progress, `history()` the ended ones (bounded)."""

    def __init__(self, window_s: float = 600.0, start_above: int = 10, end_below: int = 5,
                 keep: int = 100) -> None:
        self.window_s = window_s
        self.start_above = start_above
        self.end_below = end_below
        self._times: dict[str, collections.deque[float]] = {}
        self._open: dict[str, FloodEpisode] = {}
        self._ended: collections.deque[FloodEpisode] = collections.deque(maxlen=keep)

    def new_alarm(self, position: str, now: float) -> None:
        """Count one new alarm at `position`; it may start a flood or add to the one in progress."""
        times = self._times.setdefault(position, collections.deque())
        times.append(now)
        self._prune(times, now)
        episode = self._open.get(position)
        if episode is not None:
            self._open[position] = replace(episode, count=episode.count + 1)
        elif len(times) > self.start_above:
            self._open[position] = FloodEpisode(position, now, None, len(times))

    def expire(self, now: float) -> bool:
        """Slide the windows to `now` and end floods that have calmed down; True if one ended."""
        ended = False
        for position, times in list(self._times.items()):
            self._prune(times, now)
            episode = self._open.get(position)
            if episode is not None and len(times) < self.end_below:
                self._ended.append(replace(episode, end=now))
                del self._open[position]
                ended = True
            if not times:
                del self._times[position]
        return ended

    def current(self) -> tuple[FloodEpisode, ...]:
        return tuple(self._open.values())

    def history(self) -> tuple[FloodEpisode, ...]:
        """Ended floods, newest first."""
        return tuple(reversed(self._ended))

    def _prune(self, times: collections.deque[float], now: float) -> None:
        while times and times[0] <= now - self.window_s:
            times.popleft()
