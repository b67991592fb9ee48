import numpy as np
from hypothesis import given, settings, strategies as st

from app.historian import codec


def _frame(n, cells, seed=0):
    rng = np.random.default_rng(seed)
    v = 3.3 + rng.normal(0, 0.01, cells)[None, :] + rng.normal(0, 0.0015, (n, cells))
    return (np.arange(n) + 1.7e9, np.zeros(n, np.uint8), v.astype(np.float32))


def test_resolution_by_unit_suffix():
    assert codec.resolution_for("site.bess1.rack03.cell_voltages_v") == 0.001
    assert codec.resolution_for("site.bess1.rack03.cell_temperatures_c") == 0.1
    assert codec.resolution_for("site.bess1.rack03.cell_soc_pct") == 0.1
    assert codec.resolution_for("site.bess1.rack03.cell_energy_kwh") == 0.01
    assert codec.resolution_for("site.bess1.rack03.something") == codec.DEFAULT_RESOLUTION


def test_frame_round_trip_keeps_resolution_nan_and_zero():
    t, quality, v = _frame(120, 37)
    v[3, 4], v[5, 6], v[7, 8] = np.nan, np.inf, 0.0
    q = codec.quantise(v, 0.001)
    header, data = codec.encode_frame(t, quality, q)
    h = codec.FrameHeader(header)
    back = codec.dequantise(h.decode_all(data), 0.001)
    assert np.array_equal(h.t, t)
    finite = np.isfinite(v)
    assert np.array_equal(np.isnan(back), ~finite)
    assert np.array_equal(back[finite], (np.round(v[finite].astype(np.float64) * 1000) / 1000).astype(np.float32))
    assert back[7, 8] == 0.0


def test_one_group_decodes_alone():
    t, quality, v = _frame(300, 400)
    q = codec.quantise(v, 0.001)
    header, data = codec.encode_frame(t, quality, q)
    h = codec.FrameHeader(header)
    g = h.group_of(250)
    off, length = h.chunk_span(g)
    assert length < len(data) / 10
    assert np.array_equal(h.decode_group(g, data[off:off + length])[:, 250 - g * h.group], q[:, 250])


def test_compression_meets_two_bytes_per_value():
    t, quality, v = _frame(300, 400)
    header, data = codec.encode_frame(t, quality, codec.quantise(v, 0.001))
    assert (len(header) + len(data)) / v.size <= 2.0


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 70),
       st.lists(st.integers(-2 ** 40, 2 ** 40), min_size=1, max_size=10), st.randoms())
def test_round_trip_any_integers(n, cells, pool, rnd):
    q = np.array([[rnd.choice(pool + [codec.NAN_MARK]) for _ in range(cells)] for _ in range(n)], dtype=np.int64)
    header, data = codec.encode_frame(np.arange(n, dtype=float), np.zeros(n, np.uint8), q)
    assert np.array_equal(codec.FrameHeader(header).decode_all(data), q)
    assert np.array_equal(codec.decode_matrix(codec.encode_matrix(q)), q)
