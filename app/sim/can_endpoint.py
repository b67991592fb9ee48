"""The plant's racks as CAN BMSs: Pylontech/SMA frames (pure encoders, byte-exact) and the per-cell
frames of resources/dbc (cantools; the temperature frames only where the link's
`options.cell_temperature_frames` is not false), broadcast on a python-can bus.

`CanEndpoint` turns one RackModel into one cycle of frames. `CanSimLink` is the simulator's side of
one `can` site link (a CanPeerLink: virtual bus, socketcand for other processes): a broadcaster
thread sends every endpoint's cycle each `period_s`.
"""
from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext

import can
import numpy as np

from app.core.chemistry import get_chemistry
from app.core.clock import Clock
from app.core.errors import ConfigError
from app.core.site import Link
from app.sim.can_peer import CanPeerLink
from app.sim.plant import RackModel
from app.sim.register_points import CURRENT_LIMIT_C_RATE
from drivers.bms import pylon_can
from drivers.can.layout import (CELL_TEMPERATURES, CELL_VOLTAGES, MAX_CELLS, MAX_UNIT_ID, PYLON_IDS,
                                cell_temperature_frames, encode_cell_frames, frame_id)

log = logging.getLogger(__name__)

PACK_VOLTAGE_MAX_V = 327.67         # 0x356: signed 16 bit at 0.01 V


class CanEndpoint:
    """One rack as a Pylontech-style BMS with per-cell frames (`cell_temperatures`: the temperature ones
    too). Read the model under the plant's lock."""

    def __init__(self, model: RackModel, manufacturer: str = "ESMS-SIM", cell_temperatures: bool = True) -> None:
        rack = model.rack
        self.model, self.cell_temperatures = model, cell_temperatures
        if not 1 <= rack.unit_id <= MAX_UNIT_ID:
            raise ConfigError(f"{rack.path}: unit_id {rack.unit_id} on a can link must be 1..{MAX_UNIT_ID}")
        if rack.cell_count > MAX_CELLS:
            raise ConfigError(f"{rack.path}: {rack.cell_count} cells do not fit the CAN cell frames "
                              f"(at most {MAX_CELLS})")
        chem = get_chemistry(model.chemistry)
        if rack.cell_count * chem.v_max > PACK_VOLTAGE_MAX_V:
            raise ConfigError(f"{rack.path}: {rack.cell_count} {model.chemistry} cells reach "
                              f"{rack.cell_count * chem.v_max:.1f} V, above the {PACK_VOLTAGE_MAX_V} V the "
                              f"low-voltage CAN frame 0x356 carries: use fewer cells per rack on a can link")
        self._v_max, self._v_min = chem.v_max, chem.v_min
        self._manufacturer = pylon_can.encode_manufacturer(manufacturer)
        self._ids = {base: frame_id(base, rack.unit_id) for base in (*PYLON_IDS, CELL_VOLTAGES, CELL_TEMPERATURES)}

    def frames(self) -> list[can.Message]:
        """One broadcast cycle from the model's present state, in sending order."""
        m = self.model
        cells = m.rack.cell_count
        closed = m.contactor_closed
        voltages = m.cell_voltages()
        limit_a = CURRENT_LIMIT_C_RATE * float(np.mean(m.capacity_ah))
        soc = m.soc
        data = {
            pylon_can.LIMITS: pylon_can.encode_limits(
                charge_voltage_limit_v=cells * self._v_max, charge_current_limit_a=limit_a,
                discharge_current_limit_a=limit_a, discharge_voltage_limit_v=cells * self._v_min),
            pylon_can.SOC_SOH: pylon_can.encode_soc_soh(soc_pct=round(float(np.mean(soc)) * 100), soh_pct=100),
            pylon_can.MEASUREMENTS: pylon_can.encode_measurements(
                pack_voltage_v=float(voltages.sum()), current_a=m.current_a if closed else 0.0,
                temperatures_c=[float(np.mean(m.temp_c))]),
            pylon_can.ALARMS: pylon_can.encode_alarms([], module_count=m.rack.modules),
            pylon_can.REQUESTS: pylon_can.encode_requests(
                charge_enable=closed and float(np.max(soc)) < 1.0, discharge_enable=closed and float(np.min(soc)) > 0.0,
                force_charge_request=float(np.min(soc)) < 0.05),
            pylon_can.MANUFACTURER: self._manufacturer,
        }
        out = [self._message(base, data[base]) for base in PYLON_IDS]
        out += [self._message(CELL_VOLTAGES, raw) for raw in encode_cell_frames(CELL_VOLTAGES, voltages)]
        if self.cell_temperatures:
            out += [self._message(CELL_TEMPERATURES, raw) for raw in encode_cell_frames(CELL_TEMPERATURES, m.temp_c)]
        return out

    def _message(self, base: int, data: bytes) -> can.Message:
        return can.Message(arbitration_id=self._ids[base], is_extended_id=False, data=data)


def broadcast_period_s(link: Link) -> float:
    """1 s like a Pylontech pack, but at least twice per poll period of the link, so every listening
    window of the driver holds one whole cycle."""
    return min(1.0, link.poll_period_s / 2)


class CanSimLink(CanPeerLink):
    """The simulator's end of one `can` link (app/sim/can_peer.py): every endpoint's cycle each `period_s`.

    `lock` (the Simulator's step lock) is held while a cycle is built from the plant."""

    def __init__(self, link: Link, models: list[RackModel], clock: Clock, period_s: float | None = None,
                 lock: AbstractContextManager | None = None) -> None:
        super().__init__(link, f"sim-{link.name}")
        self.clock = clock
        self.period_s = broadcast_period_s(link) if period_s is None else period_s
        self.endpoints = [CanEndpoint(m, cell_temperatures=cell_temperature_frames(link)) for m in models]
        self._lock = lock if lock is not None else nullcontext()

    def send_cycle(self, bus: can.BusABC) -> int:
        """Build every endpoint's cycle under the lock, then send it; returns the frame count."""
        with self._lock:
            frames = [msg for ep in self.endpoints for msg in ep.frames()]
        for msg in frames:
            bus.send(msg)
        return len(frames)

    def _send(self, bus: can.BusABC) -> None:
        while not self._stop.is_set():
            started = self.clock.monotonic()
            self.send_cycle(bus)
            self.clock.wait(self._stop, max(0.0, self.period_s - (self.clock.monotonic() - started)))
