"""CAN frame layout of one BMS pack (resources/dbc/pylon_lv_esms.dbc): which id carries what, and the
per-cell frames encoded and decoded with cantools. Pure: no bus I/O (the DBC file is read once).

Ids: the Pylontech/SMA frames 0x351/0x355/0x356/0x359/0x35C/0x35E plus this project's multiplexed
cell-voltage (0x360) and cell-temperature (0x361) frames belong to unit_id 1; unit_id u adds
0x20 * (u - 1) to every id, so up to 37 packs can share one bus. A cell frame carries group g of
four cells (rack cells 4g+1 .. 4g+4) with an invalid flag per slot. A link's packs send the
cell-temperature frames unless `options.cell_temperature_frames = false` (a pack with only the 0x356
temperature); the site file says so, the driver and the simulator follow it.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cantools
import numpy as np
from cantools.database.can import Database, Message

from app.core.errors import ConfigError
from app.core.paths import RESOURCES
from app.core.site import Link, Rack
from drivers.bms import pylon_can

DBC_PATH = RESOURCES / "dbc" / "pylon_lv_esms.dbc"
PYLON_IDS = (pylon_can.LIMITS, pylon_can.SOC_SOH, pylon_can.MEASUREMENTS, pylon_can.ALARMS,
             pylon_can.REQUESTS, pylon_can.MANUFACTURER)
CELL_VOLTAGES = 0x360
CELL_TEMPERATURES = 0x361
WINDOW_BASE = 0x350          # unit 1 owns 0x350..0x36F
WINDOW_SIZE = 0x20
MAX_UNIT_ID = (0x7FF - CELL_TEMPERATURES) // WINDOW_SIZE + 1      # 37: the last id stays 11-bit
CELLS_PER_FRAME = 4
MAX_GROUPS = 256
MAX_CELLS = MAX_GROUPS * CELLS_PER_FRAME


@dataclass(frozen=True)
class CellFrame:
    """One multiplexed per-cell frame kind of the DBC (voltages or temperatures)."""

    can_id: int
    point: str               # canonical rack point the driver assembles: cell_voltages_v ...
    message: Message
    value_signals: tuple[str, ...]
    invalid_signals: tuple[str, ...]
    low: float               # physical range of a slot
    high: float
    scale: float             # physical = raw * scale + offset (the DBC's factor, same for the 4 slots)
    offset: float


def cell_temperature_frames(link: Link) -> bool:
    """Whether the packs of `link` send the per-cell temperature frames (0x361); default true."""
    value = link.options.get("cell_temperature_frames", True)
    if not isinstance(value, bool):
        raise ConfigError(f"link '{link.name}': options.cell_temperature_frames: expected true or false, got {value!r}")
    return value


def pack_points(link: Link, rack: Rack) -> dict[str, int]:
    """The cell data points a pack on `link` reports, with their lengths (drivers.registry.rack_points):
    per-cell voltages, the one 0x356 temperature and, when sent, per-cell temperatures."""
    points = {"cell_voltages_v": rack.cell_count, "temperatures_c": 1}
    if cell_temperature_frames(link):
        points["cell_temperatures_c"] = rack.cell_count
    return points


def frame_id(base_id: int, unit_id: int) -> int:
    """The id a pack with `unit_id` uses for the unit-1 id `base_id`."""
    return base_id + WINDOW_SIZE * (unit_id - 1)


def split_id(can_id: int) -> tuple[int, int]:
    """(unit_id, unit-1 base id) of an 11-bit id; unit_id is 0 for ids below the first window."""
    if can_id < WINDOW_BASE:
        return 0, can_id
    unit, offset = divmod(can_id - WINDOW_BASE, WINDOW_SIZE)
    return unit + 1, WINDOW_BASE + offset


@functools.cache
def database() -> Database:
    """The project's DBC, loaded once (cantools objects are only read afterwards)."""
    return cantools.database.load_file(str(DBC_PATH))


@functools.cache
def cell_frames() -> dict[int, CellFrame]:
    """Unit-1 id -> CellFrame for 0x360 (voltages) and 0x361 (temperatures)."""
    db = database()
    out = {}
    for can_id, point, prefix in ((CELL_VOLTAGES, "cell_voltages_v", "CellVoltage"),
                                  (CELL_TEMPERATURES, "cell_temperatures_c", "CellTemperature")):
        message = db.get_message_by_frame_id(can_id)
        values = tuple(f"{prefix}{k}" for k in range(1, CELLS_PER_FRAME + 1))
        first = message.get_signal_by_name(values[0])
        for name in values:
            signal = message.get_signal_by_name(name)
            if (signal.scale, signal.offset, signal.minimum, signal.maximum) != \
                    (first.scale, first.offset, first.minimum, first.maximum):
                raise ValueError(f"{DBC_PATH}: {name} must have the scaling and range of {values[0]}")
        out[can_id] = CellFrame(can_id, point, message, values, tuple(f"{name}Invalid" for name in values),
                                float(first.minimum), float(first.maximum), float(first.scale),
                                float(first.offset))
    return out


def group_count(cell_count: int) -> int:
    """Frames per cycle for a rack of `cell_count` cells."""
    return math.ceil(cell_count / CELLS_PER_FRAME)


def encode_cell_frames(base_id: int, values: Sequence[float]) -> list[bytes]:
    """Data bytes of every group frame for one rack vector (cell 1 first), in sending order.

    Slots past the last cell, non-finite values and values outside the signal's range are sent with
    the invalid flag set (the value clipped into range)."""
    spec = cell_frames()[base_id]
    arr = np.asarray(values, dtype=float)
    if arr.size > MAX_CELLS:
        raise ValueError(f"{arr.size} cells do not fit {MAX_GROUPS} groups of {CELLS_PER_FRAME}")
    out = []
    for group in range(group_count(arr.size)):
        signals: dict[str, float | int] = {"CellGroup": group}
        for slot, (name, flag) in enumerate(zip(spec.value_signals, spec.invalid_signals)):
            index = group * CELLS_PER_FRAME + slot
            value = float(arr[index]) if index < arr.size else math.nan
            valid = spec.low <= value <= spec.high          # False for NaN
            signals[name] = value if valid else (spec.high if value > spec.high else spec.low)
            signals[flag] = 0 if valid else 1
        out.append(spec.message.encode(signals))
    return out


def decode_cell_frame(spec: CellFrame, data: bytes) -> tuple[int, list[float]]:
    """(group, four slot values with NaN where the invalid flag is set). Raises cantools' DecodeError
    for a frame shorter than 8 bytes. cantools extracts the raw signals; the DBC's factor is applied
    here once for the four slots (half the cost of cantools scaling each signal)."""
    raw = spec.message.decode(data, decode_choices=False, scaling=False)
    scale, offset = spec.scale, spec.offset
    return raw["CellGroup"], [math.nan if raw[flag] else raw[name] * scale + offset
                              for name, flag in zip(spec.value_signals, spec.invalid_signals)]
