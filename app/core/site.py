"""Site model: site -> links, PCS units, BESS -> racks -> modules -> cells, loaded from TOML.

Validation errors are ConfigError naming the file, line and key path, e.g.
`site.toml:23: bess[0].racks[2].unit_id: expected an integer, got "two"`.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core import points
from app.core.errors import ConfigError
from app.core.tomlpos import line_of

LINK_KINDS = ("can", "modbus-tcp", "modbus-rtu", "ble", "sim")
CHEMISTRIES = ("lfp", "nmc", "lto", "naion")


@dataclass(frozen=True)
class Link:
    name: str
    kind: str
    address: str                 # "127.0.0.1:15020", "/dev/ttyUSB0", "can0", BLE MAC ...
    poll_period_s: float = 1.0
    timeout_s: float = 0.5
    comm_loss_periods: int = 2   # missed periods before points go COMM_LOST
    options: dict = field(default_factory=dict)

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.address.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Pcs:
    id: str
    link: str
    unit_id: int
    rated_power_kw: float
    regmap: str = "pcs_generic"

    @property
    def path(self) -> str:
        return f"site.{self.id}"


@dataclass(frozen=True)
class Meter:
    """The site meter (grid connection point, load and PV), e.g. on the PCS or EMS controller link."""

    id: str
    link: str
    unit_id: int
    regmap: str = "meter_generic"

    @property
    def path(self) -> str:
        return f"site.{self.id}"


@dataclass(frozen=True)
class Rack:
    bess: str
    number: int                  # 1-based
    link: str
    unit_id: int
    modules: int
    cells_per_module: int
    regmap: str = "rack_generic"

    @property
    def path(self) -> str:
        return points.rack(self.bess, self.number)

    @property
    def cell_count(self) -> int:
        return self.modules * self.cells_per_module


@dataclass(frozen=True)
class Bess:
    id: str
    chemistry: str
    cell_capacity_ah: float
    pcs: str
    racks: tuple[Rack, ...]

    @property
    def path(self) -> str:
        return f"site.{self.id}"

    @property
    def cell_count(self) -> int:
        return sum(r.cell_count for r in self.racks)


@dataclass(frozen=True)
class ProtectionSettings:
    period_s: float = 0.1
    stale_after_s: float = 3.0           # data older than this is a fault -> safe state
    overrides: dict = field(default_factory=dict)   # limit name -> value (site overrides)


@dataclass(frozen=True)
class SimulatorSettings:
    enabled: bool = False                # run the plant simulator in-process (demo plant)
    speed: float = 1.0
    seed: int = 1
    pcs_auto_island: bool = False        # simulated PCS island the site by themselves on grid loss (no EMS)


@dataclass(frozen=True)
class Site:
    name: str
    links: tuple[Link, ...]
    pcs: tuple[Pcs, ...]
    bess: tuple[Bess, ...]
    protection: ProtectionSettings
    simulator: SimulatorSettings
    source: str = "<memory>"
    meters: tuple[Meter, ...] = ()

    def link(self, name: str) -> Link:
        return next(link for link in self.links if link.name == name)

    @property
    def racks(self) -> tuple[Rack, ...]:
        return tuple(r for b in self.bess for r in b.racks)

    @property
    def cell_count(self) -> int:
        return sum(b.cell_count for b in self.bess)


class _Reader:
    """Typed access to the parsed TOML that raises ConfigError with file, line and key path."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source

    def fail(self, path: tuple, message: str) -> ConfigError:
        line = line_of(self.text, path)
        where = f"{self.source}:{line}" if line else self.source
        return ConfigError(f"{where}: {_dotted(path)}: {message}")

    def get(self, table: dict, path: tuple, key: str, kind: type | tuple, default: Any = ...) -> Any:
        if key not in table:
            if default is ...:
                raise self.fail(path, f"missing required key '{key}'")
            return default
        value = table[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            raise self.fail(path + (key,), f"expected {names}, got {value!r}")
        return value

    def positive(self, table: dict, path: tuple, key: str, kind: type, default: Any = ...) -> Any:
        value = self.get(table, path, key, kind, default)
        if value <= 0:
            raise self.fail(path + (key,), f"must be > 0, got {value!r}")
        return value

    def unknown_keys(self, table: dict, path: tuple, allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(path + (key,), f"unknown key (allowed: {', '.join(sorted(allowed))})")


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true/false",
               list: "an array", dict: "a table"}


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def load_site(path: str | Path) -> Site:
    """Read and validate a site file. Raises ConfigError naming the key and line on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read site file: {exc.strerror}") from None
    return parse_site(text, str(path))


def parse_site(text: str, source: str = "<memory>") -> Site:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: TOML syntax error: {exc}") from None
    r = _Reader(text, source)
    r.unknown_keys(data, (), {"site", "link", "pcs", "meter", "bess", "protection", "simulator", "historian"})
    site_t = r.get(data, (), "site", dict)
    name = r.get(site_t, ("site",), "name", str)

    links = tuple(_link(r, t, ("link", i)) for i, t in enumerate(r.get(data, (), "link", list)))
    names = [link.name for link in links]
    for i, n in enumerate(names):
        if names.index(n) != i:
            raise r.fail(("link", i, "name"), f"duplicate link name '{n}'")

    pcs = tuple(_pcs(r, t, ("pcs", i), names) for i, t in enumerate(r.get(data, (), "pcs", list)))
    pcs_ids = [p.id for p in pcs]
    meters = tuple(_meter(r, t, ("meter", i), names) for i, t in enumerate(r.get(data, (), "meter", list, [])))
    bess = tuple(_bess(r, t, ("bess", i), names, pcs_ids) for i, t in enumerate(r.get(data, (), "bess", list)))
    ids = pcs_ids + [b.id for b in bess]
    for i, n in enumerate(ids):
        if ids.index(n) != i:
            raise r.fail(("bess" if i >= len(pcs_ids) else "pcs",), f"duplicate id '{n}'")
    _check_unit_ids(r, pcs, bess, meters)

    prot_t = r.get(data, (), "protection", dict, {})
    r.unknown_keys(prot_t, ("protection",), {"period_s", "stale_after_s", "limits"})
    overrides = r.get(prot_t, ("protection",), "limits", dict, {})
    for key, value in overrides.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise r.fail(("protection", "limits", key), f"expected a number, got {value!r}")
    protection = ProtectionSettings(
        period_s=r.positive(prot_t, ("protection",), "period_s", float, 0.1),
        stale_after_s=r.positive(prot_t, ("protection",), "stale_after_s", float, 3.0),
        overrides={k: float(v) for k, v in overrides.items()},
    )
    sim_t = r.get(data, (), "simulator", dict, {})
    r.unknown_keys(sim_t, ("simulator",), {"enabled", "speed", "seed", "pcs_auto_island"})
    speed = r.positive(sim_t, ("simulator",), "speed", float, 1.0)
    if speed > 1000:
        raise r.fail(("simulator", "speed"), f"must be between 1 and 1000, got {speed}")
    simulator = SimulatorSettings(
        enabled=r.get(sim_t, ("simulator",), "enabled", bool, False),
        speed=speed,
        seed=r.get(sim_t, ("simulator",), "seed", int, 1),
        pcs_auto_island=r.get(sim_t, ("simulator",), "pcs_auto_island", bool, False),
    )
    return Site(name, links, pcs, bess, protection, simulator, source, meters)


def _link(r: _Reader, t: Any, path: tuple) -> Link:
    if not isinstance(t, dict):
        raise r.fail(path, "expected a table")
    r.unknown_keys(t, path, {"name", "kind", "address", "poll_period_s", "timeout_s", "comm_loss_periods",
                             "options"})
    kind = r.get(t, path, "kind", str)
    if kind not in LINK_KINDS:
        raise r.fail(path + ("kind",), f"unknown link kind '{kind}' (one of: {', '.join(LINK_KINDS)})")
    link = Link(
        name=r.get(t, path, "name", str),
        kind=kind,
        address=r.get(t, path, "address", str),
        poll_period_s=r.positive(t, path, "poll_period_s", float, 1.0),
        timeout_s=r.positive(t, path, "timeout_s", float, 0.5),
        comm_loss_periods=r.positive(t, path, "comm_loss_periods", int, 2),
        options=r.get(t, path, "options", dict, {}),
    )
    if kind == "modbus-tcp":
        try:
            link.host_port
        except ValueError:
            raise r.fail(path + ("address",), f"expected HOST:PORT, got {link.address!r}") from None
    return link


def _pcs(r: _Reader, t: Any, path: tuple, links: list[str]) -> Pcs:
    r.unknown_keys(t, path, {"id", "link", "unit_id", "rated_power_kw", "regmap"})
    pcs = Pcs(
        id=_ident(r, t, path),
        link=_link_ref(r, t, path, links),
        unit_id=r.positive(t, path, "unit_id", int, 1),
        rated_power_kw=r.positive(t, path, "rated_power_kw", float),
        regmap=r.get(t, path, "regmap", str, "pcs_generic"),
    )
    return pcs


def _meter(r: _Reader, t: Any, path: tuple, links: list[str]) -> Meter:
    r.unknown_keys(t, path, {"id", "link", "unit_id", "regmap"})
    return Meter(id=_ident(r, t, path), link=_link_ref(r, t, path, links),
                 unit_id=r.positive(t, path, "unit_id", int, 1), regmap=r.get(t, path, "regmap", str, "meter_generic"))


def _bess(r: _Reader, t: Any, path: tuple, links: list[str], pcs_ids: list[str]) -> Bess:
    r.unknown_keys(t, path, {"id", "chemistry", "cell_capacity_ah", "pcs", "modules_per_rack",
                             "cells_per_module", "racks"})
    bess_id = _ident(r, t, path)
    chemistry = r.get(t, path, "chemistry", str)
    if chemistry not in CHEMISTRIES:
        raise r.fail(path + ("chemistry",), f"unknown chemistry '{chemistry}' (one of: {', '.join(CHEMISTRIES)})")
    pcs = r.get(t, path, "pcs", str)
    if pcs not in pcs_ids:
        raise r.fail(path + ("pcs",), f"no [[pcs]] with id '{pcs}'")
    modules = r.positive(t, path, "modules_per_rack", int)
    cells = r.positive(t, path, "cells_per_module", int)
    racks = []
    for i, rt in enumerate(r.get(t, path, "racks", list)):
        rp = path + ("racks", i)
        if not isinstance(rt, dict):
            raise r.fail(rp, "expected an inline table like { link = \"bms1\", unit_id = 1 }")
        r.unknown_keys(rt, rp, {"link", "unit_id", "modules", "cells_per_module", "regmap"})
        racks.append(Rack(
            bess=bess_id, number=i + 1, link=_link_ref(r, rt, rp, links),
            unit_id=r.positive(rt, rp, "unit_id", int),
            modules=r.positive(rt, rp, "modules", int, modules),
            cells_per_module=r.positive(rt, rp, "cells_per_module", int, cells),
            regmap=r.get(rt, rp, "regmap", str, "rack_generic"),
        ))
    if not racks:
        raise r.fail(path + ("racks",), "a BESS needs at least one rack")
    return Bess(bess_id, chemistry, r.positive(t, path, "cell_capacity_ah", float), pcs, tuple(racks))


def _ident(r: _Reader, t: dict, path: tuple) -> str:
    ident = r.get(t, path, "id", str)
    try:
        points.validate(f"site.{ident}")
    except ValueError:
        raise r.fail(path + ("id",), f"'{ident}' is not a valid id (lower_snake_case, starts with a letter)") from None
    return ident


def _link_ref(r: _Reader, t: dict, path: tuple, links: list[str]) -> str:
    name = r.get(t, path, "link", str)
    if name not in links:
        raise r.fail(path + ("link",), f"no [[link]] named '{name}'")
    return name


def _check_unit_ids(r: _Reader, pcs: tuple[Pcs, ...], bess: tuple[Bess, ...], meters: tuple[Meter, ...]) -> None:
    seen: dict[tuple[str, int], str] = {}
    for i, p in enumerate(pcs):
        seen[(p.link, p.unit_id)] = p.path
    for i, m in enumerate(meters):
        if (m.link, m.unit_id) in seen:
            raise r.fail(("meter", i, "unit_id"), f"unit {m.unit_id} on link '{m.link}' is already used by "
                                                  f"{seen[(m.link, m.unit_id)]}")
        seen[(m.link, m.unit_id)] = m.path
    for bi, b in enumerate(bess):
        for ri, rack in enumerate(b.racks):
            key = (rack.link, rack.unit_id)
            if key in seen:
                raise r.fail(("bess", bi, "racks", ri, "unit_id"),
                             f"unit {rack.unit_id} on link '{rack.link}' is already used by {seen[key]}")
            seen[key] = rack.path
