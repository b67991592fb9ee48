"""Injectable clocks. Everything that reads time takes a Clock, so tests and the simulator can run
faster than real time (ScaledClock) or step time by hand (ManualClock)."""
from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def time(self) -> float: ...
    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Block until event is set or `seconds` of this clock's time pass; True if the event was set."""
        ...


class SystemClock:
    """Real time."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(max(0.0, seconds))


class ScaledClock:
    """Time running `speed` times faster than real time (×1 to ×1000), starting now."""

    def __init__(self, speed: float, start_wall: float | None = None) -> None:
        if not 0 < speed <= 1000:
            raise ValueError(f"clock speed must be in (0, 1000], got {speed}")
        self.speed = speed
        self._mono0 = time.monotonic()
        self._wall0 = time.time() if start_wall is None else start_wall

    def monotonic(self) -> float:
        return self._mono0 + (time.monotonic() - self._mono0) * self.speed

    def time(self) -> float:
        return self._wall0 + (time.monotonic() - self._mono0) * self.speed

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(max(0.0, seconds) / self.speed)


class ManualClock:
    """Time that moves only when a test calls advance(); waits return when time reaches the deadline."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._cond = threading.Condition()

    def monotonic(self) -> float:
        with self._cond:
            return self._now

    def time(self) -> float:
        return self.monotonic()

    def advance(self, seconds: float) -> None:
        with self._cond:
            self._now += seconds
            self._cond.notify_all()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        with self._cond:
            deadline = self._now + seconds
            while not event.is_set() and self._now < deadline:
                self._cond.wait(0.01)
        return event.is_set()
