"""Retention (how long raw data, roll-ups and events are kept) and the disk-usage estimate for settings."""
from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import UserError
from app.historian import schema

DAY_S = 86_400.0
SCALAR_ROW_BYTES = 40     # one scalar sample incl. its index entry (SQLite record overhead included)
ROLLUP_ROW_BYTES = 60     # a roll-up row without its per-cell blob
FRAME_ROW_BYTES = 60      # a frame row without its blobs
EVENT_ROW_BYTES = 80      # an event row without its text


@dataclass(frozen=True)
class RetentionPolicy:
    """Days to keep each kind of history. Roll-ups should be kept at least as long as raw data."""

    raw_days: float = 7.0
    rollup_1m_days: float = 31.0
    rollup_15m_days: float = 730.0
    events_days: float = 730.0

    def __post_init__(self) -> None:
        for name in ("raw_days", "rollup_1m_days", "rollup_15m_days", "events_days"):
            if not getattr(self, name) > 0:
                raise UserError(f"historian retention {name} must be a positive number of days, "
                                f"got {getattr(self, name)!r}")

    def days_for_level(self, level: int) -> float:
        return {60: self.rollup_1m_days, 900: self.rollup_15m_days}[level]


def apply_retention(conn: sqlite3.Connection, policy: RetentionPolicy, now: float) -> dict[str, int]:
    """Delete history older than the policy allows (call inside a write transaction).

    Returns rows deleted per table. Open (unsealed) frames are never deleted here.
    """
    raw_h = now - policy.raw_days * DAY_S
    deleted = {
        "frames": conn.execute("DELETE FROM frames WHERE point_id IN (SELECT id FROM points) AND t0 < ?1 "
                               "AND t1 < ?1 AND sealed = 1", (raw_h,)).rowcount,
        "scalars": conn.execute("DELETE FROM scalars WHERE point_id IN (SELECT id FROM points) AND t < ?",
                                (raw_h,)).rowcount,
        "rollups": sum(conn.execute("DELETE FROM rollups WHERE level = ? AND t < ?",
                                    (level, now - policy.days_for_level(level) * DAY_S)).rowcount
                       for level in schema.LEVELS),
        "events": conn.execute("DELETE FROM events WHERE time < ?", (now - policy.events_days * DAY_S,)).rowcount,
    }
    return deleted


@dataclass(frozen=True)
class DiskUsage:
    """Disk-usage estimate: bytes per day at the current rate (total and per kind of history), the
    projected size once the configured retention is full, and the size of the files now."""

    bytes_per_day: float
    per_day: dict[str, float]
    projected_bytes: float
    current_bytes: int


def estimate_disk_usage(db_path: str | Path, policy: RetentionPolicy, *, now: float | None = None,
                        window_s: float = 3600.0) -> DiskUsage:
    """Estimate from what was written in the last `window_s` seconds (or since the first sample, if
    later). Open blocks are counted at their (larger) unsealed size, so the figure errs high."""
    path = Path(db_path)
    if not path.exists():
        raise UserError(f"no historian database at {path}")
    now = time.time() if now is None else now
    conn = schema.connect(path, readonly=True)
    try:
        first = [r[0] for r in (
            conn.execute("SELECT t0 FROM frames ORDER BY id LIMIT 1").fetchone(),
            conn.execute("SELECT t FROM scalars ORDER BY rowid LIMIT 1").fetchone()) if r]
        start = max([now - window_s] + ([min(first)] if first else []))
        span = max(now - start, 1.0)
        ids = "point_id IN (SELECT id FROM points)"
        raw = conn.execute(f"SELECT coalesce(sum(length(header) + length(data) + {FRAME_ROW_BYTES}), 0) "
                           f"FROM frames WHERE {ids} AND t0 >= ? AND t0 < ?", (start, now)).fetchone()[0]
        raw += SCALAR_ROW_BYTES * conn.execute(f"SELECT count(*) FROM scalars WHERE {ids} AND t >= ? AND t < ?",
                                               (start, now)).fetchone()[0]
        per_day = {"raw": raw / span * DAY_S}
        for level in schema.LEVELS:
            # roll-ups are written when a block completes: measure the newest window_s of them
            end = conn.execute("SELECT max(t) FROM rollups WHERE level = ?", (level,)).fetchone()[0]
            b = 0
            if end is not None and end >= now - window_s - 2 * level:
                b = conn.execute(f"SELECT coalesce(sum(coalesce(length(cells), 0) + {ROLLUP_ROW_BYTES}), 0) "
                                 f"FROM rollups WHERE level = ? AND t > ?", (level, end - span)).fetchone()[0]
            per_day[f"rollup_{level // 60}m"] = b / span * DAY_S
        ev = conn.execute(f"SELECT coalesce(sum(length(message) + length(source) + length(kind) + "
                          f"{EVENT_ROW_BYTES}), 0) FROM events WHERE time >= ? AND time < ?",
                          (start, now)).fetchone()[0]
        per_day["events"] = ev / span * DAY_S
    finally:
        conn.close()
    projected = (per_day["raw"] * policy.raw_days + per_day["rollup_1m"] * policy.rollup_1m_days
                 + per_day["rollup_15m"] * policy.rollup_15m_days + per_day["events"] * policy.events_days)
    current = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    return DiskUsage(sum(per_day.values()), per_day, projected, current)
