"""The simulator's end of one `can` link, whatever it sends: a python-can virtual bus, served to other
processes by a socketcand server on loopback, and a sender thread.

The frames go on channel = link.address for `interface = "virtual"` (a driver of the same process
opens the same in-process channel), or on a private channel served by socketcand on
options.host:options.port under the name link.address for `interface = "socketcand"`. Subclasses
(the plant's racks, app/sim/can_endpoint.py; a capture replay, app/sim/can_replay.py) implement
`_send(bus)`, which runs on the `<name>` thread until `self._stop` is set.
"""
from __future__ import annotations

import abc
import threading

import can

from app.core.errors import ConfigError
from app.core.site import Link
from app.sim.socketcand_server import SocketcandServer


class CanPeerLink(abc.ABC):
    """start()/stop()/running like the Modbus server threads."""

    def __init__(self, link: Link, name: str) -> None:
        interface = link.options.get("interface", "socketcan")
        if interface not in ("virtual", "socketcand"):
            raise ConfigError(f"link '{link.name}': options.interface: the simulator serves a can link only "
                              f"as \"virtual\" or \"socketcand\", not {interface!r}")
        self.link, self.name = link, name
        self.server: SocketcandServer | None = None
        if interface == "socketcand":
            self.channel = f"esms-sim-{link.name}"
            port = link.options.get("port")
            if not isinstance(port, int):
                raise ConfigError(f"link '{link.name}': options.port: a socketcand link needs a TCP port")
            self.server = SocketcandServer(link.options.get("host", "127.0.0.1"), port,
                                           {link.address: {"interface": "virtual", "channel": self.channel}},
                                           name=f"{name}-socketcand")
        else:
            self.channel = link.address
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def start(self) -> None:
        """Start sending (and serving); returns once the server listens."""
        if self.running:
            return
        bus = can.Bus(interface="virtual", channel=self.channel)
        if self.server is not None:
            try:
                self.server.start()
            except OSError:
                bus.shutdown()
                raise
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(bus,), name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sending and serving: a connected driver sees its link go silent / closed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.server is not None:
            self.server.stop()

    def _run(self, bus: can.BusABC) -> None:
        try:
            self._send(bus)
        finally:
            bus.shutdown()

    @abc.abstractmethod
    def _send(self, bus: can.BusABC) -> None:
        """Send frames on `bus` until `self._stop` is set (the bus is shut down afterwards)."""
