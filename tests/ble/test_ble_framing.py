"""FrameAssembler: notifications -> whole frames by header + length + checksum, resynchronising on
garbage, corrupt frames reported and dropped, never raised."""
from __future__ import annotations

from drivers.ble.framing import DALY, JBD, JK, FrameAssembler
from drivers.bms import daly, jbd, jk

BASIC = jbd.encode_basic_info(pack_voltage_v=26.5, current_a=-3.2, remaining_capacity_ah=50, design_capacity_ah=100,
                              cycle_count=3, soc_pct=50, charge_fet_on=True, discharge_fet_on=True, cell_count=8,
                              temperatures_c=[25.0, 26.0])
CELLS = jbd.encode_cell_voltages([3.3] * 8)


def _collect(assembler, data: bytes, size: int) -> list[bytes]:
    return [f for i in range(0, len(data), size) for f in assembler.feed(data[i : i + size])]


def test_jbd_frames_split_in_20_byte_notifications_are_reassembled():
    errors = []
    a = FrameAssembler(JBD, errors.append)
    assert _collect(a, BASIC + CELLS, 20) == [BASIC, CELLS]
    assert errors == []


def test_jk_frame_split_at_every_size_is_reassembled():
    frame = jk.encode_cell_info("jk02_24s", cell_voltages_v=[3.3] * 8, pack_voltage_v=26.4, current_a=1.0,
                                temperatures_c=[25.0, 26.0], mosfet_temperature_c=27.0, soc_pct=50, soh_pct=100,
                                remaining_capacity_ah=50, full_capacity_ah=100, cycle_count=1, charge_fet_on=True,
                                discharge_fet_on=True, balancing_active=False)
    for size in (1, 3, 20, 128, 244, 300):
        a = FrameAssembler(JK)
        assert _collect(a, frame + frame, size) == [frame, frame], size


def test_garbage_between_frames_is_dropped_and_reported_once_per_run():
    errors = []
    a = FrameAssembler(DALY, errors.append)
    status = daly.encode_pack_status(pack_voltage_v=52.1, current_a=-4.0, soc_pct=61.5)
    assert a.feed(b"\x01\x02garbage" + status + b"\xff\xfe") == [status]
    assert a.feed(status) == [status]
    assert len(errors) == 2 and a.discarded_bytes == 11


def test_a_corrupt_frame_is_dropped_and_the_next_good_one_still_arrives():
    errors = []
    a = FrameAssembler(JBD, errors.append)
    bad = bytearray(BASIC)
    bad[10] ^= 0xFF
    assert _collect(a, bytes(bad) + CELLS, 20) == [CELLS]
    assert len(errors) == 1 and "corrupt" in errors[0]


def test_a_false_header_claiming_a_long_frame_does_not_stall_the_link():
    errors = []
    a = FrameAssembler(JBD, errors.append)
    assert a.feed(b"\xdd\x03\x00\xf0" + CELLS) == [CELLS]      # 0xF0 bytes announced, a valid frame follows
    assert len(errors) == 1


def test_random_bytes_never_raise():
    import random
    rng = random.Random(3)
    for framing in (JBD, JK, DALY):
        a = FrameAssembler(framing)
        for _ in range(300):
            a.feed(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40))))
