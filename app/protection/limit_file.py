"""Chemistry limit files (resources/limits/<chemistry>.toml): load, validate, apply site overrides.

A file has one table per ladder quantity (three rungs warn < alarm < trip, one hysteresis, one
on-delay per rung, foxBMS 2 style) and the tables [direction], [derating], [thermal] and
[plausibility]. Every number in the file can be overridden from the site file's
`[protection.limits]` table under the name `<table>_<key>`:

    [cell_overvoltage] trip_v = 3.65        ->  cell_overvoltage_trip_v = 3.62
    [cell_overvoltage] trip_delay_s = 0.5   ->  cell_overvoltage_trip_delay_s = 1.0
    [derating] max_charge_crate = 0.5       ->  derating_max_charge_crate = 0.3

Errors a user can cause (bad file, unknown or inconsistent override) raise ConfigError naming the
file or site file, the line and the key. Called once at start-up (any thread); the result is frozen.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from app.core.errors import ConfigError
from app.core.paths import RESOURCES
from app.core.tomlpos import line_of

LIMITS_DIR = RESOURCES / "limits"
RUNGS = ("warn", "alarm", "trip")

# quantity -> (side, unit suffix of its keys). Pack voltage levels are per series cell.
QUANTITIES: dict[str, tuple[str, str]] = {
    "cell_overvoltage": ("high", "v"),
    "cell_undervoltage": ("low", "v"),
    "pack_overvoltage": ("high", "v"),
    "pack_undervoltage": ("low", "v"),
    "charge_overcurrent": ("high", "crate"),
    "discharge_overcurrent": ("high", "crate"),
    "charge_overtemperature": ("high", "c"),
    "charge_undertemperature": ("low", "c"),
    "discharge_overtemperature": ("high", "c"),
    "discharge_undertemperature": ("low", "c"),
    "cell_imbalance": ("high", "v"),
    "temperature_spread": ("high", "c"),
}


@dataclass(frozen=True)
class LadderSpec:
    """Three rungs of one quantity. side 'high': exceeded above a level; 'low': below it.
    A rung is entered when the value has been beyond its level for its delay and left only once
    the value is back by more than `hysteresis` (levels in the file's units: V, C-rate, deg C)."""

    quantity: str
    side: str
    unit: str
    levels: tuple[float, float, float]      # warn, alarm, trip
    hysteresis: float
    delays_s: tuple[float, float, float]


@dataclass(frozen=True)
class DirectionSpec:
    deadband_crate: float          # |I| below this C-rate is "at rest" (discharge temperature limits)


@dataclass(frozen=True)
class DeratingSpec:
    max_charge_crate: float
    max_discharge_crate: float
    ccl_taper_start_v: float       # max cell voltage where CCL starts to fall; 0 at OV alarm level
    dcl_taper_start_v: float       # min cell voltage where DCL starts to fall; 0 at UV alarm level
    ccl_soc_taper_start_pct: float  # CCL falls linearly from here to soc_taper_floor at 100 %
    dcl_soc_taper_start_pct: float  # DCL falls linearly from here to soc_taper_floor at 0 %
    soc_taper_floor: float         # fraction kept at 100 % / 0 % SOC (voltage taper still applies)
    charge_temperatures_c: tuple[float, ...]
    charge_factors: tuple[float, ...]
    discharge_temperatures_c: tuple[float, ...]
    discharge_factors: tuple[float, ...]
    charge_voltage_v: float        # per-cell charge voltage target (CVL = this x series cells)
    discharge_voltage_v: float     # per-cell discharge voltage floor (DVL = this x series cells)
    current_hysteresis_crate: float  # a limit rises again only by at least this much
    voltage_hysteresis_v: float    # per cell, same for CVL/DVL


@dataclass(frozen=True)
class ThermalSpec:
    window_s: float                # dT/dt window for the C/min rungs
    frame_interval_s: float        # frames closer than this are not stored in the ring buffer
    warn_c_per_min: float
    alarm_c_per_min: float
    rate_hysteresis_c_per_min: float
    rate_delay_s: float
    runaway_c_per_s: float
    runaway_sustain_s: float       # dT/dt >= runaway_c_per_s for longer than this ...
    runaway_voltage_drop_v: float  # ... with a cell voltage drop of more than this ...
    voltage_window_s: float        # ... vs the highest voltage of the last voltage_window_s
    runaway_temperature_c: float   # ... or a temperature at or above this
    h2_warn_ppm: float
    h2_alarm_ppm: float
    co_warn_ppm: float
    co_alarm_ppm: float


@dataclass(frozen=True)
class PlausibilitySpec:
    temperature_rail_low_c: float
    temperature_rail_high_c: float
    temperature_min_c: float
    temperature_max_c: float
    temperature_max_rate_c_per_s: float
    temperature_step_margin_c: float
    temperature_stuck_change_c: float   # neighbours (rack median) moved this much while it did not
    voltage_zero_v: float
    voltage_min_v: float
    voltage_max_v: float
    voltage_max_rate_v_per_s: float
    voltage_step_margin_v: float
    voltage_stuck_change_v: float
    stuck_after_s: float
    fault_clear_s: float                # a fault clears after this long of plausible readings
    max_faulty_temperature_fraction: float
    max_faulty_voltage_sensors: float


@dataclass(frozen=True)
class LimitSet:
    """Everything protection needs for one chemistry, overrides applied."""

    chemistry: str
    ladders: dict[str, LadderSpec]
    direction: DirectionSpec
    derating: DeratingSpec
    thermal: ThermalSpec
    plausibility: PlausibilitySpec


_SECTIONS = {"direction": DirectionSpec, "derating": DeratingSpec, "thermal": ThermalSpec,
             "plausibility": PlausibilitySpec}


def ladder_keys(quantity: str) -> tuple[str, ...]:
    unit = QUANTITIES[quantity][1]
    return tuple(f"{r}_{unit}" for r in RUNGS) + (f"hysteresis_{unit}",) + tuple(f"{r}_delay_s" for r in RUNGS)


def load_limits(chemistry: str, overrides: Mapping[str, float] | None = None, *,
                site_text: str | None = None, site_source: str = "site file",
                limits_dir: Path = LIMITS_DIR) -> LimitSet:
    """Read resources/limits/<chemistry>.toml, apply `overrides` (site.protection.overrides) and
    validate. `site_text` (the site file's text) lets override errors name their line."""
    path = Path(limits_dir) / f"{chemistry}.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read limit file for chemistry '{chemistry}': {exc.strerror}") from None
    return parse_limits(text, str(path), overrides or {}, site_text, site_source)


