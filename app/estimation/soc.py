"""Vectorised SOC estimation: an extended Kalman filter on an R0 + 2RC cell model, N cells at once.

State per cell: [soc, v1, v2, offset_a] where v1, v2 are the RC overpotentials and offset_a is the
current-sensor offset (true current = measured - offset_a). Current + = charging. Robustness:
- unknown initial SOC: first sample seeds the state from the inverted OCV with a wide covariance;
- sensor offset: augmented random-walk state; gain error: SOC process noise proportional to |I|;
- model mismatch and hysteresis: the voltage is trusted less under load (noise grows with a
  low-passed |I|: a share of the resistive drop plus the OCV slope times the surface-to-bulk SOC
  gap of a loaded particle, which dominates at the steep ends of the curve) and by the
  chemistry's hysteresis width, both as errors correlated over `correlation_s`; after a rest the
  trust returns, which is the rest-period OCV correction;
- end-of-charge / end-of-discharge calibration: at the OCV limits with a tapering current the SOC
  is pinned to 100 % / 0 % by a pseudo-measurement.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from app.core.chemistry import Chemistry, get_chemistry
from app.core.errors import UserError

N_STATES = 4
_MASKED = 1e12  # measurement variance that turns an update off for a cell


class Step(NamedTuple):
    """One filter step for all cells, states first: transition F = diag(decay) + coupling e3^T
    (e3: the offset state), prior and posterior. The offline smoother consumes these."""

    decay: np.ndarray  # (4, n)
    coupling: np.ndarray  # (4, n)
    x_prior: np.ndarray  # (4, n)
    p_prior: np.ndarray  # (4, 4, n)
    x_post: np.ndarray  # (4, n)
    p_post: np.ndarray  # (4, 4, n)


class SocEstimator:
    """EKF SOC estimator for `n_cells` cells of one chemistry; pure, no I/O.

    `update(dt_s, current_a, voltage_v, temp_c)` takes arrays of shape (n_cells,) (scalars
    broadcast) and returns the SOC fraction 0..1 per cell. A cell's first valid sample only
    initialises it; a non-finite sample leaves that cell's state as it was.
    Arrays are kept states-first (x: (4, n), P: (4, 4, n)) so each operation is contiguous.
    """

    def __init__(
        self,
        chemistry: Chemistry | str,
        capacity_ah,
        n_cells: int,
        *,
        voltage_noise_v: float = 0.003,
        offset_std_c: float = 0.02,
        gain_error: float = 0.02,
        model_error: float = 0.15,
        surface_soc_per_c: float = 0.1,
        correlation_s: float = 120.0,
    ):
        self.chem = get_chemistry(chemistry) if isinstance(chemistry, str) else chemistry
        if n_cells < 1:
            raise UserError(f"n_cells must be >= 1, got {n_cells}")
        cap = np.broadcast_to(np.asarray(capacity_ah, dtype=float), (n_cells,)).copy()
        if not np.all(np.isfinite(cap)) or np.any(cap <= 0):
            raise UserError("capacity_ah must be > 0 for every cell")
        self.n = n_cells
        self.capacity_ah = cap
        self.voltage_noise_v = voltage_noise_v
        self.offset_std_c = offset_std_c
        self.gain_error = gain_error
        self.model_error = model_error
        self.surface_soc_per_c = surface_soc_per_c
        self.correlation_s = correlation_s
        self.x = np.zeros((N_STATES, n_cells))
        self.P = np.zeros((N_STATES, N_STATES, n_cells))
        self.activity_c = np.zeros(n_cells)  # low-passed |I| / C
        self.initialised = np.zeros(n_cells, dtype=bool)
        self._ocv_full = float(self.chem.ocv(1.0))
        self._ocv_empty = float(self.chem.ocv(0.0))

    @property
    def soc(self) -> np.ndarray:
        """SOC fraction per cell; NaN for a cell that has had no valid sample yet."""
        return np.where(self.initialised, np.clip(self.x[0], 0.0, 1.0), np.nan)

    @property
    def soc_std(self) -> np.ndarray:
        return np.sqrt(self.P[0, 0])

    @property
    def offset_a(self) -> np.ndarray:
        return self.x[3].copy()

    def update(self, dt_s, current_a, voltage_v, temp_c=25.0) -> np.ndarray:
        """Advance all cells by dt_s seconds with the new samples; returns SOC fractions (n,)."""
        self.step(dt_s, current_a, voltage_v, temp_c)
        return self.soc

    def _initialise(self, cells, current, voltage, temp):
        """Seed `cells` (bool mask) from the inverted OCV with wide uncertainty."""
        chem, cap = self.chem, self.capacity_ah[cells]
        current, voltage, temp = current[cells], voltage[cells], temp[cells]
        r0 = chem.r0_ohm_ah * chem.resistance_scale(temp) / cap
        self.x, self.P = self.x.copy(), self.P.copy()  # earlier Steps keep their arrays
        self.x[:, cells] = 0.0
        self.x[0, cells] = chem.soc_from_ocv(voltage - r0 * current, temp)
        self.P[:, :, cells] = 0.0
        self.P[0, 0, cells] = 0.3**2
        self.P[1, 1, cells] = (0.5 * (chem.r1_ohm_ah / cap) * np.abs(current)) ** 2 + 1e-6
        self.P[2, 2, cells] = (0.5 * (chem.r2_ohm_ah / cap) * np.abs(current)) ** 2 + 1e-6
        self.P[3, 3, cells] = (self.offset_std_c * cap) ** 2
        self.activity_c[cells] = np.abs(current) / cap
        self.initialised |= cells

    def inputs(self, dt_s, current_a, voltage_v, temp_c=25.0) -> dict:
        """Everything a step needs that depends only on the samples, for arrays broadcastable to
        (..., n): one step (n,) online, or a whole trace (rows, n) for the offline smoother.
        Per-state arrays come out as (..., 4, n)."""
        dt, cur, volt, temp, _ = np.broadcast_arrays(
            *(np.asarray(a, dtype=float) for a in (dt_s, current_a, voltage_v, temp_c)), np.empty(self.n))
        valid = np.isfinite(dt) & np.isfinite(cur) & np.isfinite(volt) & np.isfinite(temp) & (dt >= 0)
        if not valid.all():  # a missing/bad sample leaves that cell's state untouched
            dt, cur, volt, temp = (np.where(valid, a, 0.0) for a in (dt, cur, volt, temp))
        chem, cap = self.chem, self.capacity_ah
        scale = chem.resistance_scale(temp)
        r0, r1, r2 = (r * scale / cap for r in (chem.r0_ohm_ah, chem.r1_ohm_ah, chem.r2_ohm_ah))
        a1, a2 = np.exp(-dt / chem.tau1_s), np.exp(-dt / chem.tau2_s)
        g = dt / (3600.0 * cap)
        ones, zeros = np.ones_like(dt), np.zeros_like(dt)
        # transition F = diag(decay) + coupling e3^T: the offset feeds soc, v1 and v2
        decay = np.stack([ones, a1, a2, ones], axis=-2)
        coupling = np.stack([-g, -r1 * (1 - a1), -r2 * (1 - a2), zeros], axis=-2)
        hours = dt / 3600.0
        q = np.stack([
            (self.gain_error * g * cur) ** 2 + 1e-6 * hours,
            (self.model_error * r1 * (1 - a1) * cur) ** 2 + 1e-8 * hours,
            (self.model_error * r2 * (1 - a2) * cur) ** 2 + 1e-8 * hours,
            (0.002 * cap) ** 2 * hours,
        ], axis=-2)
        load_c = np.abs(cur) / cap
        full = (volt >= self._ocv_full - 0.005) & (cur >= -0.01 * cap) & (load_c <= 0.1)
        empty = (volt <= self._ocv_empty + 0.005) & (cur <= 0.01 * cap) & (load_c <= 0.1)
        return {
            "valid": valid,
            "cur": cur, "volt": volt, "temp": temp, "r0": r0, "decay": decay, "coupling": coupling, "q": q,
            "load_c": load_c,
            "activity_decay": np.exp(-dt / chem.tau2_s),
            "mismatch_v_per_c": self.model_error * (chem.r0_ohm_ah + chem.r1_ohm_ah + chem.r2_ohm_ah) * scale,
            "correlation": np.maximum(1.0, self.correlation_s / np.maximum(dt, 1e-9)),
            "pin_target": np.where(full, 1.0, 0.0),
            "pin_var": np.where(full | empty, (0.01 + 0.2 * load_c) ** 2, _MASKED),
            "any_pin": bool((full | empty).any()),
        }

    def step(self, dt_s, current_a, voltage_v, temp_c=25.0) -> Step:
        """One predict + correct step for all cells; see `update`."""
        return self.step_inputs(self.inputs(dt_s, current_a, voltage_v, temp_c))

    def step_inputs(self, u: dict) -> Step:
        """One predict + correct step from `inputs(...)` for one time step (arrays (n,), (4, n))."""
        cur, volt, temp, r0, d, f = u["cur"], u["volt"], u["temp"], u["r0"], u["decay"], u["coupling"]
        x, P = self.x, self.P
        fresh = u["valid"] & ~self.initialised
        run = u["valid"] & self.initialised
        if fresh.any():
            self._initialise(fresh, cur, volt, temp)
        # predict with F = diag(d) + f e3^T: x' = F x - f i_measured, P' = F P F^T + diag(q)
        x_pred = d * x + f * (x[3] - cur)
        A = d[:, None] * P + f[:, None] * P[3]
        P_pred = A * d + A[:, 3:4] * f
        for i in range(N_STATES):
            P_pred[i, i] += u["q"][i]

        # voltage measurement; its noise grows with recent load (model mismatch) and hysteresis
        w = np.where(run, u["activity_decay"], 1.0)
        self.activity_c = w * self.activity_c + (1 - w) * u["load_c"]
        ocv, slope = self.chem.ocv(x_pred[0], temp), self.chem.ocv_slope(x_pred[0], temp)
        mismatch = (u["mismatch_v_per_c"] + self.surface_soc_per_c * slope) * self.activity_c
        correlated = mismatch**2 + (self.chem.hysteresis_v / 2) ** 2
        r_meas = self.voltage_noise_v**2 + correlated * u["correlation"]
        H = np.empty_like(x_pred)
        H[0] = slope
        H[1:3] = 1.0
        H[3] = -r0
        predicted_v = ocv + r0 * (cur - x_pred[3]) + x_pred[1] + x_pred[2]
        x_post, P_post = _correct(x_pred, P_pred, H, volt - predicted_v, r_meas)

        # end-of-charge / end-of-discharge calibration: at the OCV limits with a tapering current
        if u["any_pin"]:
            Hs = np.zeros_like(H)
            Hs[0] = 1.0
            x_post, P_post = _correct(x_post, P_post, Hs, u["pin_target"] - x_post[0], u["pin_var"])

        x_post[0] = np.minimum(np.maximum(x_post[0], -0.1), 1.1)
        limit = 0.1 * self.capacity_ah
        x_post[3] = np.minimum(np.maximum(x_post[3], -limit), limit)
        if not run.all():  # fresh, invalid or never-seen cells: identity step, state kept
            d, f = np.where(run, d, 1.0), np.where(run, f, 0.0)
            x_pred = x_post = np.where(run, x_post, self.x)
            P_pred = P_post = np.where(run, P_post, self.P)
        self.x, self.P = x_post, P_post
        return Step(d, f, x_pred, P_pred, x_post, P_post)


def _correct(x, P, H, innovation, r):
    """Scalar-measurement Kalman update for every cell (x, H: (4, n); P: (4, 4, n); innovation, r: (n,))."""
    PH = (P * H).sum(axis=1)
    S = (H * PH).sum(axis=0) + r
    K = PH / S
    x = x + K * innovation
    P = P - K[:, None] * PH
    P += P.transpose(1, 0, 2)
    P *= 0.5
    return x, P


def pack_soc(cell_soc, axis: int = -1) -> np.ndarray:
    """Pack SOC from cell SOCs, min/max aware (not the average).

    The pack is empty when its weakest cell is empty and full when its strongest cell is full:
    soc_min / (soc_min + 1 - soc_max). Equals the cell SOC for a balanced pack. Fractions 0..1.
    """
    soc = np.clip(np.asarray(cell_soc, dtype=float), 0.0, 1.0)
    lo, hi = soc.min(axis=axis), soc.max(axis=axis)
    span = lo + 1.0 - hi
    pack = np.divide(lo, span, out=np.zeros_like(lo), where=span > 0)
    return np.clip(pack, lo, hi)  # exact result lies in [lo, hi]; clip only removes rounding
