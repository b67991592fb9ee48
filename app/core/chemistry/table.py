"""Chemistry table: OCV curve(s), R0 + 2RC resistances and their temperature factors, from TOML."""
from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core.errors import UserError

DATA_DIR = Path(__file__).with_name("data")
BUILTIN_CHEMISTRIES = ("lfp", "nmc", "lto", "naion")


@dataclass(frozen=True, eq=False)  # eq=False: hashable by identity, cached_property works
class Chemistry:
    """One cell chemistry. SOC is a fraction 0..1, voltages in V, resistances in ohm*Ah.

    Resistances are per unit capacity (ohm*Ah): divide by the cell capacity in Ah to get ohms.
    OCV rows are given at `ocv_temperatures_c` and interpolated linearly in temperature (clamped).
    """

    name: str
    description: str
    v_min: float
    v_max: float
    hysteresis_v: float
    soc: np.ndarray  # (k,) strictly increasing, 0 .. 1
    ocv_temperatures_c: np.ndarray  # (m,) strictly increasing
    ocv_v: np.ndarray  # (m, k) each row strictly increasing
    r0_ohm_ah: float
    r1_ohm_ah: float
    tau1_s: float
    r2_ohm_ah: float
    tau2_s: float
    resistance_temperatures_c: np.ndarray
    resistance_factor: np.ndarray
    capacity_temperatures_c: np.ndarray
    capacity_factor_table: np.ndarray

    def _rows_weights(self, temp_c) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        temps = self.ocv_temperatures_c
        t = np.clip(np.asarray(temp_c, dtype=float), temps[0], temps[-1])
        if temps.size == 1:
            lo = np.zeros(t.shape, dtype=int)
            return lo, lo, np.zeros(t.shape)
        hi = np.clip(np.searchsorted(temps, t, side="right"), 1, temps.size - 1)
        lo = hi - 1
        return lo, hi, (t - temps[lo]) / (temps[hi] - temps[lo])

    def _blend(self, values, rows, temp_c) -> np.ndarray:
        """Interpolate `rows` (one per OCV temperature) at `values` along SOC, then in temperature."""
        if self.ocv_temperatures_c.size == 1:
            return np.interp(values, self.soc, rows[0])  # np.interp clamps at the ends
        s, t = np.broadcast_arrays(np.asarray(values, dtype=float), np.asarray(temp_c, dtype=float))
        at = np.stack([np.interp(s, self.soc, row) for row in rows])
        lo, hi, w = self._rows_weights(t)
        return (1 - w) * np.take_along_axis(at, lo[None], 0)[0] + w * np.take_along_axis(at, hi[None], 0)[0]

    def ocv(self, soc, temp_c=25.0) -> np.ndarray:
        """Open-circuit voltage at `soc` (fraction, clamped to 0..1) and `temp_c` (broadcast)."""
        return self._blend(soc, self.ocv_v, temp_c)

    def ocv_slope(self, soc, temp_c=25.0) -> np.ndarray:
        """dOCV/dSOC in V per unit SOC: the table's finite-difference slope, interpolated."""
        return self._blend(soc, self._slopes, temp_c)

    @functools.cached_property
    def _slopes(self) -> np.ndarray:
        return np.gradient(self.ocv_v, self.soc, axis=1)

    def soc_from_ocv(self, voltage_v, temp_c=25.0) -> np.ndarray:
        """Inverse of `ocv`: SOC fraction for a rested voltage, clamped to 0..1."""
        v, t = np.broadcast_arrays(np.asarray(voltage_v, dtype=float), np.asarray(temp_c, dtype=float))
        if self.ocv_temperatures_c.size == 1:
            return np.interp(v, self.ocv_v[0], self.soc)
        rows = np.stack([np.interp(v, row, self.soc) for row in self.ocv_v])
        lo, hi, w = self._rows_weights(t)
        return (1 - w) * np.take_along_axis(rows, lo[None], 0)[0] + w * np.take_along_axis(rows, hi[None], 0)[0]

    def resistance_scale(self, temp_c) -> np.ndarray:
        """Factor on all resistances at `temp_c` relative to the table's 25 C values (clamped)."""
        return np.interp(temp_c, self.resistance_temperatures_c, self.resistance_factor)

    def capacity_factor(self, temp_c) -> np.ndarray:
        """Deliverable capacity at `temp_c` relative to 25 C (clamped); not the stored charge."""
        return np.interp(temp_c, self.capacity_temperatures_c, self.capacity_factor_table)


