"""One BLE battery pack as a bumble GATT peripheral on the BLE loop's in-process air, and the
simulator-side link that serves it, whatever answers the central's writes.

`GattPeripheral` advertises the pack's name and service (layouts of drivers/ble/gatt.py), takes
writes on the protocol's write characteristic and notifies on its notify characteristic; subclasses
answer the writes (the plant's packs, app/sim/ble_endpoint.py; a capture replay, app/sim/ble_replay.py).
`BlePeripheralLink` is the simulator's end of one `ble` link, with start()/stop()/running like the
other simulator servers: the pack on the air, and for `options.port` an HCI-over-TCP server on
loopback so a driver in another process can join the air as central.
"""
from __future__ import annotations

import abc
import asyncio
from collections.abc import Sequence
from typing import Any

from bumble import hci
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.host import Host
from bumble.transport.common import AsyncPipeSink

from app.core.errors import ConfigError
from app.core.site import Link, Rack
from app.sim.ble_hci_server import HciTcpServer
from app.sim.ble_pack import pack_address
from drivers.ble.config import BleConfig, ble_config
from drivers.ble.gatt import LAYOUTS
from drivers.ble.loop import BLE_LOOP

ADVERTISING_INTERVAL_MS = 50


def served_config(link: Link, racks: Sequence[Rack]) -> BleConfig:
    """The link's validated settings; the simulator serves a ble link only through bumble."""
    config = ble_config(link, list(racks))
    if config.transport != "bumble":
        raise ConfigError(f"link '{link.name}': options.transport: the simulator serves a ble link only "
                          f"through bumble (transport = \"bumble\"), not {config.transport!r}")
    return config


class GattPeripheral(abc.ABC):
    """One pack on the air (all methods on the BLE loop). `_streams` holds at most one answering task
    per connection, cancelled when the connection ends."""

    def __init__(self, config: BleConfig) -> None:
        self.config = config
        self.name = config.address if config.by_name else f"{config.protocol.upper()}-{config.link}"
        self.address = pack_address(config.address) if config.by_name else config.address
        self.notifications_sent = 0
        self._device: Device | None = None
        self._controller: Controller | None = None
        self._tasks: set[asyncio.Task] = set()
        self._streams: dict[int, asyncio.Task] = {}
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

    def _on_connection(self, connection: Any) -> None:
        connection.on("disconnection", lambda _reason: self._end_stream(connection))

    @abc.abstractmethod
    def _on_write(self, connection: Any, value: bytes) -> None:
        """A central wrote `value` to the write characteristic (runs on the loop)."""

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _end_stream(self, connection: Any) -> None:
        task = self._streams.pop(connection.handle, None)
        if task is not None:
            task.cancel()

    async def _send_mtu(self, connection: Any, frame: bytes) -> None:
        size = connection.att_mtu - 3
        for i in range(0, len(frame), size):
            await self._send(connection, frame[i : i + size])

    async def _send(self, connection: Any, payload: bytes) -> None:
        if self._device is None or connection.handle not in self._device.connections:
            return
        await self._device.notify_subscriber(connection, self._notify, payload)
        self.notifications_sent += 1


class BlePeripheralLink:
    """The simulator's end of one `ble` link: `pack` (built with served_config) on the air."""

    def __init__(self, link: Link, pack: GattPeripheral, name: str) -> None:
        self.link, self.pack, self.name = link, pack, name
        self.config = pack.config
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
