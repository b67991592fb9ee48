"""candump log parsing (pure): the line forms of can-utils and python-can, what a replay sends, and a
malformed line named by file and line."""
from __future__ import annotations

import pytest

from app.core.errors import UserError
from app.sim.can_replay import replay_frames
from drivers.can.candump import LoggedFrame, frame_text, parse_line, read_log


def test_standard_extended_remote_and_error_frames_parse():
    std = parse_line("(1436509052.249713) can0 351#1402740E740ECC01")
    assert (std.time, std.channel, std.can_id, std.extended, std.data) == (
        1436509052.249713, "can0", 0x351, False, bytes.fromhex("1402740e740ecc01"))
    ext = parse_line("(0000000001.500000) vcan1 18FF50E5#0102")
    assert (ext.can_id, ext.extended, ext.data) == (0x18FF50E5, True, b"\x01\x02")
    assert parse_line("(1.0) can0 00000123#").extended and parse_line("(1.0) can0 123#").data == b""
    assert parse_line("(1.0) can0 305#R").remote and parse_line("(1.0) can0 305#R8").remote
    err = parse_line("(1.0) can0 20000080#0000000000000000")
    assert err.error and err.can_id == 0x80
    assert parse_line("(1.0) can0 351#00 T").sent and not parse_line("(1.0) can0 351#00 R").sent


@pytest.mark.parametrize("can_id, data, flags, text", [
    (0x351, bytes.fromhex("1a006400"), {}, "351#1A006400"),
    (0x123, b"\x01", {"extended": True}, "00000123#01"),
    (0x305, b"", {"remote": True}, "305#R"),
    (0x80, bytes(8), {"error": True}, "20000080#0000000000000000"),
])
def test_recorded_frame_text_parses_back_to_the_same_frame(can_id, data, flags, text):
    assert frame_text(can_id, data, **flags) == text
    frame = parse_line(f"(1.0) can0 {text}")
    assert (frame.can_id, frame.data, frame.remote, frame.error) == (can_id, data, "remote" in flags, "error" in flags)
    assert frame.extended == ("extended" in flags or "error" in flags)


@pytest.mark.parametrize("line, reason", [
    ("1.0 can0 351#00", "expected '(<seconds>) <interface> <ID>#<DATA>'"),
    ("(1.0) can0 3510#00", "3 (11-bit) or 8 (29-bit) hex digits"),
    ("(1.0) can0 951#00", "out of range"),
    ("(1.0) can0 351##1001122", "CAN FD"),
    ("(1.0) can0 351#001122334455667788", "at most 8"),
    ("(1.0) can0 351#0G", "not hex bytes"),
    ("(1.0) can0 351#R9", "R<DLC 0-8>"),
])
def test_a_malformed_line_is_a_user_error_naming_file_and_line(tmp_path, line, reason):
    log = tmp_path / "field.log"
    log.write_text("# field capture\n(1.0) can0 351#1402740E740ECC01\n\n" + line + "\n")
    with pytest.raises(UserError, match=r"field\.log:4: not a candump log line") as err:
        read_log(log)
    assert reason in str(err.value)


def test_a_replay_sends_data_frames_of_the_links_interface_only():
    frames = [LoggedFrame(1.0, "can0", 0x351, False, b"\x01"),
              LoggedFrame(1.1, "can0", 0x305, False, b"", remote=True),
              LoggedFrame(1.2, "can0", 0x80, True, bytes(8), error=True),
              LoggedFrame(1.3, "can0", 0x305, False, b"\x00", sent=True),
              LoggedFrame(1.4, "can1", 0x355, False, b"\x02")]
    assert [f.can_id for f in replay_frames(frames[:4], "anything", "x.log")] == [0x351]
    assert [f.can_id for f in replay_frames(frames, "can1", "x.log")] == [0x355]
    with pytest.raises(UserError, match=r"x\.log: no CAN data frame to replay on interface 'can9' "
                                        r"\(the log has can0, can1\)"):
        replay_frames(frames, "can9", "x.log")
