"""A candump log (drivers/can/candump.py) replayed as the peer of a `can` link: its data frames go on
the link's bus (app/sim/can_peer.py: virtual, or socketcand for other processes) with the recorded
gaps between them divided by `speed`, once (then the bus stays silent, as the capture did) or in a
loop. Frames the capturing node sent itself (flagged T), remote and error frames are not replayed
(a BMS sends none of them); a log of several interfaces replays the one named like the link.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import can

from app.core.errors import UserError
from app.core.site import Link
from app.sim.can_peer import CanPeerLink
from drivers.can.candump import LoggedFrame, read_log


def replay_frames(frames: list[LoggedFrame], channel: str, path: str | Path) -> list[LoggedFrame]:
    """The frames of a log that a replay sends; UserError when none is left."""
    data = [f for f in frames if not (f.sent or f.remote or f.error)]
    channels = sorted({f.channel for f in data})
    if len(channels) > 1:
        data = [f for f in data if f.channel == channel]
    if not data:
        on = f" on interface {channel!r} (the log has {', '.join(channels)})" if len(channels) > 1 else ""
        raise UserError(f"{path}: no CAN data frame to replay{on}")
    return data


class CanReplayLink(CanPeerLink):
    """Serve a candump log on `link`; `sent` counts frames put on the bus, `finished` is set after
    the last one (never while looping)."""

    def __init__(self, link: Link, capture: str | Path, speed: float = 1.0, loop: bool = False) -> None:
        super().__init__(link, f"replay-{link.name}")
        self.frames = replay_frames(read_log(capture), link.address, capture)
        self.speed, self.loop = speed, loop
        self.sent = 0
        self.finished = threading.Event()

    def _send(self, bus: can.BusABC) -> None:
        self.finished.clear()
        t0 = self.frames[0].time
        span = max(f.time for f in self.frames) - t0
        # a loop starts again one mean frame gap after the last frame (1 s for a capture of one instant)
        period = span * len(self.frames) / (len(self.frames) - 1) if span > 0 else 1.0
        start = time.monotonic()
        while True:
            for f in self.frames:
                due = start + (f.time - t0) / self.speed
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
                bus.send(can.Message(arbitration_id=f.can_id, is_extended_id=f.extended, data=f.data))
                self.sent += 1
            if not self.loop:
                break
            start += period / self.speed
        self.finished.set()
        self._stop.wait()
