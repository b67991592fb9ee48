"""The historian database: connection settings, tables, quality codes and the startup integrity check.

Tables (SQLite, WAL):
- points(id, name, kind 'vector'|'scalar', vtype, resolution, cells, rolled_until, max_span)
- frames(id, point_id, t0, t1, n, cells, sealed, header, data): vector samples, one blob pair per
  point (rack) per time block; `sealed=0` rows are the open block, written once per flush and merged
  into one sealed row when the block is complete (app.historian.store).
- scalars(point_id, t, value, quality): one row per scalar sample (value keeps its SQLite type).
- rollups(point_id, level, t, n, n_bad, vmin, vmax, vavg, cells): level 60 or 900 s aggregates of usable
  samples; for vector points vmin/vmax/vavg summarise all cells and `cells` holds per-cell min/max/avg.
- events(id, time, source, kind, message, severity, point, value, limit_, seq)
Times are wall-clock seconds since the epoch (float).
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from app.core.sample import Quality

QUALITY_CODE: dict[Quality, int] = {
    Quality.GOOD: 0, Quality.STALE: 1, Quality.BAD: 2, Quality.COMM_LOST: 3, Quality.MANUAL: 4,
    Quality.SIMULATED: 5,
}
QUALITIES: tuple[Quality, ...] = tuple(sorted(QUALITY_CODE, key=QUALITY_CODE.get))  # code -> Quality
USABLE_CODES: tuple[int, ...] = tuple(QUALITY_CODE[q] for q in Quality if q.usable)
LEVELS: tuple[int, ...] = (60, 900)  # roll-up periods in seconds
SCHEMA_VERSION = 1


def connect(db_path: str | Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the historian database with the house settings (WAL, NORMAL sync, busy timeout).

    readonly=True gives a query-only connection for readers in other threads or processes.
    """
    conn = sqlite3.connect(str(db_path), timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    if readonly:
        conn.execute("PRAGMA query_only = 1")
        conn.execute("PRAGMA mmap_size = 268435456")
    else:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL+NORMAL: a process kill loses no commit
    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    """Create missing tables and indexes (idempotent)."""
    db = sqlite_utils.Database(conn)
    db["points"].create({"id": int, "name": str, "kind": str, "vtype": str, "resolution": float,
                         "cells": int, "rolled_until": float, "max_span": float},
                        pk="id", not_null={"name", "kind"}, defaults={"max_span": 0.0}, if_not_exists=True)
    db["points"].create_index(["name"], unique=True, if_not_exists=True)
    db["frames"].create({"id": int, "point_id": int, "t0": float, "t1": float, "n": int, "cells": int,
                         "sealed": int, "header": bytes, "data": bytes}, pk="id", if_not_exists=True)
    db["frames"].create_index(["point_id", "t0"], if_not_exists=True)
    db["frames"].create_index(["sealed", "point_id"], if_not_exists=True)
    # `value` has no declared type so numbers stay numbers and text stays text
    conn.execute("CREATE TABLE IF NOT EXISTS scalars(point_id INTEGER, t REAL, value, quality INTEGER)")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_scalars_point_t ON scalars(point_id, t)")
    db["rollups"].create({"point_id": int, "level": int, "t": float, "n": int, "n_bad": int, "vmin": float,
                          "vmax": float, "vavg": float, "cells": bytes}, if_not_exists=True)
    db["rollups"].create_index(["point_id", "level", "t"], if_not_exists=True)
    db["rollups"].create_index(["level", "t"], if_not_exists=True)
    db["events"].create({"id": int, "time": float, "source": str, "kind": str, "message": str,
                         "severity": int, "point": str, "value": float, "limit_": float, "seq": int},
                        pk="id", if_not_exists=True)
    db["events"].create_index(["time"], if_not_exists=True)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


@dataclass(frozen=True)
class IntegrityReport:
    """Result of the startup check: ok, SQLite's messages, and where a damaged file was moved to."""

    ok: bool
    messages: tuple[str, ...]
    moved_to: str | None = None


def quick_check(db_path: str | Path) -> IntegrityReport:
    """Run PRAGMA quick_check on `db_path` (a missing file is fine: it will be created)."""
    if not Path(db_path).exists():
        return IntegrityReport(True, ("new database",))
    try:
        conn = sqlite3.connect(str(db_path), timeout=10.0)
        try:
            rows = tuple(str(r[0]) for r in conn.execute("PRAGMA quick_check"))
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return IntegrityReport(False, (f"{type(exc).__name__}: {exc}",))
    return IntegrityReport(rows == ("ok",), rows)
