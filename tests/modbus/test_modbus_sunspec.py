"""SunSpec register maps (models 802/803/805): scale-factor registers, strided per-module cell data, the
"SunS" chain header, and a SunSpec 802 battery served over Modbus TCP read into canonical points."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from app.core.errors import ConfigError
from app.core.site import Link
from drivers.modbus.driver import ModbusDevice
from drivers.modbus.regmap import MAX_BLOCK, Field, RegisterMap, ScaleFactor, load_regmap
from drivers.modbus.server import ModbusTcpServerThread, RegisterDevice
from modbus_harness import make_driver, quality, running
from support import free_port, wait_for


def _image(rmap, cells=1, cpm=None):
    return {"holding": np.zeros(rmap.table_size("holding", cells, cpm), np.uint16),
            "input": np.zeros(max(1, rmap.table_size("input", cells, cpm)), np.uint16)}


@pytest.mark.parametrize("name, models", [("sunspec_802", [802]), ("sunspec_803", [802, 803]),
                                          ("sunspec_805", [802, 803, 805])])
def test_sunspec_chain_starts_with_suns_and_names_each_model(name, models):
    rmap = load_regmap(name)
    img = _image(rmap, 16, 8)
    rmap.write_into(img, {}, 16, 8)
    h = img["holding"]
    assert h[40000:40002].tolist() == [0x5375, 0x6E53]                  # "SunS"
    addr, seen = 40002, []
    while h[addr] != 0xFFFF:                                             # walk the chain like a SunSpec client
        seen.append(int(h[addr]))
        addr += 2 + int(h[addr + 1])
    assert seen == [1] + models + ([805] if 805 in models else [])      # 16 cells, 8 per module: two 805s
    assert addr == rmap.end_model_address(16, 8)
    assert rmap.check(img, 16, 8) == []


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["uint16", "int16", "uint32", "int32"]), st.integers(-4, 2), st.sampled_from(["big", "little"]),
       st.floats(-1e6, 1e6, allow_nan=False))
def test_scale_factor_register_round_trip(kind, sf, order, value):
    f = Field("x", "holding", 10, kind, word_order=order, scale_register="X_SF")
    rmap = RegisterMap("t", (f,), (ScaleFactor("X_SF", "holding", 20, 0),))
    step = 10.0 ** sf
    raw_max = {"uint16": 65535, "int16": 32767, "uint32": 2 ** 32 - 1, "int32": 2 ** 31 - 1}[kind]
    raw_min = 0 if kind.startswith("u") else -raw_max
    value = float(np.clip(value, raw_min * step, raw_max * step))
    img = {"holding": np.zeros(21, np.uint16)}
    rmap.write_into(img, {"x": value}, 1, scale_factors={"X_SF": sf})
    assert img["holding"][20] == np.int16(sf).view(np.uint16)          # the sf register carries the exponent
    got = rmap.decode(img, 1)["x"]
    assert abs(got - value) <= step / 2 + 1e-9 * abs(value)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(1, 24), st.integers(-4, -1), st.data())
def test_per_module_cell_vectors_round_trip_with_their_own_scale_factors(modules, cpm, sf, data):
    rmap = load_regmap("sunspec_805")
    cells = modules * cpm
    volts = np.asarray(data.draw(st.lists(st.floats(0.0, 4.5), min_size=cells, max_size=cells)))
    img = _image(rmap, cells, cpm)
    rmap.write_into(img, {"cell_voltages_v": volts}, cells, cpm, scale_factors={"module_CellV_SF": sf})
    got = rmap.decode(img, cells, cpm)["cell_voltages_v"]
    assert got.dtype == np.float32 and got.shape == (cells,)
    assert np.allclose(got, volts, atol=10.0 ** sf / 2 + 1e-6)
    # each module instance carries its own CellV_SF: rescale module 1 only and module 2 reads unchanged
    if modules > 1:
        img["holding"][40236] = np.int16(sf + 1).view(np.uint16)
        again = rmap.decode(img, cells, cpm)["cell_voltages_v"]
        assert np.allclose(again[:cpm], got[:cpm] * 10.0, rtol=1e-5) and np.array_equal(again[cpm:], got[cpm:])


@pytest.mark.parametrize("modules, cpm", [(1, 16), (4, 8), (16, 16), (2, 100), (1, 400)])
def test_sunspec_reads_coalesce_into_blocks_of_at_most_125_registers(modules, cpm):
    rmap = load_regmap("sunspec_805")
    cells = modules * cpm
    blocks = rmap.blocks(cells, cells_per_module=cpm)
    assert all(0 < b.count <= MAX_BLOCK for b in blocks)
    covered = {a for b in blocks for a in range(b.address, b.address + b.count)}
    for f in rmap.fields:
        assert set(rmap.register_index(f, cells, cpm).ravel().tolist()) <= covered
    end = rmap.end_model_address(cells, cpm)
    assert {40000, 40001, 40002, 40003, end, end + 1} <= covered
    assert len(blocks) <= 6 + 2 * modules + cells * 4 // MAX_BLOCK    # header blocks + per module sf/cells


def test_render_gives_the_complete_device_image_and_written_points_name_what_a_write_set():
    rmap = load_regmap("sunspec_803")
    images = rmap.render({"soc_pct": 55.0, "string_connect": 1, "not_in_this_map": 3.0}, 1)
    assert set(images) == {"holding"} and images["holding"].size == rmap.table_size("holding", 1)
    assert rmap.check(images, 1) == [] and rmap.decode(images, 1)["soc_pct"] == pytest.approx(55.0)
    assert set(rmap.writable_registers("holding", 1).tolist()) == {40089, 40090, 40120, 40191}
    assert rmap.written_points("holding", 40191, 1, 1) == ["string_connect", "contactor_command"]   # two views
    assert rmap.written_points("holding", 40089, 2, 1) == ["controller_heartbeat", "alarm_reset"]
    assert rmap.written_points("holding", 40081, 1, 1) == []                # SoC is not writable


def test_not_implemented_scale_factor_leaves_the_point_out():
    rmap = load_regmap("sunspec_802")
    img = _image(rmap)
    rmap.write_into(img, {"soc_pct": 50.0, "pack_voltage_v": 812.3}, 1)
    img["holding"][40126] = 0x8000                                       # SoC_SF "not implemented"
    values = rmap.decode(img, 1)
    assert "soc_pct" not in values and values["pack_voltage_v"] == pytest.approx(812.3)


def test_unknown_scale_register_names_file_line_and_key(tmp_path):
    (tmp_path / "bad.toml").write_text('name = "bad"\n\n[[register]]\npoint = "x"\ntable = "holding"\n'
                                       'address = 1\ntype = "uint16"\nscale_register = "V_SF"\n')
    with pytest.raises(ConfigError, match=r"bad.toml:8: register\[0\].scale_register: no \[\[scale_factor\]\]"):
        load_regmap("bad", tmp_path)


def _battery_802(unit_id: int, values: dict, scale_factors: dict | None = None) -> RegisterDevice:
    rmap = load_regmap("sunspec_802")
    dev = RegisterDevice(unit_id, 0, rmap.table_size("holding", 1))
    img = np.zeros(dev.sizes["holding"], np.uint16)
    rmap.write_into({"holding": img}, values, 1, scale_factors=scale_factors)
    dev.publish("holding", img)
    return dev


def test_sunspec_802_battery_over_tcp_reaches_canonical_points():
    values = {"soc_pct": 63.5, "soh_pct": 97.1, "pack_voltage_v": 768.4, "current_a": -42.7,
              "max_cell_voltage_v": 3.342, "min_cell_voltage_v": 3.301, "cycle_count": 1234, "heartbeat": 77,
              "design_capacity_ah": 280.0, "charge_current_limit_a": 140.0, "power_kw": -32.8, "state": 3}
    port = free_port()
    server = ModbusTcpServerThread("127.0.0.1", port, [_battery_802(3, values, {"W_SF": 2})])
    server.start()
    link = Link("bat", "modbus-tcp", f"127.0.0.1:{port}", poll_period_s=0.1, timeout_s=0.5)
    driver = make_driver(link, [ModbusDevice("site.bess1.rack01", 3, load_regmap("sunspec_802"))])
    try:
        with running(driver):
            wait_for(lambda: driver.bus.get("site.bess1.rack01.soc_pct"), timeout=5, what="SunSpec points")
            got = {k: driver.bus.get(f"site.bess1.rack01.{k}").value for k in values}
            assert quality(driver, "site.bess1.rack01.soc_pct") == "GOOD"
    finally:
        server.stop()
    assert got["soc_pct"] == pytest.approx(63.5) and got["soh_pct"] == pytest.approx(97.1)
    assert got["pack_voltage_v"] == pytest.approx(768.4) and got["current_a"] == pytest.approx(-42.7)
    assert got["max_cell_voltage_v"] == pytest.approx(3.342) and got["min_cell_voltage_v"] == pytest.approx(3.301)
    assert got["cycle_count"] == 1234 and got["heartbeat"] == 77 and got["state"] == 3
    assert got["design_capacity_ah"] == pytest.approx(280.0) and got["charge_current_limit_a"] == pytest.approx(140.0)
    assert got["power_kw"] == pytest.approx(-32.8)                      # W_SF = 2: 100 W resolution
    assert driver.stats.snapshot()["errors"] == 0


def test_a_device_without_the_sunspec_header_is_an_error_not_data():
    port = free_port()
    dev = RegisterDevice(1, 0, load_regmap("sunspec_802").table_size("holding", 1))   # all zero: no "SunS"
    server = ModbusTcpServerThread("127.0.0.1", port, [dev])
    server.start()
    link = Link("bat", "modbus-tcp", f"127.0.0.1:{port}", poll_period_s=0.1, timeout_s=0.5)
    driver = make_driver(link, [ModbusDevice("site.bess1.rack01", 1, load_regmap("sunspec_802"))])
    try:
        with running(driver):
            wait_for(lambda: driver.stats.snapshot()["errors"] >= 2, timeout=5, what="layout errors")
    finally:
        server.stop()
    snap = driver.stats.snapshot()
    assert "register map 'sunspec_802'" in snap["last_error"] and "SunS" in snap["last_error"]
    assert driver.bus.get("site.bess1.rack01.soc_pct") is None
