"""`sim --replay LINK=CAPTURE`: the simulator serves a link of the site from a capture of its raw
traffic instead of the plant, so a field capture becomes a regression test. Per link kind:

* can: a candump log (app/sim/can_replay.py), on the link's virtual or socketcand bus, with the
  recorded timing divided by `speed`, once or in a `loop`;
* ble: a raw-frame capture (app/sim/ble_replay.py), the pack answering each write as recorded;
* modbus-tcp / modbus-rtu: a Modbus capture (drivers/modbus/replay.py) on the link's address (an RTU
  link's address becomes the pty the driver opens).
"""
from __future__ import annotations

from pathlib import Path

from app.core.errors import UserError
from app.core.site import Link, Site
from app.sim.ble_replay import ble_replay_link
from app.sim.can_replay import CanReplayLink
from app.sim.simulator import Simulator
from drivers.modbus.replay import ModbusReplayServerThread, ModbusRtuReplayThread
from drivers.modbus.rtu_server import PtyLine


def parse_replay(spec: str, site: Site) -> tuple[Link, Path]:
    """`LINK=CAPTURE` -> (the site's link, the capture file); UserError names what to fix."""
    name, sep, capture = spec.partition("=")
    if not sep or not name or not capture:
        raise UserError(f"--replay {spec!r}: expected LINK=CAPTURE, e.g. bms1=field-capture.log")
    link = next((lk for lk in site.links if lk.name == name), None)
    if link is None:
        raise UserError(f"--replay {spec!r}: {site.source} has no [[link]] named {name!r} "
                        f"(links: {', '.join(lk.name for lk in site.links)})")
    if not Path(capture).is_file():
        raise UserError(f"--replay {spec!r}: no capture file {capture}")
    return link, Path(capture)


def replay_server(site: Site, link: Link, capture: Path, speed: float = 1.0, loop: bool = False):
    """The server thread replaying `capture` as the peer of `link` (not started)."""
    name = f"replay-{link.name}"
    if link.kind == "can":
        return CanReplayLink(link, capture, speed, loop)
    if link.kind == "ble":
        return ble_replay_link(link, [r for r in site.racks if r.link == link.name], capture, speed)
    if link.kind == "modbus-tcp":
        host, port = link.host_port
        return ModbusReplayServerThread(capture, host, port, name)
    if link.kind == "modbus-rtu":
        return ModbusRtuReplayThread(PtyLine(link.address), capture, name)
    raise UserError(f"--replay: link '{link.name}' is of kind {link.kind}, which has no peer to replay")


def install_replays(sim: Simulator, specs: list[str], speed: float = 1.0, loop: bool = False) -> dict[str, Path]:
    """Serve each `LINK=CAPTURE` of `specs` from its capture; returns link name -> capture."""
    if not speed > 0:
        raise UserError(f"--replay-speed {speed:g}: expected a positive factor (2 = twice as fast)")
    replays: dict[str, Path] = {}
    for spec in specs:
        link, capture = parse_replay(spec, sim.site)
        if link.name in replays:
            raise UserError(f"--replay {spec!r}: link '{link.name}' is replayed twice")
        sim.replace_server(link.name, replay_server(sim.site, link, capture, speed, loop))
        replays[link.name] = capture
    return replays
