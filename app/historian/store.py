"""The writer's storage layer: batches in, one SQLite transaction out. Used by one thread only
(the historian writer thread, or a benchmark/test that owns it).

Vector points: every `write` appends the new samples of a point as an unsealed frame (the open
block). A block covers one epoch-aligned `block_s` window (at most `max_block_samples` samples and one
cell count); when a sample of another block arrives (or `seal_idle`, `close`), the block's unsealed
frames are merged into one sealed frame and its 1-min and 15-min roll-ups are written, in the same
transaction. After a crash `recover` seals what was left open.

Scalar points: rows in `scalars`; `roll_scalars(cutoff)` aggregates them into roll-ups up to `cutoff`.
`points.rolled_until` tells readers up to when roll-ups are complete; newer data is read raw.
"""
from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from app.core.events import Event
from app.historian import codec, schema
from app.historian.rollup import across_cells, cell_rollup

_NO_LIMIT_PAGES = 4294967294


@dataclass(frozen=True)
class VectorSample:
    point: str
    t: float
    quality: int
    value: np.ndarray


@dataclass(frozen=True)
class ScalarSample:
    point: str
    t: float
    quality: int
    value: Any


@dataclass
class Batch:
    """What one transaction writes: vector samples, scalar samples and events, in arrival order."""

    vectors: list[VectorSample] = field(default_factory=list)
    scalars: list[ScalarSample] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True)
class _Open:
    block: int
    cells: int
    n: int


def is_disk_full(exc: BaseException) -> bool:
    """True for SQLite's 'database or disk is full' (SQLITE_FULL), however it was reached."""
    return isinstance(exc, sqlite3.OperationalError) and (
        getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "is full" in str(exc))


