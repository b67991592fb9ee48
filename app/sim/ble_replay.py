"""A raw-frame capture of a `ble` link (drivers/capture.py: tx = what the central wrote, rx = the
notifications it received) replayed as the pack, for JBD, JK02 and Daly alike.

Each write is answered with the notifications recorded after the same bytes were written, in recorded
order (repeating the last answer once the capture runs out), with the recorded gaps from the request
divided by `speed`: a JBD or Daly reply comes as it came, and the cell-info stream a JK pack sends
after one 0x96 command plays out with its recorded timing. A newer write on a connection ends the
answer still playing there; a write the capture has no answer for is counted in `unmatched` and left
unanswered (the central times out). Notifications larger than this connection's MTU are split.
"""
from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.core.errors import UserError
from app.core.site import Link, Rack
from app.sim.ble_peripheral import BlePeripheralLink, GattPeripheral, served_config
from drivers.ble.config import BleConfig
from drivers.capture import Answer, answers_by_request, read_frames


class BleReplayPeripheral(GattPeripheral):
    """The pack of a capture (all methods on the BLE loop)."""

    def __init__(self, config: BleConfig, answers: dict[bytes, list[Answer]], speed: float = 1.0) -> None:
        super().__init__(config)
        self.speed = speed
        self.unmatched = 0
        self._answers = {request: collections.deque(recorded) for request, recorded in answers.items()}

    def _on_write(self, connection: Any, value: bytes) -> None:
        queue = self._answers.get(bytes(value))
        if not queue:
            self.unmatched += 1
            return
        answer = queue.popleft() if len(queue) > 1 else queue[0]
        if not self.muted:
            self._end_stream(connection)
            self._streams[connection.handle] = self._spawn(self._play(connection, answer))

    async def _play(self, connection: Any, answer: Answer) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for delay, payload in answer:
            await asyncio.sleep(max(0.0, start + delay / self.speed - loop.time()))
            await self._send_mtu(connection, payload)


def ble_replay_link(link: Link, racks: Sequence[Rack], capture: str | Path, speed: float = 1.0) -> BlePeripheralLink:
    """The simulator's end of `link` answering from `capture`; UserError for a capture without requests."""
    config = served_config(link, racks)
    answers = answers_by_request(read_frames(capture))
    if not answers:
        raise UserError(f"{capture}: no request (tx line) to answer: not a capture of a ble link")
    return BlePeripheralLink(link, BleReplayPeripheral(config, answers, speed), f"replay-{link.name}")
