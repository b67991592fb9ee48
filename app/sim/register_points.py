"""What the plant's objects serve through register maps, and how client writes reach them.

`served_values(model)` gives every point a rack, PCS or the site meter (the Plant) reports, under the
point names of resources/regmaps (the canonical fields of the design plus the SunSpec 802/803/805
points; the meter's grid frequency and availability are measured on the grid side of its breaker); each map encodes the points it declares. `setpoints(model)` gives the initial value of every
client-writable point, `apply_write(model, point, value)` moves one client write into the model, and
`device_writes(model)` takes the client-writable points the device has changed by itself.
Pure; call under the simulator's lock.
"""
from __future__ import annotations

import numpy as np

from app.core import balancing_command
from app.sim.plant import Plant, PcsModel, RackModel

CURRENT_LIMIT_C_RATE = 0.5     # charge/discharge current limits the simulated BMSs report, in C
SOH_PCT = 100.0                # the simulated cells are new
CONNECT, DISCONNECT = 1, 2     # SunSpec 802 SetOp / 803 StrSetCon
# SunSpec 802 ChaSt and State
CHA_OFF, CHA_EMPTY, CHA_DISCHARGING, CHA_CHARGING, CHA_FULL, CHA_HOLDING = 1, 2, 3, 4, 5, 6
STATE_DISCONNECTED, STATE_INITIALIZING, STATE_CONNECTED = 1, 2, 3
IDLE_C_RATE = 0.01             # |current| below this (in C) counts as holding, not (dis)charging


def served_values(model: RackModel | PcsModel | Plant) -> dict[str, object]:
    """Every point `model` reports, by register-map point name."""
    if isinstance(model, PcsModel):
        return {"active_power_kw": model.power_kw, "reactive_power_kvar": model.reactive_kvar,
                "dc_voltage_v": model.dc_voltage_v, "state": model.state_code, "grid_frequency_hz": model.grid_hz,
                "heartbeat": model.heartbeat}
    if isinstance(model, Plant):
        return {"grid_kw": model.grid_import_kw, "load_kw": model.load_kw, "pv_kw": model.pv_kw,
                "grid_available": model.grid_connected, "grid_frequency_hz": model.mains_hz,
                "breaker_closed": model.breaker_closed}
    return _rack_values(model)


def _rack_values(m: RackModel) -> dict[str, object]:
    closed, rack = m.contactor_closed, m.rack
    volts, temps = m.cell_voltages(), m.temp_c
    current = m.current_a if closed else 0.0
    pack_v = float(volts.sum())
    soc = float(np.mean(m.soc)) * 100.0
    capacity = float(np.mean(m.capacity_ah))
    limit_a = CURRENT_LIMIT_C_RATE * capacity
    rated_kw = limit_a * rack.cell_count * float(m.chem.ocv(0.5)) / 1000.0
    v_min, v_max = float(volts.min()), float(volts.max())
    return {
        "pack_voltage_v": pack_v, "current_a": current, "power_kw": pack_v * current / 1000.0,
        "soc_pct": soc, "soh_pct": SOH_PCT, "contactor_closed": closed, "cell_count": rack.cell_count,
        "heartbeat": m.heartbeat, "cell_voltages_v": volts, "cell_temperatures_c": temps,
        "h2_ppm": m.gas_h2_ppm, "co_ppm": m.gas_co_ppm,
        "cell_status": m.bleed.astype(float),                          # bit 0: the cell is balancing
        "min_cell_voltage_v": v_min, "max_cell_voltage_v": v_max, "avg_cell_voltage_v": float(volts.mean()),
        "min_temperature_c": float(temps.min()), "max_temperature_c": float(temps.max()),
        "design_capacity_ah": capacity, "charge_current_limit_a": limit_a, "discharge_current_limit_a": limit_a,
        "max_charge_power_kw": rated_kw, "max_discharge_power_kw": rated_kw,
        "cycle_count": int(m.throughput_ah / (2.0 * capacity)),     # full equivalent cycles
        "charge_status": _charge_status(m, current, capacity),
        "state": STATE_INITIALIZING if not m.online else STATE_CONNECTED if closed else STATE_DISCONNECTED,
        "event_bits": 0,                                               # the simulated BMS raises no events
        "string_count": 1, "strings_connected": int(closed), "string_module_count": rack.modules,
        "string_status": int(m.online) | int(closed) << 1,            # STRING_ENABLED, CONTACTOR_STATUS
        "balancing_cell_count": int(m.bleed.sum()), "string_soc_pct": soc, "string_soh_pct": SOH_PCT,
        "string_current_a": current, "string_max_cell_voltage_v": v_max, "string_min_cell_voltage_v": v_min,
        "module_string_index": np.ones(rack.modules), "module_index": np.arange(1, rack.modules + 1),
        "module_cell_count": np.full(rack.modules, rack.cells_per_module),
    }


