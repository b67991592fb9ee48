"""A plant rack as a small BLE battery pack: what its BMS measures and the frames it answers with.

Pure (no I/O). `PackReading.from_model` takes one snapshot of a RackModel (call it under the
simulator's lock); `PackProtocol` parses the commands a central writes and answers them with frames
built byte-exact by the pure encoders of drivers/bms (JBD 0x03/0x04, JK02 cell info, Daly A5).
The pack has `probes` temperature sensors, each reading the mean temperature of a contiguous group
of cells (one per module by default); JK02 carries only two probes (T1, T2). A JK pack takes the
balancer switch write (register 0x1F); its balancer starts switched off here, and it bleeds the cells
more than JK_BALANCE_TRIGGER_V above the lowest where a real JK shuttles their charge to the lowest.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from app.sim.plant import RackModel
from drivers.ble.framing import FRAMINGS, JK_COMMAND, FrameAssembler
from drivers.bms import daly, jbd, jk

JBD_CURRENT_LIMIT_A = 327.67           # signed 16 bit at 10 mA
JK_TYPE_DEVICE_INFO = 0x03
JK_VENDOR = b"JK_B2A24S15P"            # vendor id / model string of a JK-B2A24S15P
JK_HARDWARE, JK_SOFTWARE = b"11.XW", b"11.26"
JK_BALANCE_TRIGGER_V = 0.005           # JK "balance trigger voltage" as shipped (syssi/esphome-jk-bms #94)


@dataclass(frozen=True)
class PackReading:
    """What the pack's BMS measures at one instant (+ current = charging)."""

    cell_voltages_v: np.ndarray
    current_a: float
    soc_pct: float
    remaining_capacity_ah: float
    full_capacity_ah: float
    temperatures_c: np.ndarray
    fets_on: bool
    balancing: bool = False

    @property
    def pack_voltage_v(self) -> float:
        return float(self.cell_voltages_v.sum())

    @classmethod
    def from_model(cls, model: RackModel, probes: int) -> "PackReading":
        closed = model.contactor_closed
        cells = np.array(model.cell_voltages(), dtype=float)
        groups = np.array_split(np.asarray(model.temp_c, dtype=float), min(probes, len(model.temp_c)))
        temps = np.array([g.mean() for g in groups])
        if probes > len(temps):         # more probes than cells: the extra ones read the pack mean
            temps = np.concatenate([temps, np.full(probes - len(temps), temps.mean())])
        return cls(cells, float(model.current_a) if closed else 0.0, float(np.mean(model.soc)) * 100.0,
                   float(np.mean(model.soc * model.capacity_ah)), float(np.mean(model.capacity_ah)), temps, closed,
                   bool(model.bleed.any()))


def jbd_answer(register: int, r: PackReading) -> bytes | None:
    """Response frame to a read of `register` (None for a register this pack does not serve)."""
    if register == jbd.REG_BASIC_INFO:
        return jbd.encode_basic_info(
            pack_voltage_v=r.pack_voltage_v,
            current_a=float(np.clip(r.current_a, -JBD_CURRENT_LIMIT_A, JBD_CURRENT_LIMIT_A)),
            remaining_capacity_ah=r.remaining_capacity_ah, design_capacity_ah=r.full_capacity_ah, cycle_count=0,
            soc_pct=round(r.soc_pct), charge_fet_on=r.fets_on, discharge_fet_on=r.fets_on,
            cell_count=len(r.cell_voltages_v), temperatures_c=[float(t) for t in r.temperatures_c])
    if register == jbd.REG_CELL_VOLTAGES:
        return jbd.encode_cell_voltages(r.cell_voltages_v)
    return None


def jk_probes(r: PackReading) -> list[float]:
    """T1 and T2 of a JK02 frame: the pack's first two probes (the only one twice)."""
    temps = [float(t) for t in r.temperatures_c[:2]]
    return temps * 2 if len(temps) == 1 else temps


def jk_cell_info(r: PackReading, variant: str, counter: int) -> bytes:
    """300-byte JK02 cell-info frame (type 0x02)."""
    t1t2 = jk_probes(r)
    return jk.encode_cell_info(
        variant, cell_voltages_v=r.cell_voltages_v, pack_voltage_v=r.pack_voltage_v, current_a=r.current_a,
        temperatures_c=t1t2, mosfet_temperature_c=max(t1t2), soc_pct=round(r.soc_pct), soh_pct=100,
        remaining_capacity_ah=r.remaining_capacity_ah, full_capacity_ah=r.full_capacity_ah, cycle_count=0,
        charge_fet_on=r.fets_on, discharge_fet_on=r.fets_on, balancing_active=r.balancing, frame_counter=counter)


