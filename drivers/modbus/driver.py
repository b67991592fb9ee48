"""Modbus TCP/RTU driver thread: coalesced block reads per device, register-map decoding, writes
with read-back verification. The only place (with server.py) that calls pymodbus."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException

from app.core.commands import CommandStatus, PendingCommand
from drivers.base import Driver, LinkError
from drivers.modbus.regmap import Block, RegisterMap


@dataclass(frozen=True)
class ModbusDevice:
    path: str            # point prefix, e.g. site.bess1.rack01
    unit_id: int
    regmap: RegisterMap
    cells: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "blocks", tuple(self.regmap.blocks(self.cells)))


class ModbusDriver(Driver):
    """Polls every device on one Modbus link (TCP `host:port` or RTU serial port)."""

    def __init__(self, link, bus, router, journal, clock, devices: list[ModbusDevice]) -> None:
        super().__init__(link, bus, router, journal, clock, [d.path for d in devices])
        self.devices = {d.path: d for d in devices}
        self._client: ModbusTcpClient | ModbusSerialClient | None = None

    def open(self) -> None:
        if self.link.kind == "modbus-tcp":
            host, port = self.link.host_port
            client = ModbusTcpClient(host, port=port, timeout=self.link.timeout_s, retries=0,
                                     reconnect_delay=0)
        else:
            opts = self.link.options
            client = ModbusSerialClient(self.link.address, baudrate=int(opts.get("baudrate", 9600)),
                                        parity=str(opts.get("parity", "N")), timeout=self.link.timeout_s,
                                        retries=0, reconnect_delay=0)
        if not client.connect():
            client.close()
            raise LinkError(f"cannot connect to {self.link.address}")
        self._client = client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _read(self, dev: ModbusDevice, block: Block) -> list[int]:
        fn = self._client.read_input_registers if block.table == "input" else self._client.read_holding_registers
        t0 = time.perf_counter()
        try:
            rr = fn(block.address, count=block.count, device_id=dev.unit_id)
        except ModbusException as exc:
            raise LinkError(f"{dev.path}: {exc}", timeout=True) from None
        if rr.isError():
            self.stats.error(f"{dev.path}: exception response {rr} at {block.table} {block.address}")
            raise LinkError(f"{dev.path}: exception response at {block.table} {block.address}")
        self.stats.ok(time.perf_counter() - t0, self.clock.time())
        return rr.registers

    def poll(self) -> dict[str, object]:
        values: dict[str, object] = {}
        for dev in self.devices.values():
            images = {t: np.zeros(dev.regmap.table_size(t, dev.cells), np.uint16) for t in ("input", "holding")}
            for block in dev.blocks:
                images[block.table][block.address: block.address + block.count] = self._read(dev, block)
            for point, value in dev.regmap.decode(images, dev.cells).items():
                values[f"{dev.path}.{point}"] = value
        return values

    def execute(self, pending: PendingCommand) -> None:
        """Command(target=`<device path>.<writable point>`, action="write", value=number)."""
        cmd = pending.command
        dev = self.devices.get(cmd.target.rpartition(".")[0])
        point = cmd.target.rpartition(".")[2]
        field = dev.regmap.by_point.get(point) if dev else None
        if cmd.action != "write" or field is None or not field.writable:
            pending.reply(CommandStatus.REJECTED, f"{cmd.target}: not a writable point of this link")
            return
        regs = dev.regmap.encode(point, cmd.value)
        try:
            wr = self._client.write_registers(field.address, [int(r) for r in regs], device_id=dev.unit_id)
        except ModbusException as exc:
            raise LinkError(f"{cmd.target}: write failed: {exc}", timeout=True) from None
        if wr.isError():
            pending.reply(CommandStatus.REJECTED, f"{cmd.target}: device refused the write ({wr})")
            return
        back = np.asarray(self._read(dev, Block(field.table, field.address, field.width)), np.uint16)
        image = np.zeros(field.address + field.width, np.uint16)
        image[field.address:] = back
        readback = dev.regmap.decode({field.table: image}, 1).get(point)
        if not np.array_equal(back, regs):
            pending.reply(CommandStatus.REJECTED, f"{cmd.target}: read-back {readback} != {cmd.value}", readback)
        else:
            pending.reply(CommandStatus.ACCEPTED, f"{cmd.target} = {readback}", readback)
