"""Pure protection rules: given values and the time, decide. No threads, no I/O."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.protection.limits import OvervoltageLimit


@dataclass(frozen=True)
class Exceedance:
    index: int          # 0-based cell index of the worst cell
    value: float
    limit: float
    since: float        # monotonic time the condition started


class OnDelay:
    """Condition that must hold for `delay_s` before it counts; clears when `release` says so."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.since: float | None = None

    def update(self, active: bool, clear: bool, now: float) -> bool:
        if active and self.since is None:
            self.since = now
        elif clear:
            self.since = None
        return self.since is not None and now - self.since >= self.delay_s


class CellOvervoltageRule:
    """Trips when the highest cell voltage stays above the trip level for the on-delay."""

    def __init__(self, limit: OvervoltageLimit) -> None:
        self.limit = limit
        self._timer = OnDelay(limit.on_delay_s)

    def evaluate(self, voltages: np.ndarray, now: float) -> Exceedance | None:
        i = int(np.argmax(voltages))
        v = float(voltages[i])
        hit = self._timer.update(v > self.limit.trip_v, v < self.limit.release_v, now)
        return Exceedance(i, v, self.limit.trip_v, self._timer.since) if hit else None


def data_age_fault(recv_mono: float | None, usable: bool, now: float, stale_after_s: float) -> str | None:
    """Why the data cannot be trusted (missing, bad quality, too old), or None if it can."""
    if recv_mono is None:
        return "no data"
    if not usable:
        return "bad quality"
    age = now - recv_mono
    if age > stale_after_s:
        return f"stale {age:.1f} s > {stale_after_s:.1f} s"
    return None
