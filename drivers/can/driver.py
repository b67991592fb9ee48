"""CAN BMS driver thread: listens (never polls) to Pylontech/SMA frames and this project's per-cell
frames of the packs bound to one `can` link, and publishes them as canonical rack points.

One poll = one listening window of `poll_period_s`: frames are received on the driver thread
(`bus.recv` with a short timeout) until the window ends, decoded with drivers.bms.decode("pylon-can")
and cantools (cell frames, resources/dbc), and the latest value of every field is returned. A window
without a single frame raises LinkError, so the base class counts it as a missed period (COMM_LOST
after `comm_loss_periods` silent windows) and reopens the bus; poll_period_s must therefore be at least
the BMS's broadcast cycle (1 s for a Pylontech pack). Error frames and frames that do not decode are
counted in LinkStats.errors and dropped; frames of other nodes (unknown ids, extended ids, remote
frames) are counted in `ignored_frames`. A socketcand server that closes the connection is noticed
the same way: python-can's socketcand client reports end-of-stream as "no frame yet" (python-can 4.6).

Points per rack (`{rack}` = site.<bess>.rackNN): pack_voltage_v, current_a, soc_pct, soh_pct,
temperatures_c (1-element vector), charge_voltage_limit_v, charge_current_limit_a,
discharge_current_limit_a, discharge_voltage_limit_v, charge_enable, discharge_enable,
force_charge_request, manufacturer, alarms (comma-separated canonical codes, "" when none),
cell_voltages_v, cell_temperatures_c (float32 vectors, NaN where the BMS flags a slot invalid; no
cell_temperatures_c on a link with `options.cell_temperature_frames = false`, whose 0x361 frames are
ignored) and cell_count (with each complete voltage vector). Commands: none; a BMS on this bus only broadcasts, so
every command to a rack of the link is rejected (the balancing command as not supported).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import can
from cantools.database.errors import DecodeError as CantoolsDecodeError

from app.core import balancing_command
from app.core.commands import CommandStatus, PendingCommand
from app.core.errors import ConfigError
from app.core.site import Rack
from drivers import bms
from drivers.base import Driver, LinkError
from drivers.can.assembler import CellVectorAssembler
from drivers.can.bus import BusConfig, bus_config, open_bus
from drivers.can.candump import frame_text
from drivers.can.layout import (CELL_TEMPERATURES, MAX_CELLS, MAX_UNIT_ID, PYLON_IDS, CellFrame, cell_frames,
                                cell_temperature_frames, decode_cell_frame, split_id)

RECV_SLICE_S = 0.05      # longest single bus.recv wait: the window end is checked at least this often


@dataclass
class _Pack:
    """Receive state of one rack on the link."""

    rack: Rack
    assemblers: dict[int, CellVectorAssembler] = field(init=False)
    points: dict[str, str] = field(init=False)        # field name -> point name, filled on first use

    def __post_init__(self) -> None:
        self.assemblers = {base: CellVectorAssembler(self.rack.cell_count) for base in cell_frames()}
        self.points = {}

    def point(self, name: str) -> str:
        point = self.points.get(name)
        if point is None:
            point = self.points[name] = f"{self.rack.path}.{name}"
        return point


class CanDriver(Driver):
    """Listens to the BMS frames of `racks` (site Rack objects bound to `link`) on one CAN bus."""

    def __init__(self, link, bus, router, journal, clock, racks: Sequence[Rack]) -> None:
        self.config: BusConfig = bus_config(link)
        if not racks:
            raise ConfigError(f"link '{link.name}': no rack uses this can link")
        for rack in racks:
            if not 1 <= rack.unit_id <= MAX_UNIT_ID:
                raise ConfigError(f"{rack.path}: unit_id {rack.unit_id} on can link '{link.name}' must be "
                                  f"1..{MAX_UNIT_ID} (it selects the pack's CAN id window)")
            if rack.cell_count > MAX_CELLS:
                raise ConfigError(f"{rack.path}: {rack.cell_count} cells do not fit the CAN cell frames "
                                  f"(at most {MAX_CELLS} per rack)")
        super().__init__(link, bus, router, journal, clock, [r.path for r in racks])
        self._packs = {r.unit_id: _Pack(r) for r in racks}
        self._cells: dict[int, CellFrame] = {base: spec for base, spec in cell_frames().items()
                                             if base != CELL_TEMPERATURES or cell_temperature_frames(link)}
        self._pylon = frozenset(PYLON_IDS)
        self._bus: can.BusABC | None = None
        self._values: dict[str, Any] = {}
        self.ignored_frames = 0

    def open(self) -> None:
        self._bus = open_bus(self.config, self.link.timeout_s)
        self._values = {}
        for pack in self._packs.values():
            for assembler in pack.assemblers.values():
                assembler.reset()

    def close(self) -> None:
        if self._bus is not None:
            try:
                self._bus.shutdown()
            except (can.CanError, OSError):
                pass
            self._bus = None

    def poll(self) -> dict[str, Any]:
        """Listen for one poll period; the latest value of every field received in it."""
        period = self.link.poll_period_s
        end_real = time.monotonic() + period
        end_clock = self.clock.monotonic() + period
        received = 0
        age_s = 0.0             # transport latency: receive time - sender's timestamp, last frame
        while True:
            left = min(end_real - time.monotonic(), end_clock - self.clock.monotonic())
            if left <= 0:
                break
            try:
                msg = self._bus.recv(min(left, RECV_SLICE_S))
            except (can.CanError, OSError, ValueError) as exc:
                raise LinkError(f"{self.config.describe()}: receive failed: {exc}") from None
            if msg is None:
                continue
            received += 1
            age_s = time.time() - msg.timestamp
            self._on_frame(msg)
        if not received:
            raise LinkError(f"no CAN frame on {self.config.describe()} for {period:g} s", timeout=True)
        self.stats.ok(max(0.0, age_s), self.clock.time(), frames=received)
        values, self._values = self._values, {}
        return values

    def _on_frame(self, msg: can.Message) -> None:
        """Decode one frame into `_values`; bad frames are counted, never raised."""
        self.monitor.can_frame(frame_text(msg.arbitration_id, bytes(msg.data), msg.is_extended_id,
                                          msg.is_remote_frame, msg.is_error_frame))
        if msg.is_error_frame:
            self.stats.error(f"CAN error frame 0x{msg.arbitration_id:X}")
            return
        unit, base = split_id(msg.arbitration_id)
        pack = self._packs.get(unit)
        if pack is None or msg.is_extended_id or msg.is_remote_frame:
            self.ignored_frames += 1
            return
        data = bytes(msg.data)
        if base in self._pylon:
            try:
                fields = bms.decode("pylon-can", data, can_id=base)
            except bms.DecodeError as exc:
                self.stats.error(f"{pack.rack.path}: 0x{msg.arbitration_id:03X}: {exc}")
                return
            values = self._values
            for name, value in fields.items():
                values[pack.point(name)] = ",".join(value) if name == "alarms" else value
            return
        spec = self._cells.get(base)
        if spec is None:
            self.ignored_frames += 1
            return
        try:
            group, slots = decode_cell_frame(spec, data)
            vector = pack.assemblers[base].add(group, slots)
        except (CantoolsDecodeError, ValueError) as exc:
            self.stats.error(f"{pack.rack.path}: 0x{msg.arbitration_id:03X} {data.hex()}: {exc}")
            return
        if vector is not None:
            self._values[pack.point(spec.point)] = vector
            if spec.point == "cell_voltages_v":
                self._values[pack.point("cell_count")] = pack.rack.cell_count

    def execute(self, pending: PendingCommand) -> None:
        """A BMS on this bus only broadcasts: every command is rejected."""
        target = pending.command.target
        if target.rpartition(".")[2] == balancing_command.POINT:
            pending.reply(CommandStatus.REJECTED, f"{target}: pylon-can {balancing_command.NOT_SUPPORTED} "
                                                  f"(link '{self.link.name}' only listens to the BMS)")
            return
        pending.reply(CommandStatus.REJECTED, f"{target}: link '{self.link.name}' is a listen-only CAN BMS link")
