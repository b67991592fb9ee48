"""Daly "A5" UART/RS485 frames (Daly UART/485 communications protocol v1.2).

Every frame is 13 bytes: ``A5 addr cmd 08 data[8] ck`` with ``ck = sum([0..11]) & 0xFF`` and
big-endian data. Responses carry address 0x01; requests use 0x40 (UART/RS485) or 0x80 (BLE).
Cell voltages (0x95) and temperatures (0x96) arrive as several frames; the decoder takes the
concatenation and keeps every slot in frame order.
"""

import numpy as np

from drivers.bms.errors import DecodeError
from drivers.bms.registry import BmsProtocol, register

START = 0xA5
FRAME_LENGTH = 13
DATA_LENGTH = 8
RESPONSE_ADDRESS = 0x01
HOST_ADDRESS = 0x40
PACK_STATUS = 0x90
CELL_EXTREMES = 0x91
TEMPERATURE_EXTREMES = 0x92
MOSFET_STATUS = 0x93
CELL_VOLTAGES = 0x95
TEMPERATURES = 0x96
ALARMS = 0x98
_MULTI_FRAME = (CELL_VOLTAGES, TEMPERATURES)
_CURRENT_ZERO = 30000  # current raw offset, 0.1 A per count, above = charging
_TEMPERATURE_OFFSET = 40

# 0x98 data (byte, bit) -> canonical alarm; level-1 and level-2 bits share a code.
FAULT_ALARMS = {
    (0, 0): "cell_overvoltage", (0, 1): "cell_overvoltage",
    (0, 2): "cell_undervoltage", (0, 3): "cell_undervoltage",
    (0, 4): "pack_overvoltage", (0, 5): "pack_overvoltage",
    (0, 6): "pack_undervoltage", (0, 7): "pack_undervoltage",
    (1, 0): "charge_overtemperature", (1, 1): "charge_overtemperature",
    (1, 2): "charge_undertemperature", (1, 3): "charge_undertemperature",
    (1, 4): "discharge_overtemperature", (1, 5): "discharge_overtemperature",
    (1, 6): "discharge_undertemperature", (1, 7): "discharge_undertemperature",
    (2, 0): "charge_overcurrent", (2, 1): "charge_overcurrent",
    (2, 2): "discharge_overcurrent", (2, 3): "discharge_overcurrent",
    (3, 0): "cell_imbalance", (3, 1): "cell_imbalance",
    (4, 0): "mosfet_overtemperature", (4, 1): "mosfet_overtemperature",  # charge / discharge MOS
    (4, 2): "internal_fault", (4, 3): "internal_fault",  # MOS temperature sensor
    (4, 4): "internal_fault", (4, 5): "internal_fault",  # MOS adhesion
    (4, 6): "internal_fault", (4, 7): "internal_fault",  # MOS open circuit
    (5, 0): "frontend_fault",  # AFE acquisition chip
    (5, 1): "frontend_fault",  # cell voltage acquisition dropped
    (5, 2): "internal_fault",  # cell temperature sensor
    (5, 3): "internal_fault",  # EEPROM
    (5, 4): "internal_fault",  # RTC
    (5, 5): "internal_fault",  # precharge failure
    (5, 6): "communication_fault",
    (5, 7): "communication_fault",  # internal communication
    (6, 0): "internal_fault",  # current module
    (6, 1): "internal_fault",  # sum voltage detection
    (6, 2): "short_circuit",
}


def _frame(address: int, command: int, data: bytes) -> bytes:
    body = bytes([START, address, command, DATA_LENGTH]) + data
    return body + bytes([sum(body) & 0xFF])


def request(command: int, address: int = HOST_ADDRESS) -> bytes:
    """Read request, e.g. ``request(0x90) == bytes.fromhex('a540900800000000000000007d')``."""
    return _frame(address, command, bytes(DATA_LENGTH))


