"""BLE central transports: a small async interface and its two implementations.

`BleTransport` is one central-side connection to one peripheral. Every method is called on the BLE
loop (drivers/ble/loop.py). Library errors surface as `BleTransportError` (or TimeoutError), so the
layers above do not depend on the library in use.

* `BleakTransport` — production: the operating system's Bluetooth stack through bleak (imported
  lazily, so a site without BLE never loads it).
* `BumbleTransport` — a bumble Device as central: on the process's in-process air (the simulated
  packs of this process), or through an HCI transport spec such as ``tcp-client:127.0.0.1:15400``
  (the simulator of another process serving its air over HCI on loopback).
"""
from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from drivers.ble.loop import BLE_LOOP

log = logging.getLogger(__name__)

Notify = Callable[[bytes], None]


class BleTransportError(Exception):
    """The BLE operation failed (no such device, connection refused or dropped, no such characteristic)."""


@dataclass(frozen=True)
class Advertisement:
    address: str
    name: str


class BleTransport(abc.ABC):
    """One central connection to one peripheral (methods run on the BLE loop)."""

    def __init__(self) -> None:
        self._disconnect_callbacks: list[Callable[[str], None]] = []

    @abc.abstractmethod
    async def scan(self, timeout_s: float, until: Callable[[Advertisement], bool] | None = None
                   ) -> list[Advertisement]:
        """Advertisements seen within `timeout_s` (returns early once `until` accepts one)."""

    @abc.abstractmethod
    async def connect(self, address: str, timeout_s: float) -> None:
        """Connect to `address` and discover its services; BleTransportError/TimeoutError on failure."""

    @abc.abstractmethod
    async def disconnect(self) -> None:
        """Close the connection and free the radio; never raises."""

    @abc.abstractmethod
    async def start_notify(self, uuid: str, callback: Notify) -> None:
        """Subscribe to notifications of characteristic `uuid`; `callback(payload)` runs on the loop."""

    @abc.abstractmethod
    async def write(self, uuid: str, data: bytes, response: bool = False) -> None:
        """Write `data` to characteristic `uuid` (write command unless `response`)."""

    @property
    @abc.abstractmethod
    def is_connected(self) -> bool: ...

    def on_disconnect(self, callback: Callable[[str], None]) -> None:
        """`callback(reason)` runs on the loop when the peer or the radio drops the connection."""
        self._disconnect_callbacks.append(callback)

    def _disconnected(self, reason: str) -> None:
        for callback in self._disconnect_callbacks:
            callback(reason)


class BleakTransport(BleTransport):
    """The operating system's BLE stack (BlueZ, CoreBluetooth, WinRT) through bleak."""

    def __init__(self) -> None:
        super().__init__()
        self._client: Any = None

    async def scan(self, timeout_s, until=None):
        from bleak import BleakScanner
        seen: dict[str, Advertisement] = {}
        done = asyncio.Event()

        def on_advertisement(device, data) -> None:
            adv = Advertisement(device.address, data.local_name or device.name or "")
            seen[adv.address] = adv
            if until is not None and until(adv):
                done.set()

        try:
            async with BleakScanner(detection_callback=on_advertisement):
                try:
                    await asyncio.wait_for(done.wait(), timeout_s)
                except TimeoutError:
                    pass
        except Exception as exc:  # noqa: BLE001 - bleak raises backend-specific errors
            raise BleTransportError(f"BLE scan failed: {exc}") from exc
        return list(seen.values())

    async def connect(self, address, timeout_s):
        from bleak import BleakClient
        self._client = BleakClient(address, disconnected_callback=lambda _c: self._disconnected("peer or adapter"),
                                   timeout=timeout_s)
        try:
            await self._client.connect()
        except TimeoutError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise BleTransportError(f"cannot connect to {address}: {exc}") from exc

    async def disconnect(self):
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.disconnect()
            except Exception as exc:  # noqa: BLE001 - closing must never raise
                log.debug("bleak disconnect: %s", exc)

    async def start_notify(self, uuid, callback):
        try:
            await self._client.start_notify(uuid, lambda _char, data: callback(bytes(data)))
        except Exception as exc:  # noqa: BLE001
            raise BleTransportError(f"cannot subscribe to {uuid}: {exc}") from exc

    async def write(self, uuid, data, response=False):
        try:
            await self._client.write_gatt_char(uuid, data, response=response)
        except Exception as exc:  # noqa: BLE001
            raise BleTransportError(f"write to {uuid} failed: {exc}") from exc

    @property
    def is_connected(self) -> bool:
        return self._client is not None and self._client.is_connected


_central_numbers = itertools.count(1)


@contextlib.contextmanager
def _bumble_errors(what: str) -> Iterator[None]:
    """bumble's own errors as BleTransportError (its timeouts as TimeoutError)."""
    from bumble.core import BaseBumbleError, CommandTimeoutError
    from bumble.core import TimeoutError as BumbleTimeout
    try:
        yield
    except (BumbleTimeout, CommandTimeoutError) as exc:
        raise TimeoutError(f"{what}: timed out") from exc
    except BaseBumbleError as exc:
        raise BleTransportError(f"{what}: {exc}") from exc


