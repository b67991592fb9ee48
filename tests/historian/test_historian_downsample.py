"""Downsampling (raw and roll-up paths) against plain numpy on the same data."""
import math

import numpy as np
import pytest

from app.core.errors import UserError
from app.historian.reader import HistorianReader, nice_bucket
from app.historian.schema import QUALITY_CODE
from app.core.sample import Quality
from app.historian.store import Batch, HistorianStore, ScalarSample, VectorSample

from conftest import T0

RACK = "site.bess1.rack01.cell_voltages_v"
POWER = "site.pcs1.active_power_kw"
GOOD, LOST = QUALITY_CODE[Quality.GOOD], QUALITY_CODE[Quality.COMM_LOST]


def _data(n=1800, cells=12, seed=3):
    rng = np.random.default_rng(seed)
    t = T0 + 17.0 + np.arange(n, dtype=np.float64)  # not aligned to buckets on purpose
    mv = 3300 + np.cumsum(rng.integers(-3, 4, (n, cells)), axis=0)  # values on the 1 mV grid
    v = (mv / 1000).astype(np.float32)
    quality = np.where(rng.random(n) < 0.05, LOST, GOOD).astype(np.uint8)
    p = rng.normal(100, 30, n).round(3)
    return t, v, quality, p


def _write(store, t, v, quality, p, per_batch=10):
    for i in range(0, len(t), per_batch):
        b = Batch()
        for k in range(i, min(i + per_batch, len(t))):
            b.vectors.append(VectorSample(RACK, float(t[k]), int(quality[k]), v[k]))
            b.scalars.append(ScalarSample(POWER, float(t[k]), int(quality[k]), float(p[k])))
        store.write(b)


def _expected(t, x, quality, start, bucket, m):
    """(min, max, mean, n, n_bad) per bucket from numpy, usable samples only."""
    idx = np.floor((t - start) / bucket).astype(int)
    out = np.full((m, 3), np.nan)
    n = np.zeros(m, int)
    n_bad = np.zeros(m, int)
    for k in range(m):
        sel = idx == k
        good = sel & (quality == GOOD)
        n[k], n_bad[k] = good.sum(), (sel & (quality != GOOD)).sum()
        if good.any():
            out[k] = x[good].min(), x[good].max(), x[good].mean()
    return out, n, n_bad


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """1800 s written in blocks of 60 s; the last part left in the open block (not sealed)."""
    db = tmp_path_factory.mktemp("ds") / "h.sqlite"
    t, v, quality, p = _data()
    store = HistorianStore(db, block_s=60)
    _write(store, t, v, quality, p)
    store.roll_scalars(math.floor(t[1200] / 60) * 60)  # scalar roll-ups up to here, raw after
    store.conn.close()  # leave the open block unsealed, as after a crash
    reader = HistorianReader(db)
    yield reader, (t, v, quality, p)
    reader.close()


@pytest.mark.parametrize("bucket", [7.0, 60.0, 120.0, 900.0])
def test_one_cell_matches_numpy(history, bucket):
    reader, (t, v, quality, _) = history
    b = reader.downsample(RACK, t[0], t[-1] + 1, bucket, cell=5)
    start = math.floor(t[0] / bucket) * bucket
    exp, n, n_bad = _expected(t, v[:, 4].astype(np.float64), quality, start, bucket, len(b.t))
    assert np.array_equal(b.n, n) and np.array_equal(b.n_bad, n_bad)
    assert np.allclose(b.vmin, exp[:, 0], atol=1e-6, equal_nan=True)
    assert np.allclose(b.vmax, exp[:, 1], atol=1e-6, equal_nan=True)
    tol = 1e-6 if bucket % 60 else 0.0005 + 1e-6  # roll-up averages carry the 1 mV resolution
    assert np.allclose(b.vavg, exp[:, 2], atol=tol, equal_nan=True)
    assert b.t[0] == start and np.all(np.diff(b.t) == bucket)


@pytest.mark.parametrize("bucket", [10.0, 60.0, 900.0])
def test_rack_trend_matches_numpy(history, bucket):
    reader, (t, v, quality, _) = history
    b = reader.downsample(RACK, t[0], t[-1] + 1, bucket)
    start = math.floor(t[0] / bucket) * bucket
    v64 = v.astype(np.float64)
    lo = _expected(t, v64.min(axis=1), quality, start, bucket, len(b.t))[0]
    hi = _expected(t, v64.max(axis=1), quality, start, bucket, len(b.t))[0]
    mean = _expected(t, v64.mean(axis=1), quality, start, bucket, len(b.t))[0]
    assert np.allclose(b.vmin, lo[:, 0], atol=1e-6, equal_nan=True)
    assert np.allclose(b.vmax, hi[:, 1], atol=1e-6, equal_nan=True)
    assert np.allclose(b.vavg, mean[:, 2], atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("bucket", [5.0, 60.0, 900.0])
def test_scalar_matches_numpy(history, bucket):
    reader, (t, _, quality, p) = history
    b = reader.downsample(POWER, t[0], t[-1] + 1, bucket)
    start = math.floor(t[0] / bucket) * bucket
    exp, n, n_bad = _expected(t, p, quality, start, bucket, len(b.t))
    assert np.array_equal(b.n, n) and np.array_equal(b.n_bad, n_bad)
    for k, col in enumerate((b.vmin, b.vmax, b.vavg)):
        assert np.allclose(col, exp[:, k], atol=1e-9, equal_nan=True)


def test_raw_series_and_cells(history):
    reader, (t, v, quality, p) = history
    s = reader.raw(RACK, t[100], t[400], cell=12)
    assert np.array_equal(s.t, t[100:400]) and np.array_equal(s.value, v[100:400, 11])
    assert np.array_equal(s.quality, quality[100:400])
    m = reader.cells(RACK, t[0], t[-1] + 1, cells=[3, 1, 40])
    assert np.array_equal(m.value[:, :2], v[:, [2, 0]]) and np.isnan(m.value[:, 2]).all()
    assert np.array_equal(reader.cells(RACK, t[0], t[50]).value, v[:50])
    sc = reader.raw(POWER, t[0], t[-1] + 1)
    assert np.array_equal(sc.value, p)


def test_reader_errors_name_the_problem(history):
    reader, (t, _, _, _) = history
    with pytest.raises(UserError, match="cell numbers start at 1"):
        reader.raw(RACK, t[0], t[10], cell=0)
    with pytest.raises(UserError, match="give a cell number"):
        reader.raw(RACK, t[0], t[10])
    with pytest.raises(UserError, match="site.nope"):
        reader.raw("site.nope", t[0], t[10])
    with pytest.raises(UserError, match="after its start"):
        reader.downsample(POWER, t[10], t[0], 60)
    with pytest.raises(UserError, match="bucket"):
        reader.downsample(POWER, t[0], t[10], 0)


def test_nice_bucket():
    assert nice_bucket(86400, 1000) == 120.0
    assert nice_bucket(60, 1000) == 1.0
    assert nice_bucket(400 * 86400, 100) == 4 * 86400
