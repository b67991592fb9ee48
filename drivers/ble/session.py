"""The request/response exchanges of each BLE BMS protocol over a connected BleTransport.

A Session runs on the BLE loop. `start()` subscribes to the pack's notify characteristic (and sends
the protocol's opening commands); `cycle()` performs one acquisition and returns the raw messages to
decode (a Daly 0x95/0x96 answer is its frames joined, in frame order). Notifications are reassembled
by a FrameAssembler; corrupt bytes go to `on_error` (LinkStats), frames nobody asked for (a late
answer to a timed-out request) are counted in `unexpected_frames` and dropped. A dropped connection
or an answer missing for `timeout_s` raises LinkError, so the driver reconnects.

* JBD: register 0x03 (basic info) then 0x04 (cell voltages), one response frame each.
* JK02: 0x97 (device info, answered by a type-0x03 frame) then 0x96 on start; the pack then streams
  300-byte cell-info frames (type 0x02) and a cycle takes the newest one received, re-sending 0x96
  once when the stream has stopped for `timeout_s`. `set_balancer` writes the balancer switch (the
  pack does not acknowledge a register write).
* Daly: 0x90, 0x91, 0x92, 0x93, 0x95 (ceil(cells / 3) frames), 0x96 (ceil(probes / 7) frames), 0x98,
  requested with the BLE host address 0x80.
"""
from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from drivers.base import LinkError
from drivers.ble.config import BleConfig
from drivers.ble.framing import FRAMINGS, FrameAssembler
from drivers.ble.gatt import DALY_BLE_HOST_ADDRESS, LAYOUTS
from drivers.ble.transport import BleTransport
from drivers.bms import daly, jbd, jk


@dataclass(frozen=True)
class Cycle:
    """One acquisition: raw messages to decode and the mean request -> answer time (or the age of a
    streamed frame)."""

    messages: list[bytes]
    latency_s: float
    frames: int


