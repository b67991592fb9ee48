"""Link statistics: frames ok, errors, timeouts, latency percentiles, last good time."""
from __future__ import annotations

import collections
import threading

import numpy as np


class LinkStats:
    """Counters updated by the link's own thread; `snapshot()` may be called from any thread."""

    def __init__(self, latency_window: int = 500) -> None:
        self._lock = threading.Lock()
        self.frames_ok = 0
        self.errors = 0            # corrupt frames: CRC, decode, exception responses
        self.timeouts = 0
        self.reconnects = 0
        self.last_good_wall: float | None = None
        self.last_error = ""
        self._latency = collections.deque(maxlen=latency_window)

    def ok(self, latency_s: float, wall: float, frames: int = 1) -> None:
        with self._lock:
            self.frames_ok += frames
            self.last_good_wall = wall
            self._latency.append(latency_s)

    def error(self, reason: str, timeout: bool = False) -> None:
        with self._lock:
            if timeout:
                self.timeouts += 1
            else:
                self.errors += 1
            self.last_error = reason

    def reconnected(self) -> None:
        with self._lock:
            self.reconnects += 1

    def snapshot(self) -> dict:
        with self._lock:
            lat = np.array(self._latency) * 1000.0
            return {
                "frames_ok": self.frames_ok, "errors": self.errors, "timeouts": self.timeouts,
                "reconnects": self.reconnects, "last_good_wall": self.last_good_wall,
                "last_error": self.last_error,
                "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
                "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else None,
            }
