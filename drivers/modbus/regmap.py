"""Register maps as data (resources/regmaps/*.toml): pure encode/decode between point values and
16-bit register images, shared by the Modbus driver and the simulator. No I/O besides loading the map.

A map lists scalar `[[register]]` entries, per-cell `[[vector]]` entries (length = cells of the
rack) and per-cell `[[bitmask]]` entries (uint16 registers, one bit per cell, cell 1 = bit 0 of the
first register, 16 cells per register; the value is a set of 1-based cell numbers, decoded as "3,17":
app/core/balancing_command.py). A value is `raw * scale`, times `10 ** sf` when the field names a
`scale_register` (a SunSpec `*_SF` register declared under `[[scale_factor]]`, read from the same
image). 32-bit types use big-endian word order unless `word_order = "little"`; signedness comes from
the type (`int16`, `int32`; SunSpec `sunssf` is int16, `enum16`/`bitfield16` uint16,
`bitfield32`/`acc32` uint32).

Vectors may be strided (`stride` registers from one cell to the next, e.g. SunSpec repeating groups)
and repeated per module (`module_header` registers of per-module data precede each module's cells, as
in one SunSpec 805 model instance per module); `per_module = true` makes a vector of one element per
module (a register of each module's header, e.g. 805 ModIdx). `[[check]]` entries are constant registers (the SunSpec
"SunS" marker, model ids and lengths) that the simulator writes and the driver verifies; `render` gives
the complete image a device serves (simulator side).
`include = "other_map"` starts from another map's entries (a SunSpec chain extends the previous model);
a point declared again replaces the included one.

Translated registers (scalar, no scale): `values = { 0 = 2, 1 = 1 }` maps point values (keys) one to one
onto register values, e.g. `contactor_command` 0 = open / 1 = close onto SunSpec SetOp 2 DISCONNECT /
1 CONNECT; decode applies the inverse, and a register value outside the table decodes to no value (the
point is left out, like a "not implemented" scale factor); encoding a value outside the table raises
ValueError. `bit = N` reads bit N of an unsigned register as a bool (encode sets only that bit).
A scalar point may share its register with a point declared before it (a second view of the same
register, as above): it decodes and can be written like any point, but `write_into`/`render` encode only
the register's first declared point, so a device image has one source per register.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from app.core.balancing_command import cell_numbers, format_cells
from app.core.errors import ConfigError
from app.core.paths import RESOURCES
from app.core.tomlpos import line_of

MAX_BLOCK = 125   # Modbus limit for one read of holding/input registers
MAX_WRITE = 123   # Modbus limit for one write of holding registers (function 16)
BITS = 16         # cells per register of a bit mask
TABLES = ("input", "holding")
SF_NOT_IMPLEMENTED = -32768   # SunSpec: a scale factor register reading 0x8000 means "not implemented"
_WIDTH = {"uint16": 1, "int16": 1, "bool": 1, "uint32": 2, "int32": 2, "float32": 2}
_ALIASES = {"sunssf": "int16", "enum16": "uint16", "bitfield16": "uint16", "bitfield32": "uint32",
            "acc32": "uint32", "enum32": "uint32"}


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
    scale_register: str | None = None   # name of a ScaleFactor: value = raw * scale * 10 ** sf
    stride: int = 0                     # registers between consecutive cells (0: the type's width)
    module_header: int = 0              # registers before each module's cells (0: cells are contiguous)
    bits: bool = False                  # a per-cell bit mask (uint16 registers, 16 cells each)
    per_module: bool = False            # vector of one element per module (at the module's first cell)
    values: tuple[tuple[int, int], ...] = ()   # (point value, register value) pairs, one to one
    bit: int | None = None              # the point is this bit of the register (bool)

    @property
    def width(self) -> int:
        return _WIDTH[self.type]

    @property
    def step(self) -> int:
        return self.stride or self.width

    def elements(self, cells: int) -> int:
        """Registers (or register groups) the field spans for a rack of `cells` cells."""
        if self.bits:
            return -(-cells // BITS)
        return cells if self.vector else 1


@dataclass(frozen=True)
class ScaleFactor:
    """A SunSpec-style `*_SF` register (int16 power of ten). `value` is what encoders write."""
    name: str
    table: str
    address: int
    value: int = 0
    per_module: bool = False            # one register per module instance (repeats with the vector)


@dataclass(frozen=True)
class Check:
    """Constant registers that identify the layout, e.g. "SunS" at 40000 and each model's id/length."""
    table: str
    address: int
    values: tuple[int, ...]
    what: str
    cell_group_length: int = 0          # SunSpec model repeated per module: values = (ID, fixed L); each
                                        # instance's L = fixed L + cell_group_length * cells_per_module


