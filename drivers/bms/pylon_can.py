"""Pylontech / SMA low-voltage CAN frames (500 kbit/s, 11-bit ids, little-endian, no checksum).

The decoder takes the data bytes of one CAN frame plus its id. Each id needs a minimum number of
bytes (0x351: 6, 0x355: 4, 0x356: 6, 0x359: 4, 0x35C: 1, 0x35E: 1); more than 8 is an error.
"""

import struct

from drivers.bms.errors import DecodeError
from drivers.bms.registry import BmsProtocol, register

LIMITS = 0x351
SOC_SOH = 0x355
MEASUREMENTS = 0x356
ALARMS = 0x359
REQUESTS = 0x35C
MANUFACTURER = 0x35E
MIN_LENGTH = {LIMITS: 6, SOC_SOH: 4, MEASUREMENTS: 6, ALARMS: 4, REQUESTS: 1, MANUFACTURER: 1}
MAX_LENGTH = 8

# 0x359 (byte, bit) -> canonical alarm
PROTECTION_ALARMS = {(0, 7): "discharge_overcurrent", (1, 0): "charge_overcurrent", (1, 3): "internal_fault"}


def decode(raw: bytes, can_id: int) -> dict:
    """Decode the data bytes of one Pylontech CAN frame with id ``can_id``."""
    if can_id not in MIN_LENGTH:
        known = ", ".join(f"0x{known:03X}" for known in MIN_LENGTH)
        raise DecodeError(f"unknown CAN id 0x{can_id:X} for pylon-can: use one of {known}")
    if len(raw) > MAX_LENGTH:
        raise DecodeError(f"pylon-can bad length {len(raw)}: a CAN frame carries at most 8 data bytes")
    if len(raw) < MIN_LENGTH[can_id]:
        raise DecodeError(
            f"pylon-can bad length {len(raw)} for id 0x{can_id:03X}: it needs at least {MIN_LENGTH[can_id]} bytes"
        )
    if can_id == LIMITS:
        charge_v, charge_a, discharge_a = struct.unpack_from("<Hhh", raw)
        out = {
            "charge_voltage_limit_v": charge_v / 10,
            "charge_current_limit_a": charge_a / 10,
            "discharge_current_limit_a": discharge_a / 10,
        }
        if len(raw) >= 8:
            out["discharge_voltage_limit_v"] = struct.unpack_from("<H", raw, 6)[0] / 10
        return out
    if can_id == SOC_SOH:
        soc, soh = struct.unpack_from("<HH", raw)
        return {"soc_pct": soc, "soh_pct": soh}
    if can_id == MEASUREMENTS:
        voltage, current, temperature = struct.unpack_from("<hhh", raw)
        return {"pack_voltage_v": voltage / 100, "current_a": current / 10, "temperatures_c": [temperature / 10]}
    if can_id == ALARMS:
        return {"alarms": sorted({name for (byte, bit), name in PROTECTION_ALARMS.items() if raw[byte] >> bit & 1})}
    if can_id == REQUESTS:
        flags = raw[0]
        return {
            "charge_enable": bool(flags & 0x80),
            "discharge_enable": bool(flags & 0x40),
            "force_charge_request": bool(flags & 0x30),
        }
    try:
        name = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"pylon-can 0x35E manufacturer is not ASCII: {raw.hex(' ')}") from exc
    return {"manufacturer": name.rstrip(" \x00")}


def encode_limits(
    *,
    charge_voltage_limit_v: float,
    charge_current_limit_a: float,
    discharge_current_limit_a: float,
    discharge_voltage_limit_v: float | None = None,
) -> bytes:
    """0x351 data: CVL, CCL, DCL (0.1 V / 0.1 A) and, when given, the discharge voltage limit."""
    data = struct.pack(
        "<Hhh",
        round(charge_voltage_limit_v * 10),
        round(charge_current_limit_a * 10),
        round(discharge_current_limit_a * 10),
    )
    if discharge_voltage_limit_v is not None:
        data += struct.pack("<H", round(discharge_voltage_limit_v * 10))
    return data


def encode_soc_soh(*, soc_pct: int, soh_pct: int) -> bytes:
    """0x355 data: SOC and SOH in whole percent."""
    return struct.pack("<HH", soc_pct, soh_pct)


def encode_measurements(*, pack_voltage_v: float, current_a: float, temperatures_c: list[float]) -> bytes:
    """0x356 data: voltage (0.01 V), current (0.1 A, + = charging), one temperature (0.1 °C)."""
    if len(temperatures_c) != 1:
        raise ValueError("0x356 carries exactly one temperature")
    return struct.pack("<hhh", round(pack_voltage_v * 100), round(current_a * 10), round(temperatures_c[0] * 10))


def encode_alarms(alarms: list[str], module_count: int = 1) -> bytes:
    """0x359 data: protection bits, no warnings, module count and the 'PN' marker."""
    data = bytearray(4)
    for alarm in alarms:
        spots = [spot for spot, name in PROTECTION_ALARMS.items() if name == alarm]
        if not spots:
            raise ValueError(f"alarm {alarm!r} has no Pylontech protection bit")
        byte, bit = spots[0]
        data[byte] |= 1 << bit
    return bytes(data) + bytes([module_count]) + b"PN"


def encode_requests(*, charge_enable: bool, discharge_enable: bool, force_charge_request: bool) -> bytes:
    """0x35C data: charge enable (bit 7), discharge enable (bit 6), force charge I (bit 5)."""
    flags = (0x80 if charge_enable else 0) | (0x40 if discharge_enable else 0) | (0x20 if force_charge_request else 0)
    return bytes([flags, 0])


def encode_manufacturer(manufacturer: str) -> bytes:
    """0x35E data: up to 8 ASCII characters, padded with spaces."""
    data = manufacturer.encode("ascii")
    if len(data) > MAX_LENGTH:
        raise ValueError(f"manufacturer {manufacturer!r} is longer than 8 characters")
    return data.ljust(MAX_LENGTH, b" ")


register(BmsProtocol("pylon-can", decode, needs_can_id=True))
