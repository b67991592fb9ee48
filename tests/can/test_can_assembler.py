"""A rack vector is published only from the frames of one complete broadcast cycle."""
from __future__ import annotations

import numpy as np
import pytest

from drivers.can.assembler import CellVectorAssembler


def _cycle(asm, groups, base=0.0):
    out = None
    for g in groups:
        out = asm.add(g, [base + 4 * g + k for k in range(4)])
    return out


def test_a_complete_cycle_gives_the_vector_trimmed_to_the_cell_count():
    asm = CellVectorAssembler(10)
    assert asm.groups == 3
    vec = _cycle(asm, [0, 1, 2])
    assert vec.dtype == np.float32 and vec.tolist() == list(range(10))


def test_nothing_before_the_last_group_and_a_new_vector_every_cycle():
    asm = CellVectorAssembler(8)
    assert asm.add(0, [1, 2, 3, 4]) is None
    assert _cycle(asm, [1]) is not None
    assert _cycle(asm, [0, 1], base=100).tolist() == [100 + i for i in range(8)]


def test_a_lost_frame_drops_the_cycle_instead_of_mixing_two():
    asm = CellVectorAssembler(12)
    assert _cycle(asm, [0, 2]) is None          # group 1 lost
    assert _cycle(asm, [0, 1, 2], base=50).tolist() == [50 + i for i in range(12)]


def test_joining_mid_cycle_waits_for_the_next_cycle():
    asm = CellVectorAssembler(12)
    assert _cycle(asm, [1, 2]) is None
    assert _cycle(asm, [0, 1, 2]) is not None


def test_a_group_past_the_rack_is_an_error():
    with pytest.raises(ValueError, match="group 3"):
        CellVectorAssembler(12).add(3, [0, 0, 0, 0])


def test_single_group_rack_completes_on_every_frame():
    asm = CellVectorAssembler(3)
    assert asm.add(0, [1, 2, 3, float("nan")]).tolist() == [1, 2, 3]
    assert asm.add(0, [4, 5, 6, float("nan")]).tolist() == [4, 5, 6]