def parse_limits(text: str, source: str, overrides: Mapping[str, float],
                 site_text: str | None = None, site_source: str = "site file") -> LimitSet:
    """parse_limits(text of a limit file, its name, overrides): see load_limits."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: TOML syntax error: {exc}") from None

    def file_error(path: tuple, message: str) -> ConfigError:
        line = line_of(text, path)
        return ConfigError(f"{source}:{line or '?'}: {'.'.join(map(str, path))}: {message}")

    expected = {q: ladder_keys(q) for q in QUANTITIES}
    expected.update({s: tuple(f.name for f in dataclasses.fields(cls)) for s, cls in _SECTIONS.items()})
    for key in data:
        if key not in expected and key not in ("chemistry", "description"):
            raise file_error((key,), f"unknown table (allowed: {', '.join(sorted(expected))})")
    chemistry = data.get("chemistry")
    if not isinstance(chemistry, str):
        raise file_error(("chemistry",), "missing or not a string")

    values: dict[str, dict[str, float | tuple[float, ...]]] = {}
    for table, keys in expected.items():
        t = data.get(table)
        if not isinstance(t, dict):
            raise file_error((table,), "missing table")
        for key in t:
            if key not in keys:
                raise file_error((table, key), f"unknown key (allowed: {', '.join(keys)})")
        values[table] = {}
        for key in keys:
            if key not in t:
                raise file_error((table,), f"missing key '{key}'")
            v = t[key]
            if isinstance(v, list):
                if not v or not all(_is_number(x) for x in v):
                    raise file_error((table, key), f"expected a non-empty array of numbers, got {v!r}")
                values[table][key] = tuple(float(x) for x in v)
            elif _is_number(v):
                values[table][key] = float(v)
            else:
                raise file_error((table, key), f"expected a number, got {v!r}")

    names = {f"{table}_{key}": (table, key) for table, keys in values.items() for key in keys
             if not isinstance(values[table][key], tuple)}

    def override_error(name: str, message: str) -> ConfigError:
        line = line_of(site_text, ("protection", "limits", name)) if site_text else None
        where = f"{site_source}:{line}" if line else site_source
        return ConfigError(f"{where}: protection.limits.{name}: {message}")

    for name, value in overrides.items():
        if name not in names:
            raise override_error(name, "unknown limit override (names are <table>_<key> of "
                                       f"resources/limits/{chemistry}.toml, e.g. cell_overvoltage_trip_v)")
        if not _is_number(value):
            raise override_error(name, f"expected a number, got {value!r}")
        table, key = names[name]
        values[table][key] = float(value)

    def fail(table: str, key: str, message: str) -> ConfigError:
        name = f"{table}_{key}"
        if name in overrides:
            return override_error(name, message)
        return file_error((table, key), message)

    ladders = {q: _ladder(q, values[q], fail) for q in QUANTITIES}
    sections = {s: cls(**values[s]) for s, cls in _SECTIONS.items()}
    _check_sections(sections, ladders, fail)
    return LimitSet(chemistry, ladders, sections["direction"], sections["derating"], sections["thermal"],
                    sections["plausibility"])


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def _ladder(quantity: str, v: dict, fail) -> LadderSpec:
    side, unit = QUANTITIES[quantity]
    keys = ladder_keys(quantity)
    levels = tuple(v[k] for k in keys[:3])
    hysteresis = v[keys[3]]
    delays = tuple(v[k] for k in keys[4:])
    sign = 1 if side == "high" else -1
    for i in (1, 2):
        if not sign * (levels[i] - levels[i - 1]) > 0:
            order = "above" if side == "high" else "below"
            raise fail(quantity, keys[i], f"must be {order} {keys[i - 1]} ({levels[i - 1]:g}), got {levels[i]:g}")
    if not hysteresis > 0:
        raise fail(quantity, keys[3], f"must be > 0, got {hysteresis:g}")
    for key, d in zip(keys[4:], delays):
        if d < 0:
            raise fail(quantity, key, f"must be >= 0, got {d:g}")
    return LadderSpec(quantity, side, unit, levels, hysteresis, delays)


def _check_sections(s: dict, ladders: dict[str, LadderSpec], fail) -> None:
    for table, spec in s.items():
        for f in dataclasses.fields(spec):
            value = getattr(spec, f.name)
            if isinstance(value, float) and value < 0 and not f.name.startswith("temperature_") \
                    and f.name not in ("runaway_temperature_c",):
                raise fail(table, f.name, f"must be >= 0, got {value:g}")
    d: DeratingSpec = s["derating"]
    ov_alarm = ladders["cell_overvoltage"].levels[1]
    uv_alarm = ladders["cell_undervoltage"].levels[1]
    if not d.ccl_taper_start_v < ov_alarm:
        raise fail("derating", "ccl_taper_start_v", f"must be below cell_overvoltage alarm_v ({ov_alarm:g})")
    if not d.dcl_taper_start_v > uv_alarm:
        raise fail("derating", "dcl_taper_start_v", f"must be above cell_undervoltage alarm_v ({uv_alarm:g})")
    if not 0 <= d.soc_taper_floor <= 1:
        raise fail("derating", "soc_taper_floor", "must be between 0 and 1")
    if not 0 < d.ccl_soc_taper_start_pct < 100:
        raise fail("derating", "ccl_soc_taper_start_pct", "must be between 0 and 100")
    if not 0 < d.dcl_soc_taper_start_pct < 100:
        raise fail("derating", "dcl_soc_taper_start_pct", "must be between 0 and 100")
    for kind in ("charge", "discharge"):
        temps, factors = getattr(d, f"{kind}_temperatures_c"), getattr(d, f"{kind}_factors")
        if len(temps) != len(factors):
            raise fail("derating", f"{kind}_factors", f"needs one factor per entry of {kind}_temperatures_c")
        if any(b <= a for a, b in zip(temps, temps[1:])):
            raise fail("derating", f"{kind}_temperatures_c", "must be strictly increasing")
        if any(not 0 <= f <= 1 for f in factors):
            raise fail("derating", f"{kind}_factors", "factors must be between 0 and 1")
        peak = factors.index(max(factors))
        if any(b < a for a, b in zip(factors[:peak], factors[1:peak + 1])) or \
                any(b > a for a, b in zip(factors[peak:], factors[peak + 1:])):
            # unimodal tables let the derater look only at the coldest and hottest sensor
            raise fail("derating", f"{kind}_factors", "must rise to a plateau and then fall (one peak)")
    t: ThermalSpec = s["thermal"]
    if not t.warn_c_per_min < t.alarm_c_per_min:
        raise fail("thermal", "alarm_c_per_min", f"must be above warn_c_per_min ({t.warn_c_per_min:g})")
    if not t.h2_warn_ppm < t.h2_alarm_ppm:
        raise fail("thermal", "h2_alarm_ppm", f"must be above h2_warn_ppm ({t.h2_warn_ppm:g})")
    if not t.co_warn_ppm < t.co_alarm_ppm:
        raise fail("thermal", "co_alarm_ppm", f"must be above co_warn_ppm ({t.co_warn_ppm:g})")
    if not t.window_s >= 4 * t.frame_interval_s:
        raise fail("thermal", "window_s", "must span at least 4 frame intervals")
    for key in ("window_s", "frame_interval_s", "runaway_c_per_s", "rate_hysteresis_c_per_min"):
        if not getattr(t, key) > 0:
            raise fail("thermal", key, "must be > 0")
    p: PlausibilitySpec = s["plausibility"]
    if not p.temperature_rail_low_c < p.temperature_min_c < p.temperature_max_c < p.temperature_rail_high_c:
        raise fail("plausibility", "temperature_min_c",
                   "needs temperature_rail_low_c < temperature_min_c < temperature_max_c < temperature_rail_high_c")
    if not (p.voltage_zero_v < p.voltage_max_v and p.voltage_min_v < p.voltage_max_v):
        raise fail("plausibility", "voltage_max_v", "must be above voltage_zero_v and voltage_min_v")
    if not 0 <= p.max_faulty_temperature_fraction < 1:
        raise fail("plausibility", "max_faulty_temperature_fraction", "must be in [0, 1)")
    if p.max_faulty_voltage_sensors != int(p.max_faulty_voltage_sensors):
        raise fail("plausibility", "max_faulty_voltage_sensors", "must be a whole number")
