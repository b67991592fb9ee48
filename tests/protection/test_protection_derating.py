"""Derating: tapers before the limits, temperature tables, SOC taper, hysteresis, reason text."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.protection.derating import RackDerating
from protection_cases import CAPACITY_AH, CELLS, CELLS_PER_MODULE, CHEMISTRIES, frame, limits


def derater(chemistry: str = "lfp") -> RackDerating:
    return RackDerating(limits(chemistry), CAPACITY_AH, CELLS, 3, CELLS_PER_MODULE)


def test_ccl_tapers_linearly_to_zero_at_the_overvoltage_alarm_and_names_the_cell():
    lim = limits("lfp")
    v, t = frame(lim)
    start, alarm = lim.derating.ccl_taper_start_v, lim.ladders["cell_overvoltage"].levels[1]
    full = lim.derating.max_charge_crate * CAPACITY_AH
    assert derater().evaluate(50.0, v, t).ccl_a == full
    v[2 * CELLS_PER_MODULE + 11] = np.float32((start + alarm) / 2)     # module 3, cell 12
    r = derater().evaluate(50.0, v, t)
    assert r.ccl_a == pytest.approx(full / 2, rel=1e-3)
    assert r.ccl_reason == f"CCL {full / 2:.0f} A: cell 3-03-12 at {(start + alarm) / 2:.2f} V"
    v[0] = alarm + 0.001
    assert derater().evaluate(50.0, v, t).ccl_a == 0.0


def test_dcl_tapers_near_the_undervoltage_alarm():
    lim = limits("nmc")
    v, t = frame(lim)
    v[2] = lim.ladders["cell_undervoltage"].levels[1]
    r = derater("nmc").evaluate(50.0, v, t)
    assert r.dcl_a == 0.0 and "cell 3-01-03" in r.dcl_reason


def test_lfp_cannot_charge_below_zero_and_the_reason_names_the_cold_cell():
    lim = limits("lfp")
    v, t = frame(lim)
    t[20] = -1.0
    r = derater().evaluate(50.0, v, t)
    assert r.ccl_a == 0.0
    assert r.ccl_reason == "CCL 0 A: cell 3-02-05 at -1.0 C"
    assert r.dcl_a > 0


def test_soc_taper_near_full_and_empty():
    lim = limits("lfp")
    v, t = frame(lim)
    full = derater().evaluate(100.0, v, t)
    empty = derater().evaluate(0.0, v, t)
    floor = lim.derating.soc_taper_floor
    assert full.ccl_a == pytest.approx(floor * lim.derating.max_charge_crate * CAPACITY_AH)
    assert full.ccl_reason.endswith("SOC 100.0 %")
    assert empty.dcl_a == pytest.approx(floor * lim.derating.max_discharge_crate * CAPACITY_AH)


def test_no_usable_data_gives_zero_current_limits():
    lim = limits("lfp")
    v, t = frame(lim)
    r = derater().evaluate(float("nan"), v, t)
    assert (r.ccl_a, r.dcl_a) == (0.0, 0.0) and "no usable SOC" in r.ccl_reason
    r = derater().evaluate(50.0, v, t, temperature_ok=np.zeros(CELLS, dtype=bool))
    assert (r.ccl_a, r.dcl_a) == (0.0, 0.0) and "cell temperatures" in r.dcl_reason


def test_cvl_is_pulled_down_by_a_high_cell():
    lim = limits("lfp")
    v, t = frame(lim)
    nominal = lim.derating.charge_voltage_v * CELLS
    assert derater().evaluate(50.0, v, t).cvl_v == pytest.approx(nominal)
    v[0] = lim.derating.charge_voltage_v + 0.05
    pack = float(np.sum(v, dtype=np.float64))
    assert derater().evaluate(50.0, v, t, pack).cvl_v == pytest.approx(pack - 0.05, abs=1e-4)


def test_limit_rises_again_only_by_a_band():
    lim = limits("lfp")
    d = derater()
    v, t = frame(lim)
    start = lim.derating.ccl_taper_start_v
    span = lim.ladders["cell_overvoltage"].levels[1] - start
    v[0] = start + 0.5 * span
    low = d.evaluate(50.0, v, t).ccl_a
    v[0] = start + 0.49 * span                       # tiny recovery: held
    assert d.evaluate(50.0, v, t).ccl_a == low
    v[0] = start + 0.3 * span                        # recovery beyond the band: follows
    assert d.evaluate(50.0, v, t).ccl_a > low
    v[0] = start - 0.01                              # back below the taper: the ceiling
    assert d.evaluate(50.0, v, t).ccl_a == lim.derating.max_charge_crate * CAPACITY_AH


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(CHEMISTRIES), st.lists(st.floats(0.0, 1.3), min_size=2, max_size=30),
       st.floats(-30, 70), st.floats(0, 100))
def test_ccl_never_increases_as_max_cell_voltage_rises_and_is_never_negative(chemistry, fractions, temp, soc):
    lim = limits(chemistry)
    v, t = frame(lim, temp_c=temp)
    start, alarm = lim.derating.ccl_taper_start_v, lim.ladders["cell_overvoltage"].levels[1]
    d = derater(chemistry)
    previous = None
    for f in sorted(fractions):
        v[0] = np.float32(start - 0.1 + f * (alarm - start + 0.1))
        r = d.evaluate(soc, v, t)
        fresh = derater(chemistry).evaluate(soc, v, t)
        assert r.ccl_a >= 0 and r.dcl_a >= 0 and fresh.ccl_a >= 0
        if previous is not None:
            assert r.ccl_a <= previous[0] and fresh.ccl_a <= previous[1] + 1e-9
        previous = (r.ccl_a, fresh.ccl_a)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-1.0, 1.0), min_size=5, max_size=80))
def test_noise_around_a_taper_point_does_not_chatter(noise):
    """Noise smaller than the band: the limit may only fall, never climb back."""
    lim = limits("lfp")
    d = derater()
    v, t = frame(lim)
    start = lim.derating.ccl_taper_start_v
    span = lim.ladders["cell_overvoltage"].levels[1] - start
    band_v = lim.derating.current_hysteresis_crate / lim.derating.max_charge_crate * span
    outputs = []
    for n in noise:
        v[0] = np.float32(start + 0.5 * span + 0.45 * band_v * n)
        outputs.append(d.evaluate(50.0, v, t).ccl_a)
    assert all(b <= a for a, b in zip(outputs, outputs[1:]))
