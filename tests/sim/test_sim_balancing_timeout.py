"""The simulated rack BMS's balancing timeout: without a new balancing command for that long it stops
bleeding and clears its command (the pure model and its register points, no links)."""
from __future__ import annotations

import numpy as np
import pytest

from app.core.balancing_command import POINT, TIMEOUT_POINT
from app.sim.plant import Plant
from app.sim.register_points import apply_write, device_writes, setpoints
from sim_site import sim_site

RACK = "site.bess1.rack01"


def _rack(timeout_s: float):
    plant = Plant(sim_site(racks=1, capacity_ah=10.0), seed=4)
    rack = plant.racks[RACK]
    rack.self_discharge_per_s[:] = 0.0
    apply_write(rack, TIMEOUT_POINT, timeout_s)
    apply_write(rack, POINT, "3")
    return plant, rack


def test_a_bleed_stops_when_no_command_came_within_the_timeout_and_the_command_reads_cleared_once():
    plant, rack = _rack(60)
    soc, v = rack.true_soc.copy(), rack.true_cell_voltages()[2]
    plant.step(45.0)
    assert rack.bleed[2] and device_writes(rack) == {}
    plant.step(30.0)
    assert not rack.bleed.any()
    drained_ah = (soc - rack.true_soc)[2] * rack.capacity_ah[2]
    assert drained_ah == pytest.approx(v / rack.bleed_resistor_ohm * 60.0 / 3600.0, rel=0.02)  # 60 s, not 75
    assert device_writes(rack) == {POINT: ()} and device_writes(rack) == {}


def test_a_repeated_command_restarts_the_timeout():
    plant, rack = _rack(60)
    for _ in range(4):
        plant.step(45.0)
        apply_write(rack, POINT, "3")                     # the ESMS refreshes the same mask
    plant.step(45.0)
    assert rack.bleed[2] and device_writes(rack) == {}
    plant.step(30.0)
    assert not rack.bleed.any()


def test_without_a_timeout_the_bleed_stands():
    plant, rack = _rack(0)
    assert setpoints(rack)[TIMEOUT_POINT] == 0.0
    plant.step(3600.0)
    assert np.flatnonzero(rack.bleed).tolist() == [2] and device_writes(rack) == {}
