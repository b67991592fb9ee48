"""Modbus TCP server on its own asyncio thread, serving register images (the simulator's endpoint).

The simulator owns the values: it swaps in a new read-only image per table (`RegisterDevice.publish`)
and learns about client writes through `on_write`. pymodbus calls stay in this package.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from typing import Callable

import numpy as np
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

log = logging.getLogger(__name__)

_FC_TABLE = {3: "holding", 6: "holding", 16: "holding", 23: "holding", 4: "input"}
WriteHook = Callable[[int, str, int, np.ndarray], None]   # (unit_id, table, address, registers)


class RegisterDevice:
    """One unit id's register space. Images are replaced whole (atomic reference swap), never mutated."""

    def __init__(self, unit_id: int, input_size: int, holding_size: int,
                 on_write: WriteHook | None = None) -> None:
        self.unit_id = unit_id
        self.sizes = {"input": max(1, input_size), "holding": max(1, holding_size)}
        self._images = {t: np.zeros(n, np.uint16) for t, n in self.sizes.items()}
        self._write_lock = threading.Lock()
        self.on_write = on_write

    def publish(self, table: str, image: np.ndarray) -> None:
        """Make `image` (uint16, table size) what clients read from now on."""
        if image.shape != (self.sizes[table],):
            raise ValueError(f"unit {self.unit_id} {table}: image of {image.shape} for size {self.sizes[table]}")
        frozen = image.astype(np.uint16, copy=True)
        frozen.flags.writeable = False
        self._images[table] = frozen

    def image(self, table: str) -> np.ndarray:
        return self._images[table]

    def _write(self, address: int, regs: list[int]) -> None:
        with self._write_lock:
            img = self._images["holding"].copy()
            img[address: address + len(regs)] = regs
            img.flags.writeable = False
            self._images["holding"] = img
        if self.on_write:
            self.on_write(self.unit_id, "holding", address, np.asarray(regs, np.uint16))

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
        table = _FC_TABLE.get(func_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if set_values:
            self._write(address, [int(v) for v in set_values])
            return None
        offset = address - start
        registers[offset: offset + count] = self._images[table][address: address + count].tolist()
        return None


class ModbusTcpServerThread:
    """Serve RegisterDevices on host:port until stop(). start() returns once the port listens."""

    def __init__(self, host: str, port: int, devices: list[RegisterDevice], name: str = "modbus-server") -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            log.warning("Modbus server %s binds %s (not loopback)", name, host)
        self.host, self.port, self.devices, self.name = host, port, devices, name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ModbusTcpServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 5.0) -> None:
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"{self.name}: server did not start listening on {self.host}:{self.port}")
        if self._error:
            self._thread.join(timeout)
            raise OSError(f"{self.name}: cannot listen on {self.host}:{self.port}: {self._error}")

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:   # reported to start(); the thread ends
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = ModbusTcpServer([d.sim_device() for d in self.devices], address=(self.host, self.port))
        await self._server.serve_forever(background=True)
        self._ready.set()
        await self._server.serving

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listening socket and every client connection."""
        if self._loop and self._server and self._thread and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop)
            self._thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive())
