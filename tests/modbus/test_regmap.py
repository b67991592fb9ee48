import numpy as np
import pytest
from hypothesis import given, strategies as st

from app.core.errors import ConfigError
from drivers.modbus.regmap import MAX_BLOCK, Field, RegisterMap, cells_to_words, load_regmap, words_to_cells


@pytest.mark.parametrize("name", ["rack_generic", "pcs_generic"])
def test_shipped_maps_load(name):
    assert load_regmap(name).fields


@pytest.mark.parametrize("cells", [1, 16, 128, 125, 126, 4000])
def test_blocks_cover_every_field_and_never_exceed_125_registers(cells):
    rmap = load_regmap("rack_generic")
    blocks = rmap.blocks(cells)
    assert all(0 < b.count <= MAX_BLOCK for b in blocks)
    covered = {(b.table, a) for b in blocks for a in range(b.address, b.address + b.count)}
    for f in rmap.fields:
        start, end = rmap.span(f, cells)
        assert all((f.table, a) in covered for a in range(start, end))


def test_rack_of_128_cells_reads_in_few_requests():
    blocks = load_regmap("rack_generic").blocks(128)
    assert len(blocks) == 1 + 2 + 2 + 1      # scalars, 2 voltage blocks, 2 temperature blocks, holding


@given(st.sampled_from(["uint16", "int16", "uint32", "int32", "float32"]), st.sampled_from(["big", "little"]),
       st.floats(-30000, 30000, allow_nan=False))
def test_scalar_encode_decode_round_trip(kind, order, value):
    f = Field("x", "input", 3, kind, scale=0.1, word_order=order)
    rmap = RegisterMap("t", (f,))
    if kind.startswith("uint"):
        value = abs(value)
    if kind.endswith("16"):                       # 16 bits at 0.1 resolution: ±3276.7 or 0..6553.5
        value = min(value, 3276.0) if kind == "int16" else min(value, 6553.0)
        value = max(value, -3276.0)
    regs = rmap.encode("x", value)
    img = np.zeros(3 + f.width, np.uint16)
    img[3:] = regs
    got = rmap.decode({"input": img}, 1)["x"]
    tol = 1e-3 * abs(value) + 1e-30 if kind == "float32" else 0.05 + 1e-9
    assert abs(got - value) <= tol


@given(st.lists(st.floats(0.0, 5.0, allow_nan=False), min_size=1, max_size=300))
def test_cell_vector_round_trip_at_1_mv(volts):
    rmap = load_regmap("rack_generic")
    n = len(volts)
    img = np.zeros(rmap.table_size("input", n), np.uint16)
    rmap.write_into({"input": img}, {"cell_voltages_v": volts}, n)
    got = rmap.decode({"input": img}, n)["cell_voltages_v"]
    assert got.dtype == np.float32 and got.shape == (n,)
    assert np.allclose(got, volts, atol=0.0006)


def test_zero_millivolts_is_kept_as_a_reading():
    rmap = load_regmap("rack_generic")
    img = np.zeros(rmap.table_size("input", 4), np.uint16)
    rmap.write_into({"input": img}, {"cell_voltages_v": [3.3, 0.0, 3.2, 3.1]}, 4)
    assert rmap.decode({"input": img}, 4)["cell_voltages_v"][1] == 0.0


def test_bad_map_names_file_line_and_key(tmp_path):
    (tmp_path / "bad.toml").write_text('name = "bad"\n\n[[register]]\npoint = "x"\ntable = "coils"\n'
                                       'address = 1\ntype = "uint16"\n')
    with pytest.raises(ConfigError, match=r"bad.toml:5: register\[0\].table"):
        load_regmap("bad", tmp_path)


def test_out_of_range_values_saturate_instead_of_wrapping():
    f = Field("x", "input", 0, "int16", scale=0.1)
    rmap = RegisterMap("t", (f,))
    img = rmap.encode("x", 5000.0)
    assert rmap.decode({"input": img}, 1)["x"] == pytest.approx(3276.7)


@given(st.integers(1, 4000).flatmap(lambda n: st.tuples(st.just(n), st.sets(st.integers(1, n), max_size=40))))
def test_balancing_bit_mask_round_trip(case):
    n, cells = case
    rmap = load_regmap("rack_generic")
    img = np.zeros(rmap.table_size("holding", n), np.uint16)
    rmap.write_into({"holding": img}, {"balancing_cells_command": cells}, n)
    start, end = rmap.span(rmap.by_point["balancing_cells_command"], n)
    assert end - start == -(-n // 16)
    assert np.count_nonzero(img) <= len(cells)
    assert rmap.decode({"holding": img}, n)["balancing_cells_command"] == ",".join(map(str, sorted(cells)))
    assert words_to_cells(cells_to_words(tuple(sorted(cells)), n), n) == tuple(sorted(cells))


def test_balancing_bit_mask_layout_cell_1_is_bit_0_of_register_8():
    rmap = load_regmap("rack_generic")
    regs = rmap.encode("balancing_cells_command", "1,16,17,20", 20)
    assert regs.tolist() == [0x8001, 0x0009]
    assert rmap.element_addresses(rmap.by_point["balancing_cells_command"], 20).tolist() == [8, 9]
    assert words_to_cells(np.array([0xFFFF]), 3) == (1, 2, 3)        # bits beyond the rack are ignored


@pytest.mark.parametrize("value", ["0", "21", "3,x", [2.5], [True]])
def test_balancing_bit_mask_refuses_what_is_not_a_cell_of_the_rack(value):
    with pytest.raises(ValueError, match="not a cell number"):
        load_regmap("rack_generic").encode("balancing_cells_command", value, 20)


def test_a_bitmask_entry_takes_no_type_or_scale(tmp_path):
    (tmp_path / "bad.toml").write_text('name = "bad"\n\n[[bitmask]]\npoint = "x"\ntable = "holding"\n'
                                       'address = 1\ntype = "int16"\n')
    with pytest.raises(ConfigError, match=r"bad.toml:7: bitmask\[0\].type: not allowed for a bitmask"):
        load_regmap("bad", tmp_path)
