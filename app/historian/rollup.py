"""Bucket aggregation (min/max/avg per time bucket), shared by the writer's roll-ups and the reader.

Pure numpy. Buckets are aligned to the epoch: bucket k of size B starts at floor(t / B) * B. Only usable
samples (GOOD/MANUAL/SIMULATED) and finite values count towards min/max/avg; other samples are counted
as `n_bad` so periods of COMM_LOST stay visible in aggregates.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Buckets:
    """Per-bucket aggregates: start time `t`, `vmin`, `vmax`, `vavg` (NaN where `n` is 0), `n` usable
    samples, `n_bad` unusable samples. All arrays have one element per bucket."""

    t: np.ndarray
    vmin: np.ndarray
    vmax: np.ndarray
    vavg: np.ndarray
    n: np.ndarray
    n_bad: np.ndarray


class Accumulator:
    """Dense accumulation into `m` buckets starting at `start` (epoch-aligned, width `bucket_s`)."""

    def __init__(self, start: float, bucket_s: float, m: int) -> None:
        self.start, self.bucket_s, self.m = start, bucket_s, m
        self.lo = np.full(m, np.nan)
        self.hi = np.full(m, np.nan)
        self.total = np.zeros(m)
        self.count = np.zeros(m, dtype=np.int64)  # finite usable values (weights of the average)
        self.n = np.zeros(m, dtype=np.int64)
        self.n_bad = np.zeros(m, dtype=np.int64)

    def index(self, t: np.ndarray) -> np.ndarray:
        return np.floor((np.asarray(t, dtype=np.float64) - self.start) / self.bucket_s).astype(np.int64)

    def add_samples(self, t: np.ndarray, usable: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                    avg: np.ndarray) -> None:
        """Raw samples: per-sample low/high/mean (equal for one value; across cells for a rack)."""
        idx = self.index(t)
        keep = (idx >= 0) & (idx < self.m)
        idx, usable = idx[keep], usable[keep]
        lo, hi, avg = lo[keep], hi[keep], avg[keep]
        np.add.at(self.n_bad, idx[~usable], 1)
        idx, lo, hi, avg = idx[usable], lo[usable], hi[usable], avg[usable]
        np.add.at(self.n, idx, 1)
        finite = np.isfinite(avg)
        np.fmin.at(self.lo, idx, lo)
        np.fmax.at(self.hi, idx, hi)
        np.add.at(self.total, idx[finite], avg[finite])
        np.add.at(self.count, idx[finite], 1)

    def add_rollups(self, t: np.ndarray, n: np.ndarray, n_bad: np.ndarray, vmin: np.ndarray,
                    vmax: np.ndarray, vavg: np.ndarray) -> None:
        """Roll-up rows (bucket start, counts, min/max/avg) merged into the coarser buckets."""
        idx = self.index(t)
        keep = (idx >= 0) & (idx < self.m)
        idx, n, n_bad = idx[keep], n[keep], n_bad[keep]
        vmin, vmax, vavg = vmin[keep], vmax[keep], vavg[keep]
        np.add.at(self.n, idx, n)
        np.add.at(self.n_bad, idx, n_bad)
        np.fmin.at(self.lo, idx, vmin)
        np.fmax.at(self.hi, idx, vmax)
        finite = np.isfinite(vavg) & (n > 0)
        np.add.at(self.total, idx[finite], vavg[finite] * n[finite])
        np.add.at(self.count, idx[finite], n[finite])

    def result(self) -> Buckets:
        with np.errstate(invalid="ignore", divide="ignore"):
            avg = np.where(self.count > 0, self.total / np.maximum(self.count, 1), np.nan)
        t = self.start + self.bucket_s * np.arange(self.m, dtype=np.float64)
        return Buckets(t, self.lo, self.hi, avg, self.n, self.n_bad)


@dataclass(frozen=True)
class CellRollup:
    """Roll-up of a vector block at one level: per bucket (k) and cell (c)."""

    t: np.ndarray        # (k,) bucket starts
    n: np.ndarray        # (k,) usable samples
    n_bad: np.ndarray    # (k,) unusable samples
    vmin: np.ndarray     # (k, c), NaN where a cell had no finite usable value
    vmax: np.ndarray
    vavg: np.ndarray


def cell_rollup(t: np.ndarray, usable: np.ndarray, values: np.ndarray, level: float) -> CellRollup:
    """Per-cell min/max/avg of an (n, c) float block per `level`-second bucket."""
    b = np.floor(np.asarray(t, dtype=np.float64) / level).astype(np.int64)
    order = np.argsort(b, kind="stable")
    b, usable, values = b[order], usable[order], values[order]
    keys, first = np.unique(b, return_index=True)
    n = np.add.reduceat(usable.astype(np.int64), first)
    n_bad = np.add.reduceat((~usable).astype(np.int64), first)
    v = np.where(usable[:, None], values, np.nan)
    finite = np.isfinite(v)
    vmin = np.fmin.reduceat(v, first, axis=0)
    vmax = np.fmax.reduceat(v, first, axis=0)
    total = np.add.reduceat(np.where(finite, v, 0.0), first, axis=0)
    count = np.add.reduceat(finite.astype(np.int64), first, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        vavg = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return CellRollup(keys.astype(np.float64) * level, n, n_bad, vmin, vmax, vavg)


def across_cells(lo: np.ndarray, hi: np.ndarray, avg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise (min of lo, max of hi, mean of finite avg) of (k, c) arrays; NaN for all-NaN rows."""
    vmin = np.fmin.reduce(lo, axis=1) if lo.shape[1] else np.full(lo.shape[0], np.nan)
    vmax = np.fmax.reduce(hi, axis=1) if hi.shape[1] else np.full(hi.shape[0], np.nan)
    finite = np.isfinite(avg)
    count = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        vavg = np.where(count > 0, np.where(finite, avg, 0.0).sum(axis=1) / np.maximum(count, 1), np.nan)
    return vmin, vmax, vavg
