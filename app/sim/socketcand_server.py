"""A socketcand-protocol TCP server on loopback that bridges python-can channels (raw mode).

Speaks the ASCII protocol of linux-can/socketcand (doc/protocol.md) as far as a raw-mode client needs:
`< hi >` on connect; `< open NAME >` -> `< ok >` (or `< error could not open bus >` and the
connection is closed); `< rawmode >` -> `< ok >`, then every frame on the bridged channel goes out
as `< frame ID SEC.USEC DATA >` (ID %03X or %08X, DATA %02X per byte, no spaces) and error frames as
`< error CLASS SEC.USEC >`; `< send ID LEN B0 .. >` puts a frame on the channel (in BCM and raw
mode; a malformed send is ignored, as socketcand does); `< echo >` is echoed; `< bcmmode >` -> `< ok >`
stops the frame stream. The BCM jobs (add/update/delete/filter/subscribe), control and ISO-TP modes
are not implemented: they get `< error ... >`. Remote frames are not forwarded (socketcand neither).

Each connection opens its own python-can bus on the bridged channel (normally a `virtual` channel
the simulator's CAN endpoint sends on), so python-can's `socketcand` interface in another thread or
process sees the simulator's frames: `can.Bus(interface="socketcand", host="127.0.0.1", port=P,
channel="can0")`. Threads: `<name>` accepts; per connection `<name>-cN-rx` reads commands and
`<name>-cN-tx` forwards frames.
"""
from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

import can

from app.core.errors import ConfigError

log = logging.getLogger(__name__)

ACCEPT_POLL_S = 0.1
RAW_SETTLE_S = 0.05   # python-can's client reads the `< ok >` of `< rawmode >` with one recv() and
#                       compares it exactly: frames start this long after that reply
BATCH = 64            # frames per TCP write at most


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def format_frame(msg: can.Message) -> str:
    """One received frame in socketcand raw-mode syntax."""
    ts = msg.timestamp
    sec = int(ts)
    usec = min(int(round((ts - sec) * 1e6)), 999_999)
    if msg.is_error_frame:
        return f"< error {msg.arbitration_id & 0x1FFFFFFF:03X} {sec}.{usec:06d} >"
    can_id = f"{msg.arbitration_id:08X}" if msg.is_extended_id else f"{msg.arbitration_id:03X}"
    return f"< frame {can_id} {sec}.{usec:06d} {bytes(msg.data[:msg.dlc]).hex().upper()} >"


def parse_send(words: list[str]) -> can.Message | None:
    """`send ID LEN B0 ..` (words without the brackets) -> Message, None when malformed."""
    try:
        can_id, length = int(words[1], 16), int(words[2], 16)
        data = bytes(int(b, 16) for b in words[3:])
    except (IndexError, ValueError):
        return None
    extended = len(words[1]) == 8
    if length > 8 or len(data) != length or can_id > (0x1FFFFFFF if extended else 0x7FF):
        return None
    return can.Message(arbitration_id=can_id, is_extended_id=extended, data=data, dlc=length)