@dataclass(frozen=True)
class Block:
    table: str
    address: int
    count: int


class RegisterMap:
    """Fields of one device type; `blocks(cells)` gives the coalesced reads, `decode`/`write_into` the values.

    `cells_per_module` matters only for vectors with a `module_header`; it defaults to all cells in one
    module."""

    def __init__(self, name: str, fields: tuple[Field, ...], scale_factors: tuple[ScaleFactor, ...] = (),
                 checks: tuple[Check, ...] = (), end_model: bool = False) -> None:
        self.name = name
        self.end_model = end_model          # SunSpec end model (0xFFFF, 0) right after the last holding register
        self.fields = fields
        self.scale_factors = {s.name: s for s in scale_factors}
        self.checks = checks
        self.by_point = {f.point: f for f in fields}
        self.views = _views(fields)         # points that share an earlier point's register: never encoded
        self._layouts: dict[tuple, object] = {}   # memo of the layout per (what, cells, cells_per_module)

    # --- layout ------------------------------------------------------------------------
    def element_addresses(self, f: Field, cells: int, cells_per_module: int | None = None) -> np.ndarray:
        """First register of each element of `f` (one for a scalar, one per cell for a vector)."""
        return _element_addresses(f, f.elements(cells), cells_per_module or cells)

    def register_index(self, f: Field, cells: int, cells_per_module: int | None = None) -> np.ndarray:
        """Every register of `f`, element by element (shape: elements x width)."""
        starts = self.element_addresses(f, cells, cells_per_module)
        return starts[:, None] + np.arange(f.width)

    def _sf_index(self, f: Field, cells: int, cells_per_module: int | None) -> np.ndarray | None:
        sf = self.scale_factors.get(f.scale_register) if f.scale_register else None
        if sf is None:
            return None
        if not (sf.per_module and f.vector):
            return np.array([sf.address])
        cpm = cells_per_module or cells
        module = np.arange(0, cells, cpm if f.per_module else 1) // cpm
        return sf.address + module * (f.module_header + f.step * cpm)

    def span(self, f: Field, cells: int, cells_per_module: int | None = None) -> tuple[int, int]:
        idx = self.register_index(f, cells, cells_per_module)
        return int(idx.min()), int(idx.max()) + 1

    def end_model_address(self, cells: int, cells_per_module: int | None = None) -> int | None:
        """Where the SunSpec end model goes (None for maps without one)."""
        if not self.end_model:
            return None
        regs = self._registers("holding", cells, cells_per_module, with_end=False)
        return int(regs[-1]) + 1 if regs.size else None

    def _registers(self, table: str, cells: int, cells_per_module: int | None, with_end: bool = True) -> np.ndarray:
        key = ("registers", table, cells, cells_per_module, with_end)
        if key not in self._layouts:
            regs = self._layout_registers(table, cells, cells_per_module, with_end)
            regs.flags.writeable = False
            self._layouts[key] = regs
        return self._layouts[key]

    def _layout_registers(self, table: str, cells: int, cells_per_module: int | None, with_end: bool) -> np.ndarray:
        if with_end and table == "holding" and self.end_model:
            end = self.end_model_address(cells, cells_per_module)
            return np.concatenate([self._registers(table, cells, cells_per_module, False), [end, end + 1]])
        parts = [np.arange(c.address, c.address + len(c.values))
                 for c in self._checks(cells, cells_per_module, with_end=False) if c.table == table]
        for f in self.fields:
            if f.table == table:
                parts.append(self.register_index(f, cells, cells_per_module).ravel())
                sf = self._sf_index(f, cells, cells_per_module)
                if sf is not None and self.scale_factors[f.scale_register].table == table:
                    parts.append(sf)
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def table_size(self, table: str, cells: int, cells_per_module: int | None = None) -> int:
        regs = self._registers(table, cells, cells_per_module)
        return int(regs[-1]) + 1 if regs.size else 0

    def blocks(self, cells: int, table: str | None = None, max_gap: int = 8,
               cells_per_module: int | None = None) -> list[Block]:
        """Reads covering every field, scale factor and check, merged across gaps ≤ max_gap registers,
        each ≤ 125 registers."""
        out: list[Block] = []
        for tab in (table,) if table else TABLES:
            regs = self._registers(tab, cells, cells_per_module)
            if not regs.size:
                continue
            breaks = np.nonzero(np.diff(regs) > max_gap + 1)[0]
            starts = np.concatenate([[regs[0]], regs[breaks + 1]])
            ends = np.concatenate([regs[breaks], [regs[-1]]]) + 1
            for start, end in zip(starts.tolist(), ends.tolist()):
                for a in range(start, end, MAX_BLOCK):
                    out.append(Block(tab, a, min(MAX_BLOCK, end - a)))
        return out

    # --- values --------------------------------------------------------------------------
    def scale_of(self, f: Field, images: dict[str, np.ndarray] | None, cells: int,
                 cells_per_module: int | None = None) -> np.ndarray | None:
        """Multiplier per element (scale x 10^sf); None if an sf register reads "not implemented"."""
        idx = self._sf_index(f, cells if f.vector else 1, cells_per_module)
        if idx is None:
            return np.array([f.scale])
        sf = self.scale_factors[f.scale_register]
        img = images.get(sf.table) if images else None
        if img is not None and int(idx.max()) < img.size:
            exps = img[idx].astype(np.uint16).view(np.int16).astype(np.int64)
        else:
            exps = np.full(idx.size, sf.value, np.int64)
        if np.any(exps == SF_NOT_IMPLEMENTED):
            return None
        return f.scale * 10.0 ** exps

    def decode(self, images: dict[str, np.ndarray], cells: int,
               cells_per_module: int | None = None) -> dict[str, object]:
        """Values of every field from register images (uint16 arrays indexed by address)."""
        values: dict[str, object] = {}
        for f in self.fields:
            img = images.get(f.table)
            if img is None:
                continue
            idx = self.register_index(f, cells, cells_per_module)
            if int(idx.max()) >= img.size:
                continue
            scale = self.scale_of(f, images, cells, cells_per_module)
            if scale is None:
                continue
            raw = _raw(img[idx.ravel()], f)
            if f.bits:
                values[f.point] = format_cells(words_to_cells(raw, cells))
            elif f.values or f.bit is not None:
                value = _from_register(f, int(raw[0]))
                if value is not None:
                    values[f.point] = value
            elif f.type == "bool":
                values[f.point] = bool(raw[0])
            elif f.vector:
                values[f.point] = (raw * scale).astype(np.float32)
            else:
                v = float(raw[0]) * float(scale[0])
                values[f.point] = int(v) if float(scale[0]) == 1.0 and f.type != "float32" else v
        return values

    def encode(self, point: str, value: object, cells: int = 1, images: dict[str, np.ndarray] | None = None,
               cells_per_module: int | None = None) -> np.ndarray:
        """Registers (uint16) for one field's value, element by element (scale factors from `images`
        when given, else the map's declared sf values)."""
        f = self.by_point[point]
        if f.bits:
            return cells_to_words(cell_numbers(value, cells), cells)
        arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
        n = self.element_addresses(f, cells, cells_per_module).size
        if f.vector and arr.size != n:
            raise ValueError(f"{point}: expected {n} values, got {arr.size}")
        if f.values or f.bit is not None:
            return _regs(np.array([float(_to_register(f, arr[0]))]), f)
        if f.type == "bool":
            return _regs((arr != 0).astype(np.float64), f)
        scale = self.scale_of(f, images, cells, cells_per_module)
        if scale is None:
            raise ValueError(f"{point}: scale factor {f.scale_register} is 'not implemented' (0x8000)")
        return _regs(arr / scale, f)

    def write_into(self, images: dict[str, np.ndarray], values: dict[str, object], cells: int,
                   cells_per_module: int | None = None, scale_factors: dict[str, int] | None = None) -> None:
        """Encode `values` into the register images in place (simulator side), together with the map's
        checks and scale factor registers (declared values unless overridden by `scale_factors`)."""
        for c in self._checks(cells, cells_per_module):
            if c.table in images:
                images[c.table][c.address: c.address + len(c.values)] = c.values
        for f in self.fields:
            sf_idx = self._sf_index(f, cells if f.vector else 1, cells_per_module)
            sf = self.scale_factors.get(f.scale_register) if f.scale_register else None
            if sf_idx is not None and sf.table in images:
                exp = (scale_factors or {}).get(sf.name, sf.value)
                images[sf.table][sf_idx] = np.int16(exp).view(np.uint16)
        for point, value in values.items():
            f = self.by_point.get(point)
            if f is not None and f.table in images and point not in self.views:
                regs = self.encode(point, value, cells, images, cells_per_module)
                images[f.table][self.register_index(f, cells, cells_per_module).ravel()] = regs

    def render(self, values: dict[str, object], cells: int,
               cells_per_module: int | None = None) -> dict[str, np.ndarray]:
        """A complete image (uint16, `table_size` long) per table the map uses, as a device serves it:
        checks, scale factors, end model and the `values` the map declares; other registers read 0."""
        images = {t: np.zeros(n, np.uint16) for t in TABLES if (n := self.table_size(t, cells, cells_per_module))}
        self.write_into(images, values, cells, cells_per_module)
        return images

    def writable_registers(self, table: str, cells: int, cells_per_module: int | None = None) -> np.ndarray:
        """Sorted addresses of `table` that belong to writable fields (client-owned setpoints/commands)."""
        parts = [self.register_index(f, cells, cells_per_module).ravel()
                 for f in self.fields if f.writable and f.table == table]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def written_points(self, table: str, address: int, count: int, cells: int,
                       cells_per_module: int | None = None) -> list[str]:
        """Writable points with a register in `address .. address + count - 1` (what one client write set)."""
        out = []
        for f in self.fields:
            if f.writable and f.table == table:
                idx = self.register_index(f, cells, cells_per_module)
                if np.any((idx >= address) & (idx < address + count)):
                    out.append(f.point)
        return out

    def _checks(self, cells: int, cells_per_module: int | None, with_end: bool = True) -> tuple[Check, ...]:
        key = ("checks", cells, cells_per_module, with_end)
        if key not in self._layouts:
            self._layouts[key] = self._layout_checks(cells, cells_per_module, with_end)
        return self._layouts[key]

    def _layout_checks(self, cells: int, cells_per_module: int | None, with_end: bool) -> tuple[Check, ...]:
        out: list[Check] = []
        cpm = cells_per_module or cells
        for c in self.checks:
            if not c.cell_group_length:
                out.append(c)
                continue
            length = c.values[1] + c.cell_group_length * cpm
            out += [Check(c.table, c.address + k * (2 + length), (c.values[0], length), f"{c.what}, module {k + 1}")
                    for k in range(max(1, cells // cpm))]
        end = self.end_model_address(cells, cells_per_module) if with_end else None
        return tuple(out) + ((Check("holding", end, (0xFFFF, 0), "SunSpec end model"),) if end is not None else ())

    def check(self, images: dict[str, np.ndarray], cells: int = 1, cells_per_module: int | None = None) -> list[str]:
        """Mismatched constant registers, as readable lines (empty when the layout is as expected)."""
        bad = []
        for c in self._checks(cells, cells_per_module):
            img = images.get(c.table)
            got = img[c.address: c.address + len(c.values)].tolist() if img is not None else []
            if got != list(c.values):
                bad.append(f"{c.what}: expected {_hex(c.values)} at {c.table} {c.address}, read {_hex(got)}")
        return bad


def cells_to_words(cells: tuple[int, ...], n_cells: int) -> np.ndarray:
    """Bit mask registers (uint16, ceil(n_cells / 16)) with the bit of each 1-based cell set."""
    bits = np.zeros(-(-n_cells // BITS) * BITS, bool)
    bits[np.asarray(cells, int) - 1] = True
    return np.packbits(bits.reshape(-1, BITS)[:, ::-1]).view(">u2").astype(np.uint16)


def words_to_cells(words: np.ndarray, n_cells: int) -> tuple[int, ...]:
    """1-based numbers of the cells whose bit is set (bits beyond `n_cells` are ignored)."""
    regs = np.asarray(words, np.uint16).astype(">u2").view(np.uint8)
    bits = np.unpackbits(regs).reshape(-1, BITS)[:, ::-1].ravel()[:n_cells]
    return tuple((np.flatnonzero(bits) + 1).tolist())


def _views(fields: tuple[Field, ...]) -> frozenset[str]:
    """Scalar points whose registers an earlier scalar point already covers."""
    seen: set[tuple[str, int]] = set()
    views = set()
    for f in fields:
        if f.vector:
            continue
        regs = {(f.table, a) for a in range(f.address, f.address + f.width)}
        if regs & seen:
            views.add(f.point)
        seen |= regs
    return frozenset(views)


def _from_register(f: Field, raw: int) -> int | bool | None:
    """A translated register's point value (None: a register value outside the `values` table)."""
    if f.bit is not None:
        return bool(raw >> f.bit & 1)
    return next((point for point, reg in f.values if reg == raw), None)


def _to_register(f: Field, value: float) -> int:
    if f.bit is not None:
        return int(bool(value)) << f.bit
    reg = next((reg for point, reg in f.values if point == value), None)
    if reg is None:
        raise ValueError(f"{f.point}: {value:g} is not one of {', '.join(str(p) for p, _ in f.values)}")
    return reg


def _hex(values) -> str:
    return " ".join(f"{int(v):04X}" for v in values) or "nothing"


@lru_cache(maxsize=4096)
def _element_addresses_cached(f: Field, n: int, cpm: int) -> np.ndarray:
    i = np.arange(0, n, cpm if f.per_module else 1)
    starts = f.address + (i // cpm) * (f.module_header + f.step * cpm) + (i % cpm) * f.step
    starts.flags.writeable = False
    return starts


def _element_addresses(f: Field, n: int, cpm: int) -> np.ndarray:
    return _element_addresses_cached(f, n, max(1, cpm))


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


_INT_KEYS = ("stride", "module_header")
_BITMASK_KEYS = {"point", "table", "address", "writable"}
_UNSIGNED = ("uint16", "uint32")


def _translation(kind: str, i: int, entry: dict, typ: str, bad) -> tuple[tuple[tuple[int, int], ...], int | None]:
    """The `values` table and `bit` of a map entry, checked (`bad` makes the ConfigError)."""
    if "values" not in entry and "bit" not in entry:
        return (), None
    key = "values" if "values" in entry else "bit"
    if kind != "register" or typ not in _UNSIGNED or "scale" in entry or "scale_register" in entry:
        raise bad(kind, i, key, "only on an unsigned [[register]] without scale or scale_register")
    if "values" in entry and "bit" in entry:
        raise bad(kind, i, "bit", "use either values or bit")
    if key == "bit":
        bit = entry["bit"]
        if not isinstance(bit, int) or not 0 <= bit < 16 * _WIDTH[typ]:
            raise bad(kind, i, "bit", f"must be an integer 0..{16 * _WIDTH[typ] - 1}")
        return (), bit
    table = entry["values"]
    try:
        pairs = tuple((int(k), v) for k, v in table.items()) if isinstance(table, dict) else ()
    except ValueError:
        pairs = ()
    top = 2 ** (16 * _WIDTH[typ]) - 1
    if not pairs or not all(type(v) is int and 0 <= v <= top for _, v in pairs):
        raise bad(kind, i, "values", f"must be a table of integer point values = register values 0..{top}")
    if len({v for _, v in pairs}) != len(pairs):
        raise bad(kind, i, "values", "two point values map onto the same register value")
    return pairs, None


@lru_cache(maxsize=None)
def load_regmap(name: str, directory: Path = RESOURCES / "regmaps") -> RegisterMap:
    """Load `directory/name.toml` (and the maps it includes). Raises ConfigError naming the file,
    line and key."""
    path = directory / f"{name}.toml"
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"register map '{name}' not found ({path})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    base = load_regmap(data["include"], directory) if "include" in data else None
    fields = list(base.fields) if base else []
    sfs = dict(base.scale_factors) if base else {}
    checks = list(base.checks) if base else []

    def bad(kind: str, i: int, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{path}:{line_of(text, (kind, i, key))}: {kind}[{i}].{key}: {msg}")

    def common(kind: str, i: int, entry: dict, keys: tuple[str, ...]) -> None:
        for key in keys:
            if key not in entry:
                raise bad(kind, i, key, "missing required key")
        if entry["table"] not in TABLES:
            raise bad(kind, i, "table", f"must be one of {TABLES}")
        if not isinstance(entry["address"], int) or not 0 <= entry["address"] <= 65535:
            raise bad(kind, i, "address", "must be an integer 0..65535")

    for i, entry in enumerate(data.get("scale_factor", [])):
        common("scale_factor", i, entry, ("name", "table", "address"))
        value = entry.get("value", 0)
        if not isinstance(value, int) or not -10 <= value <= 10:
            raise bad("scale_factor", i, "value", "must be an integer power of ten -10..10")
        sfs[entry["name"]] = ScaleFactor(entry["name"], entry["table"], entry["address"], value,
                                         bool(entry.get("per_module", False)))
    for i, entry in enumerate(data.get("check", [])):
        common("check", i, entry, ("table", "address", "values"))
        values = entry["values"]
        if not isinstance(values, list) or not all(isinstance(v, int) and 0 <= v <= 65535 for v in values):
            raise bad("check", i, "values", "must be a list of register values 0..65535")
        group = entry.get("cell_group_length", 0)
        if not isinstance(group, int) or group < 0 or (group and len(values) != 2):
            raise bad("check", i, "cell_group_length", "must be a non-negative integer, with values = [ID, fixed L]")
        checks.append(Check(entry["table"], entry["address"], tuple(values), entry.get("what", "constant"), group))
    declared: set[str] = set()
    for kind in ("register", "vector", "bitmask"):
        for i, entry in enumerate(data.get(kind, [])):
            common(kind, i, entry, ("point", "table", "address") + (() if kind == "bitmask" else ("type",)))
            if kind == "bitmask" and set(entry) - _BITMASK_KEYS:
                key = sorted(set(entry) - _BITMASK_KEYS)[0]
                raise bad(kind, i, key, f"not allowed for a bitmask (allowed: {', '.join(sorted(_BITMASK_KEYS))})")
            typ = _ALIASES.get(entry.get("type", "uint16"), entry.get("type", "uint16"))
            if typ not in _WIDTH:
                raise bad(kind, i, "type", f"must be one of {sorted(_WIDTH) + sorted(_ALIASES)}")
            if entry.get("word_order", "big") not in ("big", "little"):
                raise bad(kind, i, "word_order", "must be 'big' or 'little'")
            if "scale_register" in entry and entry["scale_register"] not in sfs:
                raise bad(kind, i, "scale_register", f"no [[scale_factor]] named '{entry['scale_register']}'")
            for key in _INT_KEYS:
                if not isinstance(entry.get(key, 0), int) or entry.get(key, 0) < 0:
                    raise bad(kind, i, key, "must be a non-negative integer")
            if entry.get("per_module") and kind != "vector":
                raise bad(kind, i, "per_module", "only on a [[vector]]")
            if entry["point"] in declared:
                raise bad(kind, i, "point", f"'{entry['point']}' is declared twice in this map")
            declared.add(entry["point"])
            values, bit = _translation(kind, i, entry, typ, bad)
            fields = [f for f in fields if f.point != entry["point"]]     # replaces an included point
            fields.append(Field(entry["point"], entry["table"], entry["address"], typ,
                                float(entry.get("scale", 1.0)), entry.get("word_order", "big"),
                                bool(entry.get("writable", False)), kind == "vector",
                                entry.get("scale_register"), entry.get("stride", 0), entry.get("module_header", 0),
                                kind == "bitmask",
                                bool(entry.get("per_module", False)), values, bit))
    return RegisterMap(data.get("name", name), tuple(fields), tuple(sfs.values()), tuple(checks),
                       bool(data.get("end_model", False)))
