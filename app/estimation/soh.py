"""Cell state of health, vectorised per rack: capacity fade and resistance growth, each with bounds.

Capacity: a calibration point is a rested cell (|I| <= `rest_c` C for `rest_s`), whose SOC follows
from its OCV with an uncertainty of the voltage's (noise, hysteresis) over the OCV slope; on a flat
plateau (LFP mid-SOC) that uncertainty is large and such points weigh little. Between two points the
charge is counted; capacity = Ah / delta SOC, its variance propagated from both SOC variances, the
current's gain error and offset. Each pair is fused into a per-cell Kalman estimate (random walk
with fade noise per equivalent full cycle). The SOC is taken from the OCV and not from the SOC
filter, whose coulomb counting already assumes a capacity.

Resistance: at a current step larger than `step_c` C between two samples at most `max_dt_s` apart,
dV/dI per cell over the chemistry's impedance at that interval and temperature (R0 plus the part of
each RC branch charged within dt), fused the same way. 100 % = as the chemistry table says.

Pure classes, no I/O; called by the estimation thread (app/estimation/live.py) once per frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.chemistry import Chemistry, get_chemistry
from app.core.errors import UserError

SIGMAS = 2.0  # width of the reported bounds


@dataclass(frozen=True)
class Bounded:
    """A per-cell estimate in percent with its lower and upper bounds (SIGMAS sigma), arrays (n,)."""

    pct: np.ndarray
    low_pct: np.ndarray
    high_pct: np.ndarray


class _Fused:
    """Per-cell scalar Kalman estimate of a ratio (1.0 = nominal) from noisy samples, with a random
    walk of `drift_var` per unit of `age` (throughput or time) added when the next sample arrives;
    `version` counts the updates (a caller republishes only when it changed)."""

    def __init__(self, n: int, prior_std: float, drift_var: float) -> None:
        self.value = np.ones(n)
        self.var = np.full(n, prior_std**2)
        self.drift_var = drift_var
        self.age = np.zeros(n)  # since each cell's last sample
        self.count = np.zeros(n, dtype=int)  # samples fused per cell
        self.version = 0
        self._bounded: Bounded | None = None

    def fuse(self, mask: np.ndarray, z: np.ndarray, r: np.ndarray) -> None:
        var = self.var + np.where(mask, self.drift_var * self.age, 0.0)
        gain = np.where(mask, var / (var + r), 0.0)
        self.value = self.value + gain * np.where(mask, z - self.value, 0.0)
        self.var = np.where(mask, var * (1.0 - gain), self.var)
        self.age = np.where(mask, 0.0, self.age)
        self.count += mask
        self.version += 1
        self._bounded = None

    def bounded(self) -> Bounded:
        """Estimate and bounds as of each cell's last sample, in percent (read-only arrays)."""
        if self._bounded is None:
            half = SIGMAS * np.sqrt(self.var)
            arrays = (100.0 * self.value, 100.0 * np.maximum(self.value - half, 0.0), 100.0 * (self.value + half))
            for a in arrays:
                a.setflags(write=False)
            self._bounded = Bounded(*arrays)
        return self._bounded


def _cells(chemistry: Chemistry | str, capacity_ah, n_cells: int) -> tuple[Chemistry, np.ndarray]:
    chem = get_chemistry(chemistry) if isinstance(chemistry, str) else chemistry
    if n_cells < 1:
        raise UserError(f"n_cells must be >= 1, got {n_cells}")
    cap = np.broadcast_to(np.asarray(capacity_ah, dtype=float), (n_cells,)).copy()
    if not np.all(np.isfinite(cap)) or np.any(cap <= 0):
        raise UserError("capacity_ah must be > 0 for every cell")
    return chem, cap