def scalar_type(value: Any) -> tuple[str, Any]:
    """(vtype, value as stored) for a scalar sample value: bool/int/float/str/None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "bool", int(value)
    if isinstance(value, int):
        return ("int", value) if -2 ** 63 <= value < 2 ** 63 else ("float", float(value))
    if isinstance(value, float):
        return "float", value
    if value is None:
        return "float", None
    return "str", str(value)


class HistorianStore:
    """Owns the writing connection. `write(batch)` is all-or-nothing: on any error the transaction is
    rolled back, in-memory block state restored, and the exception re-raised (disk full included)."""

    def __init__(self, db_path: str | Path, *, block_s: float = 300.0, max_block_samples: int = 3600,
                 max_db_bytes: int | None = None) -> None:
        self.block_s = float(block_s)
        self.max_block_samples = int(max_block_samples)
        self.conn = schema.connect(db_path)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            schema.create_schema(self.conn)
            self.conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            self.conn.close()
            raise
        self._page_size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        self.set_max_db_bytes(max_db_bytes)
        self._ids: dict[str, tuple[int, str, float]] = {}   # name -> (id, kind, resolution)
        self._span: dict[int, float] = {}
        for pid, name, kind, res, span in self.conn.execute(
                "SELECT id, name, kind, resolution, max_span FROM points"):
            self._ids[name] = (pid, kind, res)
            self._span[pid] = span or 0.0
        self._open: dict[int, _Open] = {}
        self.rejected: set[str] = set()  # points whose samples changed kind (vector <-> scalar)
        row = self.conn.execute("SELECT max(rolled_until) FROM points WHERE kind='scalar'").fetchone()
        self.scalar_rolled_until: float | None = row[0]

    # -- settings ------------------------------------------------------------------------------------
    def set_max_db_bytes(self, max_db_bytes: int | None) -> None:
        """Cap the database size (None: no cap beyond the disk). Reaching it behaves like a full disk."""
        self.max_db_bytes = max_db_bytes
        pages = _NO_LIMIT_PAGES if max_db_bytes is None else max(1, int(max_db_bytes) // self._page_size)
        self.conn.execute(f"PRAGMA max_page_count = {pages}")

    # -- transactions ---------------------------------------------------------------------------------
    def _rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def _transaction(self, work) -> Any:
        saved_open, saved_span = dict(self._open), dict(self._span)
        saved_ids, saved_rolled = dict(self._ids), self.scalar_rolled_until
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            result = work()
            self.conn.execute("COMMIT")
            return result
        except BaseException:
            self._rollback()
            self._open, self._span, self._ids = saved_open, saved_span, saved_ids
            self.scalar_rolled_until = saved_rolled
            raise

    def write(self, batch: Batch) -> None:
        """Write a batch in one transaction (sealing blocks that it completes)."""
        self._transaction(lambda: self._write(batch))

    def recover(self) -> int:
        """Seal blocks left open by a previous run (crash or kill); returns how many points."""
        return self._transaction(self._recover)

    def seal_idle(self, now: float) -> int:
        """Seal open blocks whose window ended before `now` (a rack that went quiet); returns count."""
        idle = [pid for pid, ob in self._open.items() if (ob.block + 1) * self.block_s <= now]
        if idle:
            self._transaction(lambda: [self._seal(pid) for pid in idle])
        return len(idle)

    def close(self) -> None:
        """Seal every open block, checkpoint the WAL and close the connection."""
        try:
            if self._open:
                self._transaction(lambda: [self._seal(pid) for pid in list(self._open)])
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            self.conn.close()

    # -- points -----------------------------------------------------------------------------------------
    def _point(self, name: str, kind: str, vtype: str, cells: int | None) -> tuple[int, float] | None:
        known = self._ids.get(name)
        if known is not None:
            if known[1] != kind:
                self.rejected.add(name)
                return None
            return known[0], known[2]
        res = codec.resolution_for(name) if kind == "vector" else None
        rolled = None if kind == "vector" else self.scalar_rolled_until
        cur = self.conn.execute(
            "INSERT INTO points(name, kind, vtype, resolution, cells, rolled_until, max_span) "
            "VALUES (?, ?, ?, ?, ?, ?, 0.0)", (name, kind, vtype, res, cells, rolled))
        self._ids[name] = (cur.lastrowid, kind, res)
        self._span[cur.lastrowid] = 0.0
        return cur.lastrowid, res

    # -- writing --------------------------------------------------------------------------------------
    def _write(self, batch: Batch) -> None:
        by_point: dict[str, list[VectorSample]] = {}
        for s in batch.vectors:
            by_point.setdefault(s.point, []).append(s)
        for name, samples in by_point.items():
            self._write_vector(name, samples)
        rows = []
        for s in batch.scalars:
            vtype, value = scalar_type(s.value)
            ident = self._point(s.point, "scalar", vtype, None)
            if ident is not None:
                rows.append((ident[0], s.t, value, s.quality))
        self.conn.executemany("INSERT INTO scalars(point_id, t, value, quality) VALUES (?, ?, ?, ?)", rows)
        self.conn.executemany(
            "INSERT INTO events(time, source, kind, message, severity, point, value, limit_, seq) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(e.time, e.source, e.kind, e.message, int(e.severity), e.point, e.value, e.limit, e.seq)
             for e in batch.events])

    def _write_vector(self, name: str, samples: Sequence[VectorSample]) -> None:
        ident = self._point(name, "vector", "float32", len(samples[0].value))
        if ident is None:
            return
        pid, res = ident
        start = 0
        for i in range(1, len(samples) + 1):  # runs of one block window and one cell count
            if i == len(samples) or (self._block(samples[i].t), len(samples[i].value)) != \
                    (self._block(samples[start].t), len(samples[start].value)):
                self._append_run(pid, res, samples[start:i])
                start = i

    def _block(self, t: float) -> int:
        return math.floor(t / self.block_s)

    def _append_run(self, pid: int, res: float, run: Sequence[VectorSample]) -> None:
        block, cells = self._block(run[0].t), len(run[0].value)
        for k in range(0, len(run), self.max_block_samples):
            piece = run[k:k + self.max_block_samples]
            ob = self._open.get(pid)
            if ob is not None and (ob.block != block or ob.cells != cells
                                   or ob.n + len(piece) > self.max_block_samples):
                self._seal(pid)
                ob = None
            t = np.fromiter((s.t for s in piece), dtype=np.float64, count=len(piece))
            quality = np.fromiter((s.quality for s in piece), dtype=np.uint8, count=len(piece))
            q = codec.quantise(np.stack([s.value for s in piece]), res)
            self._insert_frame(pid, t, quality, q, sealed=False)
            self._open[pid] = _Open(block, cells, (ob.n if ob else 0) + len(piece))

    def _insert_frame(self, pid: int, t: np.ndarray, quality: np.ndarray, q: np.ndarray, sealed: bool) -> None:
        t0, t1 = float(t.min()), float(t.max())
        header, data = codec.encode_frame(t, quality, q)
        self.conn.execute("INSERT INTO frames(point_id, t0, t1, n, cells, sealed, header, data) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          (pid, t0, t1, len(t), q.shape[1], int(sealed), header, data))
        if t1 - t0 > self._span.get(pid, 0.0):
            self._span[pid] = t1 - t0
            self.conn.execute("UPDATE points SET max_span = ? WHERE id = ?", (t1 - t0, pid))

    def _seal(self, pid: int) -> None:
        """Merge the point's unsealed frames into sealed frame(s) + roll-ups (inside a transaction)."""
        self._open.pop(pid, None)
        rows = self.conn.execute("SELECT id, header, data FROM frames WHERE point_id = ? AND sealed = 0 "
                                 "ORDER BY t0, id", (pid,)).fetchall()
        if not rows:
            return
        res = self.conn.execute("SELECT resolution FROM points WHERE id = ?", (pid,)).fetchone()[0]
        heads = [codec.FrameHeader(h) for _, h, _ in rows]
        start = 0
        for i in range(1, len(rows) + 1):  # a block has one cell count; be safe after a crash
            if i == len(rows) or heads[i].cells != heads[start].cells:
                self._seal_run(pid, res, heads[start:i], [r[2] for r in rows[start:i]])
                start = i
        self.conn.executemany("DELETE FROM frames WHERE id = ?", [(r[0],) for r in rows])

    def _seal_run(self, pid: int, res: float, heads: list[codec.FrameHeader], datas: list[bytes]) -> None:
        t = np.concatenate([h.t for h in heads])
        quality = np.concatenate([h.quality for h in heads])
        q = np.concatenate([h.decode_all(d) for h, d in zip(heads, datas)])
        if np.any(np.diff(t) < 0):
            order = np.argsort(t, kind="stable")
            t, quality, q = t[order], quality[order], q[order]
        self._insert_frame(pid, t, quality, q, sealed=True)
        usable = np.isin(quality, schema.USABLE_CODES)
        steps = np.where(q == codec.NAN_MARK, np.nan, q.astype(np.float64))
        for level in schema.LEVELS:
            r = cell_rollup(t, usable, steps, level)
            lo, hi, avg = across_cells(r.vmin, r.vmax, r.vavg)
            rows = []
            for k in range(len(r.t)):
                blob = None
                if r.n[k]:
                    blob = codec.encode_matrix(codec.quantise(np.stack([r.vmin[k], r.vmax[k], r.vavg[k]]), 1.0))
                rows.append((pid, level, float(r.t[k]), int(r.n[k]), int(r.n_bad[k]), _real(lo[k], res),
                             _real(hi[k], res), _real(avg[k], res), blob))
            self.conn.executemany("INSERT INTO rollups(point_id, level, t, n, n_bad, vmin, vmax, vavg, cells) "
                                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        # rolled_until: every sample with t < rolled_until is in the roll-ups
        self.conn.execute("UPDATE points SET rolled_until = max(coalesce(rolled_until, ?1), ?1), cells = ?2 "
                          "WHERE id = ?3", (float(np.nextafter(t[-1], np.inf)), q.shape[1], pid))

    def _recover(self) -> int:
        pids = [r[0] for r in self.conn.execute("SELECT DISTINCT point_id FROM frames WHERE sealed = 0")]
        for pid in pids:
            self._seal(pid)
        return len(pids)

    # -- scalar roll-ups -------------------------------------------------------------------------------------
    def roll_scalars(self, cutoff: float) -> None:
        """Aggregate scalar samples with rolled_until <= t < cutoff into 1-min and 15-min roll-ups."""
        start = self.scalar_rolled_until
        if start is not None and cutoff <= start:
            return
        self._transaction(lambda: self._roll_scalars(start, cutoff))

    def _roll_scalars(self, start: float | None, cutoff: float) -> None:
        usable = ",".join(str(c) for c in schema.USABLE_CODES)
        good = f"quality IN ({usable}) AND typeof(value) IN ('integer', 'real')"
        for level in schema.LEVELS:
            self.conn.execute(
                f"INSERT INTO rollups(point_id, level, t, n, n_bad, vmin, vmax, vavg) "
                f"SELECT point_id, {level}, CAST(t / {level} AS INTEGER) * {level} AS b, "
                f"sum({good}), sum(quality NOT IN ({usable})), "
                f"min(CASE WHEN {good} THEN value END), max(CASE WHEN {good} THEN value END), "
                f"avg(CASE WHEN {good} THEN value END) "
                f"FROM scalars WHERE point_id IN (SELECT id FROM points WHERE kind = 'scalar' AND vtype != 'str') "
                f"AND t >= ? AND t < ? GROUP BY point_id, b",
                (-math.inf if start is None else start, cutoff))
        self.conn.execute("UPDATE points SET rolled_until = ? WHERE kind = 'scalar'", (cutoff,))
        self.scalar_rolled_until = cutoff

    def run_maintenance(self, work) -> Any:
        """Run `work(conn)` (e.g. retention) inside one write transaction; returns its result."""
        return self._transaction(lambda: work(self.conn))


def _real(steps: float, res: float) -> float | None:
    return None if not np.isfinite(steps) else float(codec.to_units(steps, res))
