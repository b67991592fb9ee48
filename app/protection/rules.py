"""Pure protection rules the thread applies outside the per-rack ladders. No threads, no I/O."""
from __future__ import annotations


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
