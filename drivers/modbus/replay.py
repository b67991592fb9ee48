"""Replay a Modbus TCP capture (recording.py) as a peer: a server on loopback that answers each request
with the response recorded for the same request (unit id + PDU), in recorded order, repeating the last
one when the capture runs out. A request recorded without an answer is left unanswered (a timeout).
Raw MBAP framing on asyncio streams; no register model is involved, so it replays any device.
"""
from __future__ import annotations

import asyncio
import collections
import struct
import threading
from pathlib import Path

from app.core.errors import UserError
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


class ModbusReplayServerThread:
    """Serve a capture on host:port until stop(); start() returns once the port listens."""

    def __init__(self, capture: str | Path, host: str, port: int, name: str = "modbus-replay") -> None:
        self.host, self.port, self.name = host, port, name
        self._answers = {k: collections.deque(v) for k, v in answers_from_capture(capture).items()}
        self.unmatched = 0          # requests the capture has no answer for
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

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
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error:
            self.stop()
            raise OSError(f"{self.name}: cannot listen on {self.host}:{self.port}: {self._error or 'timeout'}")

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:   # reported to start(); the thread ends
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._client, self.host, self.port)
        self._ready.set()
        async with server:
            await self._stop.wait()
        server.close()

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop and self._stop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)
        self._thread = None
