"""Which BMS a `ble` link reaches and how: site-file options -> a validated BleConfig.

Site keys of a `[[link]]` with `kind = "ble"` (one pack, so one rack, per link):
  address        the pack's BLE address (``AA:BB:CC:DD:EE:FF``) or its advertised name (found by scanning)
  options.protocol            ``jbd`` | ``jk`` | ``daly`` (required)
  options.variant             ``jk02_24s`` | ``jk02_32s`` (required for jk)
  options.transport           ``bleak`` (default: the OS Bluetooth stack) | ``bumble``
  options.host / options.port bumble only: the simulator's HCI-over-TCP server on loopback; without a
                              port the bumble central joins the in-process air of this process
  options.connect_timeout_s   connect + discovery budget (default 10 s)
  options.temperature_sensors temperature probes the pack reports (default: one per module, at most one
                              per cell); JBD and Daly send that many, a JK02 frame always two (T1, T2).
                              The driver publishes exactly that many (temperatures_c), and protection
                              checks them as the pack's sensors (app/protection/cell_source.py)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from app.core.errors import ConfigError
from app.core.site import Link, Rack

PROTOCOLS = ("jbd", "jk", "daly")
TRANSPORTS = ("bleak", "bumble")
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
OPTION_KEYS = ("protocol", "variant", "transport", "host", "port", "connect_timeout_s", "temperature_sensors")
MAX_CELLS = {"jbd": 32, "jk": 32, "daly": 48}     # JBD: balance bits, JK: 32S frame, Daly: 16 frames x 3
JK_SLOTS = {"jk02_24s": 24, "jk02_32s": 32}
JK_PROBES = 2
_MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")


@dataclass(frozen=True)
class BleConfig:
    """Validated settings of one `ble` link and its rack."""

    link: str
    address: str
    protocol: str
    variant: str | None
    transport: str
    host: str
    port: int | None
    connect_timeout_s: float
    rack: Rack
    temperature_sensors: int

    @property
    def by_name(self) -> bool:
        """The address is an advertised name, not a BLE address: scan for it before connecting."""
        return not _MAC.match(self.address)

    @property
    def hci(self) -> str | None:
        """bumble HCI transport spec, or None for the in-process air."""
        return None if self.port is None else f"tcp-client:{self.host}:{self.port}"

    def describe(self) -> str:
        where = f" via HCI {self.host}:{self.port}" if self.port is not None else ""
        return f"{self.protocol} pack {self.address} ({self.transport}{where})"

    def pack_points(self) -> dict[str, int]:
        """The cell data points the pack's rack reports, with their lengths (drivers.registry.rack_points)."""
        return {"cell_voltages_v": self.rack.cell_count, "temperatures_c": self.temperature_sensors}


def ble_config(link: Link, racks: list[Rack] | tuple[Rack, ...]) -> BleConfig:
    """Validate `link.options` and the racks bound to it; ConfigError names the key to fix."""
    where = f"link '{link.name}'"
    opts = link.options
    for key in opts:
        if key not in OPTION_KEYS:
            raise ConfigError(f"{where}: options.{key}: unknown option for a ble link "
                              f"(allowed: {', '.join(OPTION_KEYS)})")
    if len(racks) != 1:
        raise ConfigError(f"{where}: a ble link reaches one pack, so exactly one rack must use it "
                          f"({len(racks)} do: give each pack its own [[link]])")
    rack = racks[0]
    if not link.address.strip():
        raise ConfigError(f"{where}: address: give the pack's BLE address (AA:BB:CC:DD:EE:FF) or its name")
    protocol = opts.get("protocol")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"{where}: options.protocol: expected one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    variant = opts.get("variant")
    if protocol == "jk":
        if variant not in JK_SLOTS:
            raise ConfigError(f"{where}: options.variant: a jk link needs {' or '.join(JK_SLOTS)}, got {variant!r}")
        if rack.cell_count > JK_SLOTS[variant]:
            raise ConfigError(f"{rack.path}: {rack.cell_count} cells do not fit the {JK_SLOTS[variant]} slots of "
                              f"{variant} on link '{link.name}'")
    elif variant is not None:
        raise ConfigError(f"{where}: options.variant: only a jk link has a variant")
    if rack.cell_count > MAX_CELLS[protocol]:
        raise ConfigError(f"{rack.path}: {rack.cell_count} cells exceed the {MAX_CELLS[protocol]} a {protocol} "
                          f"BMS reports (link '{link.name}')")
    transport = opts.get("transport", "bleak")
    if transport not in TRANSPORTS:
        raise ConfigError(f"{where}: options.transport: expected bleak or bumble, got {transport!r}")
    host = opts.get("host", "127.0.0.1")
    port = opts.get("port")
    if transport == "bleak" and ("host" in opts or "port" in opts):
        raise ConfigError(f"{where}: options.host/port: only a bumble link has an HCI server address")
    if host not in LOOPBACK_HOSTS:
        raise ConfigError(f"{where}: options.host: bumble's HCI transport is served on loopback only "
                          f"(127.0.0.1 or ::1), not {host!r}")
    if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536):
        raise ConfigError(f"{where}: options.port: expected a TCP port number, got {port!r}")
    timeout = opts.get("connect_timeout_s", 10.0)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise ConfigError(f"{where}: options.connect_timeout_s: expected a positive number, got {timeout!r}")
    sensors = opts.get("temperature_sensors", JK_PROBES if protocol == "jk" else rack.modules)
    if not isinstance(sensors, int) or isinstance(sensors, bool) or not 1 <= sensors <= 32:
        raise ConfigError(f"{where}: options.temperature_sensors: expected an integer 1..32, got {sensors!r}")
    if protocol == "jk" and sensors != JK_PROBES:
        raise ConfigError(f"{where}: options.temperature_sensors: a JK02 frame carries {JK_PROBES} probes (T1, T2), "
                          f"not {sensors}")
    if sensors > rack.cell_count:
        raise ConfigError(f"{where}: options.temperature_sensors: {sensors} probes for the {rack.cell_count} cells "
                          f"of {rack.path}: at most one per cell")
    return BleConfig(link.name, link.address.strip(), protocol, variant, transport, host, port, float(timeout),
                     rack, sensors)
