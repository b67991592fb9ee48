"""The balancing command over Modbus TCP: the cells as a bit mask of holding registers (in several
writes when the rack is large), verified by read-back; maps without it reject it as not supported."""
from __future__ import annotations

import numpy as np

from app.core.balancing_command import NOT_SUPPORTED
from app.core.commands import Command, CommandStatus
from app.core.site import Link
from drivers.modbus.driver import ModbusDevice
from drivers.modbus.regmap import RegisterMap, load_regmap
from drivers.modbus.server import ModbusTcpServerThread, RegisterDevice
from modbus_harness import make_driver, quality, running
from support import free_port, wait_for

CELLS = 4000                      # the largest rack of rack_generic: the mask spans 250 registers
RACK = "site.bess1.rack01"


def _serve(rmap: RegisterMap, writes: list) -> tuple[ModbusTcpServerThread, RegisterDevice, int]:
    dev = RegisterDevice(1, rmap.table_size("input", CELLS), rmap.table_size("holding", CELLS),
                         on_write=lambda unit, table, address, regs: writes.append((address, len(regs))))
    img = np.zeros(dev.sizes["input"], np.uint16)
    rmap.write_into({"input": img}, {"cell_voltages_v": np.full(CELLS, 3.3)}, CELLS)
    dev.publish("input", img)
    port = free_port()
    server = ModbusTcpServerThread("127.0.0.1", port, [dev], "sim-bms")
    server.start()
    return server, dev, port


def _command(rmap: RegisterMap, cells) -> tuple:
    writes: list = []
    server, dev, port = _serve(load_regmap("rack_generic"), writes)
    link = Link("bms", "modbus-tcp", f"127.0.0.1:{port}", poll_period_s=0.5, timeout_s=0.5)
    driver = make_driver(link, [ModbusDevice(RACK, 1, rmap, CELLS)])
    try:
        with running(driver):
            wait_for(lambda: quality(driver, f"{RACK}.cell_voltages_v") == "GOOD", timeout=10)
            result = driver.router.submit(Command(f"{RACK}.balancing_cells_command", "write", cells)).result(10)
            alive = driver.router.submit(Command(f"{RACK}.contactor_command", "write", 1)).result(10)
    finally:
        server.stop()
    return result, alive, dev, writes


def test_the_cells_of_a_4000_cell_rack_are_written_in_three_requests_and_read_back():
    rmap = load_regmap("rack_generic")
    result, _, dev, writes = _command(rmap, (1, 17, 2000, 4000))
    assert result.status is CommandStatus.ACCEPTED and result.readback == "1,17,2000,4000"
    assert writes == [(8, 123), (131, 123), (254, 4), (0, 1)]      # the mask, then the contactor
    assert rmap.decode({"holding": dev.image("holding")}, CELLS)["balancing_cells_command"] == "1,17,2000,4000"


def test_a_cell_outside_the_rack_is_rejected_and_the_link_keeps_working():
    result, alive, _, writes = _command(load_regmap("rack_generic"), (0, 5))
    assert result.status is CommandStatus.REJECTED and "0 is not a cell number 1..4000" in result.message
    assert alive.ok and writes == [(0, 1)]


def test_a_register_map_without_the_command_rejects_it_as_not_supported():
    generic = load_regmap("rack_generic")
    old = RegisterMap("rack_without_balancing", tuple(f for f in generic.fields if not f.bits))
    result, alive, _, writes = _command(old, (5,))
    assert result.status is CommandStatus.REJECTED
    assert result.message == f"{RACK}.balancing_cells_command: register map 'rack_without_balancing' {NOT_SUPPORTED}"
    assert alive.ok and writes == [(0, 1)]
