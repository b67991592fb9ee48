"""Balancing controller (app/estimation/balancing.py): hysteresis, inhibits, convergence, energy."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.chemistry import get_chemistry
from app.core.errors import UserError
from app.estimation.balancing import BalancingController, BalancingSettings

CAP_AH = 10.0


def _nmc_volts(mv_above_lowest):
    return 3.7 + np.asarray(mv_above_lowest, dtype=float) / 1000.0


def test_hysteresis_starts_above_the_start_threshold_and_stops_below_the_stop_threshold():
    ctl = BalancingController("nmc", CAP_AH, 4)
    soc, temp = np.full(4, 0.6), np.full(4, 25.0)
    assert ctl.update(1.0, 0.0, _nmc_volts([0, 5, 20, 25]), soc, temp).cells == ()  # between: nothing starts
    d = ctl.update(1.0, 0.0, _nmc_volts([0, 5, 20, 35]), soc, temp)
    assert d.cells == (4,) and d.metric == "voltage" and d.dv_v == pytest.approx(0.035)
    assert ctl.update(1.0, 0.0, _nmc_volts([0, 5, 20, 20]), soc, temp).cells == (4,)  # keeps going
    assert ctl.update(1.0, 0.0, _nmc_volts([0, 5, 20, 9]), soc, temp).cells == ()  # below stop


@pytest.mark.parametrize("current_a, temps, reason", [
    (0.0, [25.0, 25.0, 50.0, np.nan], "cell too hot"),
    (0.6 * CAP_AH, [25.0] * 4, "fast charge or discharge"),
    (-0.6 * CAP_AH, [25.0] * 4, "fast charge or discharge"),
])
def test_hot_cells_and_fast_charge_inhibit_and_reset_balancing(current_a, temps, reason):
    ctl = BalancingController("nmc", CAP_AH, 4)
    volts, soc = _nmc_volts([0, 0, 40, 40]), np.full(4, 0.6)
    assert ctl.update(1.0, 0.0, volts, soc, np.full(4, 25.0)).cells == (3, 4)
    d = ctl.update(1.0, current_a, volts, soc, np.array(temps))
    assert d.cells == () and d.inhibit == reason


def test_missing_temperatures_do_not_inhibit():
    ctl = BalancingController("nmc", CAP_AH, 3)
    d = ctl.update(1.0, 0.0, _nmc_volts([0, 0, 40]), np.full(3, 0.6), np.full(3, np.nan))
    assert d.cells == (3,) and d.inhibit == ""


def test_passive_lfp_bleeds_only_near_the_top_and_judges_the_plateau_by_soc():
    ctl = BalancingController("lfp", CAP_AH, 3)
    temps = np.full(3, 25.0)
    chem = get_chemistry("lfp")
    soc = np.array([0.48, 0.50, 0.62])
    d = ctl.update(1.0, 0.0, chem.ocv(soc), soc, temps)
    assert d.cells == () and d.inhibit == "below top of charge"
    active = BalancingController("lfp", CAP_AH, 3, BalancingSettings(mode="active"))
    d = active.update(1.0, 0.0, chem.ocv(soc), soc, temps)
    assert d.metric == "soc" and d.cells == (3,) and d.receivers == (1, 2)  # 62 % gives, 48/50 % take


def test_cells_without_data_are_never_selected():
    ctl = BalancingController("nmc", CAP_AH, 3)
    d = ctl.update(1.0, 0.0, np.array([3.70, np.nan, 3.75]), np.full(3, np.nan), np.full(3, 25.0))
    assert d.cells == (3,)
    assert ctl.update(1.0, 0.0, np.full(3, np.nan), np.full(3, np.nan), np.full(3, 25.0)).inhibit == "no data"


def test_settings_the_user_gets_wrong_are_refused():
    with pytest.raises(UserError):
        BalancingSettings(start_dv_v=0.01, stop_dv_v=0.02)
    with pytest.raises(UserError):
        BalancingSettings(mode="magic")


def test_bled_energy_is_v_squared_over_r_for_the_time_each_decision_held():
    s = BalancingSettings(bleed_resistor_ohm=10.0)
    ctl = BalancingController("nmc", CAP_AH, 2, s)
    volts, soc, temps = np.array([3.70, 3.80]), np.full(2, 0.6), np.full(2, 25.0)
    ctl.update(1.0, 0.0, volts, soc, temps)  # decides to bleed cell 2
    d = ctl.update(3600.0, 0.0, volts, soc, temps)  # one hour of it
    assert d.energy_wh == pytest.approx(3.80**2 / 10.0)


def _simulate(chem_name, settings_, soc0, hours, current_of, dt=60.0):
    """A pack of series cells: the rack current and the bleed move each cell's SOC; voltage = OCV +
    R0 I. Returns the controller, the SOC and the dV history."""
    chem = get_chemistry(chem_name)
    ctl = BalancingController(chem, CAP_AH, soc0.size, settings_)
    soc, temps = soc0.copy(), np.full(soc0.size, 25.0)
    r0 = chem.r0_ohm_ah / CAP_AH
    bled_ah, dv = 0.0, []
    for k in range(int(hours * 3600 / dt)):
        i = current_of(soc)
        volts = chem.ocv(soc) + r0 * i
        d = ctl.update(dt, i, volts, soc, temps)
        dv.append(d.dv_v)
        bleed = np.zeros(soc.size)
        bleed[np.array(d.cells, dtype=int) - 1] = volts[np.array(d.cells, dtype=int) - 1] / settings_.bleed_resistor_ohm
        bled_ah += float(bleed.sum()) * dt / 3600
        soc = np.clip(soc + (i - bleed) * dt / 3600 / CAP_AH, 0.0, 1.0)
    return ctl, soc, np.array(dv), bled_ah


def test_passive_balancing_converges_an_nmc_pack_and_then_stops():
    soc0 = np.array([0.50, 0.52, 0.55, 0.58, 0.60, 0.62])
    s = BalancingSettings(bleed_resistor_ohm=3.0)  # ~1.2 A on 10 Ah cells: hours, not days
    ctl, soc, dv, _ = _simulate("nmc", s, soc0, 8.0, lambda soc: 0.0)
    assert dv[0] > s.start_dv_v
    assert dv[-1] < s.start_dv_v and ctl.sources.sum() == 0  # converged, then stopped
    assert soc.max() - soc.min() < soc0.max() - soc0.min()
    assert (soc <= soc0 + 1e-12).all()  # passive only removes charge


def test_passive_lfp_pack_converges_at_the_top_of_a_slow_charge():
    soc0 = np.array([0.80, 0.83, 0.86, 0.89])

    def charge(soc):  # 0.1 C until the fullest cell reaches 99 %, then rest (a CV hold)
        return 0.1 * CAP_AH if soc.max() < 0.99 else 0.0

    s = BalancingSettings(bleed_resistor_ohm=3.0)
    ctl, soc, dv, bled_ah = _simulate("lfp", s, soc0, 12.0, charge)
    assert bled_ah > 0
    assert soc.max() - soc.min() < 0.015  # the stop threshold plus one step's worth
    assert ctl.sources.sum() == 0
    assert ctl.energy_wh == pytest.approx(bled_ah * 3.4, rel=0.1)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.0, 60.0), min_size=2, max_size=12), st.floats(-20.0, 20.0))
def test_only_cells_above_the_stop_threshold_ever_bleed(mv, current_a):
    ctl = BalancingController("nmc", CAP_AH, len(mv))
    volts = _nmc_volts(mv)
    d = ctl.update(1.0, current_a, volts, np.full(len(mv), 0.6), np.full(len(mv), 25.0))
    excess = volts - volts.min()
    assert all(excess[c - 1] > ctl.settings.start_dv_v for c in d.cells)
    if abs(current_a) > 0.5 * CAP_AH:
        assert d.cells == ()