def _floats(doc: dict, key: str, where: str, *, min_len: int = 1) -> np.ndarray:
    if key not in doc:
        raise UserError(f"{where}: missing key '{key}'")
    try:
        arr = np.asarray(doc[key], dtype=float)
    except (TypeError, ValueError):
        raise UserError(f"{where}: '{key}' must be numbers") from None
    if arr.ndim == 0 or arr.shape[-1] < min_len or not np.all(np.isfinite(arr)):
        raise UserError(f"{where}: '{key}' needs at least {min_len} finite numbers")
    return arr


def _increasing(arr: np.ndarray, key: str, where: str) -> np.ndarray:
    if np.any(np.diff(arr, axis=-1) <= 0):
        raise UserError(f"{where}: '{key}' must be strictly increasing")
    return arr


def _number(doc: dict, key: str, where: str, *, positive: bool = False) -> float:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{where}: '{key}' must be a number")
    if positive and value <= 0:
        raise UserError(f"{where}: '{key}' must be > 0")
    return float(value)


def _section(doc: dict, key: str, where: str) -> dict:
    section = doc.get(key)
    if not isinstance(section, dict):
        raise UserError(f"{where}: missing table [{key}]")
    return section


def chemistry_from_dict(doc: dict, where: str) -> Chemistry:
    """Validate a parsed chemistry table (the TOML layout of data/*.toml); errors name the key."""
    ocv = _section(doc, "ocv", where)
    soc = _increasing(_floats(ocv, "soc", f"{where} [ocv]", min_len=2), "soc", f"{where} [ocv]")
    if soc[0] != 0.0 or soc[-1] != 1.0:
        raise UserError(f"{where} [ocv]: 'soc' must run from 0 to 1")
    temps = _increasing(_floats(ocv, "temperatures_c", f"{where} [ocv]"), "temperatures_c", f"{where} [ocv]")
    volts = np.atleast_2d(_floats(ocv, "voltage_v", f"{where} [ocv]", min_len=2))
    if volts.shape != (temps.size, soc.size):
        raise UserError(f"{where} [ocv]: 'voltage_v' needs one row of {soc.size} values per temperature")
    _increasing(volts, "voltage_v", f"{where} [ocv]")
    res = _section(doc, "resistance", where)
    rw = f"{where} [resistance]"
    res_t = _increasing(_floats(res, "temperatures_c", rw), "temperatures_c", rw)
    res_f = _floats(res, "factor", rw)
    cap = _section(doc, "capacity", where)
    cw = f"{where} [capacity]"
    cap_t = _increasing(_floats(cap, "temperatures_c", cw), "temperatures_c", cw)
    cap_f = _floats(cap, "factor", cw)
    if res_f.shape != res_t.shape or np.any(res_f <= 0):
        raise UserError(f"{rw}: 'factor' needs one value > 0 per temperature")
    if cap_f.shape != cap_t.shape or np.any(cap_f <= 0):
        raise UserError(f"{cw}: 'factor' needs one value > 0 per temperature")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise UserError(f"{where}: 'name' must be a non-empty string")
    chem = Chemistry(
        name=name,
        description=str(doc.get("description", "")),
        v_min=_number(doc, "v_min", where),
        v_max=_number(doc, "v_max", where),
        hysteresis_v=_number(doc, "hysteresis_v", where),
        soc=soc,
        ocv_temperatures_c=temps,
        ocv_v=volts,
        r0_ohm_ah=_number(res, "r0_ohm_ah", rw, positive=True),
        r1_ohm_ah=_number(res, "r1_ohm_ah", rw, positive=True),
        tau1_s=_number(res, "tau1_s", rw, positive=True),
        r2_ohm_ah=_number(res, "r2_ohm_ah", rw, positive=True),
        tau2_s=_number(res, "tau2_s", rw, positive=True),
        resistance_temperatures_c=res_t,
        resistance_factor=res_f,
        capacity_temperatures_c=cap_t,
        capacity_factor_table=cap_f,
    )
    if not chem.v_min < chem.v_max or chem.hysteresis_v < 0:
        raise UserError(f"{where}: need v_min < v_max and hysteresis_v >= 0")
    for arr in (soc, temps, volts, res_t, res_f, cap_t, cap_f):
        arr.setflags(write=False)
    return chem


def load_chemistry(path: str | Path) -> Chemistry:
    """Load a chemistry table from a TOML file (layout of app/core/chemistry/data/lfp.toml)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise UserError(f"cannot read chemistry file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"chemistry file {path}: {exc}") from None
    return chemistry_from_dict(doc, str(path))


@functools.cache
def get_chemistry(name: str) -> Chemistry:
    """A built-in chemistry by name: one of BUILTIN_CHEMISTRIES."""
    if name not in BUILTIN_CHEMISTRIES:
        raise UserError(f"unknown chemistry '{name}': choose one of {', '.join(BUILTIN_CHEMISTRIES)}")
    return load_chemistry(DATA_DIR / f"{name}.toml")
