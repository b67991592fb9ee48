"""Translated registers of the register-map format: `values` tables (contactor_command onto SunSpec
SetOp/StrSetCon), `bit` views (contactor_closed from StrSt), points sharing a register, a point declared
again over an included map, and per-module vectors (805 StrIdx/ModIdx/NCell)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from app.core.errors import ConfigError
from drivers.modbus.regmap import Field, RegisterMap, load_regmap


def _one_to_one_tables():
    return st.dictionaries(st.integers(-1000, 1000), st.integers(0, 65535), min_size=1, max_size=12) \
        .filter(lambda t: len(set(t.values())) == len(t))


@settings(max_examples=200, deadline=None)
@given(_one_to_one_tables(), st.sampled_from(["uint16", "uint32"]), st.integers(0, 65535))
def test_a_values_table_round_trips_and_decodes_only_its_own_register_values(table, kind, other):
    f = Field("x", "holding", 5, kind, values=tuple(table.items()))
    rmap = RegisterMap("t", (f,))
    img = np.zeros(5 + f.width, np.uint16)
    for point_value, register_value in table.items():
        img[5:] = rmap.encode("x", point_value)
        assert int(img[5:].astype(np.uint32) @ [1 << 16, 1][-f.width:]) == register_value
        assert rmap.decode({"holding": img}, 1) == {"x": point_value}
    img[5:] = 0
    img[-1] = other
    assert rmap.decode({"holding": img}, 1) == ({"x": next(p for p, r in table.items() if r == other)}
                                                if other in table.values() else {})   # outside: no value
    with pytest.raises(ValueError, match="x: .* is not one of"):
        rmap.encode("x", max(table) + 1)


@given(st.integers(0, 2 ** 32 - 1), st.integers(0, 31), st.booleans())
def test_a_bit_view_reads_its_bit_and_encodes_only_that_bit(raw, bit, on):
    rmap = RegisterMap("t", (Field("word", "holding", 0, "uint32"), Field("flag", "holding", 0, "uint32", bit=bit)))
    img = {"holding": rmap.encode("word", raw)}
    assert rmap.decode(img, 1)["flag"] is bool(raw >> bit & 1)
    assert rmap.decode({"holding": rmap.encode("flag", on)}, 1)["word"] == int(on) << bit


@pytest.mark.parametrize("regmap, command, state", [("sunspec_802", "set_operation", "state"),
                                                    ("sunspec_803", "string_connect", "string_status"),
                                                    ("sunspec_805", "string_connect", "string_status")])
def test_sunspec_contactor_points_are_views_of_the_sunspec_registers(regmap, command, state):
    rmap = load_regmap(regmap)
    assert rmap.views == {"contactor_command", "contactor_closed"}
    cmd = rmap.by_point["contactor_command"]
    assert cmd.writable and (cmd.address, cmd.values) == (rmap.by_point[command].address, ((0, 2), (1, 1)))
    assert rmap.written_points("holding", cmd.address, 1, 8, 4) == [command, "contactor_command"]
    closed, open_ = (3, 1) if state == "state" else (0b11, 0b01)        # 802 CONNECTED/DISCONNECTED; StrSt bits
    for raw, connect, expect in ((closed, 1, 1), (open_, 2, 0)):
        # a view is never encoded: the register's own point says what the device serves
        img = rmap.render({state: raw, command: connect, "contactor_closed": 1 - expect,
                           "contactor_command": 1 - expect}, 8, 4)
        got = rmap.decode(img, 8, 4)
        assert (got[state], got[command]) == (raw, connect)
        assert got["contactor_closed"] == expect and got["contactor_command"] == expect
    img = rmap.render({state: 99 if state == "state" else 0, command: 7}, 8, 4)   # FAULT / no status, no SetOp
    got = rmap.decode(img, 8, 4)
    assert "contactor_command" not in got
    assert ("contactor_closed" not in got) if state == "state" else got["contactor_closed"] is False


def test_805_serves_string_and_module_index_and_cell_count_per_module():
    rmap = load_regmap("sunspec_805")
    assert [(p, rmap.by_point[p].address) for p in ("module_string_index", "module_index", "module_cell_count")] \
        == [("module_string_index", 40196), ("module_index", 40197), ("module_cell_count", 40198)]
    img = rmap.render({"module_string_index": [1, 1, 1], "module_index": [1, 2, 3], "module_cell_count": [5, 5, 5]},
                      15, 5)
    h = img["holding"]
    for k in range(3):                                                  # instance k at 40194 + k * (44 + 4 * 5)
        start = 40194 + k * 64
        assert h[start: start + 5].tolist() == [805, 42 + 4 * 5, 1, k + 1, 5]   # ID, L, StrIdx, ModIdx, NCell
    got = rmap.decode(img, 15, 5)
    assert got["module_index"].tolist() == [1, 2, 3] and got["module_cell_count"].tolist() == [5, 5, 5]
    with pytest.raises(ValueError, match="expected 3 values"):
        rmap.encode("module_index", [1, 2], 15, cells_per_module=5)


def test_a_point_declared_again_replaces_the_included_one(tmp_path):
    (tmp_path / "base.toml").write_text('[[register]]\npoint = "a"\ntable = "holding"\naddress = 1\ntype = "uint16"\n'
                                        '[[register]]\npoint = "b"\ntable = "holding"\naddress = 2\ntype = "uint16"\n')
    (tmp_path / "top.toml").write_text('include = "base"\n[[register]]\npoint = "a"\ntable = "holding"\n'
                                       'address = 2\ntype = "uint16"\nbit = 3\n')
    rmap = load_regmap("top", tmp_path)
    assert [(f.point, f.address, f.bit) for f in rmap.fields] == [("b", 2, None), ("a", 2, 3)]
    assert rmap.views == {"a"}


@pytest.mark.parametrize("extra, key, message", [
    ('values = { 0 = 2, 1 = 2 }', "values", "two point values map onto the same register value"),
    ('values = { open = 2 }', "values", "must be a table of integer point values"),
    ('values = { 0 = 70000 }', "values", "register values 0..65535"),
    ('values = { 0 = 2 }\nscale = 0.1', "values", "without scale or scale_register"),
    ('bit = 16', "bit", "must be an integer 0..15"),
    ('bit = 1\nvalues = { 0 = 1 }', "bit", "use either values or bit"),
])
def test_bad_translations_name_file_line_and_key(tmp_path, extra, key, message):
    (tmp_path / "bad.toml").write_text(f'[[register]]\npoint = "x"\ntable = "holding"\naddress = 1\n'
                                       f'type = "uint16"\n{extra}\n')
    with pytest.raises(ConfigError, match=rf"bad.toml:\d+: register\[0\].{key}: .*{message}"):
        load_regmap("bad", tmp_path)


def test_a_point_declared_twice_in_one_map_is_an_error(tmp_path):
    entry = '[[register]]\npoint = "x"\ntable = "holding"\naddress = {}\ntype = "uint16"\n'
    (tmp_path / "bad.toml").write_text(entry.format(1) + entry.format(2))
    with pytest.raises(ConfigError, match=r"bad.toml:7: register\[1\].point: 'x' is declared twice"):
        load_regmap("bad", tmp_path)
