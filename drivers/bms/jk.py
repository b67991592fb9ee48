"""JK (Jikong) BMS JK02 BLE cell-info frames, variants ``jk02_24s`` and ``jk02_32s``.

A cell-info frame is exactly 300 bytes: ``55 AA EB 90``, type 0x02 at [4], little-endian data,
``[299] = sum([0..298]) & 0xFF``. Offsets below are the 24S ones; the 32S layout adds 16 for bytes
54-111 and 32 from byte 112 on (layout as documented by syssi/esphome-jk-bms). Requests are 20-byte
``AA 55 90 EB cmd len value(4, LE) 00*9 ck`` commands; with ``len`` 4 the command byte is a holding
register written with ``value``, e.g. the balancer switch (register 0x1F on JK02 24S and 32S, 1 = on,
after syssi/esphome-jk-bms ``components/jk_bms_ble/switch``).
"""

import struct

import numpy as np

from drivers.bms.errors import DecodeError
from drivers.bms.registry import BmsProtocol, register

HEADER = bytes.fromhex("55AAEB90")
REQUEST_HEADER = bytes.fromhex("AA5590EB")
FRAME_LENGTH = 300
TYPE_CELL_INFO = 0x02
COMMAND_CELL_INFO = 0x96
COMMAND_DEVICE_INFO = 0x97
REGISTER_BALANCER = 0x1F
WRITE_LENGTH = 4
VARIANTS = ("jk02_24s", "jk02_32s")
_SLOTS = {"jk02_24s": 24, "jk02_32s": 32}
_SHIFT = {"jk02_24s": (0, 0), "jk02_32s": (16, 32)}  # (bytes 54-111, bytes 112 on)

# Error word (little-endian u16) bit -> canonical alarm, after syssi/esphome-jk-bms ERRORS_JK02.
# Bit 4 ("battery is fully charged", older firmware: "cell overvoltage") is the cell OVP.
ERROR_ALARMS = {
    0: "frontend_fault",  # balance wire resistance too high
    1: "mosfet_overtemperature",
    2: "internal_fault",  # cell count differs from settings
    4: "cell_overvoltage",
    5: "pack_overvoltage",
    6: "charge_overcurrent",
    7: "short_circuit",  # charge short circuit
    8: "charge_overtemperature",
    9: "charge_undertemperature",
    10: "communication_fault",  # coprocessor communication error
    11: "cell_undervoltage",
    12: "pack_undervoltage",
    13: "discharge_overcurrent",
    14: "short_circuit",  # discharge short circuit
    15: "discharge_overtemperature",
}


def _offsets(variant: str) -> dict[str, int]:
    mid, late = _SHIFT[variant]
    return {
        "mask": 54 + mid,
        "mosfet": 144 if variant == "jk02_32s" else 134,
        "voltage": 118 + late,
        "current": 126 + late,
        "t1": 130 + late,
        "t2": 132 + late,
        "errors": 166 if variant == "jk02_32s" else 136,
        "balancer": 140 + late,
        "soc": 141 + late,
        "remaining": 142 + late,
        "full": 146 + late,
        "cycles": 150 + late,
        "soh": 158 + late,
        "charge_fet": 166 + late,
        "discharge_fet": 167 + late,
    }


_LAYOUT = {variant: _offsets(variant) for variant in VARIANTS}


def request(command: int, value: int = 0, length: int = 0) -> bytes:
    """20-byte JK02 command, e.g. ``request(COMMAND_CELL_INFO)`` ends in checksum 0x10."""
    body = REQUEST_HEADER + bytes([command, length]) + struct.pack("<I", value) + bytes(9)
    return body + bytes([sum(body) & 0xFF])


def balancer_switch(on: bool) -> bytes:
    """20-byte write of the balancer switch: ``AA 55 90 EB 1F 04 01 00 .. 00 9E`` turns it on."""
    return request(REGISTER_BALANCER, int(on), WRITE_LENGTH)


def parse_request(frame: bytes) -> tuple[int, int, int]:
    """(command or register, length, value) of a 20-byte request whose checksum holds (see FRAMINGS)."""
    return frame[4], frame[5], int.from_bytes(frame[6:10], "little")


