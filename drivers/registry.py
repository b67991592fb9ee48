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


def rack_points(site: Site) -> dict[str, dict[str, int] | None]:
    """Rack path -> the points its link reports, each with its values per sample (1: a scalar; a vector:
    its length): a Modbus rack's register map; a CAN or BLE pack's cell data points (per-cell voltages,
    temperatures_c of the pack's sensors, per-cell temperatures when the CAN packs send those frames);
    None for a link kind without a driver. For app/protection/cell_source.py (CellSource.of)."""
    out: dict[str, dict[str, int] | None] = {}
    for r in site.racks:
        link = site.link(r.link)
        if link.kind in ("modbus-tcp", "modbus-rtu"):
            from drivers.modbus.regmap import load_regmap
            out[r.path] = {f.point: (r.modules if f.per_module else r.cell_count) if f.vector else 1
                           for f in load_regmap(r.regmap).fields}
        elif link.kind == "can":
            from drivers.can.layout import pack_points
            out[r.path] = pack_points(link, r)
        elif link.kind == "ble":
            from drivers.ble.config import ble_config
            out[r.path] = ble_config(link, [x for x in site.racks if x.link == link.name]).pack_points()
        else:
            out[r.path] = None
    return out