class Session(abc.ABC):
    """Protocol exchanges with one connected pack (construct and use on the BLE loop)."""

    def __init__(self, config: BleConfig, transport: BleTransport, timeout_s: float,
                 on_error: Callable[[str], None], on_raw: Callable[[str, bytes], None] = lambda d, b: None) -> None:
        self.config, self.transport, self.timeout_s = config, transport, timeout_s
        self.on_raw = on_raw                      # (direction, bytes) of every notification/write: raw monitor
        self.layout = LAYOUTS[config.protocol]
        self.assembler = FrameAssembler(FRAMINGS[config.protocol], on_error)
        self._frames: asyncio.Queue[tuple[bytes, float] | None] = asyncio.Queue()
        self.lost: str | None = None
        self.notifications = 0
        self.unexpected_frames = 0
        transport.on_disconnect(self._on_disconnect)

    @property
    def budget_s(self) -> float:
        """Longest a healthy cycle may take (the driver's outer timeout)."""
        return self.timeout_s * (self.exchanges + 1) + 1.0

    exchanges = 1

    async def start(self) -> None:
        await self.transport.start_notify(self.layout.notify, self._on_notify)

    @abc.abstractmethod
    async def cycle(self) -> Cycle: ...

    async def _write(self, data: bytes) -> None:
        self.on_raw("tx", data)
        await self.transport.write(self.layout.write, data)

    def _on_notify(self, payload: bytes) -> None:
        self.notifications += 1
        self.on_raw("rx", payload)
        now = asyncio.get_running_loop().time()
        for frame in self.assembler.feed(payload):
            self._frames.put_nowait((frame, now))

    def _on_disconnect(self, reason: str) -> None:
        self.lost = reason
        self._frames.put_nowait(None)

    def _check_connected(self) -> None:
        if self.lost is not None or not self.transport.is_connected:
            raise LinkError(f"{self.config.describe()}: {self.lost or 'not connected'}")

    def _drain(self) -> list[tuple[bytes, float]]:
        """Frames already received (a disconnect marker raises)."""
        out = []
        while not self._frames.empty():
            item = self._frames.get_nowait()
            if item is None:
                self._check_connected()
                continue
            out.append(item)
        return out

    async def _next(self, deadline: float, what: str) -> tuple[bytes, float]:
        loop = asyncio.get_running_loop()
        try:
            item = await asyncio.wait_for(self._frames.get(), max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise LinkError(f"{self.config.describe()}: no answer to {what} within {self.timeout_s:g} s",
                            timeout=True) from None
        if item is None:
            self._check_connected()
            return await self._next(deadline, what)
        return item

    async def _exchange(self, request: bytes, matches: Callable[[bytes], bool], count: int,
                        what: str) -> tuple[list[bytes], float]:
        """Write `request` and collect `count` matching frames; returns them and the round-trip time."""
        self._check_connected()
        self.unexpected_frames += len(self._drain())
        loop = asyncio.get_running_loop()
        sent = loop.time()
        await self._write(request)
        deadline = sent + self.timeout_s
        got: list[bytes] = []
        arrived = sent
        while len(got) < count:
            frame, arrived = await self._next(deadline, what)
            if matches(frame):
                got.append(frame)
            else:
                self.unexpected_frames += 1
        return got, arrived - sent


class JbdSession(Session):
    exchanges = 2

    async def cycle(self) -> Cycle:
        messages, rtt = [], 0.0
        for register in (jbd.REG_BASIC_INFO, jbd.REG_CELL_VOLTAGES):
            frames, seconds = await self._exchange(jbd.request(register), lambda f, r=register: f[1] == r, 1,
                                                   f"JBD register 0x{register:02X}")
            messages += frames
            rtt += seconds
        return Cycle(messages, rtt / self.exchanges, len(messages))


class DalySession(Session):
    def __init__(self, config, transport, timeout_s, on_error, on_raw=lambda d, b: None) -> None:
        super().__init__(config, transport, timeout_s, on_error, on_raw)
        cells, probes = config.rack.cell_count, config.temperature_sensors
        self.plan = ((daly.PACK_STATUS, 1), (daly.CELL_EXTREMES, 1), (daly.TEMPERATURE_EXTREMES, 1),
                     (daly.MOSFET_STATUS, 1), (daly.CELL_VOLTAGES, -(-cells // 3)),
                     (daly.TEMPERATURES, -(-probes // 7)), (daly.ALARMS, 1))
        self.exchanges = len(self.plan)

    async def cycle(self) -> Cycle:
        messages, rtt, frames = [], 0.0, 0
        for command, count in self.plan:
            got, seconds = await self._exchange(daly.request(command, DALY_BLE_HOST_ADDRESS),
                                                lambda f, c=command: f[2] == c, count, f"Daly command 0x{command:02X}")
            got.sort(key=lambda f: f[4])         # multi-frame answers: frame number order
            messages.append(b"".join(got))
            rtt += seconds
            frames += count
        return Cycle(messages, rtt / self.exchanges, frames)


class JkSession(Session):
    TYPE_DEVICE_INFO = 0x03
    exchanges = 2                   # a cycle may wait for the stream, then for the re-requested frame

    async def start(self) -> None:
        await super().start()
        await self._exchange(jk.request(jk.COMMAND_DEVICE_INFO), lambda f: f[4] == self.TYPE_DEVICE_INFO, 1,
                             "JK device info (0x97)")
        await self._write(jk.request(jk.COMMAND_CELL_INFO))

    async def cycle(self) -> Cycle:
        self._check_connected()
        newest = self._newest_cell_info(self._drain())
        if newest is None:
            newest = await self._await_cell_info()
        if newest is None:                      # the stream stopped: ask once more
            await self._write(jk.request(jk.COMMAND_CELL_INFO))
            newest = await self._await_cell_info()
        if newest is None:
            raise LinkError(f"{self.config.describe()}: no JK cell-info frame within 2 x {self.timeout_s:g} s",
                            timeout=True)
        frame, arrived = newest
        return Cycle([frame], asyncio.get_running_loop().time() - arrived, 1)

    async def _await_cell_info(self) -> tuple[bytes, float] | None:
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        while True:
            try:
                item = await self._next(deadline, "JK cell info (0x96)")
            except LinkError as exc:
                if exc.timeout:
                    return None
                raise
            newest = self._newest_cell_info([item, *self._drain()])
            if newest is not None:
                return newest

    async def set_balancer(self, on: bool) -> None:
        """Write the balancer switch (register 0x1F)."""
        self._check_connected()
        await self._write(jk.balancer_switch(on))

    def _newest_cell_info(self, items: list[tuple[bytes, float]]) -> tuple[bytes, float] | None:
        newest = None
        for frame, arrived in items:
            if frame[4] == jk.TYPE_CELL_INFO:
                newest = (frame, arrived)
            else:
                self.unexpected_frames += 1
        return newest


SESSIONS: dict[str, type[Session]] = {"jbd": JbdSession, "jk": JkSession, "daly": DalySession}
