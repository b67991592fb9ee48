"""Modbus TCP/RTU driver thread: coalesced block reads per device, register-map decoding, writes
with read-back verification. The only place (with the servers) that calls pymodbus.

Link options (site file `options`): RTU `baudrate`, `parity`, `stopbits`, `bytesize`; any kind:
`record = "capture.log"` appends every raw frame to a capture (recording.py) for later replay.
A failed request counts as a timeout when nothing came back, and as an error (corrupt frame: CRC,
garbage) when bytes came back but no valid answer; exception responses count as errors.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException

from app.core import balancing_command
from app.core.commands import CommandStatus, PendingCommand
from drivers.base import Driver, LinkError
from drivers.modbus.recording import TrafficRecorder
from drivers.modbus.regmap import MAX_BLOCK, MAX_WRITE, Block, RegisterMap


@dataclass(frozen=True)
class ModbusDevice:
    path: str            # point prefix, e.g. site.bess1.rack01
    unit_id: int
    regmap: RegisterMap
    cells: int = 1
    cells_per_module: int | None = None   # for maps with per-module blocks (SunSpec 805); default: one module

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(self.regmap.blocks(self.cells, cells_per_module=self.cells_per_module)))
        object.__setattr__(self, "sizes", {t: self.regmap.table_size(t, self.cells, self.cells_per_module)
                                           for t in ("input", "holding")})


class ModbusDriver(Driver):
    """Polls every device on one Modbus link (TCP `host:port` or RTU serial port)."""

    def __init__(self, link, bus, router, journal, clock, devices: list[ModbusDevice]) -> None:
        super().__init__(link, bus, router, journal, clock, [d.path for d in devices])
        self.devices = {d.path: d for d in devices}
        self._client: ModbusTcpClient | ModbusSerialClient | None = None
        self._recorder: TrafficRecorder | None = None
        self._images: dict[str, dict[str, np.ndarray]] = {}   # last good images per device (scale factors)
        self._rx_seen = False
        self._rx_pending = b""

    # --- pymodbus trace hooks (this link's thread) ------------------------------------------
    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if sending:
            self._flush_rx()
            self._rx_seen = False
            self.monitor.frame("tx", data)
            if self._recorder:
                self._recorder.frame("tx", data)
        elif data:
            self._rx_seen = True
            self._rx_pending = data        # pymodbus passes the whole buffer received so far
        return data

    def _trace_pdu(self, sending: bool, pdu):
        if not sending:
            self._flush_rx()
        return pdu

    def _flush_rx(self) -> None:
        if self._rx_pending:
            self.monitor.frame("rx", self._rx_pending)
        if self._rx_pending and self._recorder:
            self._recorder.frame("rx", self._rx_pending)
        self._rx_pending = b""

    # --- Driver interface -------------------------------------------------------------------
    def open(self) -> None:
        opts = self.link.options
        hooks = {"trace_packet": self._trace_packet, "trace_pdu": self._trace_pdu}
        if self.link.kind == "modbus-tcp":
            host, port = self.link.host_port
            client = ModbusTcpClient(host, port=port, timeout=self.link.timeout_s, retries=0,
                                     reconnect_delay=0, **hooks)
        else:
            client = ModbusSerialClient(self.link.address, baudrate=int(opts.get("baudrate", 9600)),
                                        parity=str(opts.get("parity", "N")), stopbits=int(opts.get("stopbits", 1)),
                                        bytesize=int(opts.get("bytesize", 8)), timeout=self.link.timeout_s,
                                        retries=0, reconnect_delay=0, **hooks)
        if not client.connect():
            client.close()
            raise LinkError(f"cannot connect to {self.link.address}")
        self._client = client
        if opts.get("record") and self._recorder is None:
            self._recorder = TrafficRecorder(str(opts["record"]), self.link.kind, self.link.address)

    def close(self) -> None:
        self._flush_rx()
        if self._client is not None:
            self._client.close()
            self._client = None

    def on_stopped(self) -> None:
        super().on_stopped()
        if self._recorder:
            self._recorder.close()
            self._recorder = None

    def _read(self, dev: ModbusDevice, block: Block) -> list[int]:
        fn = self._client.read_input_registers if block.table == "input" else self._client.read_holding_registers
        t0 = time.perf_counter()
        try:
            rr = fn(block.address, count=block.count, device_id=dev.unit_id)
        except ModbusException as exc:
            if self._rx_seen:
                raise LinkError(f"{dev.path}: corrupt response (CRC/framing) at {block.table} {block.address}") from None
            raise LinkError(f"{dev.path}: no response ({exc})", timeout=True) from None
        if rr.isError():
            raise LinkError(f"{dev.path}: exception response {rr} at {block.table} {block.address}")
        self.stats.ok(time.perf_counter() - t0, self.clock.time())
        return rr.registers

    def poll(self) -> dict[str, object]:
        values: dict[str, object] = {}
        for dev in self.devices.values():
            images = {t: np.zeros(n, np.uint16) for t, n in dev.sizes.items()}
            for block in dev.blocks:
                images[block.table][block.address: block.address + block.count] = self._read(dev, block)
            bad = dev.regmap.check(images, dev.cells, dev.cells_per_module)
            if bad:
                raise LinkError(f"{dev.path}: device does not match register map '{dev.regmap.name}': {bad[0]}")
            self._images[dev.path] = images
            for point, value in dev.regmap.decode(images, dev.cells, dev.cells_per_module).items():
                values[f"{dev.path}.{point}"] = value
        return values

    def execute(self, pending: PendingCommand) -> None:
        """Command(target=`<device path>.<writable point>`, action="write", value): the value encoded by
        the register map (a number, or the cells of a bit mask; a translated point such as
        contactor_command onto SunSpec SetOp through its table), written in requests of at most 123
        registers and verified by reading it back."""
        cmd = pending.command
        dev = self.devices.get(cmd.target.rpartition(".")[0])
        point = cmd.target.rpartition(".")[2]
        field = dev.regmap.by_point.get(point) if dev else None
        if dev is not None and field is None and point == balancing_command.POINT:
            pending.reply(CommandStatus.REJECTED, f"{cmd.target}: register map '{dev.regmap.name}' "
                                                  f"{balancing_command.NOT_SUPPORTED}")
            return
        if cmd.action != "write" or field is None or not field.writable:
            pending.reply(CommandStatus.REJECTED, f"{cmd.target}: not a writable point of this link")
            return
        images = self._images.get(dev.path)
        try:
            regs = dev.regmap.encode(point, cmd.value, dev.cells, images, dev.cells_per_module)
        except (TypeError, ValueError) as exc:
            pending.reply(CommandStatus.REJECTED, f"{cmd.target}: {exc}")
            return
        start, end = dev.regmap.span(field, dev.cells, dev.cells_per_module)
        for a in range(start, end, MAX_WRITE):
            chunk = [int(r) for r in regs[a - start: a - start + MAX_WRITE]]
            try:
                wr = self._client.write_registers(a, chunk, device_id=dev.unit_id)
            except ModbusException as exc:
                raise LinkError(f"{cmd.target}: write failed: {exc}", timeout=not self._rx_seen) from None
            if wr.isError():
                pending.reply(CommandStatus.REJECTED, f"{cmd.target}: device refused the write ({wr})")
                return
        back = np.concatenate([self._read(dev, Block(field.table, a, min(MAX_BLOCK, end - a)))
                               for a in range(start, end, MAX_BLOCK)]).astype(np.uint16)
        image = {t: img.copy() for t, img in images.items()} if images else {}
        table = image.setdefault(field.table, np.zeros(end, np.uint16))
        table[start:end] = back
        readback = dev.regmap.decode(image, dev.cells, dev.cells_per_module).get(point)
        if not np.array_equal(back, regs):
            pending.reply(CommandStatus.REJECTED, f"{cmd.target}: read-back {readback} != {cmd.value}", readback)
        else:
            pending.reply(CommandStatus.ACCEPTED, f"{cmd.target} = {readback}", readback)