def _charge_status(m: RackModel, current: float, capacity: float) -> int:
    if not m.contactor_closed:
        return CHA_OFF
    if abs(current) >= IDLE_C_RATE * capacity:
        return CHA_CHARGING if current > 0 else CHA_DISCHARGING
    if float(np.max(m.soc)) >= 1.0:
        return CHA_FULL
    return CHA_EMPTY if float(np.min(m.soc)) <= 0.0 else CHA_HOLDING


def setpoints(model: RackModel | PcsModel | Plant) -> dict[str, object]:
    """Initial values of the client-writable points (what the device powers up with)."""
    if isinstance(model, PcsModel):
        return {"active_power_setpoint_kw": model.setpoint_kw, "reactive_power_setpoint_kvar": model.setpoint_kvar,
                "run": int(model.run), "operating_mode": int(model.grid_forming)}
    if isinstance(model, RackModel):
        connect = CONNECT if model.contactor_closed else DISCONNECT
        return {"contactor_command": int(model.contactor_closed), "set_operation": connect, "string_connect": connect,
                balancing_command.TIMEOUT_POINT: model.balancing_timeout_s}
    return {"breaker_command": int(model.breaker_command), "load_feeder_enable": int(model.feeder_closed)}


def apply_write(model: RackModel | PcsModel | Plant, point: str, value: object) -> None:
    """One client write into the model. Writable points the model has no use for (SunSpec CtrlHb,
    AlmRst) and SunSpec enum values other than CONNECT/DISCONNECT only stay in their registers."""
    if isinstance(model, PcsModel):
        if point == "active_power_setpoint_kw":
            model.setpoint_kw = float(value)
        elif point == "reactive_power_setpoint_kvar":
            model.setpoint_kvar = float(value)
        elif point == "run":
            model.run = bool(value)
        elif point == "operating_mode":                 # 0 grid-following, 1 grid-forming
            model.grid_forming = bool(value)
    elif isinstance(model, RackModel):
        if point == "contactor_command":
            model.contactor_closed = bool(value)
        elif point in ("set_operation", "string_connect") and value in (CONNECT, DISCONNECT):
            model.contactor_closed = value == CONNECT
        elif point == balancing_command.POINT:
            model.command_bleed(balancing_command.cell_numbers(value, model.rack.cell_count))
        elif point == balancing_command.TIMEOUT_POINT:
            model.balancing_timeout_s = float(value)
    elif point == "breaker_command":                    # the site meter's grid breaker: 1 close, 0 open
        model.breaker_command = bool(value)
    elif point == "load_feeder_enable":
        model.feeder_closed = bool(value)


def device_writes(model: RackModel | PcsModel | Plant) -> dict[str, object]:
    """Client-writable points the device has changed by itself since the last call, with their new value:
    the balancing command a rack BMS's balancing timeout cleared. Each is returned once."""
    if isinstance(model, RackModel) and model.bleed_timed_out:
        model.bleed_timed_out = False
        return {balancing_command.POINT: ()}
    return {}
