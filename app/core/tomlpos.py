"""Find the line of a key path in TOML text, so config errors can name the key and its line.

tomllib gives no positions; this scanner understands tables, arrays of tables and inline tables/arrays
well enough to point at the right line of a hand-written site file.
"""
from __future__ import annotations

import re

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")


def line_of(text: str, path: tuple) -> int | None:
    """1-based line of the deepest element of `path` (keys are str, array indexes int), or None."""
    lines = text.splitlines()
    table: list = []          # current [table] path with array indexes resolved
    counts: dict[str, int] = {}
    best: int | None = None
    best_depth = 0
    for no, raw in enumerate(lines, 1):
        m = _HEADER.match(raw)
        if m:
            name = tuple(p.strip().strip('"') for p in m.group(2).split("."))
            if m.group(1) == "[[":
                key = ".".join(name)
                counts[key] = counts.get(key, -1) + 1
                table = _with_indexes(name, counts)
            else:
                table = _with_indexes(name, counts)
            depth = _match_depth(tuple(table), path)
            if depth > best_depth:
                best, best_depth = no, depth
            continue
        km = _KEY.match(raw)
        if not km:
            continue
        key = tuple(p.strip('"\'') for p in km.group(1).split("."))
        full = tuple(table) + key
        depth = _match_depth(full, path)
        if depth > best_depth:
            best, best_depth = no, depth
            if depth < len(path) and isinstance(path[depth], int):
                inline = _inline_line(lines, no - 1, path[depth])
                if inline:
                    best, best_depth = inline, depth + 1
    return best


def _with_indexes(name: tuple, counts: dict[str, int]) -> list:
    out: list = []
    for i, part in enumerate(name):
        out.append(part)
        key = ".".join(name[: i + 1])
        if key in counts:
            out.append(max(counts[key], 0))
    return out


def _match_depth(have: tuple, want: tuple) -> int:
    depth = 0
    for a, b in zip(have, want):
        if a != b:
            break
        depth += 1
    return depth if depth == len(have) else 0


def _inline_line(lines: list[str], start: int, index: int) -> int | None:
    """Line of the index-th `{...}` element of an inline array starting at line `start` (0-based)."""
    seen = -1
    level = 0
    for no in range(start, len(lines)):
        text = lines[no].split("#", 1)[0]
        if no == start:
            text = text.split("=", 1)[1]
        for ch in text:
            if ch == "[":
                level += 1
            elif ch == "]":
                level -= 1
                if level <= 0:
                    return None
            elif ch == "{" and level == 1:
                seen += 1
                if seen == index:
                    return no + 1
    return None
