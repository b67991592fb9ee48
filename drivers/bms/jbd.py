"""JBD / Xiaoxiang "Smart BMS" frames (JBD general protocol v4, UART and BLE alike).

Frame: ``DD cmd status len data[len] ckH ckL 77`` with ``ck = 0x10000 - sum(status, len, data)``,
big-endian data. Registers decoded: 0x03 basic info, 0x04 cell voltages. Requests are
``DD A5 reg 00 ckH ckL 77``.
"""

import struct

import numpy as np

from drivers.bms.errors import DecodeError
from drivers.bms.registry import BmsProtocol, register

START = 0xDD
END = 0x77
READ = 0xA5
REG_BASIC_INFO = 0x03
REG_CELL_VOLTAGES = 0x04
REG_HARDWARE_VERSION = 0x05

_BASIC_FIXED = struct.Struct(">HhHHHHHHHBBBBB")  # 23 bytes before the NTC block
_KELVIN_OFFSET = 2731  # NTC readings are 0.1 K

# protection word bit -> canonical alarm (bit 12 software lock and bits 13-15 have no code)
PROTECTION_ALARMS = (
    "cell_overvoltage",
    "cell_undervoltage",
    "pack_overvoltage",
    "pack_undervoltage",
    "charge_overtemperature",
    "charge_undertemperature",
    "discharge_overtemperature",
    "discharge_undertemperature",
    "charge_overcurrent",
    "discharge_overcurrent",
    "short_circuit",
    "frontend_fault",
)


def _checksum(body: bytes) -> int:
    return (0x10000 - sum(body)) & 0xFFFF


def _frame(first: int, second: int, payload: bytes) -> bytes:
    """``DD first second len payload ck 77``; the checksum covers ``second, len, payload``."""
    body = bytes([second, len(payload)]) + payload
    return bytes([START, first]) + body + struct.pack(">H", _checksum(body)) + bytes([END])


def request(register_: int) -> bytes:
    """Read request for a register, e.g. ``request(0x03) == bytes.fromhex('dda50300fffd77')``."""
    return _frame(READ, register_, b"")


def decode(raw: bytes) -> dict:
    """Decode one JBD response frame (register 0x03 or 0x04) to canonical fields."""
    if len(raw) < 7:
        raise DecodeError(f"JBD frame length {len(raw)} is too short: a frame has at least 7 bytes")
    if raw[0] != START:
        raise DecodeError(f"JBD bad header 0x{raw[0]:02X}: a frame starts with 0xDD")
    if raw[-1] != END:
        raise DecodeError(f"JBD bad end byte 0x{raw[-1]:02X}: a frame ends with 0x77")
    length = raw[3]
    if len(raw) != 7 + length:
        raise DecodeError(f"JBD bad length: length byte says {length} data bytes, frame has {len(raw) - 7}")
    expected = _checksum(raw[2 : 4 + length])
    received = int.from_bytes(raw[4 + length : 6 + length], "big")
    if received != expected:
        raise DecodeError(f"JBD bad checksum 0x{received:04X}, computed 0x{expected:04X}")
    register_, status, data = raw[1], raw[2], raw[4 : 4 + length]
    if status != 0:
        raise DecodeError(f"JBD BMS answered register 0x{register_:02X} with error status 0x{status:02X}")
    if register_ == REG_BASIC_INFO:
        return _decode_basic_info(data)
    if register_ == REG_CELL_VOLTAGES:
        return _decode_cell_voltages(data)
    raise DecodeError(f"JBD register 0x{register_:02X} is not decoded: use 0x03 (basic info) or 0x04 (cells)")


