"""SocEstimator (vectorised EKF) and pack_soc on synthetic equivalent-circuit data."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from app.core.chemistry import get_chemistry
from app.core.errors import UserError
from app.estimation.soc import SocEstimator, pack_soc


def _ecm_cells(chem_name, soc0, current, capacity_ah, offset_a, rng, dt=1.0):
    """Voltages of an R0 + 2RC cell (the chemistry's own parameters) driven by `current` (steps, n)."""
    chem = get_chemistry(chem_name)
    r0, r1, r2 = (r / capacity_ah for r in (chem.r0_ohm_ah, chem.r1_ohm_ah, chem.r2_ohm_ah))
    a1, a2 = np.exp(-dt / chem.tau1_s), np.exp(-dt / chem.tau2_s)
    soc, v1, v2 = np.array(soc0, dtype=float), 0.0, 0.0
    volts, socs = [], []
    for i in current:
        soc = soc + i * dt / (3600 * capacity_ah)
        v1 = a1 * v1 + r1 * (1 - a1) * i
        v2 = a2 * v2 + r2 * (1 - a2) * i
        volts.append(chem.ocv(soc) + r0 * i + v1 + v2 + rng.normal(0, 0.002, soc.shape))
        socs.append(soc)
    return np.array(volts), np.array(current) + offset_a, np.array(socs)


def test_converges_from_unknown_soc_and_learns_the_offset():
    rng = np.random.default_rng(1)
    n, dt, cap = 4, 2.0, 5.0
    soc0 = np.array([0.2, 0.4, 0.6, 0.8])
    t = np.arange(0, 4 * 3600, dt)
    current = np.where((t // 1800) % 2 == 0, -2.5, 2.5)[:, None] * np.ones(n)
    current[(t % 1800) > 1200] = 0.0  # rests
    volts, measured, truth = _ecm_cells("nmc", soc0, current, cap, 0.05, rng, dt)
    est = SocEstimator("nmc", cap, n)
    for k in range(len(t)):
        soc = est.update(dt, measured[k], volts[k], 25.0)
    assert np.abs(soc - truth[-1]).max() < 0.02
    assert est.offset_a == pytest.approx(np.full(n, 0.05), abs=0.02)
    assert np.all(est.soc_std < 0.05)


def test_cells_are_independent_and_match_single_cell_runs():
    rng = np.random.default_rng(2)
    current = rng.normal(0, 1.0, (600, 3))
    volts, measured, _ = _ecm_cells("lfp", np.array([0.3, 0.5, 0.9]), current, 2.3, 0.0, rng)
    many = SocEstimator("lfp", 2.3, 3)
    singles = [SocEstimator("lfp", 2.3, 1) for _ in range(3)]
    for k in range(600):
        out = many.update(1.0, measured[k], volts[k], 25.0)
        for j, est in enumerate(singles):
            assert est.update(1.0, measured[k, j], volts[k, j], 25.0)[0] == pytest.approx(out[j], abs=1e-9)


def test_bad_samples_leave_a_cell_untouched():
    est = SocEstimator("nmc", 5.0, 3)
    soc = est.update(1.0, [0.0, 0.0, np.nan], [3.7, 3.8, 3.9], 25.0)
    assert np.isfinite(soc[:2]).all() and np.isnan(soc[2])  # never seen: unknown, not 0
    before = est.x.copy()
    soc = est.update(1.0, [-5.0, np.nan, -5.0], [3.6, 3.8, np.inf], [25.0, 25.0, 25.0])
    assert not np.allclose(est.x[:, 0], before[:, 0])  # the valid cell moved on
    assert est.x[:, 1] == pytest.approx(before[:, 1])
    assert np.isnan(soc[2])
    soc = est.update(1.0, [-5.0, -5.0, 0.0], [3.6, 3.7, 3.9], 25.0)
    assert np.isfinite(soc).all()


def test_end_of_charge_pins_soc_to_full():
    est = SocEstimator("lfp", 2.3, 1)
    est.update(1.0, 0.0, 3.30, 25.0)  # seeded somewhere on the plateau
    for _ in range(600):  # CV tail: 3.6 V with a C/20 taper current
        soc = est.update(1.0, 0.115, 3.6, 25.0)
    assert soc[0] > 0.97


def test_bad_construction_is_a_user_error():
    with pytest.raises(UserError, match="capacity_ah"):
        SocEstimator("nmc", 0.0, 2)
    with pytest.raises(UserError, match="n_cells"):
        SocEstimator("nmc", 5.0, 0)
    with pytest.raises(UserError, match="unknown chemistry"):
        SocEstimator("nope", 5.0, 1)


cell_socs = arrays(np.float64, st.integers(1, 64), elements=st.floats(0, 1))


@settings(max_examples=200, deadline=None)
@given(cell_socs)
def test_pack_soc_is_min_max_aware(soc):
    pack = pack_soc(soc)
    assert soc.min() - 1e-12 <= pack <= soc.max() + 1e-12
    if soc.min() == 0:
        assert pack == 0
    elif soc.max() == 1 and soc.min() > 1e-6:  # (a pack both empty and full reads empty)
        assert pack == pytest.approx(1.0)


def test_pack_soc_balanced_and_rows():
    assert pack_soc([0.4, 0.4, 0.4]) == pytest.approx(0.4)
    # a 20 % / 90 % pack is far from its 55 % average: 2/3 of the way to empty-limited
    assert pack_soc([0.2, 0.9]) == pytest.approx(0.2 / 0.3)
    assert pack_soc(np.array([[0.5, 0.5], [0.0, 1.0]])) == pytest.approx([0.5, 0.0])
