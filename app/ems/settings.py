"""EMS settings (one frozen dataclass), the tariff they describe, and building a mode by name.

``with_param(settings, name, value)`` is how the operator's ``set_param`` command changes one field;
a bad name or value raises UserError naming it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from app.core.errors import UserError
from app.ems.modes import (BackupReserve, FrequencySupport, Manual, PeakShaving, RuleBased, SelfConsumption,
                           SolarSmoothing, TouShifting, Windows, in_windows)

MODES = ("manual", "peak_shaving", "tou", "self_consumption", "solar_smoothing", "frequency_support",
         "backup_reserve", "schedule", "mpc", "rules")


@dataclass(frozen=True)
class EmsSettings:
    period_s: float = 1.0
    stale_after_s: float = 5.0          # older samples count as missing
    write_deadband_kw: float = 1.0      # smaller setpoint changes are not written to the PCS
    soc_min_pct: float = 10.0           # below: no discharge; above soc_max: no charge
    soc_max_pct: float = 90.0
    capacity_kwh: float = 0.0           # 0: cells x Ah x nominal voltage from the site file
    manual_kw: float = 0.0
    peak_threshold_kw: float = 500.0
    recharge_kw: float = 50.0
    charge_windows: Windows = ((21.0, 7.0),)
    discharge_windows: Windows = ((16.0, 21.0),)
    charge_kw: float = 100.0
    discharge_kw: float = 100.0
    charge_to_pct: float = 90.0
    reserve_pct: float = 20.0           # self-consumption / rules discharge floor
    backup_reserve_pct: float = 80.0
    pv_rating_kw: float = 400.0
    ramp_pct_per_min: float = 10.0
    nominal_hz: float = 50.0
    deadband_hz: float = 0.05
    droop_pct: float = 4.0
    ffr_trigger_hz: float = 49.7
    ffr_hold_s: float = 30.0
    island_on_grid_loss: bool = True
    island_grid_stable_s: float = 60.0  # the returned grid must stay in frequency this long before resync
    island_device_timeout_s: float = 10.0   # a breaker/PCS must report its commanded state within this
    # tariff (prices per kWh in ``currency``): import price by window (first match), else off_peak_price
    currency: str = "EUR"
    price_windows: tuple[tuple[float, float, float], ...] = ((16.0, 21.0, 0.38), (7.0, 16.0, 0.22))
    off_peak_price: float = 0.12
    export_price: float = 0.05
    demand_charge_per_kw: float = 15.0
    # MPC
    mpc_step_minutes: float = 15.0
    mpc_horizon_h: float = 24.0
    mpc_replan_minutes: float = 15.0
    mpc_final_soc_pct: float = 50.0
    import_limit_kw: float = 1000.0
    export_limit_kw: float = 1000.0
    degradation_cost_per_kwh: float = 0.02

    def import_price(self, hours) -> np.ndarray:
        """Import price per kWh at local hours of day (array in, array out)."""
        hours = np.asarray(hours, dtype=float)
        prices = [next((p for a, b, p in self.price_windows if in_windows(h, ((a, b),))), self.off_peak_price)
                  for h in hours.ravel().tolist()]
        return np.asarray(prices, dtype=float).reshape(hours.shape)


def with_param(settings: EmsSettings, name: str, value) -> EmsSettings:
    """A copy of ``settings`` with one field changed; UserError names a bad name or value."""
    fields = {f.name: f for f in dataclasses.fields(EmsSettings)}
    if name not in fields:
        raise UserError(f"unknown EMS parameter {name!r} (known: {', '.join(sorted(fields))})")
    current = getattr(settings, name)
    try:
        if isinstance(current, bool):
            if not isinstance(value, bool):
                raise TypeError("expected true/false")
            new = value
        elif isinstance(current, str):
            if not isinstance(value, str) or not value.strip():
                raise TypeError("expected a non-empty text")
            new = value.strip()
        elif isinstance(current, float):
            new = float(value)
            if not np.isfinite(new):
                raise ValueError("not finite")
        else:
            new = tuple(tuple(float(x) for x in row) for row in value)
            if current and any(len(row) != len(current[0]) for row in new):
                raise ValueError(f"each entry needs {len(current[0])} numbers")
    except (TypeError, ValueError) as exc:
        raise UserError(f"EMS parameter {name}: bad value {value!r} ({exc})") from None
    return dataclasses.replace(settings, **{name: new})


def build_mode(name: str, s: EmsSettings, rated_kw: float):
    """The pure controller for a rule-based mode name (not 'schedule'/'mpc', which need a plan)."""
    if name == "manual":
        return Manual(s.manual_kw)
    if name == "peak_shaving":
        return PeakShaving(s.peak_threshold_kw, s.recharge_kw, s.charge_to_pct)
    if name == "tou":
        return TouShifting(s.charge_windows, s.discharge_windows, s.charge_kw, s.discharge_kw, s.charge_to_pct,
                           s.reserve_pct)
    if name == "self_consumption":
        return SelfConsumption(s.reserve_pct)
    if name == "solar_smoothing":
        return SolarSmoothing(s.pv_rating_kw, s.ramp_pct_per_min)
    if name == "frequency_support":
        return FrequencySupport(rated_kw, s.nominal_hz, s.deadband_hz, s.droop_pct, s.ffr_trigger_hz,
                                ffr_hold_s=s.ffr_hold_s)
    if name == "backup_reserve":
        return BackupReserve(s.backup_reserve_pct, s.recharge_kw)
    if name == "rules":
        return RuleBased(s.peak_threshold_kw, s.charge_windows, s.discharge_windows, s.charge_kw, s.charge_to_pct,
                         s.reserve_pct)
    raise UserError(f"unknown EMS mode {name!r} (known: {', '.join(MODES)})")
