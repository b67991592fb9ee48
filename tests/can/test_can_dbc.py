"""resources/dbc/pylon_lv_esms.dbc describes the Pylontech frames exactly as the pure decoder reads them,
and the per-cell frames round-trip through cantools."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers import bms
from drivers.bms import pylon_can
from drivers.can import layout

DB = layout.database()


def test_dbc_loads_with_every_frame_and_a_comment_on_each():
    ids = {m.frame_id: m for m in DB.messages}
    assert sorted(ids) == [0x351, 0x355, 0x356, 0x359, 0x35C, 0x35E, 0x360, 0x361]
    assert all(m.comment for m in DB.messages)
    assert all(m.cycle_time == 1000 for m in DB.messages)
    cells = ids[0x360]
    assert cells.is_multiplexed() and cells.get_signal_by_name("CellVoltage4").multiplexer_ids == list(range(256))


def _pure(can_id: int, signals: dict) -> dict:
    return bms.decode("pylon-can", DB.encode_message(can_id, signals), can_id=can_id)


deci = st.integers(-32768, 32767).map(lambda r: r / 10)
udeci = st.integers(0, 65535).map(lambda r: r / 10)


@settings(max_examples=60, deadline=None)
@given(cvl=udeci, ccl=deci, dcl=deci, dvl=udeci)
def test_limits_0x351_decode_identically_and_match_the_pure_encoder(cvl, ccl, dcl, dvl):
    signals = {"ChargeVoltageLimit": cvl, "ChargeCurrentLimit": ccl, "DischargeCurrentLimit": dcl,
               "DischargeVoltageLimit": dvl}
    assert _pure(0x351, signals) == pytest.approx({"charge_voltage_limit_v": cvl, "charge_current_limit_a": ccl,
                                                   "discharge_current_limit_a": dcl,
                                                   "discharge_voltage_limit_v": dvl})
    assert DB.encode_message(0x351, signals) == pylon_can.encode_limits(
        charge_voltage_limit_v=cvl, charge_current_limit_a=ccl, discharge_current_limit_a=dcl,
        discharge_voltage_limit_v=dvl)


@settings(max_examples=40, deadline=None)
@given(soc=st.integers(0, 100), soh=st.integers(0, 100))
def test_soc_soh_0x355(soc, soh):
    signals = {"StateOfCharge": soc, "StateOfHealth": soh}
    assert _pure(0x355, signals) == {"soc_pct": soc, "soh_pct": soh}
    assert DB.encode_message(0x355, signals) == pylon_can.encode_soc_soh(soc_pct=soc, soh_pct=soh)


@settings(max_examples=60, deadline=None)
@given(volts=st.integers(-32768, 32767).map(lambda r: r / 100), amps=deci, temp=deci)
def test_measurements_0x356(volts, amps, temp):
    signals = {"PackVoltage": volts, "PackCurrent": amps, "PackTemperature": temp}
    decoded = _pure(0x356, signals)
    assert decoded.pop("temperatures_c") == [pytest.approx(temp)]
    assert decoded == pytest.approx({"pack_voltage_v": volts, "current_a": amps})
    assert DB.encode_message(0x356, signals) == pylon_can.encode_measurements(
        pack_voltage_v=volts, current_a=amps, temperatures_c=[temp])


@pytest.mark.parametrize("bits", [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 1)])
def test_alarms_0x359_bits_match_the_decoder_and_the_encoder(bits):
    dis, chg, internal = bits
    signals = {"DischargeOvercurrent": dis, "ChargeOvercurrent": chg, "InternalFault": internal,
               "ModuleCount": 3, "Marker": int.from_bytes(b"PN", "little")}
    expected = [name for flag, name in zip(bits, ("discharge_overcurrent", "charge_overcurrent", "internal_fault"))
                if flag]
    assert _pure(0x359, signals) == {"alarms": sorted(expected)}
    assert DB.encode_message(0x359, signals) == pylon_can.encode_alarms(expected, module_count=3)


@pytest.mark.parametrize("flags", [(c, d, f1, f2) for c in (0, 1) for d in (0, 1) for f1 in (0, 1) for f2 in (0, 1)])
def test_requests_0x35c(flags):
    charge, discharge, force1, force2 = flags
    signals = {"ChargeEnable": charge, "DischargeEnable": discharge, "ForceChargeRequest1": force1,
               "ForceChargeRequest2": force2}
    assert _pure(0x35C, signals) == {"charge_enable": bool(charge), "discharge_enable": bool(discharge),
                                     "force_charge_request": bool(force1 or force2)}
    if not force2:
        assert DB.encode_message(0x35C, signals) == pylon_can.encode_requests(
            charge_enable=bool(charge), discharge_enable=bool(discharge), force_charge_request=bool(force1))


@pytest.mark.parametrize("name", ["PYLON", "ESMS-SIM", "A"])
def test_manufacturer_0x35e(name):
    raw = name.encode().ljust(8, b" ")
    signals = {f"ManufacturerChar{i + 1}": raw[i] for i in range(8)}
    assert _pure(0x35E, signals) == {"manufacturer": name}
    assert DB.encode_message(0x35E, signals) == pylon_can.encode_manufacturer(name)


def test_cell_frames_round_trip_keep_zero_and_flag_padding_and_out_of_range():
    spec = layout.cell_frames()[layout.CELL_VOLTAGES]
    volts = [3.301, 0.0, 3.2, 3.1, 9.5, float("nan"), 2.5]
    frames = layout.encode_cell_frames(layout.CELL_VOLTAGES, volts)
    assert len(frames) == 2 and all(len(f) == 8 for f in frames)
    decoded = [layout.decode_cell_frame(spec, f) for f in frames]
    assert [g for g, _ in decoded] == [0, 1]
    values = [v for _, slots in decoded for v in slots]
    assert values[:4] == pytest.approx([3.301, 0.0, 3.2, 3.1])          # 0 mV is a reading
    assert math.isnan(values[4]) and math.isnan(values[5])               # out of range, NaN: invalid
    assert values[6] == pytest.approx(2.5)
    assert math.isnan(values[7])                                         # padding past the last cell


def test_cell_temperatures_are_signed_tenths():
    spec = layout.cell_frames()[layout.CELL_TEMPERATURES]
    (frame,) = layout.encode_cell_frames(layout.CELL_TEMPERATURES, [-20.5, 0.0, 25.3, 60.1])
    assert layout.decode_cell_frame(spec, frame) == (0, pytest.approx([-20.5, 0.0, 25.3, 60.1]))


def test_ids_per_unit_window():
    assert layout.frame_id(0x351, 1) == 0x351
    assert layout.frame_id(0x360, 2) == 0x380
    assert layout.split_id(0x380) == (2, 0x360)
    assert layout.split_id(0x305) == (0, 0x305)
    assert layout.frame_id(layout.CELL_TEMPERATURES, layout.MAX_UNIT_ID) <= 0x7FF
