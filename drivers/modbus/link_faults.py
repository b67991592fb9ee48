"""Link-level fault settings that the simulator's Modbus servers apply to their answers (training mode,
tests). Plain state: any thread sets it (app/sim/faults.py), the server's event-loop thread reads it."""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field


@dataclass
class LinkFaults:
    """What a server does wrong on one link. All off by default; `clear()` restores a healthy link.

    drop:           answer nothing (the TCP server also closes open connections when it is set)
    latency_s:      delay every answer
    garbage:        send random bytes of the answer's length instead of the answer
    crc_errors:     (RTU) send the answer with a corrupted CRC
    exception_code: answer every request with this Modbus exception code (e.g. 4 device failure)
    """
    drop: bool = False
    latency_s: float = 0.0
    garbage: bool = False
    crc_errors: bool = False
    exception_code: int = 0
    seed: int = 1
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def clear(self) -> None:
        self.drop, self.latency_s, self.garbage, self.crc_errors, self.exception_code = False, 0.0, False, False, 0

    @property
    def active(self) -> bool:
        return bool(self.drop or self.latency_s or self.garbage or self.crc_errors or self.exception_code)

    def mangle(self, frame: bytes, rtu: bool) -> bytes:
        """The bytes to put on the wire instead of `frame` (b"" = stay silent)."""
        if self.drop:
            return b""
        if self.garbage:
            with self._lock:
                return bytes(self._rng.getrandbits(8) for _ in frame)
        if self.crc_errors and rtu and len(frame) >= 4:
            return frame[:-2] + bytes([frame[-2] ^ 0xFF, frame[-1] ^ 0x5A])
        return frame
