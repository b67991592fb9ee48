"""BLE BMS driver: one `ble` link = one pack (JBD, JK02 or Daly) = one rack of the site.

`BleDriver` is a drivers.base.Driver: its own `link-<name>` thread runs open/poll/close, and every BLE
operation is handed to the one shared BLE loop thread (drivers/ble/loop.py) with a timeout, so any
number of packs share one asyncio loop. open() connects (scanning first when the address is a name),
subscribes and starts the protocol Session; poll() runs one Session cycle and decodes its messages with
drivers.bms on the link thread. A dropped connection, a missing answer or a transport error raises
LinkError, so the base class reconnects with backoff and marks the points COMM_LOST after
`comm_loss_periods` missed periods; corrupt notifications are counted in LinkStats.errors and dropped.

Points (`{rack}` = site.<bess>.rackNN), as the protocol's frames carry them: pack_voltage_v, current_a
(+ = charging), soc_pct, cell_voltages_v (float32, trimmed to the rack's configured cell count; slots
the pack does not report are NaN and counted as an error), cell_count (as the BMS reports it),
temperatures_c (float32, options.temperature_sensors long like the cells: Daly's padding slots trimmed,
missing probes NaN and counted as an error),
remaining_capacity_ah, full/design_capacity_ah, soh_pct, cycle_count, mosfet_temperature_c,
charge_fet_on, discharge_fet_on, balancing_active, balancing_cells and alarms (comma-separated, "" when
none), min/max_cell_voltage_v, min/max_cell_number, min/max_temperature_c. Commands: only the
balancing command (app/core/balancing_command.py), and only to a JK pack: its balancer switch goes on
while any cell is to be balanced and off for none (the JK balancer itself picks the cells; the switch
is not read back). JBD and Daly packs reject it as not supported; every other command is rejected.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from app.core import balancing_command
from app.core.commands import CommandStatus, PendingCommand
from app.core.site import Rack
from drivers import bms
from drivers.base import Driver, LinkError
from drivers.ble.config import BleConfig, ble_config
from drivers.ble.loop import BLE_LOOP
from drivers.ble.session import SESSIONS, Session
from drivers.ble.transport import BleakTransport, BleTransport, BleTransportError, BumbleTransport

log = logging.getLogger(__name__)

_JOINED = ("alarms", "balancing_cells")        # lists published as one comma-separated string
CLOSE_TIMEOUT_S = 3.0


class BleDriver(Driver):
    """Polls the BMS of `racks` (exactly one Rack bound to `link`) over Bluetooth LE."""

    def __init__(self, link, bus, router, journal, clock, racks: Sequence[Rack]) -> None:
        self.config: BleConfig = ble_config(link, list(racks))
        super().__init__(link, bus, router, journal, clock, [self.config.rack.path])
        self._transport: BleTransport | None = None
        self._session: Session | None = None
        self._points: dict[str, str] = {}

    # --- thread ----------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """The base loop, holding the shared BLE loop for as long as this link runs."""
        BLE_LOOP.acquire()
        try:
            super().run(stop)
        finally:
            BLE_LOOP.release()

    @property
    def session(self) -> Session | None:
        """The live protocol session (None while disconnected); for statistics."""
        return self._session

    # --- Driver interface -------------------------------------------------------------------
    def open(self) -> None:
        transport: BleTransport = BleakTransport() if self.config.transport == "bleak" else BumbleTransport(
            self.config.hci)
        self._transport = transport
        budget = self.config.connect_timeout_s * (2 if self.config.by_name else 1) + 2 * self.link.timeout_s + 1.0
        try:
            self._session = BLE_LOOP.run(self._connect(transport), budget)
        except TimeoutError as exc:
            self.close()
            raise LinkError(f"{self.config.describe()}: {exc}", timeout=True) from None
        except BleTransportError as exc:
            self.close()
            raise LinkError(f"{self.config.describe()}: {exc}") from None
        except LinkError:
            self.close()
            raise

    async def _connect(self, transport: BleTransport) -> Session:
        cfg = self.config
        address = cfg.address
        if cfg.by_name:
            seen = await transport.scan(cfg.connect_timeout_s, until=lambda adv: adv.name == cfg.address)
            named = [adv.address for adv in seen if adv.name == cfg.address]
            if not named:
                raise BleTransportError(f"no pack advertising the name {cfg.address!r} "
                                        f"within {cfg.connect_timeout_s:g} s")
            address = named[0]
        await asyncio.wait_for(transport.connect(address, cfg.connect_timeout_s), cfg.connect_timeout_s + 1.0)
        session = SESSIONS[cfg.protocol](cfg, transport, self.link.timeout_s, self._frame_error, self.monitor.frame)
        await session.start()
        return session

    def close(self) -> None:
        transport, self._transport, self._session = self._transport, None, None
        if transport is None:
            return
        try:
            BLE_LOOP.run(transport.disconnect(), CLOSE_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - close never raises
            log.warning("%s: disconnect: %s", self.name, exc)

    def poll(self) -> dict[str, Any]:
        session = self._session
        if session is None:
            raise LinkError(f"{self.config.describe()}: not connected")
        try:
            cycle = BLE_LOOP.run(session.cycle(), session.budget_s)
        except TimeoutError as exc:
            raise LinkError(f"{self.config.describe()}: {exc}", timeout=True) from None
        except BleTransportError as exc:
            raise LinkError(f"{self.config.describe()}: {exc}") from None
        values = self._decode(cycle.messages)
        if not values:
            raise LinkError(f"{self.config.describe()}: no frame of the cycle decoded")
        self.stats.ok(cycle.latency_s, self.clock.time(), frames=cycle.frames)
        return values

    def execute(self, pending: PendingCommand) -> None:
        """The balancing command to a JK pack (see the module docstring); everything else is rejected."""
        cmd, protocol = pending.command, self.config.protocol
        if cmd.target != f"{self.config.rack.path}.{balancing_command.POINT}" or cmd.action != "write":
            pending.reply(CommandStatus.REJECTED, f"{cmd.target}: link '{self.link.name}' is a read-only BLE BMS "
                                                  f"link (the balancing command aside)")
            return
        if protocol != "jk":
            pending.reply(CommandStatus.REJECTED, f"{cmd.target}: {protocol} {balancing_command.NOT_SUPPORTED}")
            return
        try:
            on = bool(balancing_command.cell_numbers(cmd.value, self.config.rack.cell_count))
        except (TypeError, ValueError) as exc:
            pending.reply(CommandStatus.REJECTED, f"{cmd.target}: {exc}")
            return
        try:
            BLE_LOOP.run(self._session.set_balancer(on), self.link.timeout_s + 1.0)
        except TimeoutError as exc:
            raise LinkError(f"{self.config.describe()}: {exc}", timeout=True) from None
        except BleTransportError as exc:
            raise LinkError(f"{self.config.describe()}: {exc}") from None
        pending.reply(CommandStatus.ACCEPTED, f"{cmd.target}: JK balancer switch {'on' if on else 'off'} "
                                              f"(the BMS picks the cells; not read back)")

    # --- decoding (link thread) ---------------------------------------------------------------
    def _frame_error(self, reason: str) -> None:
        self.stats.error(f"{self.link.name}: {reason}")

    def _decode(self, messages: list[bytes]) -> dict[str, Any]:
        cfg = self.config
        fields: dict[str, Any] = {}
        for raw in messages:
            try:
                fields.update(bms.decode(cfg.protocol, raw, variant=cfg.variant))
            except bms.DecodeError as exc:
                self.stats.error(f"{cfg.rack.path}: {exc}")
        values: dict[str, Any] = {}
        for name, value in fields.items():
            if name == "cell_voltages_v":
                value = self._fit(value, cfg.rack.cell_count, "cells", extra_ok=True)
            elif name == "temperatures_c":
                value = self._fit(value, cfg.temperature_sensors, "temperature sensors",
                                  extra_ok=cfg.protocol == "daly")
            elif name in _JOINED:
                value = ",".join(str(v) for v in value)
            values[self._point(name)] = value
        return values

    def _fit(self, values: list[float], wanted: int, what: str, extra_ok: bool) -> np.ndarray:
        """The first `wanted` values as float32, NaN for slots the pack does not report (an error); more
        than `wanted` is an error too unless `extra_ok` (cells past the configured ones, Daly's padding)."""
        out = np.full(wanted, np.nan, dtype=np.float32)
        out[: min(wanted, len(values))] = values[:wanted]
        if len(values) < wanted or (len(values) > wanted and not extra_ok):
            self.stats.error(f"{self.config.rack.path}: the BMS reports {len(values)} {what}, the site file "
                             f"configures {wanted}")
        return out

    def _point(self, name: str) -> str:
        point = self._points.get(name)
        if point is None:
            point = self._points[name] = f"{self.config.rack.path}.{name}"
        return point
