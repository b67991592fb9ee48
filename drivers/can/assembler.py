"""Assembles the group frames of one broadcast cycle into one rack vector (per-cell data).

A BMS sends groups 0, 1, ... G-1 in ascending order every cycle. A group index not above the
previous one starts a new cycle, so a vector is never stitched from two cycles: a cycle with a lost
frame is dropped (the next complete cycle is published). Owned by the driver thread.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from drivers.can.layout import CELLS_PER_FRAME, group_count


class CellVectorAssembler:
    """Feed `(group, values)` per frame; `add` returns the float32 vector when a cycle completes."""

    def __init__(self, cell_count: int) -> None:
        self.cell_count = cell_count
        self.groups = group_count(cell_count)
        self._slots = [np.nan] * (self.groups * CELLS_PER_FRAME)     # a list: cheap to fill per frame
        self._last = -1
        self._received = 0

    def reset(self) -> None:
        """Forget a partial cycle (after a reconnect)."""
        self._last = -1
        self._received = 0

    def add(self, group: int, values: Sequence[float]) -> np.ndarray | None:
        """Store one group; the whole vector (cell 1 first) once groups 0..G-1 of one cycle are in.
        Raises ValueError for a group past the rack's last cell."""
        if not 0 <= group < self.groups:
            raise ValueError(f"cell group {group} is outside this rack's {self.groups} groups "
                             f"({self.cell_count} cells)")
        if group <= self._last:
            self._received = 0
        if group != self._received:          # a frame of this cycle was lost (or we joined mid-cycle)
            self._received = -self.groups
        self._last = group
        start = group * CELLS_PER_FRAME
        self._slots[start:start + CELLS_PER_FRAME] = values
        self._received += 1
        if self._received == self.groups:
            self.reset()
            return np.array(self._slots[:self.cell_count], np.float32)
        return None
