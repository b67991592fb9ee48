"""Modbus RTU server (RS485 slave side) on its own asyncio thread, serving RegisterDevices on a serial
line: a pty pair on loopback (PtyLine), an open file descriptor, or a real serial port by path.

Several unit ids share the line; requests for other unit ids are ignored (they belong to other
slaves), as are requests to a rebooting device. Frames are decoded and built with pymodbus's RTU
framer and request PDUs; link faults (drop, latency, garbage, CRC errors, exception responses) are
applied to every answer.
"""
from __future__ import annotations

import asyncio
import logging
import os
import tty
from pathlib import Path

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse

from drivers.loop_thread import LoopThread
from drivers.modbus.link_faults import LinkFaults
from drivers.modbus.server import DeviceSilent, RegisterDevice

log = logging.getLogger(__name__)


class PtyLine:
    """A pty pair standing in for an RS485 cable: the server end (master fd) and the device path a
    client opens (the slave, reachable at `link_path` through a symlink when given, like socat's
    `link=`). open() plugs it in, close() pulls it: the client's port disappears."""

    def __init__(self, link_path: str | None = None) -> None:
        self.link_path = link_path
        self.master_fd: int | None = None
        self._slave_fd: int | None = None
        self.slave_name = ""

    @property
    def device_path(self) -> str:
        return self.link_path or self.slave_name

    def open(self) -> int:
        master, slave = os.openpty()
        tty.setraw(slave)          # no echo, no line editing until the client configures the port
        self.master_fd, self._slave_fd, self.slave_name = master, slave, os.ttyname(slave)
        os.set_blocking(master, False)
        if self.link_path:
            tmp = Path(f"{self.link_path}.{os.getpid()}.tmp")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self.slave_name)
            tmp.replace(self.link_path)
        return master

    def close(self) -> None:
        if self.link_path and Path(self.link_path).is_symlink():
            Path(self.link_path).unlink(missing_ok=True)
        for fd in (self._slave_fd, self.master_fd):
            if fd is not None:
                os.close(fd)
        self.master_fd = self._slave_fd = None


class _Datastore:
    """The datastore interface pymodbus request PDUs call (`datastore_update`), over RegisterDevices."""

    def __init__(self, devices: dict[int, RegisterDevice]) -> None:
        self.devices = devices

    async def async_getValues(self, device_id: int, func_code: int, address: int, count: int = 1):
        return await self.devices[device_id].serve(func_code, address, count, None)

    async def async_setValues(self, device_id: int, func_code: int, address: int, values: list[int]):
        got = await self.devices[device_id].serve(func_code, address, len(values), list(values))
        return got if isinstance(got, ExcCodes) else None


class ModbusRtuServerThread(LoopThread):
    """Serve RegisterDevices as RTU slaves on one line until stop().

    `line`: a PtyLine (opened on start(), closed on stop(): stopping pulls the cable), an open file
    descriptor (not closed here), or a serial port path (opened with pyserial at baudrate/parity/stopbits).
    """

    def __init__(self, line: PtyLine | int | str, devices: list[RegisterDevice], name: str = "modbus-rtu-server",
                 faults: LinkFaults | None = None, baudrate: int = 9600, parity: str = "N", stopbits: int = 1) -> None:
        super().__init__(name)
        self.line = line
        self.devices = {d.unit_id: d for d in devices}
        self.faults = faults or LinkFaults()
        for d in devices:
            d.faults = self.faults
        self._serial_opts = {"baudrate": baudrate, "parity": parity, "stopbits": stopbits}
        self._serial = None
        self._fd: int | None = None
        self.frames_in = 0         # requests decoded (any unit id)
        self.frames_out = 0        # answers written (after faults)

    @property
    def device_path(self) -> str:
        """The path a client opens (PtyLine only)."""
        return self.line.device_path if isinstance(self.line, PtyLine) else str(self.line)

    def start(self, timeout: float = 5.0) -> None:
        """Open the line and start answering; returns once the line is open."""
        if isinstance(self.line, PtyLine):
            self._fd = self.line.open()
        elif isinstance(self.line, int):
            self._fd = self.line
        else:
            import serial   # pyserial: a real RS485 adapter
            self._serial = serial.Serial(self.line, timeout=0, **self._serial_opts)
            self._fd = self._serial.fileno()
        self._start_thread(f"serve {self.device_path}", timeout)

    async def _serve(self) -> None:
        framer = FramerRTU(DecodePDU(True))
        store = _Datastore(self.devices)
        buffer = bytearray()
        pending: asyncio.Queue[bytes] = asyncio.Queue()

        def readable() -> None:
            try:
                data = os.read(self._fd, 4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:       # EIO: no client has the line open
                data = b""
            if data:
                pending.put_nowait(data)

        self._loop.add_reader(self._fd, readable)
        self._ready.set()
        stop_wait = asyncio.ensure_future(self._stop.wait())
        try:
            while not self._stop.is_set():
                get = asyncio.ensure_future(pending.get())
                await asyncio.wait({get, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if not get.done():
                    get.cancel()
                    break
                buffer += get.result()
                while buffer:
                    used, pdu = framer.handleFrame(bytes(buffer), 0, 0)
                    del buffer[:used]
                    if pdu is None:
                        break
                    self.frames_in += 1
                    await self._answer(framer, store, pdu)
        finally:
            stop_wait.cancel()
            self._loop.remove_reader(self._fd)

    async def _answer(self, framer: FramerRTU, store: _Datastore, pdu) -> None:
        unit = pdu.dev_id
        if unit not in self.devices:
            return                              # another slave's request
        try:
            response = await pdu.datastore_update(store, unit)
        except DeviceSilent:
            return
        except (ValueError, TypeError, KeyError) as exc:   # a request this datastore cannot serve
            log.debug("%s: unit %d: %s", self.name, unit, exc)
            response = ExceptionResponse(pdu.function_code, ExcCodes.DEVICE_FAILURE)
        response.dev_id, response.transaction_id = unit, 0
        frame = self.faults.mangle(framer.buildFrame(response), rtu=True)
        if frame:
            try:
                os.write(self._fd, frame)
                self.frames_out += 1
            except OSError as exc:
                log.debug("%s: write failed: %s", self.name, exc)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop answering and close the line (a PtyLine disappears for the client)."""
        super().stop(timeout)
        if isinstance(self.line, PtyLine):
            self.line.close()
        elif self._serial is not None:
            self._serial.close()
            self._serial = None
        self._fd = None


