"""Limit ladder of one rack: warn / alarm / trip per quantity with on-delays and hysteresis.

Pure and vectorised: each cycle takes the rack's whole cell arrays, reduces each to its worst cell
(one argmax/argmin per array) and steps a small per-quantity state machine, so a value hovering at a
level never chatters. Called from the protection thread only; the state object belongs to one rack.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from app.protection.limit_file import QUANTITIES, LadderSpec, LimitSet


class Level(enum.IntEnum):
    NORMAL = 0
    WARN = 1
    ALARM = 2
    TRIP = 3


class Direction(enum.Enum):
    CHARGE = "charge"
    DISCHARGE = "discharge"
    REST = "rest"


class LevelTracker:
    """On-delay + hysteresis state of one three-rung ladder (values in the ladder's display units).

    A rung's timer starts when the value goes beyond the rung's level and stops only once the value
    is back by more than the hysteresis; the rung is active once its timer has run its delay.
    A NaN value (no usable reading) neither starts nor stops a timer: the state holds.
    """

    def __init__(self, side: str, levels: tuple[float, float, float], hysteresis: float,
                 delays_s: tuple[float, float, float]) -> None:
        self.sign = 1.0 if side == "high" else -1.0
        self.levels, self.hysteresis, self.delays_s = levels, hysteresis, delays_s
        self._since: list[float | None] = [None, None, None]

    def update(self, value: float, now: float) -> tuple[Level, float | None]:
        """Step with the worst value at `now`; return (active level, time its condition started)."""
        for r, limit in enumerate(self.levels):
            beyond = self.sign * (value - limit)
            if beyond > 0:
                if self._since[r] is None:
                    self._since[r] = now
            elif beyond < -self.hysteresis:
                self._since[r] = None
        for r in (2, 1, 0):
            since = self._since[r]
            if since is not None and now - since >= self.delays_s[r]:
                return Level(r + 1), since
        return Level.NORMAL, None

    def reset(self) -> None:
        self._since = [None, None, None]


@dataclass(frozen=True)
class QuantityStatus:
    """One quantity after a cycle. index: 0-based cell (voltages) or sensor (temperatures) of the
    worst value, -1 for rack-level quantities (pack voltage, current, none usable). value/limit in
    V, A or deg C; limit is the active rung's level (the warn level while NORMAL)."""

    quantity: str
    level: Level
    index: int
    value: float
    limit: float
    since: float | None


@dataclass(frozen=True)
class LadderResult:
    direction: Direction
    statuses: tuple[QuantityStatus, ...]

    @property
    def level(self) -> Level:
        return max(s.level for s in self.statuses)

    def active(self) -> tuple[QuantityStatus, ...]:
        """Statuses above NORMAL, worst first."""
        return tuple(sorted((s for s in self.statuses if s.level), key=lambda s: -s.level))

    def __getitem__(self, quantity: str) -> QuantityStatus:
        return next(s for s in self.statuses if s.quantity == quantity)


class DirectionTracker:
    """Charge / discharge / rest from the current with a deadband and its own hysteresis: a
    direction is entered beyond +-deadband and left only inside +-deadband/2."""

    def __init__(self, deadband_a: float) -> None:
        self.deadband_a = deadband_a
        self.direction = Direction.REST

    def update(self, current_a: float) -> Direction:
        if not current_a == current_a:          # NaN: keep the last direction
            return self.direction
        if current_a > self.deadband_a:
            self.direction = Direction.CHARGE
        elif current_a < -self.deadband_a:
            self.direction = Direction.DISCHARGE
        elif abs(current_a) < self.deadband_a / 2:
            self.direction = Direction.REST
        return self.direction


_CHARGE_ONLY = ("charge_overtemperature", "charge_undertemperature")
_NOT_CHARGING = ("discharge_overtemperature", "discharge_undertemperature")


class RackLadder:
    """Ladder state of one rack. `series_cells` scales the per-cell pack levels, `capacity_ah`
    the C-rate levels, so statuses are in V and A."""

    def __init__(self, limits: LimitSet, capacity_ah: float, series_cells: int) -> None:
        self.limits = limits
        self.capacity_ah = capacity_ah
        self.series_cells = series_cells
        self.trackers = {q: self._tracker(limits.ladders[q]) for q in QUANTITIES}
        self.direction = DirectionTracker(limits.direction.deadband_crate * capacity_ah)

    def _tracker(self, spec: LadderSpec) -> LevelTracker:
        scale = self.series_cells if spec.quantity.startswith("pack_") else (
            self.capacity_ah if spec.unit == "crate" else 1.0)
        return LevelTracker(spec.side, tuple(v * scale for v in spec.levels), spec.hysteresis * scale,
                            spec.delays_s)

    def evaluate(self, now: float, cell_voltages_v: np.ndarray, cell_temperatures_c: np.ndarray,
                 current_a: float, pack_voltage_v: float | None = None,
                 voltage_ok: np.ndarray | None = None, temperature_ok: np.ndarray | None = None) -> LadderResult:
        """One cycle. Arrays are cell 1 first (temperatures: sensor 1 first; either may be only the
        rack's (min, max) or, for temperatures, empty); current + = charging; pack_voltage_v None = sum
        of the cell voltages; *_ok masks (from plausibility) exclude faulty sensors. NaN readings are
        never the worst value."""
        v_hi, i_vhi, v_lo, i_vlo = extremes(cell_voltages_v, voltage_ok)
        t_hi, i_thi, t_lo, i_tlo = extremes(cell_temperatures_c, temperature_ok)
        if pack_voltage_v is None:
            pack_voltage_v = float(np.sum(cell_voltages_v, dtype=np.float64))
        direction = self.direction.update(current_a)
        imbalance_index = -1
        if i_vhi >= 0:
            mean = float(np.mean(cell_voltages_v if voltage_ok is None else cell_voltages_v[voltage_ok]))
            imbalance_index = i_vhi if v_hi - mean >= mean - v_lo else i_vlo
        spread_index = -1
        if i_thi >= 0:
            mean_t = float(np.mean(cell_temperatures_c if temperature_ok is None
                                   else cell_temperatures_c[temperature_ok]))
            spread_index = i_thi if t_hi - mean_t >= mean_t - t_lo else i_tlo
        worst = {
            "cell_overvoltage": (v_hi, i_vhi),
            "cell_undervoltage": (v_lo, i_vlo),
            "pack_overvoltage": (pack_voltage_v, -1),
            "pack_undervoltage": (pack_voltage_v, -1),
            "charge_overcurrent": (max(current_a, 0.0) if current_a == current_a else current_a, -1),
            "discharge_overcurrent": (max(-current_a, 0.0) if current_a == current_a else current_a, -1),
            "charge_overtemperature": (t_hi, i_thi),
            "charge_undertemperature": (t_lo, i_tlo),
            "discharge_overtemperature": (t_hi, i_thi),
            "discharge_undertemperature": (t_lo, i_tlo),
            "cell_imbalance": (v_hi - v_lo, imbalance_index),
            "temperature_spread": (t_hi - t_lo, spread_index),
        }
        out = []
        for q, tracker in self.trackers.items():
            value, index = worst[q]
            applies = not ((q in _CHARGE_ONLY and direction is not Direction.CHARGE)
                           or (q in _NOT_CHARGING and direction is Direction.CHARGE))
            if applies:
                level, since = tracker.update(value, now)
            else:
                tracker.reset()
                level, since = Level.NORMAL, None
            limit = tracker.levels[max(level - 1, 0)]
            out.append(QuantityStatus(q, level, index, float(value), float(limit), since))
        return LadderResult(direction, tuple(out))


def extremes(values: np.ndarray, ok: np.ndarray | None) -> tuple[float, int, float, int]:
    """(max, its index, min, its index) over usable entries (finite and ok); NaN, -1 if none."""
    usable = np.isfinite(values)
    if ok is not None:
        usable &= ok
    if not usable.any():
        return float("nan"), -1, float("nan"), -1
    if usable.all():
        hi, lo = int(np.argmax(values)), int(np.argmin(values))
        return float(values[hi]), hi, float(values[lo]), lo
    hi = int(np.argmax(np.where(usable, values, -np.inf)))
    lo = int(np.argmin(np.where(usable, values, np.inf)))
    return float(values[hi]), hi, float(values[lo]), lo
