"""Load and PV forecasts from history arrays (numpy only, no I/O).

Time is counted in steps of a fixed length; ``slot0`` is the slot-of-week of ``history[0]`` (0 =
Monday 00:00, ``7 * steps_per_day`` slots per week).

- ``seasonal_naive``: repeat the last season (a day or a week) — the baseline to beat.
- ``ProfileForecaster``: weighted least squares on one-hot time-of-day x day-type features (weekday /
  weekend) with exponential recency weights (half-life in days). For indicator features the WLS
  solution is the weighted mean of each group, computed with ``np.bincount`` instead of a matrix
  solve. The remaining error is modelled as AR(1) on the residuals, fitted on the same history: the
  last residual decays by phi per step ahead. ``relative=True`` (PV) models residuals relative to the
  profile, so a cloudy morning lowers the afternoon forecast in proportion and nights stay at zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def seasonal_naive(history: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """The last ``period`` values of ``history`` repeated over ``horizon`` steps."""
    history = np.asarray(history, dtype=float)
    if history.size < period:
        raise ValueError(f"seasonal naive needs {period} values of history, got {history.size}")
    return np.resize(history[-period:], horizon)


@dataclass(frozen=True)
class ProfileForecaster:
    steps_per_day: int
    half_life_days: float = 7.0
    weekly: bool = True          # separate weekday and weekend profiles
    relative: bool = False       # residuals relative to the profile (PV)
    min_days: float = 1.0        # history needed before forecasting

    @property
    def min_history(self) -> int:
        return int(np.ceil(self.min_days * self.steps_per_day))

    def _groups(self, slots: np.ndarray) -> np.ndarray:
        tod = slots % self.steps_per_day
        if not self.weekly:
            return tod
        weekend = (slots // self.steps_per_day) % 7 >= 5
        return tod + self.steps_per_day * weekend

    def forecast(self, history: np.ndarray, slot0: int, horizon: int, z: float = 0.0) -> np.ndarray:
        """Forecast the ``horizon`` steps that follow ``history`` (whose first value is at ``slot0``),
        shifted by ``z`` standard deviations of the AR(1) error model (z > 0: a cautious high
        forecast, e.g. load for peak shaving). Non-negative output. Raises ValueError with less than
        ``min_history`` values."""
        y = np.asarray(history, dtype=float)
        n = y.size
        if n < self.min_history:
            raise ValueError(f"forecast needs {self.min_history} values of history, got {n}")
        week = 7 * self.steps_per_day
        slots = (slot0 + np.arange(n + horizon)) % week
        groups = self._groups(slots)
        g_hist, g_next = groups[:n], groups[n:]
        age_days = (n - 1 - np.arange(n)) / self.steps_per_day
        w = 0.5 ** (age_days / self.half_life_days)
        size = 2 * self.steps_per_day
        wsum = np.bincount(g_hist, w, size)
        mean = np.bincount(g_hist, w * y, size) / np.where(wsum > 0, wsum, 1.0)
        if self.weekly:   # a day type never seen yet borrows the other's profile
            tod = np.arange(self.steps_per_day)
            for have, lack in ((tod, tod + self.steps_per_day), (tod + self.steps_per_day, tod)):
                unseen = wsum[lack] == 0
                mean[lack[unseen]] = mean[have[unseen]]
        fit, ahead = mean[g_hist], mean[g_next]
        scale_hist = np.maximum(fit, 0.05 * max(mean.max(), 1e-9)) if self.relative else np.ones(n)
        r = (y - fit) / scale_hist
        phi = _ar1(r, w)
        decay = phi ** np.arange(1, horizon + 1)
        sigma = np.sqrt(np.sum(w * r * r) / np.sum(w) * (1 - decay ** 2))
        scale = ahead if self.relative else 1.0
        return np.maximum(ahead + (r[-1] * decay + z * sigma) * scale, 0.0)


def _ar1(r: np.ndarray, w: np.ndarray) -> float:
    """Weighted lag-1 autocorrelation of residuals, clipped to [0, 0.99]."""
    if r.size < 3:
        return 0.0
    a, b, ww = r[:-1], r[1:], w[1:]
    den = float(np.sum(ww * a * a))
    return float(np.clip(np.sum(ww * a * b) / den, 0.0, 0.99)) if den > 0 else 0.0