class CapacityEstimator:
    """Capacity of `n_cells` cells relative to `capacity_ah` (nominal), from rest-to-rest charge.

    `update(dt_s, current_a, voltage_v, temp_c)`: voltages (n,), the others (n,) or scalars (the
    rack current); a non-finite sample or a gap over `max_gap_s` drops the cell's open pair.
    `estimate()` -> Bounded; `fused.version` changes when it does.
    """

    def __init__(self, chemistry: Chemistry | str, capacity_ah, n_cells: int, *, rest_c: float = 0.01,
                 rest_s: float | None = None, min_delta_soc: float = 0.2, max_rel_std: float = 0.2,
                 max_gap_s: float = 30.0, voltage_noise_v: float = 0.003, gain_error: float = 0.01,
                 offset_c: float = 0.002, prior_std: float = 0.15, fade_std_per_cycle: float = 0.0005):
        self.chem, self.nominal_ah = _cells(chemistry, capacity_ah, n_cells)
        self.rest_a = rest_c * self.nominal_ah
        self.rest_s = 6.0 * self.chem.tau2_s if rest_s is None else rest_s
        self.min_delta_soc, self.max_rel_std, self.max_gap_s = min_delta_soc, max_rel_std, max_gap_s
        self.gain_error, self.offset_a = gain_error, offset_c * self.nominal_ah
        self.ocv_var = voltage_noise_v**2 + (self.chem.hysteresis_v / 2) ** 2
        # fade noise per Ah of throughput (an equivalent full cycle moves 2 x nominal Ah)
        self.fused = _Fused(n_cells, prior_std, fade_std_per_cycle**2 / (2.0 * self.nominal_ah))
        self.rested_s = np.zeros(n_cells)
        self.charge_ah = np.zeros(n_cells)  # counted since the anchor
        self.elapsed_s = np.zeros(n_cells)  # since the anchor
        self.anchor = np.zeros(n_cells, dtype=bool)
        self.anchor_soc, self.anchor_var = np.zeros(n_cells), np.zeros(n_cells)
        self.cand = np.zeros(n_cells, dtype=bool)  # the rest going on now: its latest point
        self.cand_soc, self.cand_var = np.zeros(n_cells), np.zeros(n_cells)
        self.cand_ah, self.cand_s = np.zeros(n_cells), np.zeros(n_cells)

    @property
    def ratio(self) -> np.ndarray:
        """Capacity / nominal per cell (1.0 until evidence arrives)."""
        return self.fused.value

    def estimate(self) -> Bounded:
        return self.fused.bounded()

    def update(self, dt_s, current_a, voltage_v, temp_c=25.0) -> None:
        dt, cur, volt, temp = (np.asarray(a, dtype=float) for a in (dt_s, current_a, voltage_v, temp_c))
        ok = np.isfinite(dt) & np.isfinite(cur) & np.isfinite(volt) & np.isfinite(temp) & (dt >= 0)
        if ok.all() and np.all(dt <= self.max_gap_s):  # the usual frame: no masking needed
            dt_ok, ah = dt, cur * dt / 3600.0
        else:  # charge not counted: the open pair is gone
            lost = ~ok | (dt > self.max_gap_s)
            self.anchor &= ~lost
            self.cand &= ~lost
            dt_ok, ah = np.where(ok, dt, 0.0), np.where(ok, cur * dt / 3600.0, 0.0)
        self.charge_ah += ah
        self.fused.age += np.abs(ah)
        self.elapsed_s += dt_ok
        low = ok & (np.abs(cur) <= self.rest_a)
        self.rested_s = np.where(low, self.rested_s + dt_ok, 0.0) if low.any() else np.zeros(self.rested_s.shape)
        resting = ok & (self.rested_s >= self.rest_s)
        ended = self.cand & ~resting & ok
        if ended.any():
            self._close(ended)
        if resting.any():
            soc = self.chem.soc_from_ocv(volt, np.where(ok, temp, 25.0))
            slope = np.maximum(self.chem.ocv_slope(soc, np.where(ok, temp, 25.0)), 1e-6)
            self.cand |= resting
            self.cand_soc = np.where(resting, soc, self.cand_soc)
            self.cand_var = np.where(resting, self.ocv_var / slope**2, self.cand_var)
            self.cand_ah = np.where(resting, self.charge_ah, self.cand_ah)
            self.cand_s = np.where(resting, self.elapsed_s, self.cand_s)

    def _close(self, ended: np.ndarray) -> None:
        """A rest has ended: pair its last point with the previous anchor, then make it the anchor."""
        pair = ended & self.anchor
        delta = self.cand_soc - self.anchor_soc
        safe = np.where(np.abs(delta) > 1e-9, delta, 1.0)
        z = self.cand_ah / safe / self.nominal_ah
        ah_var = (self.gain_error * self.cand_ah) ** 2 + (self.offset_a * self.cand_s / 3600.0) ** 2
        r = (z**2 * (self.anchor_var + self.cand_var) + ah_var / self.nominal_ah**2) / safe**2
        use = pair & (np.abs(delta) >= self.min_delta_soc) & (z > 0.2) & (z < 2.0)
        use &= np.sqrt(r) <= self.max_rel_std * np.abs(z)
        if use.any():
            self.fused.fuse(use, z, r)
        self.anchor |= ended
        self.anchor_soc = np.where(ended, self.cand_soc, self.anchor_soc)
        self.anchor_var = np.where(ended, self.cand_var, self.anchor_var)
        self.charge_ah = np.where(ended, self.charge_ah - self.cand_ah, self.charge_ah)
        self.elapsed_s = np.where(ended, self.elapsed_s - self.cand_s, self.elapsed_s)
        self.cand &= ~ended


