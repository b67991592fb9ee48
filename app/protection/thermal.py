"""Thermal runaway detection for one rack: dT/dt per temperature sensor over a ring buffer of
recent frames, cell voltage drop, over-temperature and optional gas (H2/CO ppm).

Tiers ([thermal] of the limit file):
  WARN   dT/dt >= warn_c_per_min over `window_s` (worst usable sensor), or gas >= *_warn_ppm
  ALARM  dT/dt >= alarm_c_per_min, or any sensor rising >= runaway_c_per_s between two frames
         (seen before the window has history), or gas >= *_alarm_ppm
  TRIP   runaway: a sensor rising >= runaway_c_per_s for longer than runaway_sustain_s, together
         with a voltage drop > runaway_voltage_drop_v in its cells (vs their highest value of the
         last voltage_window_s) or a temperature >= runaway_temperature_c (GB 38031 Annex C:
         "c and (a or b)"); or a gas alarm together with a dT/dt alarm. Runaway latches until reset().
Sensors flagged faulty by plausibility are excluded from every vote. Pure; one object per rack.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.protection.ladder import Level, LevelTracker
from app.protection.limit_file import ThermalSpec


@dataclass(frozen=True)
class ThermalStatus:
    level: Level
    rate_c_per_min: float          # worst usable sensor over the window (NaN until enough history)
    index: int                     # that sensor (0-based), -1 if none
    runaway_sensors: tuple[int, ...]  # latched runaway sensors (0-based)
    cause: str                     # "" when NORMAL


class ThermalMonitor:
    """Ring buffer of the last frames (temperatures per sensor, voltages per cell) and the tiers.
    Sensor j of m covers cells j*n//m .. (j+1)*n//m - 1 of n (m <= n; m == n: one per cell).
    `sensor_names` replace "sensor j" in causes (e.g. a rack's max_temperature_c as its one sensor)."""

    def __init__(self, spec: ThermalSpec, sensors: int, cells: int,
                 sensor_names: tuple[str, ...] | None = None) -> None:
        if not 0 < sensors <= cells:
            raise ValueError(f"need 1..{cells} temperature sensors, got {sensors}")
        self.spec = spec
        self._names = sensor_names or tuple(f"sensor {j + 1}" for j in range(sensors))
        span = max(spec.window_s, spec.voltage_window_s, spec.runaway_sustain_s)
        cap = int(math.ceil(span / spec.frame_interval_s)) + 2
        self._t = np.full(cap, np.nan)
        self._temps = np.full((cap, sensors), np.nan, dtype=np.float32)
        self._volts = np.full((cap, cells), np.nan, dtype=np.float32)
        self._head = -1
        self._starts = (np.arange(sensors) * cells) // sensors
        self._fast_since = np.full(sensors, np.nan)
        self._runaway = np.zeros(sensors, dtype=bool)
        self._runaway_cause = ""
        inf = math.inf
        self._rate = LevelTracker("high", (spec.warn_c_per_min, spec.alarm_c_per_min, inf),
                                  spec.rate_hysteresis_c_per_min, (spec.rate_delay_s, spec.rate_delay_s, 0.0))
        self._h2 = LevelTracker("high", (spec.h2_warn_ppm, spec.h2_alarm_ppm, inf), 0.2 * spec.h2_warn_ppm,
                                (2.0, 2.0, 0.0))
        self._co = LevelTracker("high", (spec.co_warn_ppm, spec.co_alarm_ppm, inf), 0.2 * spec.co_warn_ppm,
                                (2.0, 2.0, 0.0))
        self._rate_value, self._rate_index = math.nan, -1
        self._fast: tuple[int, float] | None = None    # (sensor, C/s) rising >= runaway_c_per_s now

    def reset(self) -> None:
        """Clear the runaway latch (authorised reset once the cause is gone)."""
        self._runaway[:] = False
        self._runaway_cause = ""

    def update(self, now: float, frame_time: float, cell_temperatures_c: np.ndarray, cell_voltages_v: np.ndarray,
               temperature_ok: np.ndarray | None = None, voltage_ok: np.ndarray | None = None,
               h2_ppm: float | None = None, co_ppm: float | None = None) -> ThermalStatus:
        """One cycle. frame_time: when the arrays were measured (source time); a frame less than
        frame_interval_s after the last stored one only re-evaluates the gas and the delays."""
        last = self._t[self._head] if self._head >= 0 else -math.inf
        if frame_time - last >= self.spec.frame_interval_s:
            self._store(frame_time, cell_temperatures_c, cell_voltages_v)
            self._evaluate_frame(frame_time, temperature_ok, voltage_ok)
        rate_level, _ = self._rate.update(self._rate_value, now)
        h2_level, _ = self._h2.update(math.nan if h2_ppm is None else h2_ppm, now)
        co_level, _ = self._co.update(math.nan if co_ppm is None else co_ppm, now)
        gas_level = max(h2_level, co_level)
        causes = []
        if self._runaway.any():
            level = Level.TRIP
            causes.append(self._runaway_cause)
        elif gas_level >= Level.ALARM and rate_level >= Level.ALARM:
            level = Level.TRIP
            causes.append("thermal runaway: gas alarm with rising temperature")
        else:
            level = max(rate_level, gas_level, Level.ALARM if self._fast else Level.NORMAL)
        if self._fast:
            causes.append(f"dT/dt {self._fast[1]:.1f} C/s at {self._names[self._fast[0]]}")
        if rate_level:
            causes.append(f"dT/dt {self._rate_value:.1f} C/min at {self._names[self._rate_index]}")
        if h2_level:
            causes.append(f"H2 {h2_ppm:.0f} ppm")
        if co_level:
            causes.append(f"CO {co_ppm:.0f} ppm")
        return ThermalStatus(Level(level), self._rate_value, self._rate_index,
                             tuple(int(i) for i in np.flatnonzero(self._runaway)), "; ".join(causes))

    def _store(self, t: float, temps: np.ndarray, volts: np.ndarray) -> None:
        self._head = (self._head + 1) % len(self._t)
        self._t[self._head] = t
        self._temps[self._head] = temps
        self._volts[self._head] = volts

    def _evaluate_frame(self, t: float, temperature_ok: np.ndarray | None, voltage_ok: np.ndarray | None) -> None:
        s = self.spec
        temps = self._temps[self._head].astype(np.float64)
        usable = np.isfinite(temps)
        if temperature_ok is not None:
            usable &= temperature_ok
        times = self._t
        # slow rate: vs the oldest frame inside the window, once at least half the window is covered
        in_window = np.isfinite(times) & (times >= t - s.window_s)
        ref = int(np.argmin(np.where(in_window, times, np.inf)))
        self._rate_value, self._rate_index = math.nan, -1
        if t - times[ref] >= s.window_s / 2:
            rate = (temps - self._temps[ref]) / (t - times[ref]) * 60.0
            rate = np.where(usable & np.isfinite(rate), rate, -np.inf)
            i = int(np.argmax(rate))
            if np.isfinite(rate[i]):
                self._rate_value, self._rate_index = float(rate[i]), i
        # fast rate: vs the previous stored frame; the rise is dated from that frame
        prev = (self._head - 1) % len(times)
        self._fast = None
        if not np.isfinite(times[prev]):
            return
        fast_rate = (temps - self._temps[prev]) / (t - times[prev])
        fast = usable & (fast_rate >= s.runaway_c_per_s)
        self._fast = (int(np.argmax(np.where(fast, fast_rate, -np.inf))), float(np.max(fast_rate[fast]))) \
            if fast.any() else None
        self._fast_since = np.where(fast, np.fmin(self._fast_since, times[prev]), np.nan)
        sustained = fast & (t - self._fast_since > s.runaway_sustain_s)
        if not sustained.any():
            return
        volts = self._volts[self._head]
        recent = np.isfinite(times) & (times >= t - s.voltage_window_s)
        v_ref = np.fmax.reduce(self._volts[recent], axis=0)
        drop_v = v_ref - volts
        dropped = drop_v > s.runaway_voltage_drop_v
        if voltage_ok is not None:
            dropped &= voltage_ok
        group_drop = np.logical_or.reduceat(dropped, self._starts)
        hot = temps >= s.runaway_temperature_c
        runaway = sustained & (group_drop | hot)
        new = runaway & ~self._runaway
        if new.any():
            j = int(np.flatnonzero(new)[0])
            why = "voltage drop" if group_drop[j] else f"{temps[j]:.1f} C"
            if not self._runaway.any():
                self._runaway_cause = (f"thermal runaway: {self._names[j]} rising {fast_rate[j]:.1f} C/s for "
                                       f"{t - self._fast_since[j]:.1f} s with {why}")
            self._runaway |= runaway
