"""Dispatch scenario: parse and validate the JSON of shared/scenario-schema.md into a frozen dataclass.

Every error a user can cause raises ScenarioError naming the key to fix (dotted path, e.g.
``series.pv_kw`` or ``battery.capacity_kwh``). Pure apart from ``load_scenario`` reading one file.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core.errors import UserError

SERIES_KEYS = ("load_kw", "pv_kw", "import_price_per_kwh", "export_price_per_kwh")


class ScenarioError(UserError):
    """The scenario file is missing, not JSON, or has a key with a bad value; the message names it."""


@dataclass(frozen=True)
class Battery:
    capacity_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    charge_efficiency: float
    discharge_efficiency: float
    soc_min_pct: float
    soc_max_pct: float
    initial_soc_pct: float
    final_soc_min_pct: float
    degradation_cost_per_kwh: float


@dataclass(frozen=True)
class Grid:
    import_limit_kw: float
    export_limit_kw: float
    demand_charge_per_kw: float
    existing_peak_kw: float


@dataclass(frozen=True, eq=False)
class Scenario:
    """A validated scenario. Series are read-only float64 arrays of length ``steps``."""

    step_minutes: float
    battery: Battery
    grid: Grid
    load_kw: np.ndarray
    pv_kw: np.ndarray
    import_price_per_kwh: np.ndarray
    export_price_per_kwh: np.ndarray

    @property
    def steps(self) -> int:
        return int(self.load_kw.size)

    @property
    def dt_h(self) -> float:
        return self.step_minutes / 60.0


# (key, lower bound, lower bound inclusive?, upper bound or None)
_BATTERY_RULES = (
    ("capacity_kwh", 0.0, False, None),
    ("max_charge_kw", 0.0, True, None),
    ("max_discharge_kw", 0.0, True, None),
    ("charge_efficiency", 0.0, False, 1.0),
    ("discharge_efficiency", 0.0, False, 1.0),
    ("soc_min_pct", 0.0, True, 100.0),
    ("soc_max_pct", 0.0, True, 100.0),
    ("initial_soc_pct", 0.0, True, 100.0),
    ("final_soc_min_pct", 0.0, True, 100.0),
    ("degradation_cost_per_kwh", 0.0, True, None),
)
_GRID_RULES = (
    ("import_limit_kw", 0.0, True, None),
    ("export_limit_kw", 0.0, True, None),
    ("demand_charge_per_kw", 0.0, True, None),
    ("existing_peak_kw", 0.0, True, None),
)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; raises ScenarioError naming the file or key at fault."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"scenario file not found: {p}") from None
    except IsADirectoryError:
        raise ScenarioError(f"scenario path is a directory, expected a JSON file: {p}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read scenario file {p}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(
            f"{p}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    return parse_scenario(data)


def parse_scenario(data: object) -> Scenario:
    """Validate a decoded JSON object (dict) and build a Scenario."""
    root = _section(data, "scenario")
    step_minutes = _number(root, "step_minutes", "step_minutes", 0.0, False, None)
    b, g, s = (_section(_required(root, key, key), key) for key in ("battery", "grid", "series"))
    battery = Battery(**{k: _number(b, k, f"battery.{k}", lo, inc, hi) for k, lo, inc, hi in _BATTERY_RULES})
    grid = Grid(**{k: _number(g, k, f"grid.{k}", lo, inc, hi) for k, lo, inc, hi in _GRID_RULES})
    if battery.soc_min_pct > battery.soc_max_pct:
        raise ScenarioError(
            f"battery.soc_min_pct ({battery.soc_min_pct:g}) must be <= battery.soc_max_pct "
            f"({battery.soc_max_pct:g})")
    series = {k: _series(s, k) for k in SERIES_KEYS}
    n = series["load_kw"].size
    if n == 0:
        raise ScenarioError("series.load_kw is empty, expected at least one step")
    for k in SERIES_KEYS[1:]:
        if series[k].size != n:
            raise ScenarioError(
                f"series.{k} has {series[k].size} values, expected {n} (the length of series.load_kw)")
    bad = np.flatnonzero(series["pv_kw"] < 0)
    if bad.size:
        raise ScenarioError(f"series.pv_kw[{bad[0]}] is {series['pv_kw'][bad[0]]:g}, must be >= 0")
    return Scenario(step_minutes=step_minutes, battery=battery, grid=grid, **series)


def _required(obj: dict, key: str, name: str) -> object:
    if key not in obj:
        raise ScenarioError(f"missing key {name!r} in scenario")
    return obj[key]


def _section(value: object, name: str) -> dict:
    if not isinstance(value, dict):
        raise ScenarioError(f"{name} must be a JSON object, got {type(value).__name__}")
    return value


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number(obj: dict, key: str, name: str, lo: float, lo_inclusive: bool, hi: float | None) -> float:
    v = _required(obj, key, name)
    if not _is_number(v) or not math.isfinite(v):
        raise ScenarioError(f"{name} must be a finite number, got {v!r}")
    v = float(v)
    too_low = v < lo or (v == lo and not lo_inclusive)
    if too_low or (hi is not None and v > hi):
        if hi is None:
            rule = f"{'>=' if lo_inclusive else '>'} {lo:g}"
        else:
            rule = f"in {'[' if lo_inclusive else '('}{lo:g}, {hi:g}]"
        raise ScenarioError(f"{name} must be {rule}, got {v:g}")
    return v


def _series(obj: dict, key: str) -> np.ndarray:
    name = f"series.{key}"
    v = _required(obj, key, name)
    if not isinstance(v, list):
        raise ScenarioError(f"{name} must be a list of numbers, got {type(v).__name__}")
    for i, x in enumerate(v):
        if not _is_number(x) or not math.isfinite(x):
            raise ScenarioError(f"{name}[{i}] must be a finite number, got {x!r}")
    arr = np.asarray(v, dtype=float)
    arr.setflags(write=False)
    return arr
