"""Pure protection rules the thread applies outside the per-rack ladders. No threads, no I/O."""
from __future__ import annotations

from typing import Any

import numpy as np


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


def size_fault(value: Any, expected: int) -> str | None:
    """Why a reading does not have the `expected` number of values (a vector of another length), or None."""
    size = int(np.size(value))
    return None if size == expected else f"{size} values, {expected} expected"
