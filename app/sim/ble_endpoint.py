"""The plant's racks as Bluetooth LE BMSs: bumble GATT peripherals speaking JBD, JK02 or Daly.

`BlePackPeripheral` is one pack (a GattPeripheral of app/sim/ble_peripheral.py): it takes commands on
the protocol's write characteristic and notifies the answers like the real packs do — JBD in 20-byte
pieces, JK02 300-byte frames in MTU-sized pieces (streamed every `stream_period_s` after a 0x96
command), Daly one 13-byte frame per notification (see drivers/ble/gatt.py for the layouts and their
sources). Frames come from app/sim/ble_pack.py. `BleSimLink` is the simulator's end of one `ble` link
serving it (on the in-process air, and over HCI on loopback for `options.port`). A JK
pack's balancer (switched by the central) picks the cells its rack bleeds before each streamed frame.
"""
from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from app.core.site import Link
from app.sim.ble_pack import PackProtocol, PackReading, daly_answer, jbd_answer, jk_balancer_cells, jk_cell_info, \
    jk_device_info
from app.sim.ble_peripheral import BlePeripheralLink, GattPeripheral, served_config
from app.sim.plant import RackModel
from drivers.ble.config import BleConfig
from drivers.ble.gatt import JBD_NOTIFICATION_SIZE
from drivers.bms import jk

DALY_FRAME = 13


def stream_period_s(link: Link) -> float:
    """How often a JK pack streams cell info: about 1 s like a real one, but at least twice per poll period
    of the link, so every poll finds a fresh frame."""
    return min(1.0, link.poll_period_s / 2)


class BlePackPeripheral(GattPeripheral):
    """One simulated pack answering from the plant (all methods on the BLE loop)."""

    def __init__(self, config: BleConfig, model: RackModel, lock: AbstractContextManager, stream_s: float) -> None:
        super().__init__(config)
        self.model, self._lock, self.stream_s = model, lock, stream_s
        self._protocol = PackProtocol(config.protocol)
        self._counter = 0

    def _on_write(self, connection: Any, value: bytes) -> None:
        for code in self._protocol.commands(bytes(value)):
            if self.config.protocol == "jk" and code == jk.REGISTER_BALANCER:
                self._balance()
            elif not self.muted:
                self._spawn(self._answer(connection, code))

    def _balance(self) -> None:
        """The JK balancer: bleed the cells it picks while its switch is on, none while it is off."""
        with self._lock:
            on = self._protocol.balancer_on
            self.model.command_bleed(jk_balancer_cells(self.model.cell_voltages()) if on else ())

    def _reading(self) -> PackReading:
        with self._lock:
            return PackReading.from_model(self.model, self.config.temperature_sensors)

    async def _answer(self, connection: Any, code: int) -> None:
        protocol = self.config.protocol
        if protocol == "jbd":
            frame = jbd_answer(code, self._reading())
            if frame is not None:
                for i in range(0, len(frame), JBD_NOTIFICATION_SIZE):
                    await self._send(connection, frame[i : i + JBD_NOTIFICATION_SIZE])
        elif protocol == "daly":
            frames = daly_answer(code, self._reading())
            if frames is not None:
                for i in range(0, len(frames), DALY_FRAME):
                    await self._send(connection, frames[i : i + DALY_FRAME])
        elif code == jk.COMMAND_DEVICE_INFO:
            await self._send_mtu(connection, jk_device_info(self.name, self._next_counter()))
        elif code == jk.COMMAND_CELL_INFO and connection.handle not in self._streams:
            self._streams[connection.handle] = self._spawn(self._stream(connection))

    async def _stream(self, connection: Any) -> None:
        while True:
            self._balance()
            if not self.muted:
                frame = jk_cell_info(self._reading(), self.config.variant, self._next_counter())
                await self._send_mtu(connection, frame)
            await asyncio.sleep(self.stream_s)

    def _next_counter(self) -> int:
        self._counter = (self._counter + 1) & 0xFF
        return self._counter


class BleSimLink(BlePeripheralLink):
    """The simulator's end of one `ble` link (options.transport must be "bumble")."""

    def __init__(self, link: Link, models: list[RackModel], lock: AbstractContextManager | None = None,
                 stream_s: float | None = None) -> None:
        config = served_config(link, [m.rack for m in models])
        super().__init__(link, BlePackPeripheral(config, models[0], lock if lock is not None else nullcontext(),
                                                 stream_period_s(link) if stream_s is None else stream_s),
                         f"sim-{link.name}")
