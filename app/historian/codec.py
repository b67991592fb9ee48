"""Frame codec: per-cell vector samples <-> compact blobs. Pure numpy + zlib, no I/O, no threads.

A frame holds `n` samples of one vector point (one rack): timestamps, one quality code per sample and an
(n, cells) value matrix. Values are quantised to the point's resolution, chosen by the unit suffix of
the point name (RESOLUTION): `_v` 1 mV, `_a` 10 mA, `_c` 0.1 degC, `_pct` 0.1 %, `_kw`/`_kwh`/`_ah` 0.01,
`_mohm` 0.001; anything else 0.001. A reading is stored as round(value / resolution); NaN and
infinities become a NaN marker and come back as NaN (0.0 is a reading like any other).

Encoding: cells are split into groups (chunks) so a reader can decompress one cell's group without
the rest. Inside a chunk, row 0 is delta-coded across cells, rows 1.. across time; the deltas are
zigzagged, narrowed to the smallest unsigned type, byte-shuffled and zlib-compressed.
The header blob (times, qualities, chunk table) is stored apart from the data blob.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

RESOLUTION: dict[str, float] = {
    "_v": 0.001, "_a": 0.01, "_c": 0.1, "_pct": 0.1, "_kw": 0.01, "_kwh": 0.01, "_ah": 0.01, "_mohm": 0.001,
}
DEFAULT_RESOLUTION = 0.001
NAN_MARK = np.iinfo(np.int64).min  # quantised NaN
_Q_LIMIT = float(2 ** 62)
_CHUNK_VALUES = 4096  # aim per chunk: a reader inflates about this many values to read one cell
_ZLEVEL = 1
_MAGIC = b"ESF1"
_HEAD = struct.Struct("<4sIIII")  # magic, samples, cells, cells per group, len(compressed times+quality)
_TABLE = np.dtype([("offset", "<u4"), ("length", "<u4"), ("width", "u1"), ("base", "<i8")])
_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def resolution_for(point: str) -> float:
    """Quantisation step of a vector point, from its unit suffix (see module docstring)."""
    for suffix in sorted(RESOLUTION, key=len, reverse=True):
        if point.endswith(suffix):
            return RESOLUTION[suffix]
    return DEFAULT_RESOLUTION


def quantise(values: np.ndarray, resolution: float) -> np.ndarray:
    """Float array -> int64 steps of `resolution`; NaN/inf/out of range -> NAN_MARK."""
    scaled = np.asarray(values, dtype=np.float64) / resolution
    ok = np.isfinite(scaled) & (np.abs(scaled) < _Q_LIMIT)
    q = np.rint(np.where(ok, scaled, 0.0)).astype(np.int64)
    q[~ok] = NAN_MARK
    return q


def to_units(steps, resolution: float):
    """Quantisation steps (int or float, NaN allowed) -> float64 value units. Divides by 1/resolution
    when that is a whole number, so 3300 steps of 1 mV is exactly 3.3."""
    inverse = 1.0 / resolution
    if abs(inverse - round(inverse)) < 1e-9 * inverse:
        return np.asarray(steps, dtype=np.float64) / round(inverse)
    return np.asarray(steps, dtype=np.float64) * resolution


def dequantise(q: np.ndarray, resolution: float) -> np.ndarray:
    """int64 steps -> float32 values (NaN for NAN_MARK)."""
    out = to_units(q, resolution)
    out[q == NAN_MARK] = np.nan
    return out.astype(np.float32)


def _zigzag(d: np.ndarray) -> np.ndarray:
    return ((d << 1) ^ (d >> 63)).view(np.uint64)


def _unzigzag(u: np.ndarray) -> np.ndarray:
    return ((u >> np.uint64(1)).view(np.int64)) ^ -((u & np.uint64(1)).view(np.int64))


def _encode_chunk(q: np.ndarray) -> tuple[bytes, int, int]:
    """(n, g) int64 block -> (compressed bytes, byte width, base value)."""
    base = int(q[0, 0])
    d = np.empty_like(q)
    with np.errstate(over="ignore"):
        d[0, 0] = 0
        d[0, 1:] = np.diff(q[0])
        d[1:] = np.diff(q, axis=0)
    z = _zigzag(d).ravel()
    top = int(z.max()) if z.size else 0
    width = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4 if top < 1 << 32 else 8
    narrow = z.astype(_UINT[width])
    raw = narrow.view(np.uint8).reshape(-1, width).T.tobytes() if width > 1 else narrow.tobytes()
    return zlib.compress(raw, _ZLEVEL), width, base


def _decode_chunk(data: bytes, width: int, base: int, n: int, g: int) -> np.ndarray:
    raw = np.frombuffer(zlib.decompress(data), dtype=np.uint8)
    if width > 1:
        raw = np.ascontiguousarray(raw.reshape(width, -1).T)
    d = _unzigzag(raw.view(_UINT[width]).astype(np.uint64)).reshape(n, g)
    with np.errstate(over="ignore"):
        d[0, 0] = base
        d[0] = np.cumsum(d[0])
        return np.cumsum(d, axis=0)


def group_cells(n_samples: int, n_cells: int) -> int:
    """Cells per chunk: about _CHUNK_VALUES values per chunk, at least one cell."""
    return max(1, min(n_cells, -(-_CHUNK_VALUES // max(n_samples, 1))))


def encode_frame(t: np.ndarray, quality: np.ndarray, q: np.ndarray) -> tuple[bytes, bytes]:
    """Encode times (n,), quality codes (n,) uint8 and quantised values (n, cells) -> (header, data)."""
    n, cells = q.shape
    g = group_cells(n, cells)
    starts = range(0, cells, g)
    table = np.zeros(len(starts), dtype=_TABLE)
    parts: list[bytes] = []
    offset = 0
    for i, c0 in enumerate(starts):
        blob, width, base = _encode_chunk(q[:, c0:c0 + g])
        table[i] = (offset, len(blob), width, base)
        parts.append(blob)
        offset += len(blob)
    tq = zlib.compress(np.asarray(t, dtype="<f8").tobytes() + np.asarray(quality, dtype=np.uint8).tobytes(),
                       _ZLEVEL)
    header = _HEAD.pack(_MAGIC, n, cells, g, len(tq)) + tq + table.tobytes()
    return header, b"".join(parts)


class FrameHeader:
    """Decoded frame header: times `t`, quality codes `quality`, and where each cell group lives."""

    __slots__ = ("n", "cells", "group", "t", "quality", "table")

    def __init__(self, header: bytes) -> None:
        magic, self.n, self.cells, self.group, ltq = _HEAD.unpack_from(header)
        if magic != _MAGIC:
            raise ValueError("not a historian frame header")
        tq = zlib.decompress(header[_HEAD.size:_HEAD.size + ltq])
        self.t = np.frombuffer(tq, dtype="<f8", count=self.n)
        self.quality = np.frombuffer(tq, dtype=np.uint8, offset=8 * self.n, count=self.n)
        self.table = np.frombuffer(header, dtype=_TABLE, offset=_HEAD.size + ltq)

    def group_of(self, cell0: int) -> int:
        """Chunk index holding 0-based cell `cell0`."""
        return cell0 // self.group

    def chunk_span(self, group: int) -> tuple[int, int]:
        """(byte offset, byte length) of chunk `group` inside the data blob."""
        row = self.table[group]
        return int(row["offset"]), int(row["length"])

    def decode_group(self, group: int, chunk: bytes) -> np.ndarray:
        """Quantised (n, cells in group) int64 matrix of chunk `group` from its compressed bytes."""
        row = self.table[group]
        width = min(self.group, self.cells - group * self.group)
        return _decode_chunk(chunk, int(row["width"]), int(row["base"]), self.n, width)

    def decode_all(self, data: bytes) -> np.ndarray:
        """Quantised (n, cells) int64 matrix from the whole data blob."""
        out = np.empty((self.n, self.cells), dtype=np.int64)
        for i in range(len(self.table)):
            off, length = self.chunk_span(i)
            c0 = i * self.group
            out[:, c0:c0 + self.group] = self.decode_group(i, data[off:off + length])
        return out


def encode_matrix(q: np.ndarray) -> bytes:
    """A small quantised (rows, cells) matrix (roll-up min/max/avg) -> one self-describing blob."""
    blob, width, base = _encode_chunk(q)
    return struct.pack("<IIBq", q.shape[0], q.shape[1], width, base) + blob


def decode_matrix(blob: bytes) -> np.ndarray:
    """Inverse of encode_matrix."""
    rows, cells, width, base = struct.unpack_from("<IIBq", blob)
    return _decode_chunk(blob[17:], width, base, rows, cells)
