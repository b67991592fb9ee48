"""candump log files (can-utils `candump -l`, also python-can's CanutilsLogWriter and this project's
raw-frame recorder, drivers/monitor.py): one frame per line, `(<seconds>) <interface> <ID>#<DATA>`,
optionally followed by `R` or `T` (received / sent by the capturing node).

ID: 3 hex digits for an 11-bit id, 8 for a 29-bit one; an 8-digit id with 0x20000000 set is an error
frame (its DATA is the error detail). DATA: 0-8 bytes in hex, or `R` (optionally a DLC digit) for a
remote frame. Blank lines and `#` comments are skipped. CAN FD frames (`ID##<flags><DATA>`) are
rejected: the `can` links of this project carry classic CAN. Pure: no I/O but reading the file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from drivers.capture import parse_lines

ERROR_FLAG = 0x20000000
STANDARD_MAX, EXTENDED_MAX = 0x7FF, 0x1FFFFFFF
_LINE = re.compile(r"\((?P<time>\d+(?:\.\d*)?)\)\s+(?P<channel>\S+)\s+(?P<id>[0-9A-Fa-f]+)#(?P<data>\S*)"
                   r"(?:\s+(?P<flag>[RT]))?")


@dataclass(frozen=True)
class LoggedFrame:
    time: float
    channel: str
    can_id: int
    extended: bool
    data: bytes
    remote: bool = False
    error: bool = False
    sent: bool = False          # flagged T: sent by the capturing node itself


def frame_text(can_id: int, data: bytes, extended: bool = False, remote: bool = False, error: bool = False) -> str:
    """`ID#DATA` of one frame as candump writes it."""
    if error:
        return f"{can_id & EXTENDED_MAX | ERROR_FLAG:08X}#{data.hex().upper()}"
    ident = f"{can_id:08X}" if extended else f"{can_id:03X}"
    return f"{ident}#R" if remote else f"{ident}#{data.hex().upper()}"


def parse_line(line: str) -> LoggedFrame:
    """One log line -> LoggedFrame; ValueError says what is wrong."""
    m = _LINE.fullmatch(line.strip())
    if m is None:
        raise ValueError("expected '(<seconds>) <interface> <ID>#<DATA>'")
    ident, data = m["id"], m["data"]
    if len(ident) not in (3, 8):
        raise ValueError(f"id '{ident}' must have 3 (11-bit) or 8 (29-bit) hex digits")
    can_id, extended = int(ident, 16), len(ident) == 8
    common = {"time": float(m["time"]), "channel": m["channel"], "sent": m["flag"] == "T"}
    if extended and can_id & ERROR_FLAG:
        return LoggedFrame(can_id=can_id & EXTENDED_MAX, extended=True, data=_hex(data), error=True, **common)
    if can_id > (EXTENDED_MAX if extended else STANDARD_MAX):
        raise ValueError(f"id '{ident}' is out of range")
    if data.startswith("#"):
        raise ValueError("a CAN FD frame: a can link replays classic CAN frames only")
    if data[:1] in ("R", "r"):
        if not re.fullmatch(r"[0-8]?", data[1:]):
            raise ValueError(f"remote frame '{data}': expected R or R<DLC 0-8>")
        return LoggedFrame(can_id=can_id, extended=extended, data=b"", remote=True, **common)
    return LoggedFrame(can_id=can_id, extended=extended, data=_hex(data), **common)


def _hex(text: str) -> bytes:
    try:
        data = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"data '{text}' is not hex bytes") from None
    if len(data) > 8:
        raise ValueError(f"{len(data)} data bytes: a classic CAN frame carries at most 8")
    return data


def read_log(path: str | Path) -> list[LoggedFrame]:
    """Every frame of a candump log, in file order. UserError names the file and line."""
    return parse_lines(path, "candump log", parse_line)
