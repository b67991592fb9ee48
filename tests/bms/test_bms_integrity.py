"""Corrupt frames are rejected with a DecodeError that names the reason."""

import pytest

from app.core.errors import UserError
from drivers.bms import DecodeError, decode, jbd, jk

from .fixture_data import context, load


def _first(protocol, predicate=lambda e: True):
    entry = next(e for e in load(protocol) if predicate(e))
    return bytearray.fromhex(entry["hex"]), context(entry)


def _rejects(protocol, raw, reason, **kwargs):
    with pytest.raises(DecodeError, match=reason):
        decode(protocol, bytes(raw), **kwargs)


def test_decode_error_is_a_user_error():
    assert issubclass(DecodeError, UserError)


@pytest.mark.parametrize("protocol", ["jbd", "jk", "daly"])
def test_checksum_corruption_is_rejected(protocol):
    raw, ctx = _first(protocol)
    position = {"jbd": -2, "jk": -1, "daly": 12}[protocol]
    raw[position] ^= 0x01
    _rejects(protocol, raw, "checksum", **ctx)


@pytest.mark.parametrize("protocol", ["jbd", "jk", "daly"])
def test_payload_corruption_is_caught_by_the_checksum(protocol):
    raw, ctx = _first(protocol)
    raw[6] ^= 0x40
    _rejects(protocol, raw, "checksum", **ctx)


@pytest.mark.parametrize("protocol", ["jbd", "jk", "daly"])
def test_header_corruption_is_rejected(protocol):
    raw, ctx = _first(protocol)
    raw[0] ^= 0xFF
    _rejects(protocol, raw, "header", **ctx)


@pytest.mark.parametrize("protocol", ["jbd", "jk", "daly", "pylon-can"])
@pytest.mark.parametrize("cut", ["truncated", "extended"])
def test_length_corruption_is_rejected(protocol, cut):
    raw, ctx = _first(protocol)
    if cut == "truncated":
        raw = raw[:5] if protocol == "pylon-can" else raw[:-3] + raw[-1:]
    else:
        raw = raw[:-1] + bytes(9) + raw[-1:]
    _rejects(protocol, raw, "length", **ctx)


def test_jbd_end_byte_corruption_is_rejected():
    raw, _ = _first("jbd")
    raw[-1] = 0x78
    _rejects("jbd", raw, "end byte")


def test_jbd_length_byte_disagreeing_with_frame_is_rejected():
    raw, _ = _first("jbd")
    raw[3] += 1
    _rejects("jbd", raw, "length")


def test_jbd_error_status_is_rejected():
    frame = bytes([0xDD, 0x04, 0x80, 0x00]) + (0x10000 - 0x80).to_bytes(2, "big") + b"\x77"  # status 0x80, no data
    _rejects("jbd", frame, "error status")


def test_jbd_unsupported_register_is_rejected():
    _rejects("jbd", bytes([0xDD, 0x05, 0x00, 0x00, 0x00, 0x00, 0x77]), "register 0x05")


def test_jbd_basic_info_shorter_than_its_ntc_block_is_rejected():
    raw, _ = _first("jbd", lambda e: e["hex"].startswith("dd03"))
    info = decode("jbd", bytes(raw))
    short = jbd.encode_basic_info(**{**info, "temperatures_c": []})
    body = bytearray(short[2:-3])
    body[2 + 22] = 3  # status, length, data: the NTC count now claims three probes, carries none
    frame = b"\xdd\x03" + bytes(body) + ((0x10000 - sum(body)) & 0xFFFF).to_bytes(2, "big") + b"\x77"
    _rejects("jbd", frame, "NTC")


def test_jk_non_cell_info_frame_type_is_rejected():
    raw, ctx = _first("jk")
    raw[4] = 0x03
    raw[-1] = sum(raw[:-1]) & 0xFF
    _rejects("jk", raw, "frame type", **ctx)


def test_jk_needs_a_known_variant():
    raw, _ = _first("jk")
    _rejects("jk", raw, "needs a variant")
    _rejects("jk", raw, "unknown variant", variant="jk04")


def test_daly_multi_frame_input_must_be_whole_frames_all_valid():
    raw, _ = _first("daly", lambda e: len(e["hex"]) > 26 and e["hex"][4:6] == "95")
    _rejects("daly", raw[:-5], "length")
    raw[13 * 2 + 12] ^= 0x01  # third frame's checksum
    _rejects("daly", raw, "checksum .* in frame 3")


def test_daly_length_byte_other_than_8_is_rejected():
    raw, _ = _first("daly")
    raw[3] = 0x07
    raw[12] = sum(raw[:12]) & 0xFF
    _rejects("daly", raw, "length")


def test_daly_single_frame_command_with_two_frames_is_rejected():
    raw, _ = _first("daly", lambda e: e["hex"][4:6] == "90")
    _rejects("daly", raw + raw, "length")


def test_daly_mixed_commands_are_rejected():
    a, _ = _first("daly", lambda e: e["hex"][4:6] == "95")
    b, _ = _first("daly", lambda e: e["hex"][4:6] == "96")
    _rejects("daly", a[:13] + b[:13], "different commands")


def test_pylon_needs_a_can_id_and_a_known_one():
    _rejects("pylon-can", bytes(8), "needs a CAN id")
    _rejects("pylon-can", bytes(8), "unknown CAN id 0x123", can_id=0x123)


@pytest.mark.parametrize(
    ("can_id", "minimum"), [(0x351, 6), (0x355, 4), (0x356, 6), (0x359, 4), (0x35C, 1), (0x35E, 1)]
)
def test_pylon_rejects_fewer_bytes_than_the_id_needs(can_id, minimum):
    decode("pylon-can", bytes(minimum), can_id=can_id)
    _rejects("pylon-can", bytes(minimum - 1), "length", can_id=can_id)
    _rejects("pylon-can", bytes(9), "length", can_id=can_id)


def test_pylon_non_ascii_manufacturer_is_rejected():
    _rejects("pylon-can", b"PYL\xffN", "ASCII", can_id=0x35E)


def test_unknown_protocol_and_misplaced_options_are_rejected():
    _rejects("ant", b"\x00", "unknown BMS protocol")
    _rejects("jbd", jbd.request(3), "no CAN id", can_id=0x351)
    _rejects("daly", bytes(13), "no variants", variant="jk02_24s")


def test_a_request_frame_is_not_mistaken_for_a_response():
    _rejects("jk", jk.request(jk.COMMAND_CELL_INFO), "length", variant="jk02_24s")
