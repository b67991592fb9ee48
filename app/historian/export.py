"""Export a selection of history to CSV or Parquet (pyarrow optional), and parse user-given times.

File layout (both formats): one row per sample, and per cell for vector points (long format, so racks
with different cell counts fit one table). Columns:
  t_s       epoch seconds (float)
  time_utc  ISO 8601 UTC with milliseconds
  point     point name
  cell      cell number, 1-based (empty / null for scalar points)
  value     numeric value (bools as 0/1; empty / null for NaN and for text points)
  text      value of text points (empty / null otherwise)
  quality   GOOD, STALE, BAD, COMM_LOST, MANUAL or SIMULATED
Rows are grouped by point (points sorted by name), time order within a point. The file is written to a
temporary name next to `out_path` and renamed when complete, so an error leaves nothing half-written.
"""
from __future__ import annotations

import csv
import math
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Callable

import numpy as np

from app.core.errors import UserError
from app.historian import schema
from app.historian.reader import HistorianReader, PointInfo, Series

COLUMNS = ("t_s", "time_utc", "point", "cell", "value", "text", "quality")
WINDOW_S = 3600.0  # history is read one window at a time: bounded memory, steady progress
_PARQUET_ROWS = 262_144
_QUALITY_NAMES = np.array([q.value for q in schema.QUALITIES], dtype=object)


def parse_time(text: str) -> float:
    """Epoch seconds from ISO 8601 (`2024-05-01T12:00:00`, optional zone `Z`/`+02:00`; no zone means
    local time; a date alone is local midnight) or from a plain number of epoch seconds."""
    s = str(text).strip()
    try:
        value = float(s)
    except ValueError:
        pass
    else:
        if math.isfinite(value):
            return value
        raise UserError(f"time {text!r} is not a finite number of epoch seconds")
    try:
        return datetime.fromisoformat(s).timestamp()
    except (ValueError, OverflowError, OSError):
        raise UserError(f"cannot read time {text!r}: use ISO 8601 like 2024-05-01T12:00:00 (optionally with a "
                        f"zone such as Z or +02:00; without one it is local time) or epoch seconds") from None


def export(db_path: str | Path, t_from: float, t_to: float, pattern: str, out_path: str | Path,
           progress: Callable[[float], None] | None = None) -> int:
    """Write history of points matching the glob `pattern` in [t_from, t_to) to `out_path` (.csv or
    .parquet); returns data rows written. `progress(fraction)` is called in the caller's thread with
    0..1 as windows complete (last call 1.0). Raises UserError naming what to fix."""
    out = Path(out_path)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise UserError(f"export file {out}: the name must end in .csv or .parquet")
    if not out.parent.is_dir():
        raise UserError(f"export file {out}: folder {out.parent} does not exist")
    if not (math.isfinite(t_from) and math.isfinite(t_to)) or t_to <= t_from:
        raise UserError(f"export range: --to ({t_to!r}) must be after --from ({t_from!r})")
    with HistorianReader(db_path) as reader:
        points = reader.points(pattern)
        if not points:
            raise UserError(f"no recorded point matches {pattern!r} in {reader.db_path}")
        sink = _ParquetSink if suffix == ".parquet" else _CsvSink
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
        os.close(fd)
        try:
            with sink(tmp) as write:
                rows = _copy(reader, points, t_from, t_to, write, progress)
            os.replace(tmp, out)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    return rows


def _copy(reader: HistorianReader, points: list[PointInfo], t_from: float, t_to: float,
          write: Callable[[dict], None], progress: Callable[[float], None] | None) -> int:
    edges = np.append(np.arange(t_from, t_to, WINDOW_S), t_to)
    total = len(points) * (len(edges) - 1)
    rows = done = 0
    for p in points:
        for w0, w1 in zip(edges[:-1], edges[1:]):
            chunk = _chunk(p, reader.cells(p.name, w0, w1) if p.kind == "vector" else reader.raw(p.name, w0, w1))
            if len(chunk["t_s"]):
                write(chunk)
                rows += len(chunk["t_s"])
            done += 1
            if progress is not None:
                progress(done / total)
    return rows


