"""Quality and Sample: every value travels with its timestamps and quality (Taurus habit)."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np


class Quality(enum.Enum):
    """OPC-style quality of a sample. Anything but GOOD/MANUAL/SIMULATED is unusable for control."""

    GOOD = "GOOD"
    STALE = "STALE"
    BAD = "BAD"
    COMM_LOST = "COMM_LOST"
    MANUAL = "MANUAL"
    SIMULATED = "SIMULATED"

    @property
    def usable(self) -> bool:
        return self in (Quality.GOOD, Quality.MANUAL, Quality.SIMULATED)


@dataclass(frozen=True, slots=True)
class Sample:
    """One published value. Immutable: vector values are read-only numpy arrays.

    value: float/int/bool/str, or a 1-D float32 array for vector points (per-cell data).
    source_ts: wall time (s since epoch) at which the source measured it.
    recv_mono: clock.monotonic() at reception; recv_wall: clock.time() at reception.
    """

    value: Any
    source_ts: float
    recv_mono: float
    recv_wall: float
    quality: Quality = Quality.GOOD

    def with_quality(self, quality: Quality, recv_mono: float, recv_wall: float) -> "Sample":
        """The same value re-published with another quality (e.g. COMM_LOST), new receive times."""
        return Sample(self.value, self.source_ts, recv_mono, recv_wall, quality)

    @property
    def is_vector(self) -> bool:
        return isinstance(self.value, np.ndarray)


def vector(values: Any) -> np.ndarray:
    """A frozen float32 copy suitable as a vector point value (safe to share across threads)."""
    arr = np.array(values, dtype=np.float32, copy=True).reshape(-1)
    arr.flags.writeable = False
    return arr
