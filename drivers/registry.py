"""Driver registry: link kind (site file) -> driver class, construction of a link's devices, and the
points each rack's link declares."""
from __future__ import annotations

from app.core.clock import Clock
from app.core.commands import CommandRouter
from app.core.databus import DataBus
from app.core.errors import ConfigError
from app.core.events import EventJournal
from app.core.site import Link, Site
from drivers.base import Driver


def build_driver(site: Site, link: Link, bus: DataBus, router: CommandRouter, journal: EventJournal,
                 clock: Clock) -> Driver:
    """The driver thread object for one link of the site (not started)."""
    if link.kind in ("modbus-tcp", "modbus-rtu"):
        from drivers.modbus.driver import ModbusDevice, ModbusDriver
        from drivers.modbus.regmap import load_regmap
        devices = [ModbusDevice(p.path, p.unit_id, load_regmap(p.regmap)) for p in site.pcs if p.link == link.name]
        devices += [ModbusDevice(m.path, m.unit_id, load_regmap(m.regmap)) for m in site.meters if m.link == link.name]
        devices += [ModbusDevice(r.path, r.unit_id, load_regmap(r.regmap), r.cell_count, r.cells_per_module)
                    for r in site.racks if r.link == link.name]
        return ModbusDriver(link, bus, router, journal, clock, devices)
    if link.kind == "can":
        from drivers.can.driver import CanDriver
        return CanDriver(link, bus, router, journal, clock, racks=[r for r in site.racks if r.link == link.name])
    if link.kind == "ble":
        from drivers.ble.driver import BleDriver
        return BleDriver(link, bus, router, journal, clock, racks=[r for r in site.racks if r.link == link.name])
    raise ConfigError(f"{site.source}: link '{link.name}': kind '{link.kind}' has no driver in this version "
                      f"(available: modbus-tcp, modbus-rtu, can, ble)")


def rack_points(site: Site) -> dict[str, frozenset[str] | None]:
    """Rack path -> the point names its link reports: a Modbus rack's register map points; None for CAN
    and BLE racks (their decoders carry per-cell vectors). For the protection thread (CellSource)."""
    from drivers.modbus.regmap import load_regmap
    kinds = {link.name: link.kind for link in site.links}
    return {r.path: frozenset(f.point for f in load_regmap(r.regmap).fields)
            if kinds.get(r.link) in ("modbus-tcp", "modbus-rtu") else None for r in site.racks}
