"""The limit ladder: every rung of every quantity of every chemistry enters after its on-delay and
leaves only beyond its hysteresis; charge/discharge limits follow the current direction."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.protection.ladder import Direction, Level, LevelTracker, RackLadder
from app.protection.limit_file import QUANTITIES
from protection_cases import CAPACITY_AH, CELLS, CHEMISTRIES, frame, limits, mid_voltage

WORST = 6          # the cell / sensor index the tests push beyond a limit


def inputs(chemistry: str, quantity: str, value: float) -> dict:
    """Rack inputs that put `quantity` at `value` (ladder file units) and keep the rest normal."""
    lim = limits(chemistry)
    v, t = frame(lim)
    mid = mid_voltage(lim)
    current = 0.0
    pack = mid * CELLS
    if quantity in ("cell_overvoltage", "cell_undervoltage"):
        v[WORST] = value
    elif quantity.startswith("pack_"):
        pack = value * CELLS
    elif quantity == "charge_overcurrent":
        current = value * CAPACITY_AH
    elif quantity == "discharge_overcurrent":
        current = -value * CAPACITY_AH
    elif quantity == "cell_imbalance":
        v[WORST] = mid + value
    elif quantity == "temperature_spread":
        t[WORST] = 25.0 + value
    else:
        t[WORST] = value
    if quantity.startswith("charge_") and "temperature" in quantity:
        current = 0.1 * CAPACITY_AH
    elif quantity.startswith("discharge_") and "temperature" in quantity:
        current = -0.1 * CAPACITY_AH
    return {"cell_voltages_v": v, "cell_temperatures_c": t, "current_a": current, "pack_voltage_v": pack}


CASES = [(c, q, r) for c in CHEMISTRIES for q in QUANTITIES for r in range(3)]


@pytest.mark.parametrize("chemistry,quantity,rung", CASES, ids=[f"{c}-{q}-{'wat'[r]}" for c, q, r in CASES])
def test_rung_enters_after_delay_and_leaves_beyond_hysteresis(chemistry, quantity, rung):
    spec = limits(chemistry).ladders[quantity]
    sign = 1.0 if spec.side == "high" else -1.0
    level = spec.levels[rung]
    gap = abs(spec.levels[rung + 1] - level) if rung < 2 else spec.hysteresis
    eps = min(spec.hysteresis, gap) / 4
    delay = spec.delays_s[rung]
    ladder = RackLadder(limits(chemistry), CAPACITY_AH, CELLS)
    expected = Level(rung + 1)

    def at(t: float, value: float):
        return ladder.evaluate(t, **inputs(chemistry, quantity, value))[quantity]

    assert at(0.0, level - sign * eps).level < expected                  # inside: not entered
    first = at(1.0, level + sign * eps)                                    # beyond: timer starts
    assert first.level < expected or delay == 0
    assert at(1.0 + delay * 0.99, level + sign * eps).level < expected or delay == 0
    entered = at(1.0 + delay, level + sign * eps)
    assert entered.level == expected
    assert entered.since == 1.0
    assert entered.limit == pytest.approx(_scaled(quantity, level))
    rack_level = quantity.startswith("pack_") or "current" in quantity
    assert entered.index == (-1 if rack_level else WORST)
    # hovering inside the hysteresis band keeps the rung
    assert at(2.0 + delay, level - sign * spec.hysteresis * 0.9).level == expected
    # beyond the hysteresis the rung is left
    assert at(3.0 + delay, level - sign * spec.hysteresis * 1.1).level < expected


def _scaled(quantity: str, level: float) -> float:
    if quantity.startswith("pack_"):
        return level * CELLS
    if "current" in quantity:
        return level * CAPACITY_AH
    return level


def test_worst_cell_value_and_limit_are_reported():
    lim = limits("lfp")
    ladder = RackLadder(lim, CAPACITY_AH, CELLS)
    v, t = frame(lim)
    v[11] = 3.70
    v[12] = 3.62
    for now in (0.0, 0.5):
        s = ladder.evaluate(now, v, t, 10.0)["cell_overvoltage"]
    assert (s.level, s.index, s.limit, s.since) == (Level.TRIP, 11, 3.65, 0.0)
    assert s.value == pytest.approx(3.70)


def test_lfp_charging_below_zero_trips_but_resting_does_not():
    lim = limits("lfp")
    v, t = frame(lim, temp_c=-5.0)
    resting = RackLadder(lim, CAPACITY_AH, CELLS)
    charging = RackLadder(lim, CAPACITY_AH, CELLS)
    for now in (0.0, 10.0):
        r = resting.evaluate(now, v, t, 0.0)
        c = charging.evaluate(now, v, t, 20.0)
    assert r.direction is Direction.REST and r["charge_undertemperature"].level == Level.NORMAL
    assert r.level == Level.NORMAL
    assert c.direction is Direction.CHARGE and c["charge_undertemperature"].level == Level.TRIP


def test_direction_deadband_does_not_flap():
    lim = limits("lfp")
    ladder = RackLadder(lim, CAPACITY_AH, CELLS)
    v, t = frame(lim)
    deadband = lim.direction.deadband_crate * CAPACITY_AH
    assert ladder.evaluate(0, v, t, deadband * 1.1).direction is Direction.CHARGE
    assert ladder.evaluate(1, v, t, deadband * 0.9).direction is Direction.CHARGE    # still inside the band
    assert ladder.evaluate(2, v, t, deadband * 0.4).direction is Direction.REST
    assert ladder.evaluate(3, v, t, -deadband * 1.1).direction is Direction.DISCHARGE


def test_nan_and_masked_cells_are_never_the_worst():
    lim = limits("lfp")
    ladder = RackLadder(lim, CAPACITY_AH, CELLS)
    v, t = frame(lim)
    v[3] = np.nan
    v[4] = 4.5
    ok = np.ones(CELLS, dtype=bool)
    ok[4] = False
    s = ladder.evaluate(0, v, t, 0.0, voltage_ok=ok)["cell_overvoltage"]
    assert s.index not in (3, 4) and s.value == pytest.approx(mid_voltage(lim))


def test_no_usable_reading_holds_the_state():
    lim = limits("lfp")
    ladder = RackLadder(lim, CAPACITY_AH, CELLS)
    v, t = frame(lim)
    v[0] = 3.7
    ladder.evaluate(0, v, t, 0.0)
    assert ladder.evaluate(1, v, t, 0.0)["cell_overvoltage"].level == Level.TRIP
    blind = np.full(CELLS, np.nan, dtype=np.float32)
    held = ladder.evaluate(2, blind, t, 0.0)["cell_overvoltage"]
    assert held.level == Level.TRIP and held.index == -1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-0.99, 5.0), min_size=1, max_size=60), st.sampled_from([0.0, 0.5, 2.0]))
def test_hovering_at_a_level_never_chatters(offsets, delay):
    """Once a rung is active, any values that stay above level - hysteresis keep it active."""
    tracker = LevelTracker("high", (1.0, 2.0, 3.0), 0.1, (delay, delay, delay))
    tracker.update(1.01, 0.0)
    level, _ = tracker.update(1.01, delay)
    assert level >= Level.WARN
    for k, off in enumerate(offsets):
        level, _ = tracker.update(1.0 + 0.1 * off, delay + 1 + k)
        assert level >= Level.WARN


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 4.0), min_size=2, max_size=60))
def test_level_changes_need_a_crossing_of_the_band(values):
    """Between two level changes of a rung the value crossed both its level and its release."""
    tracker = LevelTracker("high", (1.0, 2.0, 3.0), 0.2, (0.0, 0.0, 0.0))
    levels = [tracker.update(x, float(k))[0] for k, x in enumerate(values)]
    for k in range(1, len(values)):
        if levels[k] > levels[k - 1]:
            assert values[k] > (1.0, 2.0, 3.0)[levels[k] - 1]
        if levels[k] < levels[k - 1]:
            assert values[k] < (1.0, 2.0, 3.0)[levels[k - 1] - 1] - 0.2
