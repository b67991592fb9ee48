"""A simulated rack configured with a SunSpec register map (802, 803, 805) serves a valid SunSpec device:
read by a plain Modbus client walking the model chain, and by the ESMS Modbus driver through the DataBus;
client writes (SetOp, StrSetCon, PCS setpoints) reach the plant and stay written."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
from pymodbus.client import ModbusTcpClient

from app.core.commands import Command
from app.sim.simulator import Simulator
from drivers.modbus.regmap import load_regmap
from drivers.registry import build_driver
from support import Stack, make_site, running, wait_for

MODULES, CPM = 2, 4
RACK = "site.bess1.rack01"
CHAINS = {"sunspec_802": [1, 802], "sunspec_803": [1, 802, 803], "sunspec_805": [1, 802, 803, 805, 805]}


@contextlib.contextmanager
def _plant(tmp_path, regmap: str):
    """A two-rack site whose racks use `regmap`, discharging, with every link served on loopback."""
    site = make_site(tmp_path, racks=2, modules=MODULES, cells=CPM, poll_s=0.1, rack_regmap=regmap)
    sim = Simulator(site, Stack().clock)
    sim.plant.pcs["pcs1"].setpoint_kw = -0.3 * site.pcs[0].rated_power_kw
    for _ in range(5):
        sim.step(0.2)
    sim.start_endpoints()
    try:
        yield site, sim
    finally:
        sim.stop_endpoints()


def _driver(site, stack: Stack, link: str):
    return build_driver(site, next(lk for lk in site.links if lk.name == link), stack.bus, stack.router,
                        stack.journal, stack.clock)


def _holding(client: ModbusTcpClient, address: int, count: int) -> np.ndarray:
    rr = client.read_holding_registers(address, count=count, device_id=1)
    assert not rr.isError(), rr
    return np.asarray(rr.registers, np.uint16)


def _scaled(raw: int, sf: int, signed: bool = False) -> float:
    value = int(np.uint16(raw).view(np.int16)) if signed else int(raw)
    return value * 10.0 ** int(np.uint16(sf).view(np.int16))


@pytest.mark.parametrize("regmap", sorted(CHAINS))
def test_a_plain_modbus_client_walks_the_sunspec_chain_and_reads_the_plant(tmp_path, regmap):
    with _plant(tmp_path, regmap) as (site, sim):
        rack = sim.plant.racks[RACK]
        host, port = next(lk for lk in site.links if lk.name == "bms1").host_port
        client = ModbusTcpClient(host, port=port, timeout=2)
        assert client.connect()
        try:
            assert _holding(client, 40000, 2).tolist() == [0x5375, 0x6E53]           # "SunS"
            models, addr = [], 40002
            while (header := _holding(client, addr, 2).tolist())[0] != 0xFFFF:
                models.append((header[0], addr, _holding(client, addr, 2 + header[1])))
                addr += 2 + header[1]
            assert header == [0xFFFF, 0]                                             # end model
        finally:
            client.close()
    assert [m for m, _, _ in models] == CHAINS[regmap]
    volts, soc_pct = rack.cell_voltages(), float(np.mean(rack.soc)) * 100
    assert rack.current_a < -1.0                                                     # discharging
    b802 = next(regs for m, _, regs in models if m == 802)                           # offsets of model_802.json
    assert [int(np.uint16(b802[o]).view(np.int16)) for o in (56, 59, 60, 61)] == [-1, -1, -3, -1]   # SoC/V/CellV/A_SF
    assert _scaled(b802[11], b802[56]) == pytest.approx(soc_pct, abs=0.05)           # SoC
    assert _scaled(b802[34], b802[59]) == pytest.approx(volts.sum(), abs=0.05)       # V
    assert _scaled(b802[40], b802[60]) == pytest.approx(volts.min(), abs=5e-4)       # CellVMin
    assert _scaled(b802[37], b802[60]) == pytest.approx(volts.max(), abs=5e-4)       # CellVMax
    assert _scaled(b802[44], b802[61], signed=True) == pytest.approx(rack.current_a, abs=0.05)   # A
    assert b802[22] == 3 and b802[16] == 3                                           # CONNECTED, DISCHARGING
    if 803 in CHAINS[regmap]:
        b803 = next(regs for m, _, regs in models if m == 803)
        assert b803[2] == 1 and b803[3] == 1                                         # NStr, NStrCon
        assert _scaled(b803[4], b803[23], signed=True) == pytest.approx(rack.temp_c.max(), abs=0.05)   # ModTmpMax
        assert (int(b803[28 + 1]) << 16 | int(b803[28 + 2])) == 0b11                 # StrSt: enabled, contactor
    for k, regs in enumerate(regs for m, _, regs in models if m == 805):
        assert regs[1] == 42 + 4 * CPM
        cells = np.array([_scaled(regs[44 + 4 * c], regs[42]) for c in range(CPM)])
        assert np.allclose(cells, volts[k * CPM:(k + 1) * CPM], atol=5e-4)          # module k + 1's CellV


@pytest.mark.parametrize("regmap", sorted(CHAINS))
def test_the_driver_reads_every_sunspec_point_of_a_simulated_rack_as_good(tmp_path, regmap):
    stack = Stack()
    with _plant(tmp_path, regmap) as (site, sim), running(stack, _driver(site, stack, "bms1")):
        wait_for(lambda: stack.quality(f"{RACK}.soc_pct") == "GOOD", timeout=10, what="SunSpec points",
                 journal=stack.journal)
        rack = sim.plant.racks[RACK]
        points = [f.point for f in load_regmap(regmap).fields]
        assert {p: stack.quality(f"{RACK}.{p}") for p in points} == {p: "GOOD" for p in points}
        volts, v = rack.cell_voltages(), stack.value
        assert v(f"{RACK}.soc_pct") == pytest.approx(float(np.mean(rack.soc)) * 100, abs=0.05)
        assert v(f"{RACK}.pack_voltage_v") == pytest.approx(volts.sum(), abs=0.05)
        assert v(f"{RACK}.current_a") == pytest.approx(rack.current_a, abs=0.05)
        assert v(f"{RACK}.min_cell_voltage_v") == pytest.approx(volts.min(), abs=5e-4)
        assert v(f"{RACK}.max_cell_voltage_v") == pytest.approx(volts.max(), abs=5e-4)
        assert v(f"{RACK}.avg_cell_voltage_v") == pytest.approx(volts.mean(), abs=5e-4)
        assert v(f"{RACK}.power_kw") == pytest.approx(volts.sum() * rack.current_a / 1000, abs=0.01)
        if regmap != "sunspec_802":
            assert v(f"{RACK}.min_temperature_c") == pytest.approx(rack.temp_c.min(), abs=0.05)
            assert v(f"{RACK}.max_temperature_c") == pytest.approx(rack.temp_c.max(), abs=0.05)
            assert v(f"{RACK}.string_current_a") == pytest.approx(rack.current_a, abs=0.05)
        if regmap == "sunspec_805":
            assert np.allclose(v(f"{RACK}.cell_voltages_v"), volts, atol=5e-4)
            assert np.allclose(v(f"{RACK}.cell_temperatures_c"), rack.temp_c, atol=0.05)


def _write(stack: Stack, point: str, value) -> None:
    result = stack.router.submit(Command(point, "write", value, "operator", "test")).result(5)
    assert result.ok, result.message


@pytest.mark.parametrize("regmap, point", [("sunspec_802", "set_operation"), ("sunspec_803", "string_connect"),
                                           ("sunspec_805", "set_operation")])
def test_a_sunspec_connect_command_reaches_the_contactor_and_stays_written(tmp_path, regmap, point):
    stack = Stack()
    with _plant(tmp_path, regmap) as (site, sim), running(stack, _driver(site, stack, "bms1")):
        rack = sim.plant.racks[RACK]
        wait_for(lambda: stack.value(f"{RACK}.state") == 3, timeout=10, what="CONNECTED")
        _write(stack, f"{RACK}.{point}", 2)                                         # DISCONNECT
        _write(stack, f"{RACK}.controller_heartbeat", 4321)                          # no model value: kept as written
        for _ in range(3):
            sim.step(0.2)
        assert not rack.contactor_closed and sim.plant.racks["site.bess1.rack02"].contactor_closed
        wait_for(lambda: stack.value(f"{RACK}.state") == 1, timeout=10, what="DISCONNECTED")
        assert stack.value(f"{RACK}.{point}") == 2 and stack.value(f"{RACK}.controller_heartbeat") == 4321
        assert stack.value(f"{RACK}.charge_status") == 1 and stack.value(f"{RACK}.current_a") == 0.0   # OFF
        _write(stack, f"{RACK}.{point}", 1)                                         # CONNECT
        sim.step(0.2)
        assert rack.contactor_closed
        wait_for(lambda: stack.value(f"{RACK}.state") == 3, timeout=10, what="CONNECTED again")


def test_pcs_setpoints_reach_the_model_and_survive_the_simulators_republishing(tmp_path):
    stack = Stack()
    with _plant(tmp_path, "sunspec_802") as (site, sim), running(stack, _driver(site, stack, "pcs1")):
        pcs = sim.plant.pcs["pcs1"]
        wait_for(lambda: stack.quality("site.pcs1.active_power_kw") == "GOOD", timeout=10, what="PCS points")
        _write(stack, "site.pcs1.active_power_setpoint_kw", 1.2)
        _write(stack, "site.pcs1.run", 0)
        for _ in range(3):
            sim.step(0.2)
        assert pcs.setpoint_kw == pytest.approx(1.2) and not pcs.run
        wait_for(lambda: stack.value("site.pcs1.state") == 0, timeout=10, what="PCS stopped")
        assert stack.value("site.pcs1.active_power_setpoint_kw") == pytest.approx(1.2)


@pytest.mark.parametrize("regmap", sorted(CHAINS))
def test_contactor_command_opens_and_closes_a_sunspec_rack_and_contactor_closed_reads_it(tmp_path, regmap):
    stack = Stack()
    with _plant(tmp_path, regmap) as (site, sim), running(stack, _driver(site, stack, "bms1")):
        rack = sim.plant.racks[RACK]
        wait_for(lambda: stack.value(f"{RACK}.contactor_closed") == 1, timeout=10, what="contactor reads closed")
        _write(stack, f"{RACK}.contactor_command", 0)                               # SetOp / StrSetCon DISCONNECT
        sim.step(0.2)
        assert not rack.contactor_closed and sim.plant.racks["site.bess1.rack02"].contactor_closed
        wait_for(lambda: stack.value(f"{RACK}.contactor_closed") == 0, timeout=10, what="contactor reads open")
        refused = stack.router.submit(Command(f"{RACK}.contactor_command", "write", 5, "operator", "test")).result(5)
        assert not refused.ok and "contactor_command: 5 is not one of 0, 1" in refused.message
        _write(stack, f"{RACK}.contactor_command", 1)                               # the driver still serves
        sim.step(0.2)
        assert rack.contactor_closed
        wait_for(lambda: stack.value(f"{RACK}.contactor_closed") == 1, timeout=10, what="contactor closed again")
        if regmap == "sunspec_805":
            assert stack.value(f"{RACK}.module_index").tolist() == [1, 2]
            assert stack.value(f"{RACK}.module_string_index").tolist() == [1, 1]
            assert stack.value(f"{RACK}.module_cell_count").tolist() == [CPM, CPM]
