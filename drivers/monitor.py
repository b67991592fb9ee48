"""Raw-frame monitor and recorder of one link: the last frames in memory (for the diagnostics screen)
and, while recording, every frame appended to a capture file: one line per frame,
`<wall time> <tx|rx> <hex>` (Modbus, serial, BLE; read back by drivers/capture.py) or, for CAN,
candump's log format `(<wall time>) <channel> <ID>#<DATA>` (drivers/can/candump.py). The simulator
replays either as the link's peer (app/sim/replay.py). Called from the link's thread (or the BLE
loop); thread-safe."""
from __future__ import annotations

import collections
import threading
from pathlib import Path
from typing import Callable, TextIO

MONITOR_FRAMES = 200


class FrameMonitor:
    def __init__(self, channel: str, wall: Callable[[], float]) -> None:
        self.channel, self._wall = channel, wall
        self.frames: collections.deque[tuple[float, str, str]] = collections.deque(maxlen=MONITOR_FRAMES)
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self.path: Path | None = None

    def frame(self, direction: str, data: bytes) -> None:
        """One frame written (tx) or received (rx)."""
        t = self._wall()
        text = data.hex()
        self._add(t, direction, text, f"{t:.6f} {direction} {text}\n")

    def can_frame(self, text: str) -> None:
        """One received CAN frame as candump's `ID#DATA` (drivers.can.candump.frame_text)."""
        t = self._wall()
        self._add(t, "rx", text, f"({t:.6f}) {self.channel} {text}\n")

    def _add(self, t: float, direction: str, text: str, line: str) -> None:
        self.frames.append((t, direction, text))
        if self._file is not None:
            with self._lock:
                if self._file is not None:
                    self._file.write(line)

    def start_recording(self, path: str | Path) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
            self.path = Path(path)
            self._file = self.path.open("a", encoding="ascii", buffering=1)

    def stop_recording(self) -> Path | None:
        with self._lock:
            path, self.path = self.path, None
            if self._file is not None:
                self._file.close()
                self._file = None
        return path

    @property
    def recording(self) -> bool:
        return self._file is not None