def _chunk(p: PointInfo, s: Series) -> dict:
    """Long-format columns (numpy arrays) for one window of one point."""
    n = len(s.t)
    if p.kind == "vector":
        k = s.value.shape[1]
        return {"t_s": np.repeat(s.t, k), "point": p.name, "cell": np.tile(np.arange(1, k + 1), n),
                "value": s.value.astype(np.float64).ravel(), "text": None,
                "quality": np.repeat(_QUALITY_NAMES[s.quality], k), "decimals": _decimals(p.resolution)}
    if p.vtype == "str":
        return {"t_s": s.t, "point": p.name, "cell": None, "value": np.full(n, np.nan), "text": s.value,
                "quality": _QUALITY_NAMES[s.quality], "decimals": None}
    return {"t_s": s.t, "point": p.name, "cell": None, "value": s.value, "text": None,
            "quality": _QUALITY_NAMES[s.quality], "decimals": None}


def _decimals(resolution: float | None) -> int:
    return max(0, math.ceil(-math.log10(resolution) - 1e-9)) if resolution else 6


def _iso(t: np.ndarray) -> np.ndarray:
    ms = np.round(np.asarray(t) * 1000.0).astype("int64").astype("datetime64[ms]")
    return np.char.add(np.datetime_as_string(ms, unit="ms"), "Z")


class _CsvSink:
    def __init__(self, path: str) -> None:
        self._f = open(path, "w", newline="", encoding="utf-8")
        self._w = csv.writer(self._f)
        self._w.writerow(COLUMNS)

    def __enter__(self) -> Callable[[dict], None]:
        return self.write

    def __exit__(self, *exc: object) -> None:
        self._f.close()

    def write(self, c: dict) -> None:
        n = len(c["t_s"])
        t_s = [f"{t:.3f}" for t in c["t_s"]]
        iso = _iso(c["t_s"]).tolist()
        cells = [""] * n if c["cell"] is None else c["cell"].tolist()
        fmt = f"{{:.{c['decimals']}f}}" if c["decimals"] is not None else "{:.15g}"
        values = ["" if v != v else fmt.format(v) for v in c["value"].tolist()]
        text = [""] * n if c["text"] is None else ["" if x is None else str(x) for x in c["text"]]
        self._w.writerows(zip(t_s, iso, [c["point"]] * n, cells, values, text, c["quality"].tolist()))


class _ParquetSink:
    def __init__(self, path: str) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise UserError("writing .parquet needs the optional package pyarrow (pip install pyarrow); "
                            "or export to a .csv file") from None
        self._pa = pa
        self._schema = pa.schema([("t_s", pa.float64()), ("time_utc", pa.timestamp("ms", tz="UTC")),
                                  ("point", pa.string()), ("cell", pa.int32()), ("value", pa.float64()),
                                  ("text", pa.string()), ("quality", pa.string())])
        self._writer = pq.ParquetWriter(path, self._schema)
        self._pending: list = []
        self._rows = 0

    def __enter__(self) -> Callable[[dict], None]:
        return self.write

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            if exc_type is None:
                self._drain()
        finally:
            self._writer.close()

    def write(self, c: dict) -> None:
        pa, n = self._pa, len(c["t_s"])
        t = np.asarray(c["t_s"], dtype=np.float64)
        self._pending.append(pa.table({
            "t_s": t,
            "time_utc": pa.array(np.round(t * 1000.0).astype("int64"), pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            "point": pa.array([c["point"]] * n, pa.string()),
            "cell": pa.nulls(n, pa.int32()) if c["cell"] is None else pa.array(c["cell"].astype(np.int32)),
            "value": pa.array(np.asarray(c["value"], dtype=np.float64), from_pandas=True),
            "text": pa.nulls(n, pa.string()) if c["text"] is None else pa.array(list(c["text"]), pa.string()),
            "quality": pa.array(c["quality"].tolist(), pa.string())}, schema=self._schema))
        self._rows += n
        if self._rows >= _PARQUET_ROWS:
            self._drain()

    def _drain(self) -> None:
        if self._pending:
            self._writer.write_table(self._pa.concat_tables(self._pending))
            self._pending, self._rows = [], 0