def _split(raw: bytes) -> list[bytes]:
    if not raw or len(raw) % FRAME_LENGTH:
        raise DecodeError(f"Daly bad length {len(raw)}: input must be a whole number of 13-byte frames")
    frames = [raw[i : i + FRAME_LENGTH] for i in range(0, len(raw), FRAME_LENGTH)]
    for number, frame in enumerate(frames, start=1):
        where = f"frame {number}" if len(frames) > 1 else "frame"
        if frame[0] != START:
            raise DecodeError(f"Daly bad header 0x{frame[0]:02X} in {where}: a frame starts with 0xA5")
        if frame[3] != DATA_LENGTH:
            raise DecodeError(f"Daly bad length byte 0x{frame[3]:02X} in {where}: must be 0x08")
        checksum = sum(frame[:12]) & 0xFF
        if frame[12] != checksum:
            raise DecodeError(f"Daly bad checksum 0x{frame[12]:02X} in {where}, computed 0x{checksum:02X}")
    return frames


def decode(raw: bytes) -> dict:
    """Decode one Daly response (or a 0x95/0x96 multi-frame response) to canonical fields."""
    frames = _split(raw)
    command = frames[0][2]
    if any(frame[2] != command for frame in frames):
        raise DecodeError("Daly frames of different commands in one input: pass one response at a time")
    if command in _MULTI_FRAME:
        data = np.frombuffer(b"".join(frame[4:12] for frame in frames), dtype=np.uint8).reshape(-1, 8)
        if command == CELL_VOLTAGES:
            millivolts = data[:, 1:7].copy().view(">u2").ravel()
            return {"cell_voltages_v": (millivolts / 1000).tolist()}
        return {"temperatures_c": (data[:, 1:8].astype(np.int16).ravel() - _TEMPERATURE_OFFSET).tolist()}
    if len(frames) != 1:
        raise DecodeError(
            f"Daly bad length: command 0x{command:02X} answers with one 13-byte frame, got {len(frames)}"
        )
    data = frames[0][4:12]
    if command == PACK_STATUS:
        return {
            "pack_voltage_v": int.from_bytes(data[0:2], "big") / 10,
            "current_a": (int.from_bytes(data[4:6], "big") - _CURRENT_ZERO) / 10,
            "soc_pct": int.from_bytes(data[6:8], "big") / 10,
        }
    if command == CELL_EXTREMES:
        return {
            "max_cell_voltage_v": int.from_bytes(data[0:2], "big") / 1000,
            "max_cell_number": data[2],
            "min_cell_voltage_v": int.from_bytes(data[3:5], "big") / 1000,
            "min_cell_number": data[5],
        }
    if command == TEMPERATURE_EXTREMES:
        return {"max_temperature_c": data[0] - _TEMPERATURE_OFFSET, "min_temperature_c": data[2] - _TEMPERATURE_OFFSET}
    if command == MOSFET_STATUS:
        return {
            "charge_fet_on": data[1] != 0,
            "discharge_fet_on": data[2] != 0,
            "remaining_capacity_ah": int.from_bytes(data[4:8], "big") / 1000,
        }
    if command == ALARMS:
        return {"alarms": sorted({name for (byte, bit), name in FAULT_ALARMS.items() if data[byte] >> bit & 1})}
    raise DecodeError(f"Daly command 0x{command:02X} is not decoded: use 0x90-0x93, 0x95, 0x96 or 0x98")


def _unsigned(value: float, scale: int, name: str, size: int = 2) -> bytes:
    raw = round(value * scale)
    if not 0 <= raw < 1 << (8 * size):
        raise ValueError(f"{name}={value} does not fit the Daly field")
    return raw.to_bytes(size, "big")


def encode_pack_status(*, pack_voltage_v: float, current_a: float, soc_pct: float, address: int = RESPONSE_ADDRESS) -> bytes:
    """0x90 response: pack voltage, current (+ = charging), SOC."""
    data = (
        _unsigned(pack_voltage_v, 10, "pack_voltage_v")
        + bytes(2)
        + _unsigned(current_a + _CURRENT_ZERO / 10, 10, "current_a")
        + _unsigned(soc_pct, 10, "soc_pct")
    )
    return _frame(address, PACK_STATUS, data)


