"""Replay a Modbus capture (recording.py) as a peer: a server that answers each request with the
response recorded for the same request (unit id + PDU), in recorded order, repeating the last one when
the capture runs out. A request recorded without an answer is left unanswered (a timeout).

`ModbusReplayServerThread` serves a modbus-tcp capture on loopback (raw MBAP framing on asyncio
streams); `ModbusRtuReplayThread` a modbus-rtu capture on a serial line (a pty pair, rtu_server.py),
writing the recorded bytes back verbatim (corrupt ones included). No register model is involved, so
either replays any device.
"""
from __future__ import annotations

import asyncio
import collections
import os
import struct
from pathlib import Path

from app.core.errors import UserError
from drivers.loop_thread import LoopThread
from drivers.modbus.recording import read_capture
from drivers.modbus.rtu_server import ModbusRtuServerThread, PtyLine


def answers_from_capture(path: str | Path, kind: str = "modbus-tcp") -> dict[bytes, list[bytes | None]]:
    """Request key (unit id + PDU) -> recorded answers (None for no answer): for modbus-tcp the answer's
    unit id + PDU, for modbus-rtu the bytes received."""
    capture_kind, frames = read_capture(path, kind)
    if capture_kind != kind:
        raise UserError(f"{path}: a {capture_kind} capture; a {kind} link replays {kind} captures")
    answers: dict[bytes, list[bytes | None]] = collections.defaultdict(list)
    for i, f in enumerate(frames):
        if f.direction != "tx":
            continue
        nxt = frames[i + 1] if i + 1 < len(frames) else None
        ok = nxt is not None and nxt.direction == "rx"
        if kind == "modbus-tcp":
            ok = ok and len(nxt.data) > 7 and nxt.data[:2] == f.data[:2]
            answers[f.data[6:]].append(nxt.data[6:] if ok else None)
        else:
            answers[f.data[:-2]].append(nxt.data if ok else None)
    return dict(answers)


class _Answers:
    """The recorded answers of each request, handed out in order (the last one repeats)."""

    def __init__(self, answers: dict[bytes, list[bytes | None]]) -> None:
        self._queues = {k: collections.deque(v) for k, v in answers.items()}
        self.unmatched = 0          # requests the capture has no answer for

    def next(self, key: bytes) -> bytes | None:
        queue = self._queues.get(key)
        if not queue:
            self.unmatched += 1
            return None
        return queue.popleft() if len(queue) > 1 else queue[0]


class ModbusReplayServerThread(LoopThread):
    """Serve a modbus-tcp capture on host:port until stop(); start() returns once the port listens."""

    def __init__(self, capture: str | Path, host: str, port: int, name: str = "modbus-replay") -> None:
        super().__init__(name)
        self.host, self.port = host, port
        self._answers = _Answers(answers_from_capture(capture))

    @property
    def unmatched(self) -> int:
        return self._answers.unmatched

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(6)
                tid, pid, length = struct.unpack(">HHH", header)
                body = await reader.readexactly(length)
                answer = self._answers.next(body)
                if answer is not None:
                    writer.write(struct.pack(">HHH", tid, pid, len(answer)) + answer)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def start(self, timeout: float = 5.0) -> None:
        self._start_thread(f"listen on {self.host}:{self.port}", timeout)

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._client, self.host, self.port)
        self._ready.set()
        async with server:
            await self._stop.wait()
        server.close()


class ModbusRtuReplayThread(ModbusRtuServerThread):
    """Serve a modbus-rtu capture on `line` until stop(); requests are framed like the RTU server's."""

    def __init__(self, line: PtyLine | int | str, capture: str | Path, name: str = "modbus-rtu-replay") -> None:
        super().__init__(line, [], name)
        self._answers = _Answers(answers_from_capture(capture, "modbus-rtu"))

    @property
    def unmatched(self) -> int:
        return self._answers.unmatched

    async def _answer(self, framer, store, pdu) -> None:
        answer = self._answers.next(framer.buildFrame(pdu)[:-2])
        if answer is not None:
            try:
                os.write(self._fd, answer)
                self.frames_out += 1
            except OSError:
                pass        # the client closed the line
