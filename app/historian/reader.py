"""Reading history: raw series, per-cell extraction, downsampled trends, events.

`HistorianReader(db_path)` has its own query-only connection and may be used from any thread (calls are
serialised) or another process while the writer runs; every call reads one consistent snapshot.
Times are wall-clock epoch seconds; ranges are half-open [t_from, t_to).
Cells are numbered from 1 (cell 1 is the first element of the vector), as everywhere in the site model.
"""
from __future__ import annotations

import fnmatch
import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from app.core.errors import UserError
from app.core.events import Event, Severity
from app.historian import codec, schema
from app.historian.rollup import Accumulator, Buckets

MAX_BUCKETS = 1_000_000
_LADDER = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


@dataclass(frozen=True)
class PointInfo:
    name: str
    kind: str          # "vector" or "scalar"
    vtype: str         # float32 (vectors), float, int, bool or str
    cells: int | None  # cells of the newest sealed block (vectors)
    resolution: float | None


@dataclass(frozen=True)
class Series:
    """Samples in time order: `t` (float64 epoch s), `value` (float32 for cells, (n, k) for several
    cells, float64 for numeric scalars with bools as 0/1, object for text), `quality` (uint8 codes,
    schema.QUALITIES[code] is the Quality)."""

    t: np.ndarray
    value: np.ndarray
    quality: np.ndarray


@dataclass(frozen=True)
class _Point:
    id: int
    kind: str
    vtype: str
    resolution: float | None
    rolled_until: float | None
    max_span: float


def nice_bucket(span_s: float, max_buckets: int) -> float:
    """Smallest round bucket width (1 s ... 1 day, then whole days) giving at most `max_buckets`
    buckets over `span_s`; multiples of 60 s are served from roll-ups."""
    need = span_s / max(1, max_buckets)
    for b in _LADDER:
        if b >= need:
            return float(b)
    return float(math.ceil(need / 86400) * 86400)


def _check_range(t_from: float, t_to: float) -> None:
    if not (math.isfinite(t_from) and math.isfinite(t_to)):
        raise UserError(f"time range {t_from!r} .. {t_to!r} must be finite epoch seconds")
    if t_to <= t_from:
        raise UserError(f"time range end {t_to!r} must be after its start {t_from!r}")