class _Connection:
    """One client: the command reader runs on its own thread, frames go out from a second one."""

    def __init__(self, server: "SocketcandServer", sock: socket.socket, number: int) -> None:
        self.server, self.sock = server, sock
        self.name = f"{server.name}-c{number}"
        self.closed = threading.Event()
        self._send_lock = threading.Lock()
        self._bus: can.BusABC | None = None
        self._raw_from: float | None = None      # monotonic time from which frames are forwarded
        self._tx: threading.Thread | None = None
        self.rx = threading.Thread(target=self._read, name=f"{self.name}-rx", daemon=True)

    def start(self) -> None:
        self.rx.start()

    def close(self) -> None:
        """Called from any thread: drop the connection (the rx thread cleans up)."""
        self.closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _write(self, text: str) -> None:
        with self._send_lock:
            self.sock.sendall(text.encode("ascii"))

    def _read(self) -> None:
        buffer = ""
        try:
            self._write("< hi >")
            while not self.closed.is_set():
                chunk = self.sock.recv(4096)
                if not chunk:
                    break
                buffer += chunk.decode("ascii", errors="replace")
                while (end := buffer.find(">")) != -1:
                    start = buffer.find("<")
                    words = buffer[start + 1:end].split() if 0 <= start < end else []
                    buffer = buffer[end + 1:]
                    if words and not self._command(words):
                        return
                if len(buffer) > 4096:                  # no '>' in sight: not our protocol
                    return
        except OSError:
            pass
        finally:
            self.closed.set()
            if self._tx is not None:
                self._tx.join()
            if self._bus is not None:
                self._bus.shutdown()
            self.sock.close()

    def _command(self, words: list[str]) -> bool:
        """Handle one command; False ends the connection."""
        verb = words[0]
        if self._bus is None:
            if verb != "open" or len(words) != 2:
                self._write("< error unknown command >")
                return True
            channel = self.server.channels.get(words[1])
            if channel is None:
                self._write("< error could not open bus >")
                return False
            try:
                self._bus = can.Bus(**channel)
            except (can.CanError, OSError, ValueError) as exc:
                log.error("%s: cannot open %s: %s", self.name, channel, exc)
                self._write("< error could not open bus >")
                return False
            self._tx = threading.Thread(target=self._forward, name=f"{self.name}-tx", daemon=True)
            self._tx.start()
            self._write("< ok >")
        elif verb == "send":
            msg = parse_send(words)
            if msg is None:
                log.warning("%s: malformed send ignored: %s", self.name, " ".join(words))
            else:
                try:
                    self._bus.send(msg)
                except can.CanError as exc:
                    log.warning("%s: send failed: %s", self.name, exc)
        elif verb == "echo":
            self._write("< echo >")
        elif verb == "rawmode":
            self._write("< ok >")
            self._raw_from = time.monotonic() + RAW_SETTLE_S
        elif verb == "bcmmode":
            self._raw_from = None
            self._write("< ok >")
        else:
            self._write(f"< error {verb} is not supported by this server (raw mode only) >")
        return True

    def _forward(self) -> None:
        bus = self._bus
        try:
            while not self.closed.is_set():
                msg = bus.recv(0.05)
                if msg is None:
                    continue
                lines = []
                while msg is not None:
                    raw_from = self._raw_from
                    if raw_from is not None and time.monotonic() >= raw_from and not msg.is_remote_frame:
                        lines.append(format_frame(msg))
                    msg = bus.recv(0) if len(lines) < BATCH else None
                if lines:
                    self._write("".join(lines))
        except (OSError, can.CanError):
            self.close()


class SocketcandServer:
    """socketcand server on a loopback address. `channels` maps a socketcand bus name (what the
    client opens, e.g. "can0") to the python-can Bus arguments of the channel it bridges, e.g.
    {"can0": {"interface": "virtual", "channel": "sim-bms1"}}. Port 0 picks a free port (`port`)."""

    def __init__(self, host: str, port: int, channels: Mapping[str, Mapping[str, Any]],
                 name: str = "socketcand") -> None:
        if not _loopback(host):
            raise ConfigError(f"socketcand server address {host!r}: the simulator serves only on loopback "
                              f"(127.0.0.1 or ::1)")
        self.host, self.port, self.name = host, port, name
        self.channels = {bus: dict(args) for bus, args in channels.items()}
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._connections: list[_Connection] = []
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def start(self) -> None:
        """Listen; returns once connections are accepted. OSError when the port is taken."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
            listener.listen()
        except OSError:
            listener.close()
            raise
        listener.settimeout(ACCEPT_POLL_S)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop.clear()
        self._thread = threading.Thread(target=self._accept, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and drop every connection (clients see the connection close)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        for conn in connections:
            conn.rx.join()

    def _accept(self) -> None:
        number = 0
        try:
            while not self._stop.is_set():
                try:
                    sock, _ = self._listener.accept()
                except TimeoutError:
                    continue
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                number += 1
                conn = _Connection(self, sock, number)
                with self._lock:
                    self._connections = [c for c in self._connections if not c.closed.is_set()]
                    self._connections.append(conn)
                conn.start()
        finally:
            self._listener.close()
            self._listener = None
