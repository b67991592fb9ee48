"""Site load, PV and grid profiles: daily shapes, seeded weather, pure functions of time."""
from __future__ import annotations

import numpy as np
import pytest

from app.sim.profiles import DAY_S, Curve, GridProfile, LoadProfile, PvProfile, SiteProfiles
from sim_site import sim_site

DAY = 20_000 * DAY_S          # some day (epoch seconds, UTC = local here)


def _hours(profile, day_start: float, step_s: float = 600.0) -> tuple[np.ndarray, np.ndarray]:
    t = day_start + np.arange(0.0, DAY_S, step_s)
    return (t - day_start) / 3600.0, np.array([profile.at(x) for x in t])


def test_load_has_a_night_base_and_an_evening_peak():
    hours, kw = _hours(LoadProfile(100.0, seed=1), DAY)
    night, evening = kw[(hours >= 2) & (hours < 4)].mean(), kw[(hours >= 18) & (hours < 20)].mean()
    assert evening > 2.0 * night > 0.0
    assert 85.0 < kw.max() < 115.0
    assert 17.0 <= hours[kw.argmax()] <= 21.0


def test_pv_is_zero_at_night_and_peaks_around_noon():
    pv = PvProfile(100.0, seed=1)
    for day in range(5):
        hours, kw = _hours(pv, DAY + day * DAY_S)
        assert np.all(kw[(hours < 6) | (hours > 18)] == 0.0)
        assert np.all(kw >= 0.0) and kw.max() <= 100.0
        assert 9.0 <= hours[kw.argmax()] <= 15.0


def test_weather_changes_from_day_to_day():
    pv = PvProfile(100.0, seed=4)
    energy = [_hours(pv, DAY + d * DAY_S)[1].sum() for d in range(20)]
    assert max(energy) > 1.5 * min(energy)
    clear = pv.clear_sky(np.linspace(0, 24, 145)).sum() * 100.0
    assert max(energy) <= clear


def test_profiles_depend_only_on_seed_and_time():
    a, b, c = LoadProfile(50.0, seed=7), LoadProfile(50.0, seed=7), LoadProfile(50.0, seed=8)
    times = DAY + np.array([3600.0, 43_210.5, 80_000.0, 86_399.0, 86_401.0])
    forward = [a.at(t) for t in times]
    backward = [b.at(t) for t in reversed(times)][::-1]      # asked in another order: same values
    assert forward == backward
    assert forward != [c.at(t) for t in times]
    # continuous across midnight (the noise knots carry over to the next day)
    assert a.at(DAY + DAY_S - 0.001) == pytest.approx(a.at(DAY + DAY_S), rel=1e-4)


def test_grid_stays_near_nominal():
    grid = GridProfile(seed=3)
    hz, v = zip(*(grid.at(DAY + t) for t in np.arange(0.0, 3600.0, 5.0)))
    assert 49.9 < min(hz) < 50.0 < max(hz) < 50.1
    assert 390.0 < min(v) and max(v) < 410.0


def test_site_profiles_scale_with_the_pcs_rating_and_shift_to_local_time():
    site = sim_site(rated_kw=200.0)
    utc = SiteProfiles.for_site(site, seed=1)
    east = SiteProfiles.for_site(site, seed=1, utc_offset_s=6 * 3600.0)
    assert utc.load.peak_kw == pytest.approx(120.0) and utc.pv.peak_kw == pytest.approx(160.0)
    assert utc.pv_kw(DAY + 3 * 3600.0) == 0.0 and east.pv_kw(DAY + 6 * 3600.0) > 0.0
    assert east.load_kw(DAY) == utc.load_kw(DAY + 6 * 3600.0)


def test_override_curves_replace_load_pv_and_frequency_until_cleared():
    profiles = SiteProfiles.for_site(sim_site(rated_kw=10.0), seed=1)
    noon = DAY + 12 * 3600.0
    made_up = profiles.load_kw(noon), profiles.pv_kw(noon)
    profiles.load_override = Curve.constant(7.5)
    profiles.pv_override = Curve(((noon, 4.0), (noon + 10.0, 1.0)))          # a cloud edge
    profiles.hz_override = Curve(((noon, 50.0), (noon + 1e-3, 49.8)))        # a frequency step
    assert profiles.load_kw(noon) == profiles.load_kw(noon + 5e5) == 7.5
    assert [profiles.pv_kw(noon + s) for s in (-5.0, 0.0, 5.0, 10.0, 60.0)] == pytest.approx([4.0, 4.0, 2.5, 1.0, 1.0])
    hz, v = profiles.grid_hz_v(noon + 1.0)
    assert hz == pytest.approx(49.8) and 390.0 < v < 410.0
    profiles.load_override = profiles.pv_override = None
    assert (profiles.load_kw(noon), profiles.pv_kw(noon)) == made_up
    with pytest.raises(ValueError):
        Curve(((noon + 1.0, 1.0), (noon, 2.0)))
