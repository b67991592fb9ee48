"""Derating of one rack: charge/discharge current limits (CCL/DCL, A) and charge/discharge
voltage limits (CVL/DVL, V) from SOC, cell temperatures and the highest/lowest cell voltage.

CCL = max_charge_crate x capacity x min(voltage taper, temperature factor, SOC taper):
  - voltage taper: 1 at [derating] ccl_taper_start_v, falling linearly to 0 at the cell
    overvoltage alarm level (DCL: dcl_taper_start_v down to the undervoltage alarm level);
  - temperature factor: the [derating] table at the coldest and the hottest usable sensor (the
    tables have one peak, so these two bound every sensor);
  - SOC taper: 1 below ccl_soc_taper_start_pct, falling to soc_taper_floor at 100 % (DCL: near 0 %).
CVL = series x charge_voltage_v, pulled down by the excess of the highest cell over
charge_voltage_v (so a high cell cannot climb further in the constant-voltage phase); DVL mirrors it.

A rack that reports only its extremes (app/protection/cell_source.py) passes them as (min, max) pairs
with their point names (reasons then name the point), one with pack sensors their names
(`temperatures_c[2]`); one that reports no temperatures passes none, and the BMS's own current limits
stand in for the temperature factor.

Hysteresis: a limit moves in its safe direction at once and back only by at least one band (or when
it returns to its ceiling), so noise around a taper point does not chatter. Pure; one object per
rack, called from the protection thread each cycle.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.points import cell_label
from app.protection.ladder import extremes
from app.protection.limit_file import LimitSet


@dataclass(frozen=True)
class DeratingResult:
    """Limits for the PCS/EMS. *_reason names the binding cause, e.g. 'CCL 42 A: cell 3-07-12 at 3.52 V'."""

    ccl_a: float
    dcl_a: float
    cvl_v: float
    dvl_v: float
    ccl_reason: str
    dcl_reason: str


class _Held:
    """A limit that follows its raw value in the safe direction (sign -1: lower is safer) at once
    and away from it only by `band` or when reaching the ceiling."""

    def __init__(self, band: float, ceiling: float, sign: float) -> None:
        self.band, self.ceiling, self.sign = band, ceiling, sign
        self.value: float | None = None
        self.reason = ""

    def update(self, raw: float, reason: str) -> None:
        s = self.sign
        if (self.value is None or s * raw >= s * self.value or s * (self.value - raw) >= self.band
                or raw == self.ceiling):
            self.value, self.reason = raw, reason


def _ramp(x: float, one_at: float, zero_at: float) -> float:
    """1 at `one_at`, 0 at `zero_at`, linear between, clamped (either orientation)."""
    return float(np.clip((zero_at - x) / (zero_at - one_at), 0.0, 1.0))


class RackDerating:
    """Derating state of one rack (rack_number and cells_per_module format the cell labels)."""

    def __init__(self, limits: LimitSet, capacity_ah: float, series_cells: int, rack_number: int,
                 cells_per_module: int, voltage_names: tuple[str, ...] | None = None,
                 temperature_names: tuple[str, ...] | None = None) -> None:
        d = limits.derating
        self.d = d
        self.series_cells = series_cells
        self.rack_number, self.cells_per_module = rack_number, cells_per_module
        self.voltage_names, self.temperature_names = voltage_names, temperature_names
        self.ov_alarm_v = limits.ladders["cell_overvoltage"].levels[1]
        self.uv_alarm_v = limits.ladders["cell_undervoltage"].levels[1]
        self.max_ccl_a = d.max_charge_crate * capacity_ah
        self.max_dcl_a = d.max_discharge_crate * capacity_ah
        band_a = d.current_hysteresis_crate * capacity_ah
        band_v = d.voltage_hysteresis_v * series_cells
        self._ccl = _Held(band_a, self.max_ccl_a, -1.0)
        self._dcl = _Held(band_a, self.max_dcl_a, -1.0)
        self._cvl = _Held(band_v, d.charge_voltage_v * series_cells, -1.0)
        self._dvl = _Held(band_v, d.discharge_voltage_v * series_cells, +1.0)

    def label(self, cell_index: int) -> str:
        m, c = divmod(cell_index, self.cells_per_module)
        return cell_label(self.rack_number, m + 1, c + 1)

    def _v_where(self, index: int) -> str:
        return self.voltage_names[index] if self.voltage_names else f"cell {self.label(index)}"

    def evaluate(self, soc_pct: float, cell_voltages_v: np.ndarray, cell_temperatures_c: np.ndarray,
                 pack_voltage_v: float | None = None, voltage_ok: np.ndarray | None = None,
                 temperature_ok: np.ndarray | None = None,
                 bms_current_limits_a: tuple[float, float] | None = None) -> DeratingResult:
        """One cycle. Arrays cell 1 first; temperature sensor j covers cells from j*n//m (n cells,
        m sensors); masks exclude faulty sensors. Empty temperatures: the rack reports none, and
        `bms_current_limits_a` (charge, discharge; NaN unknown) replace the temperature factor.
        With no usable voltage or temperature (or BMS limit), or an unknown SOC, both current limits
        are 0 (the safe value), never a guess. pack_voltage_v None: the sum of the cells; NaN:
        unknown (CVL/DVL are then not pulled by the pack voltage)."""
        d = self.d
        v_hi, i_vhi, v_lo, i_vlo = extremes(cell_voltages_v, voltage_ok)
        t_hi, i_thi, t_lo, i_tlo = extremes(cell_temperatures_c, temperature_ok)
        n, m = len(cell_voltages_v), max(len(cell_temperatures_c), 1)
        measured = len(cell_temperatures_c) > 0
        if pack_voltage_v is None:
            pack_voltage_v = float(np.sum(cell_voltages_v, dtype=np.float64))

        def temp_where(sensor: int) -> str:
            return self.temperature_names[sensor] if self.temperature_names else f"cell {self.label(sensor * n // m)}"

        if i_vhi < 0 or (measured and i_thi < 0) or not soc_pct == soc_pct:
            missing = "cell voltages" if i_vhi < 0 else "cell temperatures" if measured and i_thi < 0 else "SOC"
            for held, name in ((self._ccl, "CCL"), (self._dcl, "DCL")):
                held.update(0.0, f"{name} 0 A: no usable {missing}")
        else:
            bms_ccl, bms_dcl = bms_current_limits_a or (float("nan"), float("nan"))
            self._ccl.update(*self._current(
                "CCL", self.max_ccl_a,
                (_ramp(v_hi, d.ccl_taper_start_v, self.ov_alarm_v), f"{self._v_where(i_vhi)} at {v_hi:.2f} V"),
                _temperature_factors(d.charge_temperatures_c, d.charge_factors, t_lo, i_tlo, t_hi, i_thi, temp_where)
                if measured else _bms_factor(bms_ccl, self.max_ccl_a),
                (_soc_taper(soc_pct, d.ccl_soc_taper_start_pct, 100.0, d.soc_taper_floor), f"SOC {soc_pct:.1f} %")))
            self._dcl.update(*self._current(
                "DCL", self.max_dcl_a,
                (_ramp(v_lo, d.dcl_taper_start_v, self.uv_alarm_v), f"{self._v_where(i_vlo)} at {v_lo:.2f} V"),
                _temperature_factors(d.discharge_temperatures_c, d.discharge_factors, t_lo, i_tlo, t_hi, i_thi,
                                     temp_where) if measured else _bms_factor(bms_dcl, self.max_dcl_a),
                (_soc_taper(soc_pct, d.dcl_soc_taper_start_pct, 0.0, d.soc_taper_floor), f"SOC {soc_pct:.1f} %")))
        cvl = d.charge_voltage_v * self.series_cells
        dvl = d.discharge_voltage_v * self.series_cells
        if i_vhi >= 0 and v_hi > d.charge_voltage_v and pack_voltage_v == pack_voltage_v:
            cvl = min(cvl, pack_voltage_v - (v_hi - d.charge_voltage_v))
        if i_vlo >= 0 and v_lo < d.discharge_voltage_v and pack_voltage_v == pack_voltage_v:
            dvl = max(dvl, pack_voltage_v + (d.discharge_voltage_v - v_lo))
        self._cvl.update(cvl, "")
        self._dvl.update(dvl, "")
        return DeratingResult(self._ccl.value, self._dcl.value, self._cvl.value, self._dvl.value,
                              self._ccl.reason, self._dcl.reason)

    @staticmethod
    def _current(name: str, maximum: float, *factors: tuple[float, str]) -> tuple[float, str]:
        factor, why = min(factors, key=lambda f: f[0])
        amps = max(0.0, maximum * factor)
        if factor >= 1.0:
            return amps, f"{name} {amps:.0f} A: not derated"
        return amps, f"{name} {amps:.0f} A: {why}"


def _soc_taper(soc_pct: float, start: float, end: float, floor: float) -> float:
    return floor + (1.0 - floor) * _ramp(soc_pct, start, end)


def _temperature_factors(temps, factors, t_lo: float, i_lo: int, t_hi: float, i_hi: int, where) -> tuple[float, str]:
    f_lo = float(np.interp(t_lo, temps, factors))
    f_hi = float(np.interp(t_hi, temps, factors))
    if f_lo <= f_hi:
        return f_lo, f"{where(i_lo)} at {t_lo:.1f} C"
    return f_hi, f"{where(i_hi)} at {t_hi:.1f} C"


def _bms_factor(limit_a: float, maximum_a: float) -> tuple[float, str]:
    """The BMS's own current limit as a factor of the maximum (a rack without temperatures)."""
    if not limit_a == limit_a:
        return 0.0, "no BMS current limit (no cell temperatures)"
    return float(np.clip(limit_a / maximum_a, 0.0, 1.0)), f"BMS limit {limit_a:.0f} A (no cell temperatures)"