def _decode_basic_info(data: bytes) -> dict:
    if len(data) < _BASIC_FIXED.size:
        raise DecodeError(f"JBD basic info length {len(data)} is too short: need at least {_BASIC_FIXED.size}")
    (voltage, current, remaining, nominal, cycles, _date, bal_low, bal_high, protection,
     _version, soc, fets, cell_count, ntc_count) = _BASIC_FIXED.unpack_from(data)
    ntc_end = _BASIC_FIXED.size + 2 * ntc_count
    if len(data) < ntc_end:
        raise DecodeError(f"JBD basic info length {len(data)} is too short for {ntc_count} NTC sensors")
    balancing = bal_low | bal_high << 16
    out = {
        "pack_voltage_v": voltage / 100,
        "current_a": current / 100,
        "remaining_capacity_ah": remaining / 100,
        "design_capacity_ah": nominal / 100,
        "cycle_count": cycles,
        "balancing_active": balancing != 0,
        "balancing_cells": [i + 1 for i in range(32) if balancing >> i & 1],
        "alarms": sorted({name for bit, name in enumerate(PROTECTION_ALARMS) if protection >> bit & 1}),
        "soc_pct": soc,
        "charge_fet_on": bool(fets & 0x01),
        "discharge_fet_on": bool(fets & 0x02),
        "cell_count": cell_count,
    }
    if ntc_count:
        kelvin = np.frombuffer(data, dtype=">u2", count=ntc_count, offset=_BASIC_FIXED.size)
        out["temperatures_c"] = ((kelvin.astype(np.int32) - _KELVIN_OFFSET) / 10).tolist()
    return out


def _decode_cell_voltages(data: bytes) -> dict:
    if len(data) % 2:
        raise DecodeError(f"JBD cell voltage length {len(data)} is odd: each cell is a 2-byte word")
    millivolts = np.frombuffer(data, dtype=">u2")
    return {"cell_voltages_v": (millivolts / 1000).tolist(), "cell_count": len(millivolts)}


def _word(value: float, scale: int, name: str, signed: bool = False) -> int:
    raw = round(value * scale)
    low, high = (-0x8000, 0x7FFF) if signed else (0, 0xFFFF)
    if not low <= raw <= high:
        raise ValueError(f"{name}={value} does not fit a JBD {'signed ' if signed else ''}16-bit word")
    return raw


def encode_basic_info(
    *,
    pack_voltage_v: float,
    current_a: float,
    remaining_capacity_ah: float,
    design_capacity_ah: float,
    cycle_count: int,
    soc_pct: int,
    charge_fet_on: bool,
    discharge_fet_on: bool,
    cell_count: int,
    balancing_cells: list[int] = (),
    alarms: list[str] = (),
    temperatures_c: list[float] = (),
    balancing_active: bool | None = None,
) -> bytes:
    """Register 0x03 response frame from canonical values (inverse of decode)."""
    if balancing_active is not None and balancing_active != bool(balancing_cells):
        raise ValueError("balancing_active must be true exactly when balancing_cells is not empty")
    balancing = 0
    for cell in balancing_cells:
        if not 1 <= cell <= 32:
            raise ValueError(f"balancing cell {cell} is outside 1..32")
        balancing |= 1 << (cell - 1)
    protection = 0
    for alarm in alarms:
        if alarm not in PROTECTION_ALARMS:
            raise ValueError(f"alarm {alarm!r} has no JBD protection bit")
        protection |= 1 << PROTECTION_ALARMS.index(alarm)
    fets = (0x01 if charge_fet_on else 0) | (0x02 if discharge_fet_on else 0)
    payload = _BASIC_FIXED.pack(
        _word(pack_voltage_v, 100, "pack_voltage_v"),
        _word(current_a, 100, "current_a", signed=True),
        _word(remaining_capacity_ah, 100, "remaining_capacity_ah"),
        _word(design_capacity_ah, 100, "design_capacity_ah"),
        cycle_count,
        0,
        balancing & 0xFFFF,
        balancing >> 16,
        protection,
        0x10,
        soc_pct,
        fets,
        cell_count,
        len(temperatures_c),
    ) + b"".join(struct.pack(">H", _word(t + _KELVIN_OFFSET / 10, 10, "temperatures_c")) for t in temperatures_c)
    return _frame(REG_BASIC_INFO, 0, payload)


def encode_cell_voltages(cell_voltages_v: list[float], cell_count: int | None = None) -> bytes:
    """Register 0x04 response frame: one big-endian mV word per cell."""
    if cell_count is not None and cell_count != len(cell_voltages_v):
        raise ValueError(f"cell_count {cell_count} differs from {len(cell_voltages_v)} cell voltages")
    millivolts = np.rint(np.asarray(cell_voltages_v, dtype=float) * 1000)
    if millivolts.size and (millivolts.min() < 0 or millivolts.max() > 0xFFFF):
        raise ValueError("cell_voltages_v must lie within 0..65.535 V")
    return _frame(REG_CELL_VOLTAGES, 0, millivolts.astype(">u2").tobytes())


register(BmsProtocol("jbd", decode))
