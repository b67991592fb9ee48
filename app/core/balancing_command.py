"""The balancing command from the estimation thread to a rack's BMS, as every link driver takes it.

`Command(f"{rack}.{POINT}", "write", cells, "estimation", reason)`: `cells` are the 1-based numbers
of the cells the BMS is to discharge (bleed, or shuttle from), `()` to stop balancing. A driver
whose protocol has no such command replies REJECTED with NOT_SUPPORTED in the message, so the
sender records "not supported by the BMS" and does not retry. On the DataBus a set of cells is a
string, "3,17" ("" for none), like the canonical `balancing_cells` field.

A BMS with a balancing timeout has the writable point TIMEOUT_POINT (`<rack>.balancing_timeout_s`,
whole seconds, 0 = none; its driver publishes it): the BMS clears the command when none has been
written for that long, so cells stop bleeding when the ESMS or its link is gone.
"""
from __future__ import annotations

from collections.abc import Iterable

POINT = "balancing_cells_command"
NOT_SUPPORTED = "has no balancing command"
TIMEOUT_POINT = "balancing_timeout_s"


def cell_numbers(value: str | Iterable[int], n_cells: int) -> tuple[int, ...]:
    """Sorted, distinct cell numbers from "3,17" or an iterable of ints; ValueError names a number
    outside 1..n_cells or a part that is not a whole number."""
    parts = [p for p in value.split(",") if p.strip()] if isinstance(value, str) else list(value)
    cells = set()
    for part in parts:
        try:
            number = int(part)
        except (TypeError, ValueError):
            raise ValueError(f"balancing cells: {part!r} is not a cell number") from None
        whole = isinstance(part, str) or (number == part and not isinstance(part, bool))
        if not whole or not 1 <= number <= n_cells:
            raise ValueError(f"balancing cells: {part!r} is not a cell number 1..{n_cells}")
        cells.add(number)
    return tuple(sorted(cells))


def format_cells(cells: Iterable[int]) -> str:
    """"3,17" for (3, 17); "" for none."""
    return ",".join(str(c) for c in cells)
