"""Forecasts beat seasonal naive on synthetic data; backtest costs are ordered as they must be."""
from __future__ import annotations

import numpy as np
import pytest

from app.ems.backtest import run_backtest, synthetic_site
from app.ems.forecast import ProfileForecaster, seasonal_naive


@pytest.fixture(scope="module")
def site():
    return synthetic_site(weeks=1, warmup_weeks=2, step_minutes=30.0, seed=3)


def _mae(model, series, spd, naive_period):
    errs, naive = [], []
    for end in range(14 * spd, series.size - spd, 7):
        f = model.forecast(series[:end], 0, spd)
        truth = series[end:end + spd]
        errs.append(np.mean(np.abs(f - truth)))
        naive.append(np.mean(np.abs(seasonal_naive(series[:end], spd, naive_period) - truth)))
    return np.mean(errs), np.mean(naive)


def test_profile_forecast_beats_seasonal_naive_for_load_and_pv(site):
    spd = site.steps_per_day
    load = np.concatenate([site.history_load_kw, site.scenario.load_kw])
    pv = np.concatenate([site.history_pv_kw, site.scenario.pv_kw])
    wls, naive = _mae(ProfileForecaster(spd), load, spd, 7 * spd)
    assert wls < 0.85 * naive
    wls, naive = _mae(ProfileForecaster(spd, half_life_days=3, weekly=False, relative=True), pv, spd, spd)
    assert wls < 0.85 * naive


def test_forecast_needs_history_and_is_never_negative():
    m = ProfileForecaster(steps_per_day=24)
    with pytest.raises(ValueError):
        m.forecast(np.ones(10), 0, 24)
    assert np.all(m.forecast(np.full(48, -5.0), 0, 24, z=-2) >= 0)


@pytest.fixture(scope="module")
def report(site):
    return run_backtest(site, horizon_steps=48, replan_steps=2, history_days=14)


def test_backtest_perfect_below_mpc_below_no_battery(report):
    cost = {k: v.cost for k, v in report.strategies.items()}
    assert cost["perfect"] <= cost["mpc"] + 1e-6
    assert cost["perfect"] <= cost["mpc_exact"] + 1e-6
    assert cost["mpc"] < cost["none"]
    assert cost["rules"] < cost["none"]
    for name, r in report.strategies.items():
        assert r.violations == (), name
        assert r.savings == pytest.approx(cost["none"] - r.cost)
    assert report.strategies["perfect"].cycles > 0


def test_mpc_told_the_truth_comes_close_to_perfect_foresight(report):
    """The receding-horizon loop itself loses little: most of mpc's gap is forecast error."""
    s = report.strategies
    assert s["mpc_exact"].savings >= 0.9 * s["perfect"].savings
    assert s["mpc_exact"].savings > s["mpc"].savings
