"""Encoders are exact inverses of the decoders: canonical values -> frame -> the same values."""

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.bms import daly, decode, jbd, jk, pylon_can

from .fixture_data import context, load


def scaled(low: int, high: int, scale: int):
    """Values a wire field of ``1/scale`` resolution can carry exactly."""
    return st.integers(low, high).map(lambda raw: raw / scale)


def sorted_subset(names):
    return st.sets(st.sampled_from(sorted(set(names)))).map(sorted)


deterministic = settings(derandomize=True, deadline=None)  # same examples on every run
bools = st.booleans()
millivolt_cells = st.lists(scaled(0, 0xFFFF, 1000))


@deterministic
@given(
    pack_voltage_v=scaled(0, 0xFFFF, 100),
    current_a=scaled(-0x8000, 0x7FFF, 100),
    remaining_capacity_ah=scaled(0, 0xFFFF, 100),
    design_capacity_ah=scaled(0, 0xFFFF, 100),
    cycle_count=st.integers(0, 0xFFFF),
    balancing_cells=st.sets(st.integers(1, 32)).map(sorted),
    alarms=sorted_subset(jbd.PROTECTION_ALARMS),
    soc_pct=st.integers(0, 100),
    charge_fet_on=bools,
    discharge_fet_on=bools,
    cell_count=st.integers(0, 32),
    temperatures_c=st.lists(st.integers(0, 0xFFFF).map(lambda k: (k - 2731) / 10), max_size=8),
)
def test_jbd_basic_info_round_trip(**fields):
    fields["balancing_active"] = bool(fields["balancing_cells"])
    if not fields["temperatures_c"]:
        del fields["temperatures_c"]
    assert decode("jbd", jbd.encode_basic_info(**fields)) == fields


@deterministic
@given(millivolt_cells.filter(lambda cells: len(cells) <= 127))
def test_jbd_cell_voltages_round_trip(cells):
    assert decode("jbd", jbd.encode_cell_voltages(cells)) == {"cell_voltages_v": cells, "cell_count": len(cells)}


@settings(derandomize=True, deadline=None, max_examples=60)
@given(data=st.data(), variant=st.sampled_from(jk.VARIANTS))
def test_jk_cell_info_round_trip(data, variant):
    slots = 24 if variant == "jk02_24s" else 32
    fields = data.draw(
        st.fixed_dictionaries(
            {
                "cell_voltages_v": st.lists(scaled(0, 0xFFFF, 1000), max_size=slots),
                "pack_voltage_v": scaled(0, 0xFFFFFFFF, 1000),
                "current_a": scaled(-(2**31), 2**31 - 1, 1000),
                "temperatures_c": st.lists(scaled(-0x8000, 0x7FFF, 10), min_size=2, max_size=2),
                "mosfet_temperature_c": scaled(-0x8000, 0x7FFF, 10),
                "soc_pct": st.integers(0, 100),
                "soh_pct": st.integers(0, 100),
                "remaining_capacity_ah": scaled(0, 0xFFFFFFFF, 1000),
                "full_capacity_ah": scaled(0, 0xFFFFFFFF, 1000),
                "cycle_count": st.integers(0, 0xFFFFFFFF),
                "charge_fet_on": bools,
                "discharge_fet_on": bools,
                "balancing_active": bools,
                "alarms": sorted_subset(jk.ERROR_ALARMS.values()),
            }
        )
    )
    fields["cell_count"] = len(fields["cell_voltages_v"])
    assert decode("jk", jk.encode_cell_info(variant, **fields), variant=variant) == fields


@deterministic
@given(pack_voltage_v=scaled(0, 0xFFFF, 10), current_a=scaled(0, 0xFFFF, 1).map(lambda r: (r - 30000) / 10),
       soc_pct=scaled(0, 1000, 10))
def test_daly_pack_status_round_trip(**fields):
    assert decode("daly", daly.encode_pack_status(**fields)) == fields


@deterministic
@given(max_cell_voltage_v=scaled(0, 0xFFFF, 1000), max_cell_number=st.integers(0, 255),
       min_cell_voltage_v=scaled(0, 0xFFFF, 1000), min_cell_number=st.integers(0, 255))
def test_daly_cell_extremes_round_trip(**fields):
    assert decode("daly", daly.encode_cell_extremes(**fields)) == fields


@deterministic
@given(max_temperature_c=st.integers(-40, 215), min_temperature_c=st.integers(-40, 215))
def test_daly_temperature_extremes_round_trip(**fields):
    assert decode("daly", daly.encode_temperature_extremes(**fields)) == fields


@deterministic
@given(charge_fet_on=bools, discharge_fet_on=bools, remaining_capacity_ah=scaled(0, 0xFFFFFFFF, 1000))
def test_daly_mosfet_status_round_trip(**fields):
    assert decode("daly", daly.encode_mosfet_status(**fields)) == fields


