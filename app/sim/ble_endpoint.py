"""The plant's racks as Bluetooth LE BMSs: bumble GATT peripherals speaking JBD, JK02 or Daly.

`BlePackPeripheral` is one pack on the BLE loop's in-process air (drivers/ble/loop.py): it advertises
its name and service, takes commands on the protocol's write characteristic and notifies the answers
like the real packs do — JBD in 20-byte pieces, JK02 300-byte frames in MTU-sized pieces (streamed
every `stream_period_s` after a 0x96 command), Daly one 13-byte frame per notification (see
drivers/ble/gatt.py for the layouts and their sources). Frames come from app/sim/ble_pack.py. A JK
pack's balancer (switched by the central) picks the cells its rack bleeds before each streamed frame.

`BleSimLink` is the simulator's end of one `ble` link, with start()/stop()/running like the other
simulator servers: the link's pack on the air, and for `options.port` an HCI-over-TCP server on
loopback so a driver in another process can join the air as central.
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from bumble import hci
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.host import Host
from bumble.transport.common import AsyncPipeSink

from app.core.errors import ConfigError
from app.core.site import Link
from app.sim.ble_hci_server import HciTcpServer
from app.sim.ble_pack import PackProtocol, PackReading, daly_answer, jbd_answer, jk_balancer_cells, jk_cell_info, \
    jk_device_info, pack_address
from app.sim.plant import RackModel
from drivers.ble.config import BleConfig, ble_config
from drivers.ble.gatt import JBD_NOTIFICATION_SIZE, LAYOUTS
from drivers.ble.loop import BLE_LOOP
from drivers.bms import jk

log = logging.getLogger(__name__)

ADVERTISING_INTERVAL_MS = 50
DALY_FRAME = 13


def stream_period_s(link: Link) -> float:
    """How often a JK pack streams cell info: about 1 s like a real one, but at least twice per poll period
    of the link, so every poll finds a fresh frame."""
    return min(1.0, link.poll_period_s / 2)


class BlePackPeripheral:
    """One simulated pack as a bumble GATT peripheral (all methods on the BLE loop)."""

    def __init__(self, config: BleConfig, model: RackModel, lock: AbstractContextManager, stream_s: float) -> None:
        self.config, self.model, self._lock, self.stream_s = config, model, lock, stream_s
        self.name = config.address if config.by_name else f"{config.protocol.upper()}-{config.link}"
        self.address = pack_address(config.address) if config.by_name else config.address
        self.notifications_sent = 0
        self._protocol = PackProtocol(config.protocol)
        self._device: Device | None = None
        self._controller: Controller | None = None
        self._tasks: set[asyncio.Task] = set()
        self._streams: dict[int, asyncio.Task] = {}
        self._counter = 0
        self.muted = False          # fault injection: take commands but answer nothing

    async def start(self) -> None:
        layout = LAYOUTS[self.config.protocol]
        self._controller = Controller(f"pack-{self.config.link}", link=BLE_LOOP.air())
        device = Device(name=self.name, address=hci.Address(self.address),
                        host=Host(self._controller, AsyncPipeSink(self._controller)))
        write_props = Characteristic.Properties.WRITE | Characteristic.Properties.WRITE_WITHOUT_RESPONSE
        value = CharacteristicValue(write=self._on_write)
        if layout.notify == layout.write:           # JK: one characteristic for both directions
            self._notify = Characteristic(UUID(layout.notify), write_props | Characteristic.Properties.NOTIFY,
                                          Characteristic.WRITEABLE, value)
            chars = [self._notify]
        else:
            self._notify = Characteristic(UUID(layout.notify),
                                          Characteristic.Properties.READ | Characteristic.Properties.NOTIFY,
                                          Characteristic.READABLE, b"")
            chars = [self._notify, Characteristic(UUID(layout.write), write_props, Characteristic.WRITEABLE, value)]
        device.add_service(Service(UUID(layout.service), chars))
        device.on("connection", self._on_connection)
        await device.power_on()
        advertising = AdvertisingData([
            (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()),
            (AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, bytes(UUID(layout.service))),
        ])
        await device.start_advertising(auto_restart=True, advertising_data=bytes(advertising),
                                       advertising_interval_min=ADVERTISING_INTERVAL_MS,
                                       advertising_interval_max=ADVERTISING_INTERVAL_MS)
        self._device = device

    async def stop(self) -> None:
        """The pack goes away: its connections end with a connection timeout, it stops advertising."""
        device, self._device = self._device, None
        if device is None:
            return
        await device.stop_advertising()
        await self.drop(hci.HCI_CONNECTION_TIMEOUT_ERROR)
        for task in list(self._tasks):
            task.cancel()
        await device.power_off()
        BLE_LOOP.air().remove_controller(self._controller)
        self._controller = None

    async def drop(self, reason: int = hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR) -> None:
        """The pack ends every connection (it keeps advertising, so a central can reconnect)."""
        if self._device is None:
            return
        for connection in list(self._device.connections.values()):
            await connection.disconnect(reason=reason)

    async def notify_all(self, payload: bytes) -> None:
        """Send one raw notification to every connected central (fault injection: garbage)."""
        if self._device is not None:
            for connection in list(self._device.connections.values()):
                await self._send(connection, payload)

    # --- protocol -------------------------------------------------------------------------
    def _on_connection(self, connection: Any) -> None:
        connection.on("disconnection", lambda _reason: self._end_stream(connection))

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

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

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

    def _end_stream(self, connection: Any) -> None:
        task = self._streams.pop(connection.handle, None)
        if task is not None:
            task.cancel()

    def _next_counter(self) -> int:
        self._counter = (self._counter + 1) & 0xFF
        return self._counter

    async def _send_mtu(self, connection: Any, frame: bytes) -> None:
        size = connection.att_mtu - 3
        for i in range(0, len(frame), size):
            await self._send(connection, frame[i : i + size])

    async def _send(self, connection: Any, payload: bytes) -> None:
        if self._device is None or connection.handle not in self._device.connections:
            return
        await self._device.notify_subscriber(connection, self._notify, payload)
        self.notifications_sent += 1


class BleSimLink:
    """The simulator's end of one `ble` link (options.transport must be "bumble")."""

    def __init__(self, link: Link, models: list[RackModel], lock: AbstractContextManager | None = None,
                 stream_s: float | None = None) -> None:
        self.config = ble_config(link, [m.rack for m in models])
        if self.config.transport != "bumble":
            raise ConfigError(f"link '{link.name}': options.transport: the simulator serves a ble link only "
                              f"through bumble (transport = \"bumble\"), not {self.config.transport!r}")
        self.link = link
        self.name = f"sim-{link.name}"
        self.pack = BlePackPeripheral(self.config, models[0], lock if lock is not None else nullcontext(),
                                      stream_period_s(link) if stream_s is None else stream_s)
        self._hci: HciTcpServer | None = None
        self.running = False

    def start(self) -> None:
        """Power the pack on (and serve HCI); returns once it advertises."""
        if self.running:
            return
        BLE_LOOP.acquire()
        try:
            BLE_LOOP.run(self._start(), 5.0)
        except BaseException:
            BLE_LOOP.release()
            raise
        self.running = True

    async def _start(self) -> None:
        await self.pack.start()
        if self.config.port is not None:
            self._hci = HciTcpServer(self.config.host, self.config.port, BLE_LOOP.air())
            try:
                await self._hci.start()
            except OSError:
                self._hci = None
                await self.pack.stop()
                raise

    def stop(self) -> None:
        """The pack goes away (connections end with a timeout) and the HCI server closes."""
        if not self.running:
            return
        self.running = False
        try:
            BLE_LOOP.run(self._stop(), 5.0)
        finally:
            BLE_LOOP.release()

    async def _stop(self) -> None:
        if self._hci is not None:
            await self._hci.stop()
            self._hci = None
        await self.pack.stop()

    def drop_connections(self) -> None:
        """Fault injection: the pack ends its connections and stays available."""
        BLE_LOOP.run(self.pack.drop(), 2.0)

    def inject(self, payload: bytes) -> None:
        """Fault injection: one raw notification to the connected central."""
        BLE_LOOP.run(self.pack.notify_all(payload), 2.0)