class ResistanceEstimator:
    """Resistance of `n_cells` cells relative to the chemistry table, from current steps.

    `update(dt_s, current_a, voltage_v, temp_c)`: one synchronised frame (voltages (n,), the current
    scalar or (n,)); a cell with a non-finite voltage or temperature is skipped for that step.
    `estimate()` -> Bounded (100 % = the table's resistance at that temperature).
    """

    def __init__(self, chemistry: Chemistry | str, capacity_ah, n_cells: int, *, step_c: float = 0.2,
                 max_dt_s: float = 2.0, voltage_noise_v: float = 0.003, model_error: float = 0.05,
                 prior_std: float = 0.3, drift_std_per_day: float = 0.01):
        self.chem, self.nominal_ah = _cells(chemistry, capacity_ah, n_cells)
        self.step_a = step_c * self.nominal_ah
        self.max_dt_s = max_dt_s
        self.voltage_var, self.model_var = voltage_noise_v**2, model_error**2
        self.fused = _Fused(n_cells, prior_std, drift_std_per_day**2 / 86400.0)  # drift per second
        self.elapsed_s = 0.0  # frame time since the last fused step (added to the cells' age then)
        self.prev_v = np.full(n_cells, np.nan)
        self.prev_i = np.full(n_cells, np.nan)

    @property
    def ratio(self) -> np.ndarray:
        """Resistance / table resistance per cell (1.0 until evidence arrives)."""
        return self.fused.value

    def estimate(self) -> Bounded:
        return self.fused.bounded()

    def reference_ohm(self, dt_s, temp_c) -> np.ndarray:
        """The table's dV/dI for a step seen `dt_s` later at `temp_c`: R0 plus each RC's share."""
        c = self.chem
        r = c.r0_ohm_ah + c.r1_ohm_ah * -np.expm1(-dt_s / c.tau1_s) + c.r2_ohm_ah * -np.expm1(-dt_s / c.tau2_s)
        return r * c.resistance_scale(temp_c) / self.nominal_ah

    def update(self, dt_s, current_a, voltage_v, temp_c=25.0) -> None:
        dt, cur, volt, temp = (np.asarray(a, dtype=float) for a in (dt_s, current_a, voltage_v, temp_c))
        self.elapsed_s += float(np.max(dt)) if np.isfinite(dt).all() else 0.0
        di = cur - self.prev_i
        step = np.abs(di) >= self.step_a  # False where either current is unknown
        if step.any():
            step &= np.isfinite(volt) & np.isfinite(temp) & np.isfinite(self.prev_v) & (dt > 0) & (dt <= self.max_dt_s)
            safe_di = np.where(step, di, 1.0)
            ref = self.reference_ohm(np.where(step, dt, 1.0), np.where(step, temp, 25.0))
            z = (volt - self.prev_v) / safe_di / ref
            r = 2.0 * self.voltage_var / (safe_di * ref) ** 2 + self.model_var * z**2
            use = step & (z > 0.2) & (z < 10.0)
            if use.any():
                self.fused.age += self.elapsed_s
                self.elapsed_s = 0.0
                self.fused.fuse(use, z, r)
        self.prev_v = np.array(volt, dtype=float)  # a copy: the caller's array may change
        self.prev_i = np.where(np.isnan(volt), np.nan, cur)