class HistorianReader:
    """Query-only access to a historian database."""

    def __init__(self, db_path: str | Path) -> None:
        path = Path(db_path)
        if not path.is_file():
            raise UserError(f"no historian database at {path}")
        self.db_path = path
        self._conn = schema.connect(path, readonly=True)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "HistorianReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield
            finally:
                self._conn.execute("COMMIT")

    # -- catalogue -------------------------------------------------------------------------------------------
    def points(self, pattern: str = "*") -> list[PointInfo]:
        """Recorded points whose name matches the glob `pattern`, sorted by name."""
        with self._snapshot():
            rows = self._conn.execute("SELECT name, kind, vtype, cells, resolution FROM points").fetchall()
        return sorted((PointInfo(*r) for r in rows if fnmatch.fnmatchcase(r[0], pattern)), key=lambda p: p.name)

    def _point(self, name: str) -> _Point:
        row = self._conn.execute("SELECT id, kind, vtype, resolution, rolled_until, max_span FROM points "
                                 "WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UserError(f"no history for point {name!r} in {self.db_path}")
        return _Point(*row)

    @staticmethod
    def _cell0(name: str, p: _Point, cell: int | None) -> int | None:
        if p.kind == "scalar":
            if cell is not None:
                raise UserError(f"point {name!r} is a scalar; do not give a cell number")
            return None
        if cell is None:
            return None
        if int(cell) < 1:
            raise UserError(f"cell numbers start at 1, got {cell!r} for {name!r}")
        return int(cell) - 1

    # -- raw ---------------------------------------------------------------------------------------------------
    def raw(self, point: str, t_from: float, t_to: float, cell: int | None = None) -> Series:
        """Every stored sample of a scalar point, or of one cell (1-based) of a vector point."""
        _check_range(t_from, t_to)
        with self._snapshot():
            p = self._point(point)
            cell0 = self._cell0(point, p, cell)
            if p.kind == "scalar":
                return self._scalars(p, t_from, t_to)
            if cell0 is None:
                raise UserError(f"point {point!r} holds one value per cell; give a cell number (1-based)")
            s = self._cells(p, t_from, t_to, np.array([cell0]))
        return Series(s.t, s.value[:, 0], s.quality)

    def cells(self, point: str, t_from: float, t_to: float, cells: Sequence[int] | None = None) -> Series:
        """Per-cell history of a vector point: value is (samples, cells) float32, columns in the order of
        `cells` (1-based numbers; None = all cells of the first frame). Missing cells read as NaN."""
        _check_range(t_from, t_to)
        with self._snapshot():
            p = self._point(point)
            if p.kind != "vector":
                raise UserError(f"point {point!r} is a scalar; use raw()")
            if cells is not None:
                if any(int(c) < 1 for c in cells):
                    raise UserError(f"cell numbers start at 1, got {list(cells)!r} for {point!r}")
                return self._cells(p, t_from, t_to, np.asarray(cells, dtype=np.int64) - 1)
            return self._cells(p, t_from, t_to, None)

    def _scalars(self, p: _Point, t_from: float, t_to: float) -> Series:
        rows = self._conn.execute("SELECT t, value, quality FROM scalars WHERE point_id = ? AND t >= ? AND t < ? "
                                  "ORDER BY t", (p.id, t_from, t_to)).fetchall()
        t = np.fromiter((r[0] for r in rows), dtype=np.float64, count=len(rows))
        quality = np.fromiter((r[2] for r in rows), dtype=np.uint8, count=len(rows))
        values = [r[1] for r in rows]
        value = np.array(values, dtype=object) if p.vtype == "str" else np.array(values, dtype=np.float64)
        return Series(t, value, quality)

    def _frames(self, p: _Point, t_from: float, t_to: float, cells0: np.ndarray | None,
                min_t: float = -math.inf) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
        """(t, quality, quantised (n, k) int64, cells in frame) per frame, restricted to
        max(t_from, min_t) <= t < t_to. With cells0 None, k is the frame's cell count."""
        lo = max(t_from, min_t)
        rows = self._conn.execute("SELECT id, header FROM frames WHERE point_id = ? AND t0 >= ? AND t0 < ? "
                                  "AND t1 >= ? ORDER BY t0, id", (p.id, lo - p.max_span, t_to, lo))
        for rowid, header in rows.fetchall():
            h = codec.FrameHeader(header)
            keep = (h.t >= lo) & (h.t < t_to)
            if not keep.any():
                continue
            with self._conn.blobopen("frames", "data", rowid, readonly=True) as blob:
                if cells0 is None:
                    q = h.decode_all(blob.read())
                else:
                    q = np.full((h.n, len(cells0)), codec.NAN_MARK, dtype=np.int64)
                    inside = cells0 < h.cells
                    groups = cells0[inside] // h.group
                    for g in np.unique(groups):
                        off, length = h.chunk_span(int(g))
                        blob.seek(off)
                        block = h.decode_group(int(g), blob.read(length))
                        cols = np.flatnonzero(inside)[groups == g]
                        q[:, cols] = block[:, cells0[cols] - int(g) * h.group]
            yield h.t[keep], h.quality[keep], q[keep], h.cells

    def _cells(self, p: _Point, t_from: float, t_to: float, cells0: np.ndarray | None) -> Series:
        parts = list(self._frames(p, t_from, t_to, cells0))
        width = len(cells0) if cells0 is not None else (parts[0][3] if parts else 0)
        if not parts:
            return Series(np.empty(0), np.empty((0, width), dtype=np.float32), np.empty(0, dtype=np.uint8))
        t = np.concatenate([x[0] for x in parts])
        quality = np.concatenate([x[1] for x in parts])
        q = np.concatenate([_fit(x[2], width) for x in parts])
        if np.any(np.diff(t) < 0):
            order = np.argsort(t, kind="stable")
            t, quality, q = t[order], quality[order], q[order]
        return Series(t, codec.dequantise(q, p.resolution), quality)

    # -- downsampled -----------------------------------------------------------------------------------------
    def downsample(self, point: str, t_from: float, t_to: float, bucket_s: float,
                   cell: int | None = None) -> Buckets:
        """min/max/avg per epoch-aligned bucket of `bucket_s` seconds (the range widens to whole buckets).

        Scalar point, or one cell (1-based) of a vector point, or with cell=None the whole vector (rack
        trend: min/max/avg over all cells). Bucket widths that are a multiple of 60 s (900 s) are served
        from the 1-min (15-min) roll-ups where they exist (averages then carry the point's resolution),
        newer data from raw samples. Only usable-quality samples are aggregated; others count in n_bad.
        """
        _check_range(t_from, t_to)
        if not (math.isfinite(bucket_s) and bucket_s > 0):
            raise UserError(f"bucket width must be a positive number of seconds, got {bucket_s!r}")
        start = math.floor(t_from / bucket_s) * bucket_s
        m = math.ceil((t_to - start) / bucket_s)
        if m > MAX_BUCKETS:
            raise UserError(f"{m} buckets of {bucket_s} s requested; use a wider bucket (at most {MAX_BUCKETS})")
        acc = Accumulator(start, bucket_s, m)
        end = start + m * bucket_s
        with self._snapshot():
            p = self._point(point)
            if p.vtype == "str":
                raise UserError(f"point {point!r} holds text; it cannot be downsampled")
            cell0 = self._cell0(point, p, cell)
            level = max((lv for lv in schema.LEVELS if float(bucket_s / lv).is_integer()), default=None)
            raw_from = -math.inf
            if level is not None and p.rolled_until is not None:
                self._add_rollups(acc, p, level, start, min(end, p.rolled_until), cell0)
                raw_from = p.rolled_until
            self._add_raw(acc, p, start, end, raw_from, cell0)
        return acc.result()

    def _add_rollups(self, acc: Accumulator, p: _Point, level: int, t_from: float, t_to: float,
                     cell0: int | None) -> None:
        rows = self._conn.execute("SELECT t, n, n_bad, vmin, vmax, vavg, cells FROM rollups WHERE point_id = ? "
                                  "AND level = ? AND t >= ? AND t < ? ORDER BY t",
                                  (p.id, level, t_from, t_to)).fetchall()
        if not rows:
            return
        t = np.array([r[0] for r in rows], dtype=np.float64)
        n = np.array([r[1] for r in rows], dtype=np.int64)
        n_bad = np.array([r[2] for r in rows], dtype=np.int64)
        if cell0 is None:
            lo, hi, avg = (np.array([r[i] for r in rows], dtype=np.float64) for i in (3, 4, 5))
        else:
            per_cell = np.full((len(rows), 3), np.nan)
            for i, r in enumerate(rows):
                if r[6] is not None:
                    steps = codec.decode_matrix(r[6])
                    if cell0 < steps.shape[1]:
                        col = steps[:, cell0]
                        per_cell[i] = np.where(col == codec.NAN_MARK, np.nan, codec.to_units(col, p.resolution))
            lo, hi, avg = per_cell.T
        acc.add_rollups(t, n, n_bad, lo, hi, avg)

    def _add_raw(self, acc: Accumulator, p: _Point, t_from: float, t_to: float, min_t: float,
                 cell0: int | None) -> None:
        if p.kind == "scalar":
            s = self._scalars(p, max(t_from, min_t), t_to)
            usable = np.isin(s.quality, schema.USABLE_CODES)
            acc.add_samples(s.t, usable, s.value, s.value, s.value)
            return
        cells0 = None if cell0 is None else np.array([cell0])
        for t, quality, q, _ in self._frames(p, t_from, t_to, cells0, min_t):
            v = np.where(q == codec.NAN_MARK, np.nan, q.astype(np.float64))
            if v.shape[1] == 0:
                continue
            usable = np.isin(quality, schema.USABLE_CODES)
            if cell0 is None:
                finite = np.isfinite(v)
                count = finite.sum(axis=1)
                with np.errstate(invalid="ignore", divide="ignore"):
                    mean = np.where(count > 0, np.where(finite, v, 0.0).sum(axis=1) / np.maximum(count, 1), np.nan)
                lo, hi = np.fmin.reduce(v, axis=1), np.fmax.reduce(v, axis=1)
            else:
                lo = hi = mean = v[:, 0]
            res = p.resolution
            acc.add_samples(t, usable, codec.to_units(lo, res), codec.to_units(hi, res), codec.to_units(mean, res))

    # -- events -------------------------------------------------------------------------------------------------
    def events(self, t_from: float, t_to: float, min_severity: Severity = Severity.INFO, text: str | None = None,
               limit: int = 10_000) -> list[Event]:
        """Events in [t_from, t_to) at or above `min_severity`, oldest first, at most `limit`. `text` keeps
        events whose message, source, kind or point contains it (case-insensitive)."""
        _check_range(t_from, t_to)
        sql = ("SELECT time, source, kind, message, severity, point, value, limit_, seq FROM events "
               "WHERE time >= ? AND time < ? AND severity >= ?")
        args: list[object] = [t_from, t_to, int(min_severity)]
        if text:
            like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            sql += " AND (" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in ("message", "source", "kind", "point")) + ")"
            args += [like] * 4
        sql += " ORDER BY time, id LIMIT ?"
        args.append(int(limit))
        with self._snapshot():
            rows = self._conn.execute(sql, args).fetchall()
        return [Event(time, source, kind, message, Severity(sev), point, value, limit_, seq)
                for time, source, kind, message, sev, point, value, limit_, seq in rows]


def _fit(q: np.ndarray, width: int) -> np.ndarray:
    """Pad (with the NaN marker) or cut a quantised block to `width` columns."""
    if q.shape[1] == width:
        return q
    out = np.full((q.shape[0], width), codec.NAN_MARK, dtype=np.int64)
    k = min(width, q.shape[1])
    out[:, :k] = q[:, :k]
    return out