def encode_cell_extremes(
    *, max_cell_voltage_v: float, max_cell_number: int, min_cell_voltage_v: float, min_cell_number: int,
    address: int = RESPONSE_ADDRESS,
) -> bytes:
    """0x91 response: highest and lowest cell voltage and their 1-based cell numbers."""
    data = (
        _unsigned(max_cell_voltage_v, 1000, "max_cell_voltage_v") + bytes([max_cell_number])
        + _unsigned(min_cell_voltage_v, 1000, "min_cell_voltage_v") + bytes([min_cell_number]) + bytes(2)
    )
    return _frame(address, CELL_EXTREMES, data)


def encode_temperature_extremes(
    *, max_temperature_c: int, min_temperature_c: int, address: int = RESPONSE_ADDRESS
) -> bytes:
    """0x92 response: highest and lowest probe temperature (sensor numbers set to 1)."""
    data = (
        _unsigned(max_temperature_c + _TEMPERATURE_OFFSET, 1, "max_temperature_c", 1) + b"\x01"
        + _unsigned(min_temperature_c + _TEMPERATURE_OFFSET, 1, "min_temperature_c", 1) + b"\x01" + bytes(4)
    )
    return _frame(address, TEMPERATURE_EXTREMES, data)


def encode_mosfet_status(
    *, charge_fet_on: bool, discharge_fet_on: bool, remaining_capacity_ah: float, address: int = RESPONSE_ADDRESS
) -> bytes:
    """0x93 response: MOSFET states and remaining capacity (mAh)."""
    data = bytes([0, int(charge_fet_on), int(discharge_fet_on), 0]) + _unsigned(
        remaining_capacity_ah, 1000, "remaining_capacity_ah", 4
    )
    return _frame(address, MOSFET_STATUS, data)


def encode_cell_voltages(cell_voltages_v: list[float], address: int = RESPONSE_ADDRESS) -> bytes:
    """0x95 response: 3 cells per frame, frames numbered from 1, the last padded with 0 mV slots."""
    millivolts = np.rint(np.asarray(cell_voltages_v, dtype=float) * 1000)
    if millivolts.size and (millivolts.min() < 0 or millivolts.max() > 0xFFFF):
        raise ValueError("cell_voltages_v must lie within 0..65.535 V")
    slots = np.zeros(-(-max(len(millivolts), 1) // 3) * 3, dtype=">u2")
    slots[: len(millivolts)] = millivolts
    return b"".join(
        _frame(address, CELL_VOLTAGES, bytes([number]) + group.tobytes() + b"\x00")
        for number, group in enumerate(slots.reshape(-1, 3), start=1)
    )


def encode_temperatures(temperatures_c: list[int], address: int = RESPONSE_ADDRESS) -> bytes:
    """0x96 response: 7 probes per frame, frames numbered from 1, the last padded with raw 0 (-40 °C)."""
    raw = np.asarray(temperatures_c, dtype=int) + _TEMPERATURE_OFFSET
    if raw.size and (raw.min() < 0 or raw.max() > 0xFF):
        raise ValueError("temperatures_c must lie within -40..215 °C")
    slots = np.zeros(-(-max(len(raw), 1) // 7) * 7, dtype=np.uint8)
    slots[: len(raw)] = raw
    return b"".join(
        _frame(address, TEMPERATURES, bytes([number]) + group.tobytes())
        for number, group in enumerate(slots.reshape(-1, 7), start=1)
    )


def encode_alarms(alarms: list[str], address: int = RESPONSE_ADDRESS) -> bytes:
    """0x98 response with the level-1 bit (first listed bit) of each alarm set."""
    data = bytearray(DATA_LENGTH)
    for alarm in alarms:
        spots = [spot for spot, name in FAULT_ALARMS.items() if name == alarm]
        if not spots:
            raise ValueError(f"alarm {alarm!r} has no Daly fault bit")
        byte, bit = spots[0]
        data[byte] |= 1 << bit
    return _frame(address, ALARMS, bytes(data))


register(BmsProtocol("daly", decode))
