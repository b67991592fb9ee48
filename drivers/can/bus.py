"""Which python-can bus a `can` link opens: site-file options -> bus arguments -> an open bus.

Site keys of a `[[link]]` with `kind = "can"`: `address` = the channel (`can0`, `PCAN_USBBUS1`,
`/dev/ttyACM0` for slcan, any name for virtual), `options.interface` (socketcan, pcan, kvaser, slcan,
virtual, socketcand; default socketcan), `options.bitrate` (pcan/kvaser/slcan, default 500000),
`options.host` / `options.port` (socketcand; host default 127.0.0.1); `options.cell_temperature_frames`
is about the packs, not the bus (drivers/can/layout.py).
"""
from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Any

import can

from app.core.errors import ConfigError
from app.core.site import Link
from drivers.base import LinkError

INTERFACES = ("socketcan", "pcan", "kvaser", "slcan", "virtual", "socketcand")
BITRATE_INTERFACES = ("pcan", "kvaser", "slcan")    # the others take the bitrate from the OS/peer
OPTION_KEYS = ("interface", "bitrate", "host", "port", "cell_temperature_frames")
DEFAULT_BITRATE = 500_000                           # Pylontech/SMA low-voltage CAN


class _TcpSegmentationNotice(logging.Filter):
    """python-can's socketcand client (4.6) logs every TCP read that ends inside a message as a
    WARNING; that is ordinary TCP segmentation, not a fault, and would flood the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Got incomplete message")


logging.getLogger("can.interfaces.socketcand.socketcand").addFilter(_TcpSegmentationNotice())


@dataclass(frozen=True)
class BusConfig:
    """Validated python-can arguments of one link."""

    interface: str
    channel: str
    bitrate: int | None = None
    host: str | None = None
    port: int | None = None

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"interface": self.interface, "channel": self.channel}
        if self.bitrate is not None:
            out["bitrate"] = self.bitrate
        if self.interface == "socketcand":
            out.update(host=self.host, port=self.port)
        return out

    def describe(self) -> str:
        where = f" at {self.host}:{self.port}" if self.interface == "socketcand" else ""
        return f"{self.interface} channel {self.channel!r}{where}"


def bus_config(link: Link) -> BusConfig:
    """Validate `link.options`; ConfigError names the link and the key to fix."""
    opts = link.options
    where = f"link '{link.name}': options"
    for key in opts:
        if key not in OPTION_KEYS:
            raise ConfigError(f"{where}.{key}: unknown option for a can link (allowed: {', '.join(OPTION_KEYS)})")
    interface = opts.get("interface", "socketcan")
    if interface not in INTERFACES:
        raise ConfigError(f"{where}.interface: unknown CAN interface {interface!r} (one of: {', '.join(INTERFACES)})")
    if not link.address:
        raise ConfigError(f"link '{link.name}': address: give the CAN channel, e.g. \"can0\"")
    bitrate = opts.get("bitrate", DEFAULT_BITRATE)
    if not isinstance(bitrate, int) or isinstance(bitrate, bool) or bitrate <= 0:
        raise ConfigError(f"{where}.bitrate: expected a positive integer (bit/s), got {bitrate!r}")
    if interface != "socketcand":
        for key in ("host", "port"):
            if key in opts:
                raise ConfigError(f"{where}.{key}: only a socketcand link has a {key}")
        return BusConfig(interface, link.address, bitrate if interface in BITRATE_INTERFACES else None)
    host = opts.get("host", "127.0.0.1")
    port = opts.get("port")
    if not isinstance(host, str) or not host:
        raise ConfigError(f"{where}.host: expected a host name or address, got {host!r}")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise ConfigError(f"{where}.port: a socketcand link needs the server's TCP port (1..65535), got {port!r}")
    return BusConfig(interface, link.address, None, host, port)


def open_bus(config: BusConfig, timeout_s: float) -> can.BusABC:
    """Open the bus; LinkError when the interface or the peer is not there.

    For socketcand a plain TCP connect is tried first: python-can's client retries a refused connect
    for 10 s in a busy loop, which would stall the driver thread (and its shutdown) while the server
    is down."""
    if config.interface == "socketcand":
        try:
            with socket.create_connection((config.host, config.port), timeout=timeout_s):
                pass
        except OSError as exc:
            raise LinkError(f"socketcand {config.host}:{config.port}: {exc.strerror or exc}",
                            timeout=isinstance(exc, TimeoutError)) from None
    try:
        return can.Bus(**config.kwargs())
    except (can.CanError, OSError, ValueError, ImportError) as exc:
        raise LinkError(f"cannot open {config.describe()}: {exc}") from None
