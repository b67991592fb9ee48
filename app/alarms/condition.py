"""Alarm condition detection: limit comparison with deadband, then on-delay/off-delay. Pure."""
from __future__ import annotations

import math
from typing import Any

from app.alarms.model import Direction


def limit_exceeded(direction: Direction, limit: float, deadband: float, value: Any, was_active: bool) -> bool:
    """Whether a HIGH/LOW limit condition holds for `value`, with hysteresis.

    Activates above (HIGH) / below (LOW) the limit; once active it holds until the value is back
    past limit -/+ deadband. A missing reading (None or NaN) keeps the previous answer: no reading
    cannot clear an alarm. A reading of 0 is a reading.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return was_active
    if direction is Direction.HIGH:
        return value > (limit - deadband if was_active else limit)
    return value < (limit + deadband if was_active else limit)


class DelayFilter:
    """The debounced condition: a change of the raw condition counts once it has persisted for the
    on-delay (to active) or off-delay (to inactive). Feed it with `update(raw, now)` on every
    evaluation; `pending` says a change is being timed (so the owner must keep ticking it)."""

    __slots__ = ("on_delay_s", "off_delay_s", "state", "pending_since")

    def __init__(self, on_delay_s: float, off_delay_s: float) -> None:
        self.on_delay_s = on_delay_s
        self.off_delay_s = off_delay_s
        self.state = False
        self.pending_since: float | None = None

    @property
    def pending(self) -> bool:
        return self.pending_since is not None

    def update(self, raw: bool, now: float) -> bool:
        """Feed the raw condition at time `now` (s); returns the debounced condition."""
        if raw == self.state:
            self.pending_since = None
            return self.state
        if self.pending_since is None:
            self.pending_since = now
        if now - self.pending_since >= (self.on_delay_s if raw else self.off_delay_s):
            self.state = raw
            self.pending_since = None
        return self.state