def decode(raw: bytes, variant: str) -> dict:
    """Decode one 300-byte JK02 cell-info frame of ``variant`` to canonical fields."""
    if variant not in _LAYOUT:
        raise DecodeError(f"unknown JK variant {variant!r}: use {' or '.join(VARIANTS)}")
    if len(raw) != FRAME_LENGTH:
        raise DecodeError(f"JK bad length {len(raw)}: a JK02 frame is exactly {FRAME_LENGTH} bytes")
    if raw[:4] != HEADER:
        raise DecodeError(f"JK bad header {raw[:4].hex(' ')}: a JK02 frame starts with 55 AA EB 90")
    if raw[4] != TYPE_CELL_INFO:
        raise DecodeError(f"JK frame type 0x{raw[4]:02X} is not a cell-info frame (0x02)")
    checksum = sum(raw[:-1]) & 0xFF
    if raw[-1] != checksum:
        raise DecodeError(f"JK bad checksum 0x{raw[-1]:02X}, computed 0x{checksum:02X}")
    at = _LAYOUT[variant]
    slots = _SLOTS[variant]
    mask = int.from_bytes(raw[at["mask"] : at["mask"] + 4], "little")
    millivolts = np.frombuffer(raw, dtype="<u2", count=slots, offset=6)
    enabled = (mask >> np.arange(slots)) & 1 == 1
    errors = int.from_bytes(raw[at["errors"] : at["errors"] + 2], "little")

    def i16(name: str) -> int:
        return int.from_bytes(raw[at[name] : at[name] + 2], "little", signed=True)

    def u32(name: str, signed: bool = False) -> int:
        return int.from_bytes(raw[at[name] : at[name] + 4], "little", signed=signed)

    return {
        "cell_voltages_v": (millivolts[enabled] / 1000).tolist(),
        "cell_count": int(enabled.sum()),
        "pack_voltage_v": u32("voltage") / 1000,
        "current_a": u32("current", signed=True) / 1000,
        "temperatures_c": [i16("t1") / 10, i16("t2") / 10],
        "mosfet_temperature_c": i16("mosfet") / 10,
        "soc_pct": raw[at["soc"]],
        "soh_pct": raw[at["soh"]],
        "remaining_capacity_ah": u32("remaining") / 1000,
        "full_capacity_ah": u32("full") / 1000,
        "cycle_count": u32("cycles"),
        "charge_fet_on": raw[at["charge_fet"]] != 0,
        "discharge_fet_on": raw[at["discharge_fet"]] != 0,
        "balancing_active": raw[at["balancer"]] != 0,
        "alarms": sorted({name for bit, name in ERROR_ALARMS.items() if errors >> bit & 1}),
    }


def encode_cell_info(
    variant: str,
    *,
    cell_voltages_v: list[float],
    pack_voltage_v: float,
    current_a: float,
    temperatures_c: list[float],
    mosfet_temperature_c: float,
    soc_pct: int,
    soh_pct: int,
    remaining_capacity_ah: float,
    full_capacity_ah: float,
    cycle_count: int,
    charge_fet_on: bool,
    discharge_fet_on: bool,
    balancing_active: bool,
    alarms: list[str] = (),
    cell_count: int | None = None,
    frame_counter: int = 0,
) -> bytes:
    """300-byte cell-info frame; the cells fill the first slots and the enabled-cell mask."""
    at = _LAYOUT[variant]
    slots = _SLOTS[variant]
    count = len(cell_voltages_v)
    if count > slots:
        raise ValueError(f"{count} cells do not fit the {slots} slots of {variant}")
    if cell_count is not None and cell_count != count:
        raise ValueError(f"cell_count {cell_count} differs from {count} cell voltages")
    if len(temperatures_c) != 2:
        raise ValueError("temperatures_c must hold exactly the two probes T1, T2")
    errors = 0
    for alarm in alarms:
        bits = [bit for bit, name in ERROR_ALARMS.items() if name == alarm]
        if not bits:
            raise ValueError(f"alarm {alarm!r} has no JK error bit")
        errors |= 1 << bits[0]
    frame = bytearray(FRAME_LENGTH)
    frame[:6] = HEADER + bytes([TYPE_CELL_INFO, frame_counter & 0xFF])
    millivolts = np.rint(np.asarray(cell_voltages_v, dtype=float) * 1000).astype("<u2")
    frame[6 : 6 + 2 * count] = millivolts.tobytes()
    struct.pack_into("<I", frame, at["mask"], (1 << count) - 1)
    struct.pack_into("<I", frame, at["voltage"], round(pack_voltage_v * 1000))
    struct.pack_into("<i", frame, at["current"], round(current_a * 1000))
    struct.pack_into("<h", frame, at["t1"], round(temperatures_c[0] * 10))
    struct.pack_into("<h", frame, at["t2"], round(temperatures_c[1] * 10))
    struct.pack_into("<h", frame, at["mosfet"], round(mosfet_temperature_c * 10))
    struct.pack_into("<H", frame, at["errors"], errors)
    frame[at["balancer"]] = 1 if balancing_active else 0
    frame[at["soc"]] = soc_pct
    frame[at["soh"]] = soh_pct
    struct.pack_into("<I", frame, at["remaining"], round(remaining_capacity_ah * 1000))
    struct.pack_into("<I", frame, at["full"], round(full_capacity_ah * 1000))
    struct.pack_into("<I", frame, at["cycles"], cycle_count)
    frame[at["charge_fet"]] = 1 if charge_fet_on else 0
    frame[at["discharge_fet"]] = 1 if discharge_fet_on else 0
    frame[-1] = sum(frame[:-1]) & 0xFF
    return bytes(frame)


register(BmsProtocol("jk", decode, variants=VARIANTS))
