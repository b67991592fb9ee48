"""Supervisory cell balancing for one rack: which cells to bleed (passive) or shuttle (active).

Imbalance is measured in voltage where the OCV is steep enough to show it (slope at the rack's mean
SOC >= `min_slope_v`), else in SOC (an LFP plateau: voltage says nothing there). A cell starts
balancing when its excess over the reference (passive: the lowest cell; active: the mean) exceeds the
start threshold and stops below the lower stop threshold (per-cell hysteresis). Everything stops
while any cell is hotter than `max_temp_c` or |I| exceeds `max_c_rate`. Passive bleeding on a
chemistry with a plateau runs only near the top of charge (fullest cell >= `top_soc`).

Energy: passive, V^2 / R_bleed per bleeding cell; active, V * shuttle current per source cell;
accumulated over the time each decision was in force. Pure, no I/O; the estimation thread
(app/estimation/live.py) calls `update` once per frame and publishes the decision.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.chemistry import Chemistry, get_chemistry
from app.core.errors import UserError

MODES = ("passive", "active")


@dataclass(frozen=True)
class BalancingSettings:
    """Thresholds and hardware of the balancer; `active` needs a BMS that can shuttle charge."""

    mode: str = "passive"
    start_dv_v: float = 0.030
    stop_dv_v: float = 0.010
    start_dsoc: float = 0.03
    stop_dsoc: float = 0.01
    min_slope_v: float = 0.3  # V per unit SOC: flatter than this, voltage is not a measure of SOC
    top_soc: float = 0.9
    max_temp_c: float = 45.0
    max_c_rate: float = 0.5
    bleed_resistor_ohm: float = 33.0
    shuttle_current_a: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UserError(f"balancing mode '{self.mode}': choose one of {', '.join(MODES)}")
        if not 0 <= self.stop_dv_v < self.start_dv_v:
            raise UserError("balancing: need 0 <= stop_dv_v < start_dv_v")
        if not 0 <= self.stop_dsoc < self.start_dsoc:
            raise UserError("balancing: need 0 <= stop_dsoc < start_dsoc")
        if self.bleed_resistor_ohm <= 0 or self.shuttle_current_a <= 0 or self.max_c_rate <= 0:
            raise UserError("balancing: bleed_resistor_ohm, shuttle_current_a and max_c_rate must be > 0")


@dataclass(frozen=True)
class BalancingDecision:
    """One decision: `cells` to bleed (passive) or discharge (active), `receivers` to charge
    (active), 1-based as the BMS protocols number them; the measured spread, the metric used,
    why nothing may run ("" when allowed) and the energy balanced so far (Wh)."""

    cells: tuple[int, ...]
    receivers: tuple[int, ...]
    dv_v: float
    dsoc: float
    metric: str
    inhibit: str
    energy_wh: float


class BalancingController:
    """Balancing decisions for `n_cells` series cells of one rack; see the module docstring."""

    def __init__(self, chemistry: Chemistry | str, capacity_ah: float, n_cells: int,
                 settings: BalancingSettings = BalancingSettings()) -> None:
        if n_cells < 1 or not capacity_ah > 0:
            raise UserError("balancing needs n_cells >= 1 and capacity_ah > 0")
        self.chem = get_chemistry(chemistry) if isinstance(chemistry, str) else chemistry
        self.capacity_ah, self.n, self.settings = float(capacity_ah), n_cells, settings
        self.plateau = bool((self.chem.ocv_slope(np.linspace(0.2, 0.8, 61)) < settings.min_slope_v).any())
        self.sources = np.zeros(n_cells, dtype=bool)
        self.sinks = np.zeros(n_cells, dtype=bool)
        self.energy_wh = 0.0

    def update(self, dt_s: float, current_a: float, voltage_v, soc, temp_c) -> BalancingDecision:
        """Account the energy of the last decision over `dt_s`, then decide from this frame:
        voltages (n,), SOC fractions (n,; NaN unknown), temperatures (n,; NaN missing), rack current."""
        s = self.settings
        volt = np.asarray(voltage_v, dtype=float)
        soc = np.asarray(soc, dtype=float)
        temp = np.asarray(temp_c, dtype=float)
        if dt_s > 0 and self.sources.any():
            v = np.nan_to_num(volt[self.sources])
            power = v * v / s.bleed_resistor_ohm if s.mode == "passive" else v * s.shuttle_current_a
            self.energy_wh += float(power.sum()) * dt_s / 3600.0
        v_ok, soc_ok = np.isfinite(volt), np.isfinite(soc)
        v_known, soc_known = volt[v_ok], soc[soc_ok]
        dv = float(v_known.max() - v_known.min()) if v_known.size else float("nan")
        dsoc = float(soc_known.max() - soc_known.min()) if soc_known.size else float("nan")
        use_voltage = not soc_known.size or float(self.chem.ocv_slope(soc_known.mean())) >= s.min_slope_v
        x, ok, known = (volt, v_ok, v_known) if use_voltage else (soc, soc_ok, soc_known)
        start, stop = (s.start_dv_v, s.stop_dv_v) if use_voltage else (s.start_dsoc, s.stop_dsoc)

        hottest = np.max(temp, initial=-np.inf, where=np.isfinite(temp))
        inhibit = ""
        if known.size < 2:
            inhibit = "no data"
        elif hottest > s.max_temp_c:
            inhibit = "cell too hot"
        elif not abs(current_a) <= s.max_c_rate * self.capacity_ah:
            inhibit = "fast charge or discharge"
        elif s.mode == "passive" and self.plateau and soc_known.size and soc_known.max() < s.top_soc:
            inhibit = "below top of charge"
        if inhibit:
            self.sources[:] = False
            self.sinks[:] = False
        else:
            excess = x - (known.min() if s.mode == "passive" else known.mean())  # NaN where unknown
            self.sources = ok & (excess > np.where(self.sources, stop, start))
            if s.mode == "active":
                self.sinks = ok & (-excess > np.where(self.sinks, stop, start))
        return BalancingDecision(tuple((np.flatnonzero(self.sources) + 1).tolist()),
                                 tuple((np.flatnonzero(self.sinks) + 1).tolist()),
                                 dv, dsoc, metric="voltage" if use_voltage else "soc", inhibit=inhibit,
                                 energy_wh=self.energy_wh)