@deterministic
@given(millivolt_cells.filter(lambda cells: 0 < len(cells) <= 48))
def test_daly_cell_voltages_round_trip_pads_the_last_frame_with_zero_slots(cells):
    padding = [0.0] * (-len(cells) % 3)
    assert decode("daly", daly.encode_cell_voltages(cells)) == {"cell_voltages_v": cells + padding}


@deterministic
@given(st.lists(st.integers(-40, 215), min_size=1, max_size=21))
def test_daly_temperatures_round_trip_pads_the_last_frame_with_raw_zero(temperatures):
    padding = [-40] * (-len(temperatures) % 7)
    assert decode("daly", daly.encode_temperatures(temperatures)) == {"temperatures_c": temperatures + padding}


@deterministic
@given(sorted_subset(daly.FAULT_ALARMS.values()))
def test_daly_alarms_round_trip(alarms):
    assert decode("daly", daly.encode_alarms(alarms)) == {"alarms": alarms}


@deterministic
@given(charge_voltage_limit_v=scaled(0, 0xFFFF, 10), charge_current_limit_a=scaled(-0x8000, 0x7FFF, 10),
       discharge_current_limit_a=scaled(-0x8000, 0x7FFF, 10),
       discharge_voltage_limit_v=st.none() | scaled(0, 0xFFFF, 10))
def test_pylon_limits_round_trip(**fields):
    decoded = decode("pylon-can", pylon_can.encode_limits(**fields), can_id=pylon_can.LIMITS)
    if fields["discharge_voltage_limit_v"] is None:
        del fields["discharge_voltage_limit_v"]
    assert decoded == fields


@deterministic
@given(soc_pct=st.integers(0, 100), soh_pct=st.integers(0, 100))
def test_pylon_soc_soh_round_trip(**fields):
    assert decode("pylon-can", pylon_can.encode_soc_soh(**fields), can_id=pylon_can.SOC_SOH) == fields


@deterministic
@given(pack_voltage_v=scaled(-0x8000, 0x7FFF, 100), current_a=scaled(-0x8000, 0x7FFF, 10),
       temperatures_c=st.lists(scaled(-0x8000, 0x7FFF, 10), min_size=1, max_size=1))
def test_pylon_measurements_round_trip(**fields):
    assert decode("pylon-can", pylon_can.encode_measurements(**fields), can_id=pylon_can.MEASUREMENTS) == fields


@deterministic
@given(sorted_subset(pylon_can.PROTECTION_ALARMS.values()), st.integers(0, 255))
def test_pylon_alarms_round_trip(alarms, modules):
    frame = pylon_can.encode_alarms(alarms, module_count=modules)
    assert decode("pylon-can", frame, can_id=pylon_can.ALARMS) == {"alarms": alarms}


@deterministic
@given(charge_enable=bools, discharge_enable=bools, force_charge_request=bools)
def test_pylon_requests_round_trip(**fields):
    assert decode("pylon-can", pylon_can.encode_requests(**fields), can_id=pylon_can.REQUESTS) == fields


@deterministic
@given(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=8))
def test_pylon_manufacturer_round_trip(name):
    decoded = decode("pylon-can", pylon_can.encode_manufacturer(name), can_id=pylon_can.MANUFACTURER)
    assert decoded == {"manufacturer": name}


def test_real_frames_survive_decode_encode_decode():
    encoders = {
        ("jbd", "03"): lambda d, ctx: jbd.encode_basic_info(**d),
        ("jbd", "04"): lambda d, ctx: jbd.encode_cell_voltages(**d),
        ("jk", None): lambda d, ctx: jk.encode_cell_info(ctx["variant"], **d),
    }
    for protocol, kind in encoders:
        for entry in load(protocol):
            if kind and entry["hex"][2:4] != kind:
                continue
            ctx = context(entry)
            decoded = decode(protocol, bytes.fromhex(entry["hex"]), **ctx)
            assert decode(protocol, encoders[protocol, kind](decoded, ctx), **ctx) == decoded


def test_request_frames_are_byte_exact():
    assert jbd.request(jbd.REG_BASIC_INFO) == bytes.fromhex("dda50300fffd77")
    assert jbd.request(jbd.REG_CELL_VOLTAGES) == bytes.fromhex("dda50400fffc77")
    assert jbd.request(jbd.REG_HARDWARE_VERSION) == bytes.fromhex("dda50500fffb77")
    assert daly.request(daly.PACK_STATUS) == bytes.fromhex("a540900800000000000000007d")
    assert daly.request(daly.CELL_VOLTAGES) == bytes.fromhex("a5409508000000000000000082")
    assert daly.request(daly.PACK_STATUS, address=0x80) == bytes.fromhex("a58090080000000000000000bd")
    assert jk.request(jk.COMMAND_DEVICE_INFO) == bytes.fromhex("aa5590eb97000000000000000000000000000011")
    assert jk.request(jk.COMMAND_CELL_INFO) == bytes.fromhex("aa5590eb96000000000000000000000000000010")