class BumbleTransport(BleTransport):
    """A bumble Device as central, on the in-process air (`hci=None`) or on an HCI transport spec."""

    def __init__(self, hci: str | None = None) -> None:
        super().__init__()
        self.hci = hci
        number = next(_central_numbers)
        # a random static address (two top bits set), unique per central of the process
        self.own_address = f"F0:00:00:{number >> 16 & 0xFF:02X}:{number >> 8 & 0xFF:02X}:{number & 0xFF:02X}"
        self._device: Any = None
        self._controller: Any = None
        self._hci_transport: Any = None
        self._connection: Any = None
        self._peer: Any = None
        self._watch: asyncio.Task | None = None

    async def _power_on(self) -> None:
        if self._device is not None:
            return
        from bumble.controller import Controller
        from bumble.device import Device
        from bumble.hci import Address
        from bumble.host import Host
        from bumble.transport import open_transport
        from bumble.transport.common import AsyncPipeSink
        address = Address(self.own_address)
        if self.hci is None:
            self._controller = Controller(f"central-{self.own_address}", link=BLE_LOOP.air())
            self._device = Device(name="esms", address=address,
                                  host=Host(self._controller, AsyncPipeSink(self._controller)))
        else:
            try:
                self._hci_transport = await open_transport(self.hci)
            except OSError as exc:
                raise BleTransportError(f"HCI transport {self.hci}: {exc.strerror or exc}") from exc
            self._device = Device.with_hci("esms", address, self._hci_transport.source, self._hci_transport.sink)
            self._watch = asyncio.get_running_loop().create_task(self._watch_hci(self._hci_transport.source))
        with _bumble_errors("power on the bumble central"):
            await self._device.power_on()

    async def _watch_hci(self, source: Any) -> None:
        await source.wait_for_termination()
        if self._connection is not None:
            self._connection = None
            self._disconnected(f"HCI transport {self.hci} closed")

    async def scan(self, timeout_s, until=None):
        from bumble.core import AdvertisingData
        await self._power_on()
        seen: dict[str, Advertisement] = {}
        done = asyncio.Event()

        def on_advertisement(adv: Any) -> None:
            name = adv.data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or ""
            found = Advertisement(adv.address.to_string(with_type_qualifier=False),
                                  name.decode(errors="replace") if isinstance(name, bytes) else str(name))
            seen[found.address] = found
            if until is not None and until(found):
                done.set()

        self._device.on("advertisement", on_advertisement)
        try:
            await self._device.start_scanning(filter_duplicates=True)
            try:
                await asyncio.wait_for(done.wait(), timeout_s)
            except TimeoutError:
                pass
            await self._device.stop_scanning()
        finally:
            self._device.remove_listener("advertisement", on_advertisement)
        return list(seen.values())

    async def connect(self, address, timeout_s):
        from bumble.device import Peer
        await self._power_on()
        with _bumble_errors(f"connect to {address} within {timeout_s:g} s"):
            connection = await self._device.connect(address, timeout=timeout_s)
        self._connection = connection
        connection.on("disconnection", self._on_disconnection)
        self._peer = Peer(connection)
        with _bumble_errors(f"GATT discovery on {address}"):
            await self._peer.discover_services()
            for service in self._peer.services:
                await service.discover_characteristics()

    def _on_disconnection(self, reason: int) -> None:
        if self._connection is not None:
            self._connection = None
            self._disconnected(f"connection dropped (HCI reason 0x{reason:02X})")

    def _characteristic(self, uuid: str) -> Any:
        from bumble.core import UUID
        if self._peer is None:
            raise BleTransportError("not connected")
        found = self._peer.get_characteristics_by_uuid(UUID(uuid))
        if not found:
            raise BleTransportError(f"the peer has no characteristic {uuid}")
        return found[0]

    async def start_notify(self, uuid, callback):
        with _bumble_errors(f"subscribe to {uuid}"):
            await self._peer.subscribe(self._characteristic(uuid), lambda value: callback(bytes(value)))

    async def write(self, uuid, data, response=False):
        if self._connection is None:
            raise BleTransportError("not connected")
        with _bumble_errors(f"write to {uuid}"):
            await self._peer.write_value(self._characteristic(uuid), bytes(data), with_response=response)

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def disconnect(self):
        connection, self._connection = self._connection, None
        self._peer = None
        device, self._device = self._device, None
        if connection is not None:
            try:
                await asyncio.wait_for(connection.disconnect(), 1.0)
            except Exception as exc:  # noqa: BLE001 - closing must never raise
                log.debug("bumble disconnect: %s", exc)
        if device is not None:
            try:
                await asyncio.wait_for(device.power_off(), 1.0)
            except Exception as exc:  # noqa: BLE001
                log.debug("bumble power off: %s", exc)
        if self._controller is not None:
            BLE_LOOP.air().remove_controller(self._controller)
            self._controller = None
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self._hci_transport is not None:
            transport, self._hci_transport = self._hci_transport, None
            await transport.close()
