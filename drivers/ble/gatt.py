"""GATT layout of the BLE BMS models: which service a pack offers, where it notifies, where it listens.

Shared by the driver (central) and the plant simulator (peripheral). Sources, checked with the public
integrations that talk to real packs:

* JBD / Xiaoxiang: service 0xFF00, notify 0xFF01, write 0xFF02 (write without response on current
  dongles); responses longer than 20 bytes arrive split over consecutive notifications.
  Overkill Solar "BLE protocol documentation" (JBD BLE dongle notes); syssi/esphome-jbd-bms.
* JK (JK02): service 0xFFE0, one characteristic 0xFFE1 that takes the 20-byte commands and notifies
  the 300-byte frames in MTU-sized fragments; commands 0x97 (device info) and 0x96 (cell info, then
  streamed). syssi/esphome-jk-bms docs/protocol-design-ble.md; fl4p/batmon-ha bmslib/models/jikong.py.
* Daly: service 0xFFF0, notify 0xFFF1, write 0xFFF2; BLE requests use host address 0x80.
  fl4p/batmon-ha bmslib/models/daly.py (rx fff1 / tx fff2, "a580..." requests); patman15/aiobmsble.
"""
from __future__ import annotations

from dataclasses import dataclass

BLUETOOTH_BASE_UUID = "0000{:04x}-0000-1000-8000-00805f9b34fb"


def uuid16(short: int) -> str:
    """The full 128-bit string form of a 16-bit UUID, e.g. ``uuid16(0xFF01)`` -> ``0000ff01-...``."""
    return BLUETOOTH_BASE_UUID.format(short)


@dataclass(frozen=True)
class GattLayout:
    """One BMS model's service and characteristics (full 128-bit UUID strings)."""

    service: str
    notify: str
    write: str


LAYOUTS: dict[str, GattLayout] = {
    "jbd": GattLayout(uuid16(0xFF00), uuid16(0xFF01), uuid16(0xFF02)),
    "jk": GattLayout(uuid16(0xFFE0), uuid16(0xFFE1), uuid16(0xFFE1)),
    "daly": GattLayout(uuid16(0xFFF0), uuid16(0xFFF1), uuid16(0xFFF2)),
}

DALY_BLE_HOST_ADDRESS = 0x80
JBD_NOTIFICATION_SIZE = 20      # JBD dongles notify in 20-byte pieces whatever the MTU
