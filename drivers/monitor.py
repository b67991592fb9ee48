"""Raw-frame monitor and recorder of one link: the last frames in memory (for the diagnostics screen)
and, while recording, every frame appended to a capture file: one line per frame,
`<wall time> <tx|rx> <hex>` (Modbus, serial, BLE) or, for CAN, candump's log format
`(<wall time>) <channel> <ID>#<HEX>`. Called from the link's thread (or the BLE loop); thread-safe."""
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

    def frame(self, direction: str, data: bytes, can_id: int | None = None) -> None:
        t = self._wall()
        text = f"{can_id:03X}#{data.hex().upper()}" if can_id is not None else data.hex()
        self.frames.append((t, direction, text))
        if self._file is not None:
            line = f"({t:.6f}) {self.channel} {text}\n" if can_id is not None else f"{t:.6f} {direction} {text}\n"
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
