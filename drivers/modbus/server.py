"""Modbus TCP server on its own asyncio thread, serving register images (the simulator's endpoint).

The simulator owns the values: it swaps in a new read-only image per table (`RegisterDevice.publish`,
keeping the registers clients own) and learns about client writes through `on_write`. Link faults
(link_faults.LinkFaults) are applied to every answer; a device can be "rebooted" (silent, then all
registers zero). The RTU server (rtu_server.py) serves the same devices. pymodbus calls stay in this package.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Callable

import numpy as np
from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.loop_thread import LoopThread
from drivers.modbus.link_faults import LinkFaults

log = logging.getLogger(__name__)

_FC_TABLE = {3: "holding", 6: "holding", 16: "holding", 23: "holding", 4: "input"}
WriteHook = Callable[[int, str, int, np.ndarray], None]   # (unit_id, table, address, registers)


class DeviceSilent(Exception):
    """The device does not answer this request (rebooting)."""


class RegisterDevice:
    """One unit id's register space. Images are replaced whole (atomic reference swap), never mutated."""

    def __init__(self, unit_id: int, input_size: int, holding_size: int,
                 on_write: WriteHook | None = None, now: Callable[[], float] = time.monotonic) -> None:
        self.unit_id = unit_id
        self.sizes = {"input": max(1, input_size), "holding": max(1, holding_size)}
        self._images = {t: np.zeros(n, np.uint16) for t, n in self.sizes.items()}
        self._write_lock = threading.Lock()
        self.on_write = on_write
        self.faults = LinkFaults()     # replaced by the server with its link's faults
        self._now = now
        self._silent_until = 0.0
        self._zero_until = 0.0

    def publish(self, table: str, image: np.ndarray, keep: np.ndarray | None = None) -> None:
        """Make `image` (uint16, table size) what clients read from now on, except the registers at
        addresses `keep`, which stay as they are (client-written setpoints), atomically with writes."""
        if image.shape != (self.sizes[table],):
            raise ValueError(f"unit {self.unit_id} {table}: image of {image.shape} for size {self.sizes[table]}")
        frozen = image.astype(np.uint16, copy=True)
        with self._write_lock:
            if keep is not None and keep.size:
                frozen[keep] = self._images[table][keep]
            frozen.flags.writeable = False
            self._images[table] = frozen

    def image(self, table: str) -> np.ndarray:
        return self._images[table]

    def reboot(self, seconds: float, silent_s: float = 0.0) -> None:
        """Simulate a BMS reboot: no answers for `silent_s`, then every register reads zero until
        `seconds` after now (the caller resets the heartbeat source so it restarts from zero)."""
        now = self._now()
        self._silent_until = now + silent_s
        self._zero_until = now + seconds

    @property
    def rebooting(self) -> bool:
        return self._now() < self._zero_until

    def _write(self, address: int, regs: list[int]) -> None:
        with self._write_lock:
            img = self._images["holding"].copy()
            img[address: address + len(regs)] = regs
            img.flags.writeable = False
            self._images["holding"] = img
        if self.on_write:
            self.on_write(self.unit_id, "holding", address, np.asarray(regs, np.uint16))

    async def serve(self, func_code: int, address: int, count: int, values: list[int] | None) -> list[int] | ExcCodes:
        """One register request (event-loop thread): the registers read (or written), or an exception
        code. Applies the link's latency and exception faults; raises DeviceSilent while rebooting."""
        faults = self.faults
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        now = self._now()
        if now < self._silent_until:
            raise DeviceSilent(self.unit_id)
        if faults.exception_code:
            return ExcCodes(faults.exception_code)
        table = _FC_TABLE.get(func_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if address < 0 or count < 1 or address + count > self.sizes[table]:
            return ExcCodes.ILLEGAL_ADDRESS
        if values:
            if now < self._zero_until:
                return ExcCodes.DEVICE_BUSY
            self._write(address, [int(v) for v in values])
            return [int(v) for v in values]
        if now < self._zero_until:
            return [0] * count
        return self._images[table][address: address + count].tolist()

    def sim_device(self) -> SimDevice:
        bits = [SimData(0, count=16, values=False, datatype=DataType.BITS)]
        return SimDevice(
            self.unit_id,
            simdata=(bits, list(bits), [SimData(0, count=self.sizes["holding"], datatype=DataType.REGISTERS)],
                     [SimData(0, count=self.sizes["input"], datatype=DataType.REGISTERS)]),
            action=self._action,
        )

    async def _action(self, func_code: int, start: int, address: int, count: int,
                      registers: list[int], set_values) -> ExcCodes | None:
        try:
            got = await self.serve(func_code, address, count, [int(v) for v in set_values] if set_values else None)
        except DeviceSilent:
            raise NoSuchIdException(f"unit {self.unit_id} rebooting") from None   # server stays silent
        if isinstance(got, ExcCodes):
            return got
        if not set_values:
            offset = address - start
            registers[offset: offset + count] = got
        return None


class ModbusTcpServerThread(LoopThread):
    """Serve RegisterDevices on host:port until stop(). start() returns once the port listens.

    `faults` (LinkFaults) applies to every answer; `drop_connections()` closes open client sockets."""

    def __init__(self, host: str, port: int, devices: list[RegisterDevice], name: str = "modbus-server",
                 faults: LinkFaults | None = None) -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            log.warning("Modbus server %s binds %s (not loopback)", name, host)
        super().__init__(name)
        self.host, self.port, self.devices = host, port, devices
        self.faults = faults or LinkFaults()
        for d in devices:
            d.faults = self.faults
        self._server: ModbusTcpServer | None = None

    def start(self, timeout: float = 5.0) -> None:
        self._start_thread(f"listen on {self.host}:{self.port}", timeout)

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        return self.faults.mangle(data, rtu=False) if sending and self.faults.active else data

    async def _serve(self) -> None:
        self._server = ModbusTcpServer([d.sim_device() for d in self.devices], address=(self.host, self.port),
                                       ignore_missing_devices=True, trace_packet=self._trace_packet)
        await self._server.serve_forever(background=True)
        self._ready.set()
        await self._stop.wait()
        await self._server.shutdown()          # closes the listener and every client connection

    def drop_connections(self) -> None:
        """Close every open client connection (the listener stays; clients may reconnect)."""
        if self._loop and self._server and self.running:
            def close_all() -> None:
                for conn in list(self._server.active_connections.values()):
                    conn.close()
            self._loop.call_soon_threadsafe(close_all)


