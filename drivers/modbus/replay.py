"""Replay a Modbus TCP capture (recording.py) as a peer: a server on loopback that answers each request
with the response recorded for the same request (unit id + PDU), in recorded order, repeating the last
one when the capture runs out. A request recorded without an answer is left unanswered (a timeout).
Raw MBAP framing on asyncio streams; no register model is involved, so it replays any device.
"""
from __future__ import annotations

import asyncio
import collections
import struct
from pathlib import Path

from app.core.errors import UserError
from drivers.loop_thread import LoopThread
from drivers.modbus.recording import read_capture


def answers_from_capture(path: str | Path) -> dict[bytes, list[bytes | None]]:
    """Request key (unit id + PDU) -> recorded answers (unit id + PDU, or None for no answer)."""
    kind, frames = read_capture(path)
    if kind != "modbus-tcp":
        raise UserError(f"{path}: a {kind} capture; the replay server replays modbus-tcp captures")
    answers: dict[bytes, list[bytes | None]] = collections.defaultdict(list)
    for i, f in enumerate(frames):
        if f.direction != "tx":
            continue
        nxt = frames[i + 1] if i + 1 < len(frames) else None
        ok = nxt is not None and nxt.direction == "rx" and len(nxt.data) > 7 and nxt.data[:2] == f.data[:2]
        answers[f.data[6:]].append(nxt.data[6:] if ok else None)
    return dict(answers)


class ModbusReplayServerThread(LoopThread):
    """Serve a capture on host:port until stop(); start() returns once the port listens."""

    def __init__(self, capture: str | Path, host: str, port: int, name: str = "modbus-replay") -> None:
        super().__init__(name)
        self.host, self.port = host, port
        self._answers = {k: collections.deque(v) for k, v in answers_from_capture(capture).items()}
        self.unmatched = 0          # requests the capture has no answer for

    def _answer(self, key: bytes) -> bytes | None:
        queue = self._answers.get(key)
        if not queue:
            self.unmatched += 1
            return None
        return queue.popleft() if len(queue) > 1 else queue[0]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(6)
                tid, pid, length = struct.unpack(">HHH", header)
                body = await reader.readexactly(length)
                answer = self._answer(body)
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

