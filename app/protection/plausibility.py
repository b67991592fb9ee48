"""Sensor plausibility for one rack: cell voltage and temperature sensors, vectorised per frame.

Faults ([plausibility] of the limit file):
  open_circuit  NaN reading
  rail          temperature at the sensor's rail (<= rail_low: open NTC, >= rail_high: shorted NTC)
  zero_voltage  |cell voltage| <= voltage_zero_v (kept as a reading, flagged: DESIGN section 4)
  out_of_range  outside the physical range (temperature_min/max_c, voltage_min/max_v)
  jump          change since the last frame larger than max_rate x dt + step_margin
  stuck         unchanged for stuck_after_s while the rack's median sensor moved more than
                *_stuck_change (the median of the others stands in for the neighbours, so only with at
                least three sensors of the kind: with two, one moving would make the other look stuck)
A fault is flagged at once and clears only after fault_clear_s of plausible readings. A faulty
sensor raises a sensor-fault ALARM and is excluded (via the *_ok masks) from the ladder, derating
and runaway votes, so it is neither mistaken for a fire nor ignored; when more than
max_faulty_temperature_fraction of the temperature sensors or more than max_faulty_voltage_sensors
voltage sensors are faulty the rack is degraded: level TRIP (safe decision: isolate the rack).
Readings may have `names` (app/protection/cell_source.py: a rack's (min, max) extremes, its pack
sensors `temperatures_c[j]`): faults then name them (an extreme pair is never checked for stuck).
Pure; one object per rack, called once per frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.protection.ladder import Level
from app.protection.limit_file import PlausibilitySpec

FAULTS = ("", "open_circuit", "rail", "zero_voltage", "out_of_range", "jump", "stuck")
_OPEN, _RAIL, _ZERO, _RANGE, _JUMP, _STUCK = range(1, 7)
MIN_STUCK_SENSORS = 3          # the stuck check needs a median of others


@dataclass(frozen=True)
class SensorFault:
    kind: str           # "voltage" | "temperature"
    index: int          # 0-based cell (voltage) or sensor (temperature)
    fault: str          # one of FAULTS, the latest cause
    value: float        # the current reading


@dataclass(frozen=True)
class SensorHealth:
    voltage_ok: np.ndarray       # bool per cell, read-only
    temperature_ok: np.ndarray   # bool per temperature sensor, read-only
    faults: tuple[SensorFault, ...]
    level: Level                 # NORMAL, ALARM (sensor fault) or TRIP (degraded)
    cause: str


class _SensorBank:
    """Fault state of one kind of sensor (all arrays per sensor)."""

    def __init__(self, n: int) -> None:
        self.prev = np.full(n, np.nan)
        self.prev_t = np.nan
        self.anchor = np.full(n, np.nan)        # value when the sensor last changed
        self.anchor_t = np.full(n, np.nan)
        self.anchor_activity = np.zeros(n)
        self.activity = 0.0                      # cumulative median |change| of the rack
        self.last_bad_t = np.full(n, -np.inf)
        self.code = np.zeros(n, dtype=np.int8)

    def step(self, t: float, x: np.ndarray, bad_now: np.ndarray, codes: np.ndarray, max_step: float,
             stuck_after_s: float, stuck_change: float, clear_s: float) -> np.ndarray:
        """Add jump and stuck checks to the instantaneous faults; return the faulty mask."""
        finite = np.isfinite(x)
        if np.isfinite(self.prev_t):
            step = np.abs(x - self.prev)
            jump = finite & np.isfinite(self.prev) & (step > max_step)
            codes = np.where(jump & ~bad_now, _JUMP, codes)
            bad_now = bad_now | jump
            moved = step[finite & np.isfinite(self.prev)]
            if moved.size:
                self.activity += float(np.median(moved))
        changed = finite & ~(x == self.anchor)
        self.anchor = np.where(changed | ~finite, x, self.anchor)
        self.anchor_t = np.where(changed | ~finite, t, self.anchor_t)
        self.anchor_activity = np.where(changed | ~finite, self.activity, self.anchor_activity)
        stuck = finite & (t - self.anchor_t > stuck_after_s) & (self.activity - self.anchor_activity > stuck_change)
        codes = np.where(stuck & ~bad_now, _STUCK, codes)
        bad_now = bad_now | stuck
        self.code = np.where(bad_now, codes, self.code)
        self.last_bad_t = np.where(bad_now, t, self.last_bad_t)
        self.prev, self.prev_t = x, t
        return t - self.last_bad_t < clear_s


class SensorCheck:
    """Plausibility state of one rack's sensors."""

    def __init__(self, spec: PlausibilitySpec, cells: int, temperature_sensors: int,
                 voltage_names: tuple[str, ...] | None = None,
                 temperature_names: tuple[str, ...] | None = None) -> None:
        self.spec = spec
        self._v = _SensorBank(cells)
        self._t = _SensorBank(temperature_sensors)
        self._names = {"voltage": voltage_names, "temperature": temperature_names}
        self._stuck_after_s = {k: spec.stuck_after_s if n >= MIN_STUCK_SENSORS else float("inf")
                               for k, n in (("voltage", cells), ("temperature", temperature_sensors))}

    def update(self, frame_time: float, cell_voltages_v: np.ndarray, cell_temperatures_c: np.ndarray) -> SensorHealth:
        """One frame (call when a new frame arrives; frame_time = its source time)."""
        p = self.spec
        v = cell_voltages_v.astype(np.float64)
        t = cell_temperatures_c.astype(np.float64)
        dt_v = frame_time - self._v.prev_t if np.isfinite(self._v.prev_t) else 0.0
        dt_t = frame_time - self._t.prev_t if np.isfinite(self._t.prev_t) else 0.0

        with np.errstate(invalid="ignore"):
            v_codes = np.select([np.isnan(v), np.abs(v) <= p.voltage_zero_v, (v < p.voltage_min_v) | (v > p.voltage_max_v)],
                                [_OPEN, _ZERO, _RANGE], 0).astype(np.int8)
            t_codes = np.select([np.isnan(t), (t <= p.temperature_rail_low_c) | (t >= p.temperature_rail_high_c),
                                 (t < p.temperature_min_c) | (t > p.temperature_max_c)],
                                [_OPEN, _RAIL, _RANGE], 0).astype(np.int8)
        v_bad = self._v.step(frame_time, v, v_codes > 0, v_codes,
                             p.voltage_max_rate_v_per_s * dt_v + p.voltage_step_margin_v,
                             self._stuck_after_s["voltage"], p.voltage_stuck_change_v, p.fault_clear_s)
        t_bad = self._t.step(frame_time, t, t_codes > 0, t_codes,
                             p.temperature_max_rate_c_per_s * dt_t + p.temperature_step_margin_c,
                             self._stuck_after_s["temperature"], p.temperature_stuck_change_c, p.fault_clear_s)
        faults = tuple(SensorFault("voltage", int(i), FAULTS[self._v.code[i]], float(v[i])) for i in np.flatnonzero(v_bad)) \
            + tuple(SensorFault("temperature", int(i), FAULTS[self._t.code[i]], float(t[i])) for i in np.flatnonzero(t_bad))
        n_v, n_t = int(v_bad.sum()), int(t_bad.sum())
        if n_v > p.max_faulty_voltage_sensors or n_t > p.max_faulty_temperature_fraction * len(t):
            level = Level.TRIP
            cause = f"sensors degraded: {n_v} voltage and {n_t} temperature sensors faulty"
        elif faults:
            level = Level.ALARM
            f = faults[0]
            names = self._names[f.kind]
            where = names[f.index] if names else f"{f.kind} {f.index + 1}"
            cause = f"sensor fault: {where} {f.fault.replace('_', ' ')} ({len(faults)} faulty)"
        else:
            level, cause = Level.NORMAL, ""
        v_ok, t_ok = ~v_bad, ~t_bad
        v_ok.flags.writeable = False
        t_ok.flags.writeable = False
        return SensorHealth(v_ok, t_ok, faults, level, cause)
