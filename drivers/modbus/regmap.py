"""Register maps as data (resources/regmaps/*.toml): pure encode/decode between point values and
16-bit register images, shared by the Modbus driver and the simulator. No I/O besides loading the map.

A map lists scalar `[[register]]` entries and per-cell `[[vector]]` entries (length = cells of the
rack). Values are `raw * scale`; 32-bit types use big-endian word order unless `word_order = "little"`.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from app.core.errors import ConfigError
from app.core.paths import RESOURCES
from app.core.tomlpos import line_of

MAX_BLOCK = 125   # Modbus limit for one read of holding/input registers
TABLES = ("input", "holding")
_WIDTH = {"uint16": 1, "int16": 1, "bool": 1, "uint32": 2, "int32": 2, "float32": 2}


@dataclass(frozen=True)
class Field:
    point: str
    table: str
    address: int
    type: str
    scale: float = 1.0
    word_order: str = "big"
    writable: bool = False
    vector: bool = False

    @property
    def width(self) -> int:
        return _WIDTH[self.type]


@dataclass(frozen=True)
class Block:
    table: str
    address: int
    count: int


class RegisterMap:
    """Scalar and vector fields of one device type; `blocks(cells)` gives the coalesced reads."""

    def __init__(self, name: str, fields: tuple[Field, ...]) -> None:
        self.name = name
        self.fields = fields
        self.by_point = {f.point: f for f in fields}

    def span(self, f: Field, cells: int) -> tuple[int, int]:
        return f.address, f.address + (f.width * cells if f.vector else f.width)

    def table_size(self, table: str, cells: int) -> int:
        ends = [self.span(f, cells)[1] for f in self.fields if f.table == table]
        return max(ends, default=0)

    def blocks(self, cells: int, table: str | None = None, max_gap: int = 8) -> list[Block]:
        """Reads covering every field, merged across gaps ≤ max_gap, each ≤ 125 registers."""
        out: list[Block] = []
        for tab in (table,) if table else TABLES:
            spans = sorted(self.span(f, cells) for f in self.fields if f.table == tab)
            merged: list[list[int]] = []
            for start, end in spans:
                if merged and start - merged[-1][1] <= max_gap:
                    merged[-1][1] = max(merged[-1][1], end)
                else:
                    merged.append([start, end])
            for start, end in merged:
                for a in range(start, end, MAX_BLOCK):
                    out.append(Block(tab, a, min(MAX_BLOCK, end - a)))
        return out

    def decode(self, images: dict[str, np.ndarray], cells: int) -> dict[str, object]:
        """Values of every field from register images (uint16 arrays indexed by address)."""
        values: dict[str, object] = {}
        for f in self.fields:
            img = images.get(f.table)
            if img is None:
                continue
            n = cells if f.vector else 1
            if f.address + f.width * n > img.size:
                continue
            raw = _raw(img[f.address: f.address + f.width * n], f)
            if f.type == "bool":
                values[f.point] = bool(raw[0])
            elif f.vector:
                values[f.point] = (raw * f.scale).astype(np.float32)
            else:
                v = float(raw[0]) * f.scale
                values[f.point] = int(v) if f.scale == 1.0 and f.type != "float32" else v
        return values

    def encode(self, point: str, value: object, cells: int = 1) -> np.ndarray:
        """Registers (uint16) for one field's value (scalar or per-cell array)."""
        f = self.by_point[point]
        arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
        if f.vector and arr.size != cells:
            raise ValueError(f"{point}: expected {cells} values, got {arr.size}")
        return _regs(arr / f.scale if f.type != "bool" else (arr != 0), f)

    def write_into(self, images: dict[str, np.ndarray], values: dict[str, object], cells: int) -> None:
        """Encode `values` into the register images in place (simulator side)."""
        for point, value in values.items():
            f = self.by_point.get(point)
            if f is not None:
                regs = self.encode(point, value, cells)
                images[f.table][f.address: f.address + regs.size] = regs


def _raw(regs: np.ndarray, f: Field) -> np.ndarray:
    regs = regs.astype(np.uint16)
    if f.width == 1:
        return regs.view(np.int16) if f.type == "int16" else regs
    pairs = regs.reshape(-1, 2)
    if f.word_order == "little":
        pairs = pairs[:, ::-1]
    words = (pairs[:, 0].astype(np.uint32) << 16) | pairs[:, 1].astype(np.uint32)
    return {"uint32": words, "int32": words.view(np.int32), "float32": words.view(np.float32)}[f.type]


def _regs(values: np.ndarray, f: Field) -> np.ndarray:
    if f.type == "float32":
        words = values.astype(np.float32).view(np.uint32)
    elif f.type in ("int16", "int32"):
        lo, hi = (-32768, 32767) if f.type == "int16" else (-(2 ** 31), 2 ** 31 - 1)
        words = np.clip(np.rint(values), lo, hi).astype(np.int64)
    else:
        hi = 65535 if f.width == 1 else 2 ** 32 - 1
        words = np.clip(np.rint(values), 0, hi).astype(np.int64)
    if f.width == 1:
        return (words.astype(np.int64) & 0xFFFF).astype(np.uint16)
    words = words.astype(np.int64) & 0xFFFFFFFF
    pairs = np.stack([(words >> 16) & 0xFFFF, words & 0xFFFF], axis=1)
    if f.word_order == "little":
        pairs = pairs[:, ::-1]
    return pairs.reshape(-1).astype(np.uint16)


@lru_cache(maxsize=None)
def load_regmap(name: str, directory: Path = RESOURCES / "regmaps") -> RegisterMap:
    """Load `directory/name.toml`. Raises ConfigError naming the file, line and key."""
    path = directory / f"{name}.toml"
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"register map '{name}' not found ({path})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    fields = []
    for kind in ("register", "vector"):
        for i, entry in enumerate(data.get(kind, [])):
            def bad(key: str, msg: str) -> ConfigError:
                return ConfigError(f"{path}:{line_of(text, (kind, i, key))}: {kind}[{i}].{key}: {msg}")
            for key in ("point", "table", "address", "type"):
                if key not in entry:
                    raise bad(key, "missing required key")
            if entry["table"] not in TABLES:
                raise bad("table", f"must be one of {TABLES}")
            if entry["type"] not in _WIDTH:
                raise bad("type", f"must be one of {sorted(_WIDTH)}")
            if not isinstance(entry["address"], int) or not 0 <= entry["address"] <= 65535:
                raise bad("address", "must be an integer 0..65535")
            fields.append(Field(entry["point"], entry["table"], entry["address"], entry["type"],
                                float(entry.get("scale", 1.0)), entry.get("word_order", "big"),
                                bool(entry.get("writable", False)), kind == "vector"))
    return RegisterMap(data.get("name", name), tuple(fields))
