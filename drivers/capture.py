"""Raw-frame captures of the serial, BLE and Modbus links as the raw-frame recorder writes them
(drivers/monitor.py): one line per frame, `<unix time> <tx|rx> <hex>`; tx = what this side wrote
(request, command), rx = what came back (response, notification). Blank lines and `#` comments are
skipped. Pure: no I/O but reading the file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from app.core.errors import UserError

T = TypeVar("T")
# A recorded answer: (seconds after the request, bytes received) per frame.
Answer = tuple[tuple[float, bytes], ...]


@dataclass(frozen=True)
class RawFrame:
    time: float
    direction: str          # "tx" or "rx"
    data: bytes


def parse_lines(path: str | Path, what: str, parse: Callable[[str], T]) -> list[T]:
    """`parse` applied to every line of a text capture but blanks and `#` comments, in file order.
    A line `parse` refuses (ValueError) or an unreadable file is a UserError naming the file and line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the {what}: {exc}") from None
    out = []
    for no, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            out.append(parse(line))
        except ValueError as exc:
            raise UserError(f"{path}:{no}: not a {what} line: {exc}: {line.strip()[:60]!r}") from None
    return out


def read_frames(path: str | Path) -> list[RawFrame]:
    """Every frame of a capture (`<time> <tx|rx> <hex>`), in file order; UserError names file and line."""
    return parse_lines(path, "capture", _raw_frame)


def _raw_frame(line: str) -> RawFrame:
    t, direction, hexdata = line.split()
    if direction not in ("tx", "rx"):
        raise ValueError(f"direction '{direction}' is not tx or rx")
    return RawFrame(float(t), direction, bytes.fromhex(hexdata))


def answers_by_request(frames: list[RawFrame]) -> dict[bytes, list[Answer]]:
    """Request bytes -> the answers recorded after each time it was written, in order: the rx frames
    up to the next tx, timed from the request. rx frames before the first request are dropped."""
    answers: dict[bytes, list[Answer]] = {}
    request: RawFrame | None = None
    received: list[tuple[float, bytes]] = []
    for frame in [*frames, None]:
        if frame is not None and frame.direction == "rx":
            if request is not None:
                received.append((max(0.0, frame.time - request.time), frame.data))
            continue
        if request is not None:
            answers.setdefault(request.data, []).append(tuple(received))
        request, received = frame, []
    return answers
