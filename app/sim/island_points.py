"""The islanding points of the simulated plant's Modbus maps, kept apart from the other points: the grid
breaker and load feeder on the site meter (meter_generic), the operating mode of each PCS (pcs_generic).

`setpoints(model)` gives their power-up holding values, `apply(model, values)` moves a client's write
(the decoded holding image) into the model, `readings(model)` gives their input values. A map that
lacks a point leaves it alone. Call under the simulator's lock.
"""
from __future__ import annotations

from app.sim.plant import PcsModel, Plant


def setpoints(model) -> dict[str, int]:
    if isinstance(model, PcsModel):
        return {"operating_mode": int(model.grid_forming)}
    if isinstance(model, Plant):
        return {"breaker_command": int(model.breaker_command), "load_feeder_enable": int(model.feeder_closed)}
    return {}


def apply(model, values: dict) -> None:
    if isinstance(model, PcsModel) and "operating_mode" in values:
        model.grid_forming = bool(values["operating_mode"])
    elif isinstance(model, Plant):
        if "breaker_command" in values:
            model.breaker_command = bool(values["breaker_command"])
        if "load_feeder_enable" in values:
            model.feeder_closed = bool(values["load_feeder_enable"])


def readings(model) -> dict[str, object]:
    return {"breaker_closed": model.breaker_closed} if isinstance(model, Plant) else {}
