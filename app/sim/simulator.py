"""The plant simulator as a peer: steps the Plant and serves it over the site's links on loopback.

For every `modbus-tcp` link of the site file it starts a Modbus TCP server on that address with one
unit id per rack/PCS on the link, serving the complete image of its register map (resources/regmaps:
the generic maps' input registers, SunSpec 802/803/805 holding registers with their "SunS" marker,
model headers, scale factors and end model). Client writes (PCS setpoints, contactor commands, SunSpec
SetOp/StrSetCon; grid breaker, load feeder and PCS mode; balancing mask and timeout) go into the plant; the plant's
state is re-encoded after each step, with a balancing mask the BMS's timeout cleared.
For every `can` link it broadcasts the racks' Pylontech and per-cell frames (app/sim/can_endpoint.py)
on a virtual bus, served to other processes as socketcand on 127.0.0.1; every `modbus-rtu` link is served
on a pty pair, every `ble` link as a bumble GATT peripheral (JBD/JK/Daly) on the in-process radio or
HCI over TCP on loopback.
"""
from __future__ import annotations

import logging
import threading

import numpy as np

from app.core.clock import Clock
from app.core.site import Site
from app.sim.ble_endpoint import BleSimLink
from app.sim.can_endpoint import CanSimLink
from app.sim.plant import Plant, PcsModel, RackModel
from app.sim.register_points import apply_write, device_writes, served_values, setpoints
from drivers.modbus.regmap import TABLES, RegisterMap, load_regmap
from drivers.modbus.rtu_server import ModbusRtuServerThread, PtyLine
from drivers.modbus.server import ModbusTcpServerThread, RegisterDevice

log = logging.getLogger(__name__)


class _Endpoint:
    """Binds one plant object (rack, PCS, or the plant itself as the site meter) to its RegisterDevice:
    serves the map's complete image (app/sim/register_points.py values) and keeps what clients write."""

    def __init__(self, model: RackModel | PcsModel | Plant, regmap: RegisterMap, unit_id: int, cells: int,
                 cells_per_module: int | None = None) -> None:
        self.model, self.regmap, self.cells, self.cpm = model, regmap, cells, cells_per_module
        self.device = RegisterDevice(unit_id, regmap.table_size("input", cells, cells_per_module),
                                     regmap.table_size("holding", cells, cells_per_module), on_write=self._on_write)
        self._client_owned = {t: regmap.writable_registers(t, cells, cells_per_module) for t in TABLES}
        self._lock = threading.Lock()
        self._writes: list[tuple[str, object]] = []
        self._publish({**served_values(model), **setpoints(model)}, keep=False)

    def _on_write(self, unit_id: int, table: str, address: int, regs: np.ndarray) -> None:
        points = self.regmap.written_points(table, address, regs.size, self.cells, self.cpm)
        if points:
            values = self.regmap.decode({table: self.device.image(table)}, self.cells, self.cpm)
            with self._lock:
                self._writes += [(p, values[p]) for p in points if p in values]

    def apply_writes(self) -> None:
        """Called by the simulator thread: move client writes into the model."""
        with self._lock:
            writes, self._writes = self._writes, []
        for point, value in writes:
            apply_write(self.model, point, value)

    def publish(self) -> None:
        """Serve the model's present state; client-owned registers keep their written values unless the
        device has changed them itself (app/sim/register_points.py `device_writes`) and no client
        write of them is waiting to be applied."""
        own = device_writes(self.model)
        with self._lock:
            waiting = {p for p, _ in self._writes}
        own = {p: v for p, v in own.items() if p in self.regmap.by_point and p not in waiting}
        self._publish({**served_values(self.model), **own}, keep=True, rewritten=own)

    def _publish(self, values: dict[str, object], keep: bool, rewritten: dict[str, object] | None = None) -> None:
        for table, img in self.regmap.render(values, self.cells, self.cpm).items():
            kept = self._client_owned[table] if keep else None
            for f in (self.regmap.by_point[p] for p in rewritten or ()):
                if f.table == table:
                    kept = np.setdiff1d(kept, self.regmap.register_index(f, self.cells, self.cpm).ravel())
            self.device.publish(table, img, kept)


class Simulator:
    """Plant + protocol endpoints. `run(stop)` makes it a supervisor worker (steps at `step_s`)."""

    name = "simulator"

    def __init__(self, site: Site, clock: Clock, step_s: float = 0.2, seed: int | None = None) -> None:
        self.site = site
        self.clock = clock
        self.step_s = step_s
        self.plant = Plant(site, seed=site.simulator.seed if seed is None else seed, start_time_s=clock.time())
        self.lock = threading.Lock()      # held while stepping; take it to inject faults atomically
        self._endpoints: list[_Endpoint] = []
        self._servers: dict[str, ModbusTcpServerThread] = {}
        for link in site.links:
            if link.kind == "ble":
                self._servers[link.name] = BleSimLink(
                    link, [self.plant.racks[r.path] for r in site.racks if r.link == link.name], lock=self.lock)
                continue
            if link.kind == "can":
                self._servers[link.name] = CanSimLink(
                    link, [self.plant.racks[r.path] for r in site.racks if r.link == link.name], clock, lock=self.lock)
                continue
            if link.kind not in ("modbus-tcp", "modbus-rtu"):
                continue
            eps = [_Endpoint(self.plant.pcs[p.id], load_regmap(p.regmap), p.unit_id, 1)
                   for p in site.pcs if p.link == link.name]
            eps += [_Endpoint(self.plant, load_regmap(m.regmap), m.unit_id, 1)
                    for m in site.meters if m.link == link.name]
            eps += [_Endpoint(self.plant.racks[r.path], load_regmap(r.regmap), r.unit_id, r.cell_count,
                              r.cells_per_module) for r in site.racks if r.link == link.name]
            if link.kind == "modbus-rtu":
                self._servers[link.name] = ModbusRtuServerThread(PtyLine(link.address), [e.device for e in eps],
                                                                 f"sim-{link.name}")
            else:
                host, port = link.host_port
                self._servers[link.name] = ModbusTcpServerThread(host, port, [e.device for e in eps], f"sim-{link.name}")
            self._endpoints += eps
        for ep in self._endpoints:
            ep.publish()

    @property
    def servers(self) -> dict:
        """Link name -> its server thread (for app/sim/faults.py)."""
        return dict(self._servers)

    def replace_server(self, link: str, server) -> None:
        """Serve `link` with `server` instead of the plant (a capture replay, app/sim/replay.py);
        call before start_endpoints()."""
        if link not in self._servers:
            raise KeyError(f"the simulator serves no link '{link}'")
        self._servers[link] = server

    def start_endpoints(self, link: str | None = None) -> None:
        """Start serving every link (or only `link`); returns once they listen."""
        for name, server in self._servers.items():
            if link in (None, name) and not server.running:
                server.start()

    def stop_endpoints(self, link: str | None = None) -> None:
        """Stop serving every link (or only `link`): clients see the connection drop."""
        for name, server in self._servers.items():
            if link in (None, name):
                server.stop()

    def step(self, dt: float) -> None:
        with self.lock:
            for ep in self._endpoints:
                ep.apply_writes()
            self.plant.step(dt)
            for ep in self._endpoints:
                ep.publish()

    def run(self, stop: threading.Event) -> None:
        self.start_endpoints()
        try:
            last = self.clock.monotonic()
            while not self.clock.wait(stop, self.step_s):
                now = self.clock.monotonic()
                self.step(now - last)
                last = now
        finally:
            self.stop_endpoints()