def jk_balancer_cells(cell_voltages_v: np.ndarray) -> tuple[int, ...]:
    """1-based cells the JK balancer works on: more than the trigger above the lowest cell."""
    volts = np.asarray(cell_voltages_v, float)
    return tuple((np.flatnonzero(volts > volts.min() + JK_BALANCE_TRIGGER_V) + 1).tolist())


def jk_device_info(name: str, counter: int) -> bytes:
    """300-byte JK02 device-info frame (type 0x03): vendor id at 6 (16 bytes), hardware version at 22 (8),
    software version at 30 (8), device name at 46 (16), as syssi/esphome-jk-bms decode_device_info_ reads
    it; same header and checksum as the cell-info frame."""
    frame = bytearray(jk.FRAME_LENGTH)
    frame[:6] = jk.HEADER + bytes([JK_TYPE_DEVICE_INFO, counter & 0xFF])
    for offset, size, text in ((6, 16, JK_VENDOR), (22, 8, JK_HARDWARE), (30, 8, JK_SOFTWARE),
                               (46, 16, name.encode("ascii", "replace"))):
        frame[offset : offset + size] = text[:size].ljust(size, b"\0")
    frame[-1] = sum(frame[:-1]) & 0xFF
    return bytes(frame)


def daly_answer(command: int, r: PackReading) -> bytes | None:
    """Response (one or several 13-byte frames) to a Daly read command; None for other commands."""
    cells = r.cell_voltages_v
    temps = [round(float(t)) for t in r.temperatures_c]
    if command == daly.PACK_STATUS:
        return daly.encode_pack_status(pack_voltage_v=r.pack_voltage_v, current_a=r.current_a, soc_pct=r.soc_pct)
    if command == daly.CELL_EXTREMES:
        hi, lo = int(np.argmax(cells)), int(np.argmin(cells))
        return daly.encode_cell_extremes(max_cell_voltage_v=float(cells[hi]), max_cell_number=hi + 1,
                                         min_cell_voltage_v=float(cells[lo]), min_cell_number=lo + 1)
    if command == daly.TEMPERATURE_EXTREMES:
        return daly.encode_temperature_extremes(max_temperature_c=max(temps), min_temperature_c=min(temps))
    if command == daly.MOSFET_STATUS:
        return daly.encode_mosfet_status(charge_fet_on=r.fets_on, discharge_fet_on=r.fets_on,
                                         remaining_capacity_ah=r.remaining_capacity_ah)
    if command == daly.CELL_VOLTAGES:
        return daly.encode_cell_voltages(cells)
    if command == daly.TEMPERATURES:
        return daly.encode_temperatures(temps)
    if command == daly.ALARMS:
        return daly.encode_alarms([])
    return None


class PackProtocol:
    """The pack's side of one protocol: bytes written by a central -> command codes (JBD register,
    JK command byte, Daly command), reassembled across writes; garbage is counted in `rejected`.
    A JK balancer switch write sets `balancer_on`."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.rejected = 0
        self.balancer_on = False
        self._assembler = FrameAssembler(JK_COMMAND if protocol == "jk" else FRAMINGS[protocol], self._reject)

    def _reject(self, reason: str) -> None:
        self.rejected += 1

    def commands(self, written: bytes) -> list[int]:
        out = []
        for frame in self._assembler.feed(written):
            if self.protocol == "jk":
                code, length, value = jk.parse_request(frame)
                if code == jk.REGISTER_BALANCER and length == jk.WRITE_LENGTH:
                    self.balancer_on = bool(value)
                out.append(code)
            elif self.protocol == "daly":
                out.append(frame[2])
            elif frame[1] == jbd.READ:
                out.append(frame[2])
            else:
                self.rejected += 1
        return out


def pack_address(name: str) -> str:
    """A stable random static BLE address (two top bits set) for a pack known only by its name."""
    raw = hashlib.sha1(name.encode()).digest()[:6]
    return ":".join(f"{b:02X}" for b in bytes([raw[0] | 0xC0]) + raw[1:])
