"""Link-level fault injection on the simulator's Modbus links, for tests and the GUI's training mode.

Per link: drop (no answers, open TCP connections closed), latency, garbage bytes instead of answers,
CRC errors (RTU only), exception responses; per device: a BMS reboot (silent, then every register
zero, heartbeat restarting from zero). Any thread may call; the servers apply the faults to the next
request. The faults are on the wire: the driver sees them only as a real client would.
`LINK_FAULT_KINDS` writes the drop, latency, garbage and CRC faults as specs like the plant faults
(`link_latency:link=bms1,ms=500`) for the training mode (app/sim/training.py).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Mapping

from app.core.errors import UserError
from app.sim.plant_faults import FaultKind, spec_number, split_spec
from drivers.modbus.link_faults import LinkFaults
from drivers.modbus.rtu_server import ModbusRtuServerThread
from drivers.modbus.server import ModbusTcpServerThread

ModbusServer = ModbusTcpServerThread | ModbusRtuServerThread

LINK_FAULT_KINDS: dict[str, FaultKind] = {
    "link_drop": FaultKind("link", "the link stops answering; open TCP connections are closed"),
    "link_latency": FaultKind("link", "every answer on the link is delayed by `ms`", "ms", 500.0, "ms"),
    "link_garbage": FaultKind("link", "random bytes instead of each answer"),
    "link_crc": FaultKind("link", "each answer with a broken CRC (Modbus RTU links only)"),
}


@dataclass(frozen=True)
class LinkFault:
    """One parsed link fault. `str()` gives its spec back."""

    kind: str
    link: str
    value: float | None = None     # latency in ms for link_latency

    @property
    def target(self) -> str:
        return f"link {self.link}"

    def __str__(self) -> str:
        param = LINK_FAULT_KINDS[self.kind].param
        return f"{self.kind}:link={self.link}" + (f",{param}={self.value:g}" if param else "")


def parse_link_fault(spec: str, links: list[str]) -> LinkFault:
    """Parse `link_<kind>:link=NAME[,ms=N]` for one of `links`; UserError names what to fix."""
    kind, values = split_spec(spec, LINK_FAULT_KINDS)
    if values["link"] not in links:
        raise UserError(f"fault '{spec}': 'link' {values['link']} is not a simulated Modbus link "
                        f"(links: {', '.join(links) or 'none'})")
    fk = LINK_FAULT_KINDS[kind]
    return LinkFault(kind, values["link"], spec_number(spec, values, fk.param, fk.default) if fk.param else None)


class FaultInjector:
    """Faults for the Modbus servers in `servers` (link name -> server thread).

    `heartbeat_models` maps (link, unit id) to the plant object whose `heartbeat` a reboot resets;
    `lock` (the simulator's step lock) guards that write."""

    def __init__(self, servers: Mapping[str, object], heartbeat_models: Mapping[tuple[str, int], object] | None = None,
                 lock: threading.Lock | None = None) -> None:
        self._servers = {n: s for n, s in servers.items() if isinstance(s, (ModbusTcpServerThread, ModbusRtuServerThread))}
        self._models = dict(heartbeat_models or {})
        self._lock = lock or threading.Lock()

    @classmethod
    def for_simulator(cls, sim) -> "FaultInjector":
        """The injector for every Modbus link of an app.sim.simulator.Simulator."""
        models = {(r.link, r.unit_id): sim.plant.racks[r.path] for r in sim.site.racks}
        models.update({(p.link, p.unit_id): sim.plant.pcs[p.id] for p in sim.site.pcs})
        return cls(sim.servers, models, sim.lock)

    @property
    def links(self) -> list[str]:
        return sorted(self._servers)

    def faults(self, link: str) -> LinkFaults:
        return self._server(link).faults

    def _server(self, link: str) -> ModbusServer:
        try:
            return self._servers[link]
        except KeyError:
            raise UserError(f"no simulated Modbus link '{link}' (links: {', '.join(self.links) or 'none'})") from None

    def drop(self, link: str, on: bool = True) -> None:
        """Stop answering (and close open TCP connections); `on=False` answers again."""
        server = self._server(link)
        server.faults.drop = on
        if on and isinstance(server, ModbusTcpServerThread):
            server.drop_connections()

    def latency(self, link: str, ms: float) -> None:
        """Delay every answer by `ms` milliseconds (0 = none)."""
        if ms < 0:
            raise UserError(f"latency for link '{link}' must be >= 0 ms, not {ms}")
        self._server(link).faults.latency_s = ms / 1000.0

    def garbage(self, link: str, on: bool = True) -> None:
        """Send random bytes instead of each answer."""
        self._server(link).faults.garbage = on

    def crc_errors(self, link: str, on: bool = True) -> None:
        """Send each answer with a broken CRC (Modbus RTU links only: TCP frames carry no CRC)."""
        server = self._server(link)
        if not isinstance(server, ModbusRtuServerThread):
            raise UserError(f"link '{link}' is Modbus TCP: CRC errors exist only on Modbus RTU links")
        server.faults.crc_errors = on

    def exception(self, link: str, code: int = 4) -> None:
        """Answer every request with Modbus exception `code` (4 device failure, 6 busy; 0 = off)."""
        if not 0 <= code <= 255:
            raise UserError(f"Modbus exception code for link '{link}' must be 0..255, not {code}")
        self._server(link).faults.exception_code = code

    def bms_reboot(self, link: str, unit_id: int, seconds: float, silent_s: float = 0.0) -> None:
        """Reboot device `unit_id`: silent for `silent_s`, registers zero until `seconds`, heartbeat
        restarting from zero."""
        server = self._server(link)
        devices = server.devices.values() if isinstance(server.devices, dict) else server.devices
        device = next((d for d in devices if d.unit_id == unit_id), None)
        if device is None:
            raise UserError(f"link '{link}' has no unit id {unit_id}")
        model = self._models.get((link, unit_id))
        if model is not None:
            with self._lock:
                model.heartbeat = 0
        device.reboot(seconds, silent_s)

    def apply(self, fault: LinkFault, on: bool = True) -> None:
        """Set `fault` (`on`) or take it back."""
        match fault.kind:
            case "link_drop":
                self.drop(fault.link, on)
            case "link_latency":
                self.latency(fault.link, fault.value if on else 0.0)
            case "link_garbage":
                self.garbage(fault.link, on)
            case "link_crc":
                self.crc_errors(fault.link, on)

    def clear(self, link: str | None = None) -> None:
        """Remove the link faults of `link` (or of every link)."""
        for name in [link] if link else self.links:
            self._server(name).faults.clear()

    def active(self) -> dict[str, LinkFaults]:
        """Links with a fault set (for a training-mode panel)."""
        return {n: s.faults for n, s in self._servers.items() if s.faults.active}
