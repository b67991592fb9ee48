"""Real frames from public sources decode to their annotated values (tests/fixtures/SOURCES.md)."""

import json

import pytest

from drivers.bms import PROTOCOLS, decode

from .fixture_data import context, load

CASES = [(protocol, i, entry) for protocol in PROTOCOLS for i, entry in enumerate(load(protocol))]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_each_protocol_has_at_least_ten_real_frames(protocol):
    entries = load(protocol)
    assert len(entries) >= 10
    assert all(entry["source"] and entry["basis"] for entry in entries)


@pytest.mark.parametrize(("protocol", "index", "entry"), CASES, ids=[f"{p}-{i}" for p, i, _ in CASES])
def test_fixture_decodes_to_expected_values(protocol, index, entry):
    decoded = decode(protocol, bytes.fromhex(entry["hex"]), **context(entry))
    assert decoded == entry["expected"]
    assert json.loads(json.dumps(decoded)) == decoded  # JSON-serialisable, nothing lost


def test_output_types_are_plain_json_types():
    for protocol, _, entry in CASES:
        decoded = decode(protocol, bytes.fromhex(entry["hex"]), **context(entry))
        for name, value in decoded.items():
            if name.endswith("_on") or name.endswith("_enable") or name in ("balancing_active", "force_charge_request"):
                assert type(value) is bool, name
            elif isinstance(value, list):
                assert all(type(item) in (int, float, str) for item in value), name
            else:
                assert type(value) in (int, float, str), name


def test_voltages_carry_millivolt_precision_only():
    for protocol, _, entry in CASES:
        decoded = decode(protocol, bytes.fromhex(entry["hex"]), **context(entry))
        for value in decoded.get("cell_voltages_v", []) + [decoded.get("pack_voltage_v", 0.0)]:
            assert value == round(value, 3)
            assert len(repr(value).split(".")[-1]) <= 3


def test_zero_millivolt_cells_are_kept():
    jbd_16s = next(e for e in load("jbd") if "0 mV" in e["source"])
    cells = decode("jbd", bytes.fromhex(jbd_16s["hex"]))["cell_voltages_v"]
    assert len(cells) == 16 and cells[-1] == 0.0


def test_jbd_basic_info_without_ntc_omits_temperatures():
    entry = next(e for e in load("jbd") if "no NTC" in e["source"])
    assert "temperatures_c" not in decode("jbd", bytes.fromhex(entry["hex"]))


def test_jbd_protection_bit_15_has_no_alarm_code():
    entry = next(e for e in load("jbd") if "bit 15" in e["source"])
    assert decode("jbd", bytes.fromhex(entry["hex"]))["alarms"] == []
