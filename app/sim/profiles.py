"""Site load, PV and grid profiles made in code: daily shapes times seeded weather noise.

Every profile is a pure function of time (epoch seconds, shifted by the site's UTC offset to local
solar time): the value at t depends only on the seed and t, not on how the simulator steps, so a run
at x1000 sees the same day as one at x1. Noise comes from seeded random knots (one set per day and
profile, from numpy's generator keyed by (seed, stream, day)) interpolated linearly between knots.

A test or a training scenario that needs a chosen situation (a load over the peak threshold, a cloud
edge, a frequency step) sets a Curve as an override of SiteProfiles (`load_override`, `pv_override`,
`hz_override`: the public grid's; an island forms its own), under the simulator's lock while it runs;
None goes back to the made-up profile.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from app.core.site import Site

DAY_S = 86400.0
LOAD_PEAK_FRACTION = 0.6        # default site load peak, fraction of the PCS rating
PV_PEAK_FRACTION = 0.8          # default PV peak, fraction of the PCS rating
NOMINAL_HZ, NOMINAL_V = 50.0, 400.0


class DailyNoise:
    """Seeded noise of unit standard deviation, piecewise linear between knots every `spacing_s`."""

    def __init__(self, seed: int, stream: int, spacing_s: float) -> None:
        if DAY_S % spacing_s:
            raise ValueError(f"knot spacing {spacing_s} s must divide a day")
        self.seed, self.stream, self.spacing_s = seed, stream, spacing_s
        self._per_day = int(DAY_S // spacing_s)
        self._days: dict[int, np.ndarray] = {}

    def knots(self, day: int) -> np.ndarray:
        """The knots of day number `day` (days since the epoch)."""
        if day not in self._days:
            if len(self._days) > 4:
                self._days.clear()
            self._days[day] = np.random.default_rng([self.seed, self.stream, day + 2**31]).normal(size=self._per_day)
        return self._days[day]

    def _knot(self, index: int) -> float:
        day, i = divmod(index, self._per_day)
        return float(self.knots(day)[i])

    def at(self, t: float) -> float:
        k = t / self.spacing_s
        i = math.floor(k)
        w = k - i
        return (1.0 - w) * self._knot(i) + w * self._knot(i + 1)


@dataclass
class LoadProfile:
    """Commercial site load: a base, a morning ramp, a midday plateau and an evening peak (max 1 x
    `peak_kw`), times 1 + 5 % noise with 15-min knots."""

    peak_kw: float
    seed: int = 1
    noise: DailyNoise = field(init=False)

    # (hour, width h, weight) of the gaussian bumps on top of the base load
    BASE = 0.35
    BUMPS = ((8.0, 1.5, 0.25), (13.0, 3.0, 0.35), (19.0, 2.0, 0.45))

    def __post_init__(self) -> None:
        self.noise = DailyNoise(self.seed, 1, 900.0)
        hours = np.linspace(0.0, 24.0, 24 * 60, endpoint=False)
        self._scale = 1.0 / float(self.shape(hours).max())

    def shape(self, hour):
        """Unscaled daily shape at local `hour` (array or float, 0..24)."""
        h = np.asarray(hour, float)
        out = np.full(h.shape, self.BASE)
        for centre, width, weight in self.BUMPS:
            d = (h - centre + 12.0) % 24.0 - 12.0          # wraps around midnight
            out = out + weight * np.exp(-0.5 * (d / width) ** 2)
        return out

    def at(self, t: float) -> float:
        """Site load in kW at local time t (seconds)."""
        hour = (t % DAY_S) / 3600.0
        return max(0.0, self.peak_kw * self._scale * float(self.shape(hour)) * (1.0 + 0.05 * self.noise.at(t)))


@dataclass
class PvProfile:
    """PV output: a clear-sky bell between sunrise and sunset times a clear-sky index. Each day gets
    a seeded cloudiness (0 clear .. 0.9 overcast); passing clouds are 5-min noise within the day."""

    peak_kw: float
    seed: int = 1
    sunrise_h: float = 6.0
    sunset_h: float = 18.0
    noise: DailyNoise = field(init=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.sunrise_h < self.sunset_h <= 24.0:
            raise ValueError("need 0 <= sunrise_h < sunset_h <= 24")
        self.noise = DailyNoise(self.seed, 2, 300.0)
        self._cloudiness: dict[int, float] = {}

    def cloudiness(self, day: int) -> float:
        """Seeded cloudiness of day number `day`: 0 clear .. 0.9 overcast."""
        if day not in self._cloudiness:
            if len(self._cloudiness) > 4:
                self._cloudiness.clear()
            self._cloudiness[day] = 0.9 * float(np.random.default_rng([self.seed, 3, day + 2**31]).beta(0.7, 0.9))
        return self._cloudiness[day]

    def clear_sky(self, hour):
        """Clear-sky output per unit of peak at local `hour` (array or float)."""
        h = np.asarray(hour, float)
        x = (h - self.sunrise_h) / (self.sunset_h - self.sunrise_h)
        return np.where((x > 0.0) & (x < 1.0), np.abs(np.sin(np.pi * x)) ** 1.3, 0.0)

    def at(self, t: float) -> float:
        """PV output in kW at local time t (seconds)."""
        clear = float(self.clear_sky((t % DAY_S) / 3600.0))
        if clear <= 0.0:
            return 0.0
        passing = min(1.0, max(0.0, 0.75 + 0.35 * self.noise.at(t)))
        return self.peak_kw * clear * (1.0 - self.cloudiness(math.floor(t / DAY_S)) * passing)


@dataclass
class GridProfile:
    """Grid frequency (50 Hz, 0.02 Hz noise with 10-s knots) and voltage (400 V, 0.5 % with 60-s knots)."""

    seed: int = 1
    nominal_hz: float = NOMINAL_HZ
    nominal_v: float = NOMINAL_V

    def __post_init__(self) -> None:
        self._hz = DailyNoise(self.seed, 4, 10.0)
        self._v = DailyNoise(self.seed, 5, 60.0)

    def at(self, t: float) -> tuple[float, float]:
        """(frequency Hz, line voltage V) of the public grid at time t."""
        return (self.nominal_hz + 0.02 * self._hz.at(t), self.nominal_v * (1.0 + 0.005 * self._v.at(t)))


@dataclass(frozen=True)
class Curve:
    """A chosen value over time: linear through (epoch s, value) points, held before the first and after
    the last; one point is a constant (`Curve.constant(v)`), two close ones a step, two apart a ramp."""

    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        times = [t for t, _ in self.points]
        if not times or times != sorted(times):
            raise ValueError("a curve needs at least one (time, value) point, in time order")

    @classmethod
    def constant(cls, value: float) -> "Curve":
        return cls(((0.0, float(value)),))

    def at(self, t: float) -> float:
        times, values = zip(*self.points)
        return float(np.interp(t, times, values))


@dataclass
class SiteProfiles:
    """The site's load, PV and grid, read at epoch time t shifted by `utc_offset_s` to local time.
    An override Curve, when set, replaces its quantity (read at epoch time t, not shifted)."""

    load: LoadProfile
    pv: PvProfile
    grid: GridProfile
    utc_offset_s: float = 0.0
    load_override: Curve | None = None
    pv_override: Curve | None = None
    hz_override: Curve | None = None

    @classmethod
    def for_site(cls, site: Site, seed: int, utc_offset_s: float = 0.0) -> "SiteProfiles":
        """Load peak 0.6 and PV peak 0.8 of the site's total PCS rating."""
        rated = sum(p.rated_power_kw for p in site.pcs)
        return cls(LoadProfile(LOAD_PEAK_FRACTION * rated, seed), PvProfile(PV_PEAK_FRACTION * rated, seed),
                   GridProfile(seed), utc_offset_s)

    def load_kw(self, t: float) -> float:
        return self.load_override.at(t) if self.load_override is not None else self.load.at(t + self.utc_offset_s)

    def pv_kw(self, t: float) -> float:
        return self.pv_override.at(t) if self.pv_override is not None else self.pv.at(t + self.utc_offset_s)

    def grid_hz_v(self, t: float) -> tuple[float, float]:
        hz, v = self.grid.at(t)
        return (self.hz_override.at(t) if self.hz_override is not None else hz), v

    def step_means(self, t_end: float, step_s: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean (load kW, PV kW) of each of the ``steps`` steps ending at ``t_end``, from one sample a
        minute: the site's past, e.g. to seed the EMS history so that MPC can plan at once."""
        per = max(1, int(step_s // 60))
        t = t_end - steps * step_s + (np.arange(steps * per) + 0.5) * step_s / per
        load, pv = (np.array([f(x) for x in t]).reshape(steps, per).mean(axis=1) for f in (self.load_kw, self.pv_kw))
        return load, pv
