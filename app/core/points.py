"""Point names: dotted paths down the site tree (`site.bess1.rack03.cell_voltages_v`).

Cells, modules and racks are numbered from 1 and zero-padded: rack03, module07, cell012.
"""
from __future__ import annotations

import re

_SEGMENT = re.compile(r"^[a-z][a-z0-9_]*$")


def validate(name: str) -> str:
    """Return name if it is a well-formed point name, else raise ValueError naming the bad segment."""
    parts = name.split(".")
    if len(parts) < 2 or parts[0] != "site":
        raise ValueError(f"point name {name!r} must start with 'site.' and have at least two segments")
    for part in parts:
        if not _SEGMENT.match(part):
            raise ValueError(f"point name {name!r}: segment {part!r} is not lower_snake_case")
    return name


def rack(bess: str, rack_no: int) -> str:
    return f"site.{bess}.rack{rack_no:02d}"


def cell(bess: str, rack_no: int, module_no: int, cell_no: int, quantity: str) -> str:
    return f"{rack(bess, rack_no)}.module{module_no:02d}.cell{cell_no:03d}.{quantity}"


def cell_label(rack_no: int, module_no: int, cell_no: int) -> str:
    """Short operator label used in alarm texts: '3-07-12'."""
    return f"{rack_no}-{module_no:02d}-{cell_no:02d}"


def join(*parts: str) -> str:
    return ".".join(parts)
