"""Reassembly of BLE notifications into whole BMS frames (pure, no I/O).

A BLE BMS streams its frames in notification-sized pieces; pieces of one frame may arrive in several
notifications and one notification may end one frame and start the next. `FrameAssembler.feed` takes
the bytes of each notification and returns every frame completed by it. A frame is recognised by
its header, its length (from the header or fixed) and its checksum; bytes that are not part of a
valid frame are dropped (resynchronising at the next header) and reported to `on_error`, never raised.
When an incomplete frame blocks the buffer but a later header starts a complete valid frame, the
blocking bytes were garbage: they are dropped so one bad byte cannot stall the link.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Framing:
    """How one protocol delimits frames: `length(buf)` is the whole frame's size once enough of the
    header is in `buf` (None before), `valid(frame)` checks end byte and checksum."""

    name: str
    header: bytes
    header_size: int                  # bytes needed before length() can answer
    length: Callable[[bytes], int]
    valid: Callable[[bytes], bool]
    max_length: int


def _jbd_valid(frame: bytes) -> bool:
    body = frame[2:-3]
    return frame[-1] == 0x77 and int.from_bytes(frame[-3:-1], "big") == (0x10000 - sum(body)) & 0xFFFF


def _sum8_valid(frame: bytes) -> bool:
    return frame[-1] == sum(frame[:-1]) & 0xFF


# JBD: DD cmd status len data[len] ckH ckL 77 (requests DD A5 reg 00 ck 77 share the layout)
JBD = Framing("jbd", b"\xdd", 4, lambda b: 7 + b[3], _jbd_valid, 7 + 255)
# JK02: 55 AA EB 90 type counter ... [299] = sum([0..298]); every frame type is 300 bytes
JK = Framing("jk", bytes.fromhex("55aaeb90"), 4, lambda b: 300, _sum8_valid, 300)
# JK02 commands: AA 55 90 EB cmd len value(4) 00*9 ck (20 bytes)
JK_COMMAND = Framing("jk-command", bytes.fromhex("aa5590eb"), 4, lambda b: 20, _sum8_valid, 20)
# Daly: A5 addr cmd 08 data[8] ck
DALY = Framing("daly", b"\xa5", 4, lambda b: 13 if b[3] == 0x08 else 0, _sum8_valid, 13)

FRAMINGS = {"jbd": JBD, "jk": JK, "daly": DALY}


class FrameAssembler:
    """Turns a stream of notification payloads into whole frames of one `Framing`.

    `on_error(reason)` is called once per run of discarded bytes (garbage or a corrupt frame)."""

    def __init__(self, framing: Framing, on_error: Callable[[str], None] = lambda reason: None) -> None:
        self.framing = framing
        self.on_error = on_error
        self._buf = bytearray()
        self.discarded_bytes = 0

    def feed(self, data: bytes) -> list[bytes]:
        """Add one notification's bytes; returns the frames it completed, oldest first."""
        f = self.framing
        buf = self._buf
        buf += data
        out: list[bytes] = []
        while buf:
            start = buf.find(f.header)
            if start < 0:
                keep = self._header_prefix_len()
                self._discard(len(buf) - keep, "bytes outside any frame")
                break
            if start:
                self._discard(start, "bytes outside any frame")
            if len(buf) < f.header_size:
                break
            size = f.length(bytes(buf[: f.header_size]))
            if size < f.header_size + 1 or size > f.max_length:
                self._discard(self._next_start(), f"impossible {f.name} frame length {size}")
                continue
            if len(buf) >= size:
                frame = bytes(buf[:size])
                if f.valid(frame):
                    del buf[:size]
                    out.append(frame)
                else:
                    self._discard(self._next_start(), f"corrupt {f.name} frame (checksum or end byte) "
                                                      f"starting {frame[:8].hex()}")
                continue
            later = self._later_valid_start()
            if later is None:
                break
            self._discard(later, f"incomplete {f.name} frame followed by a valid one")
        return out

    def _next_start(self) -> int:
        """Where the next candidate frame starts after the one at position 0 (all but a possible
        split header when there is none)."""
        pos = self._buf.find(self.framing.header, 1)
        return pos if pos > 0 else max(1, len(self._buf) - self._header_prefix_len())

    def _header_prefix_len(self) -> int:
        """How many trailing bytes of the buffer could be the start of a split header."""
        header, buf = self.framing.header, self._buf
        for n in range(min(len(header) - 1, len(buf)), 0, -1):
            if buf[-n:] == header[:n]:
                return n
        return 0

    def _later_valid_start(self) -> int | None:
        f, buf = self.framing, self._buf
        pos = buf.find(f.header, 1)
        while pos > 0 and len(buf) - pos >= f.header_size:
            size = f.length(bytes(buf[pos : pos + f.header_size]))
            if f.header_size < size <= len(buf) - pos and f.valid(bytes(buf[pos : pos + size])):
                return pos
            pos = buf.find(f.header, pos + 1)
        return None

    def _discard(self, count: int, reason: str) -> None:
        if count <= 0:
            return
        del self._buf[:count]
        self.discarded_bytes += count
        self.on_error(f"{reason} ({count} byte{'s' if count > 1 else ''} dropped)")
