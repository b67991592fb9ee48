"""Modbus traffic captures: one line per frame, `<unix time> <tx|rx> <unit> <hex>`, `#` comments.

Written by the driver's pymodbus trace hooks (client side: tx = request, rx = what came back, including
corrupt bytes); read back by the replay server (replay.py) so a field capture becomes a regression test.
The reader also takes the raw-frame recorder's lines, `<unix time> <tx|rx> <hex>` (drivers/monitor.py).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from app.core.errors import UserError

HEADER = "# esms modbus capture v1"


@dataclass(frozen=True)
class CapturedFrame:
    time: float
    direction: str     # "tx" (client request) or "rx" (bytes received)
    unit: int
    data: bytes


def frame_unit(kind: str, data: bytes) -> int:
    """Unit id of a raw frame: byte 6 of a Modbus TCP (MBAP) frame, byte 0 of an RTU frame; -1 if short."""
    pos = 6 if kind == "modbus-tcp" else 0
    return data[pos] if len(data) > pos else -1


class TrafficRecorder:
    """Appends frames of one link to a capture file; thread-safe, flushed per frame."""

    def __init__(self, path: str | Path, kind: str, address: str, wall: Callable[[], float] = time.time) -> None:
        self.path, self.kind, self._wall = Path(path), kind, wall
        self._lock = threading.Lock()
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = self.path.open("a", encoding="ascii")
        if new:
            self._file.write(f"{HEADER} kind={kind} address={address}\n")

    def frame(self, direction: str, data: bytes) -> None:
        line = f"{self._wall():.6f} {direction} {frame_unit(self.kind, data)} {data.hex()}\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read_capture(path: str | Path, kind: str = "modbus-tcp") -> tuple[str, list[CapturedFrame]]:
    """(link kind, frames) of a capture file; `kind` unless its header names one. Raises UserError
    naming the file and line."""
    path = Path(path)
    frames = []
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the capture: {exc}") from None
    for no, line in enumerate(lines, 1):
        line = line.strip()
        if line.startswith(HEADER):
            kind = dict(p.split("=", 1) for p in line[len(HEADER):].split() if "=" in p).get("kind", kind)
            continue
        if not line or line.startswith("#"):
            continue
        try:
            fields = line.split()
            if len(fields) not in (3, 4):
                raise ValueError(f"{len(fields)} fields")
            t, direction, hexdata = fields[0], fields[1], fields[-1]
            if direction not in ("tx", "rx"):
                raise ValueError(f"direction '{direction}' is not tx or rx")
            data = bytes.fromhex(hexdata)
            unit = int(fields[2]) if len(fields) == 4 else frame_unit(kind, data)
            frames.append(CapturedFrame(float(t), direction, unit, data))
        except ValueError as exc:
            raise UserError(f"{path}:{no}: not a capture line (time tx|rx [unit] hex): {exc}") from None
    return kind, frames
