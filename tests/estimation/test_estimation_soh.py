"""Capacity fade and resistance growth (app/estimation/soh.py) on data where the truth is known."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.chemistry import get_chemistry
from app.core.errors import UserError
from app.estimation.soh import CapacityEstimator, ResistanceEstimator

NOMINAL_AH = 5.0


def _ecm(chem_name, capacity_ah, r_scale, soc0, current, dt, seed=0):
    """Voltages (steps, n) of R0 + 2RC cells with the chemistry's resistances (per nominal Ah) times
    `r_scale`, true capacities `capacity_ah`, driven by the rack current `current` (steps,)."""
    chem, rng = get_chemistry(chem_name), np.random.default_rng(seed)
    r0, r1, r2 = (r * np.asarray(r_scale) / NOMINAL_AH for r in (chem.r0_ohm_ah, chem.r1_ohm_ah, chem.r2_ohm_ah))
    a1, a2 = np.exp(-dt / chem.tau1_s), np.exp(-dt / chem.tau2_s)
    soc = np.array(soc0, dtype=float) * np.ones(len(capacity_ah))
    v1, v2 = np.zeros_like(soc), np.zeros_like(soc)
    volts = np.empty((len(current), soc.size))
    for k, i in enumerate(current):
        soc = soc + i * dt / 3600 / np.asarray(capacity_ah)
        v1, v2 = a1 * v1 + r1 * (1 - a1) * i, a2 * v2 + r2 * (1 - a2) * i
        volts[k] = chem.ocv(soc) + r0 * i + v1 + v2 + rng.normal(0, 0.002, soc.size)
    return volts


def _cycles(dt, cycles, c_rate=0.5, dsoc=0.6, rest_s=2400.0):
    """Rack current: rest, discharge dsoc, rest, charge dsoc, ... ending with a rest and a step."""
    rest = [0.0] * int(rest_s / dt)
    move = int(dsoc / c_rate * 3600 / dt)
    one = rest + [-c_rate * NOMINAL_AH] * move + rest + [c_rate * NOMINAL_AH] * move
    return np.array(one * cycles + rest + [-c_rate * NOMINAL_AH])


def test_a_cell_with_90_pct_capacity_is_found_within_its_bounds():
    dt, current = 10.0, _cycles(10.0, 3)
    volts = _ecm("nmc", NOMINAL_AH * np.array([1.0, 0.9]), 1.0, 0.9, current, dt)
    est = CapacityEstimator("nmc", NOMINAL_AH, 2)
    for k in range(len(current)):
        est.update(dt, current[k], volts[k], 25.0)
    cap = est.estimate()
    assert (est.fused.count >= 5).all()
    assert cap.low_pct[0] <= 100.0 <= cap.high_pct[0]
    assert cap.low_pct[1] <= 90.0 <= cap.high_pct[1]
    assert cap.pct == pytest.approx([100.0, 90.0], abs=1.5)
    assert (cap.high_pct - cap.low_pct < 6.0).all()  # evidence narrowed the +-30 % prior


def test_rests_on_the_lfp_plateau_carry_no_capacity_evidence():
    """Mid-SOC LFP rests: the OCV hardly moves with SOC, so no pair is trusted and the prior stays."""
    dt, current = 10.0, _cycles(10.0, 2, dsoc=0.3)
    volts = _ecm("lfp", NOMINAL_AH * np.array([0.9]), 1.0, 0.65, current, dt)
    est = CapacityEstimator("lfp", NOMINAL_AH, 1)
    for k in range(len(current)):
        est.update(dt, current[k], volts[k], 25.0)
    assert est.fused.count[0] == 0
    assert est.estimate().low_pct[0] < 80.0 and est.estimate().high_pct[0] > 120.0


def test_a_gap_in_the_data_drops_the_open_pair():
    est = CapacityEstimator("nmc", NOMINAL_AH, 1, rest_s=60.0)
    chem = get_chemistry("nmc")
    est.update(60.0, 0.0, chem.ocv(0.9), 25.0)  # rested: calibration point at 90 %
    est.update(60.0, -NOMINAL_AH, chem.ocv(0.9), 25.0)  # leaves the rest: anchor
    est.update(1800.0, -NOMINAL_AH, chem.ocv(0.4), 25.0)  # half an hour unseen
    est.update(60.0, 0.0, chem.ocv(0.4), 25.0)
    est.update(1.0, -NOMINAL_AH, chem.ocv(0.4), 25.0)
    assert est.fused.count[0] == 0


def test_a_cell_with_150_pct_resistance_is_found_within_its_bounds():
    dt = 1.0
    current = np.repeat(np.tile([0.0, 1.0, -1.0, 0.5], 12), 30) * NOMINAL_AH
    volts = _ecm("lfp", np.full(3, NOMINAL_AH), np.array([1.0, 1.5, 1.5]), 0.5, current, dt)
    temps = np.array([25.0, 25.0, np.nan])  # the third cell's sensor is missing
    est = ResistanceEstimator("lfp", NOMINAL_AH, 3)
    for k in range(len(current)):
        est.update(dt, current[k], volts[k], temps)
    res = est.estimate()
    assert est.fused.count[2] == 0 and res.pct[2] == 100.0  # no temperature, no evidence
    assert res.low_pct[0] <= 100.0 <= res.high_pct[0]
    assert res.low_pct[1] <= 150.0 <= res.high_pct[1]
    assert res.pct[:2] == pytest.approx([100.0, 150.0], abs=5.0)


def test_resistance_is_compared_with_the_table_at_the_cells_temperature():
    chem = get_chemistry("nmc")
    est = ResistanceEstimator(chem, NOMINAL_AH, 2, max_dt_s=1.0)
    temps = np.array([25.0, 0.0])
    r = est.reference_ohm(1.0, temps)  # a healthy cell at each temperature
    assert r[1] > r[0]
    for k in range(20):
        i = NOMINAL_AH * (k % 2)
        est.update(1.0, i, 3.7 + r * i, temps)
    assert est.estimate().pct == pytest.approx([100.0, 100.0], abs=0.5)


def test_bad_sizes_are_refused():
    with pytest.raises(UserError):
        CapacityEstimator("nmc", NOMINAL_AH, 0)
    with pytest.raises(UserError):
        ResistanceEstimator("nmc", -1.0, 4)


def _pairs(est, chem, socs, capacity_ah):
    """Rest at each SOC in turn, moving between them at 1 C (exact charge, rested OCV)."""
    for a, b in zip(socs[:-1], socs[1:]):
        est.update(30.0, 0.0, chem.ocv(a), 25.0)
        est.update(30.0, 0.0, chem.ocv(a), 25.0)
        sign = 1.0 if b > a else -1.0
        seconds = abs(b - a) * 3600.0
        est.update(seconds, sign * capacity_ah, chem.ocv(b), 25.0)  # leaves the rest at a
    est.update(30.0, 0.0, chem.ocv(socs[-1]), 25.0)
    est.update(30.0, 0.0, chem.ocv(socs[-1]), 25.0)
    est.update(1.0, NOMINAL_AH, chem.ocv(socs[-1]), 25.0)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.05, 0.95), min_size=2, max_size=8), st.floats(0.6, 1.2), st.integers(1, 4))
def test_capacity_bounds_hold_the_estimate_and_more_evidence_narrows_them(socs, ratio, extra):
    chem = get_chemistry("nmc")
    est = CapacityEstimator(chem, NOMINAL_AH, 1, rest_s=60.0, max_gap_s=1e6, fade_std_per_cycle=0.0)
    _pairs(est, chem, socs, ratio * NOMINAL_AH)
    first = est.estimate()
    assert first.low_pct[0] <= first.pct[0] <= first.high_pct[0]
    _pairs(est, chem, [socs[-1]] + [0.1, 0.9] * extra, ratio * NOMINAL_AH)
    more = est.estimate()
    assert more.low_pct[0] <= more.pct[0] <= more.high_pct[0]
    assert more.high_pct[0] - more.low_pct[0] < first.high_pct[0] - first.low_pct[0]
    assert more.low_pct[0] <= 100.0 * ratio <= more.high_pct[0]


@settings(max_examples=30, deadline=None)
@given(st.floats(0.5, 3.0), st.integers(1, 10), st.integers(1, 10))
def test_resistance_bounds_hold_the_estimate_and_more_steps_narrow_them(scale, steps, extra):
    est = ResistanceEstimator("nmc", NOMINAL_AH, 1, drift_std_per_day=0.0)
    r = scale * est.reference_ohm(1.0, 25.0)
    widths = []
    for k in range(2 * (steps + extra)):
        i = NOMINAL_AH * (k % 2)
        est.update(1.0, i, 3.7 + r * i, 25.0)
        if k + 1 in (2 * steps, 2 * (steps + extra)):
            b = est.estimate()
            assert b.low_pct[0] <= b.pct[0] <= b.high_pct[0]
            widths.append(b.high_pct[0] - b.low_pct[0])
    assert widths[1] < widths[0]
    assert b.low_pct[0] <= 100.0 * scale <= b.high_pct[0]
