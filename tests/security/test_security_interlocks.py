"""Interlocks: pure refusals over a values snapshot, and the standard list built for a site."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from app.core.commands import Command
from app.core.sample import Quality, Sample, vector
from app.protection.cell_source import cell_sources
from app.security.interlocks import (GRID_BREAKER, ISLAND_STATE, TRIP_CAUSE_PERSISTS, BreakerCloseWhileIslanding,
                                     ClearTripWhileCausePersists, ContactorVoltageMatch,
                                     DischargeBelowSocFloor, LfpChargeBelowFreezing, SetpointWithinRating,
                                     check_interlocks, site_interlocks, usable_values)
from app.security.roles import CommandKind as K
from drivers.registry import rack_points
from support import make_site

SP = "site.pcs1.active_power_setpoint_kw"
CONTACTOR = "site.bess1.rack01.contactor_command"
RACK_V, BUS_V = "site.bess1.rack01.pack_voltage_v", "site.pcs1.dc_voltage_v"
TEMPS = ("site.bess1.rack01.cell_temperatures_c", "site.bess1.rack02.cell_temperatures_c")
SOCS = ("site.bess1.rack01.soc_pct", "site.bess1.rack02.soc_pct")


def setpoint(kw) -> Command:
    return Command(SP, "write", kw)


def test_contactor_close_is_refused_when_rack_and_bus_voltages_differ():
    lock = ContactorVoltageMatch(CONTACTOR, RACK_V, BUS_V, max_diff_v=10.0)
    close = Command(CONTACTOR, "write", 1)
    assert lock(K.CONTACTOR, close, {RACK_V: 800.0, BUS_V: 809.9}) is None
    reason = lock(K.CONTACTOR, close, {RACK_V: 800.0, BUS_V: 760.0})
    assert "differ by 40.0 V" in reason and CONTACTOR in reason
    assert "no usable value of site.pcs1.dc_voltage_v" in lock(K.CONTACTOR, close, {RACK_V: 800.0})
    assert lock(K.CONTACTOR, Command(CONTACTOR, "write", 0), {RACK_V: 800.0, BUS_V: 0.0}) is None   # opening
    assert lock(K.CONTACTOR, Command("site.bess1.rack02.contactor_command", "write", 1), {}) is None


def test_lfp_charge_is_refused_below_freezing_but_discharge_is_not():
    lock = LfpChargeBelowFreezing(SP, TEMPS)
    warm = {TEMPS[0]: vector([5.0, 6.0]), TEMPS[1]: vector([4.0, 12.0])}
    cold = {TEMPS[0]: vector([5.0, 6.0]), TEMPS[1]: vector([4.0, -0.5])}
    assert lock(K.SETPOINT, setpoint(50.0), warm) is None
    assert "-0.5 °C is below 0.0 °C" in lock(K.SETPOINT, setpoint(50.0), cold)
    assert lock(K.SETPOINT, setpoint(-50.0), cold) is None
    assert lock(K.SETPOINT, setpoint(0.0), cold) is None
    assert "no usable value" in lock(K.SETPOINT, setpoint(50.0), {TEMPS[0]: vector([5.0])})
    assert "no usable value" in lock(K.SETPOINT, setpoint(50.0), {**warm, TEMPS[1]: vector([math.nan, 5.0])})


def test_clearing_a_trip_is_refused_while_its_cause_persists():
    lock = ClearTripWhileCausePersists()
    reset = Command("site.protection", "reset", "site.bess1.rack01")
    assert "still present" in lock(K.RESET_TRIP, reset, {TRIP_CAUSE_PERSISTS: True})
    assert lock(K.RESET_TRIP, reset, {TRIP_CAUSE_PERSISTS: False}) is None
    assert "cannot tell" in lock(K.RESET_TRIP, reset, {})


def test_discharge_is_refused_below_the_soc_floor():
    lock = DischargeBelowSocFloor(SP, SOCS, floor_pct=10.0)
    assert "SOC 9.9 % is below the floor of 10.0 %" in lock(K.SETPOINT, setpoint(-20), {SOCS[0]: 50.0, SOCS[1]: 9.9})
    assert lock(K.SETPOINT, setpoint(-20), {SOCS[0]: 50.0, SOCS[1]: 10.0}) is None
    assert lock(K.SETPOINT, setpoint(+20), {SOCS[0]: 1.0, SOCS[1]: 1.0}) is None       # charging is fine


def test_setpoint_above_rated_power_or_not_a_number_is_refused():
    lock = SetpointWithinRating(SP, rated_kw=100.0)
    assert lock(K.SETPOINT, setpoint(100.0), {}) is None and lock(K.SETPOINT, setpoint(-100.0), {}) is None
    assert "above the rated 100.0 kW" in lock(K.SETPOINT, setpoint(-100.1), {})
    for bad in ("fast", None, math.nan, math.inf, True):
        assert "not a number" in lock(K.SETPOINT, setpoint(bad), {})


@given(kw=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
       rated=st.floats(min_value=1.0, max_value=1e4))
def test_rating_interlock_refuses_exactly_the_setpoints_above_rating(kw, rated):
    refused = SetpointWithinRating(SP, rated)(K.SETPOINT, setpoint(kw), {}) is not None
    assert refused is (abs(kw) > rated)


def test_usable_values_drop_samples_of_unusable_quality():
    snap = {"site.a": Sample(1.0, 0, 0, 0, Quality.GOOD), "site.b": Sample(2.0, 0, 0, 0, Quality.COMM_LOST),
            "site.c": Sample(3.0, 0, 0, 0, Quality.STALE), "site.d": Sample(4.0, 0, 0, 0, Quality.MANUAL)}
    assert usable_values(snap) == {"site.a": 1.0, "site.d": 4.0}


@pytest.fixture
def site_values():
    return {RACK_V: 800.0, "site.bess1.rack02.pack_voltage_v": 800.0, BUS_V: 801.0,
            TEMPS[0]: vector(np.full(16, 20.0)), TEMPS[1]: vector(np.full(16, 20.0)),
            SOCS[0]: 50.0, SOCS[1]: 50.0, TRIP_CAUSE_PERSISTS: False}


@pytest.mark.parametrize("phase, refused", [("connected", False), ("shed", False), ("isolating", True),
                                            ("islanded", True), ("synchronising", True), (None, True)])
def test_a_manual_breaker_close_is_refused_while_the_islanding_sequence_runs(phase, refused):
    lock = BreakerCloseWhileIslanding()
    values = {} if phase is None else {ISLAND_STATE: phase}
    reason = lock(K.CONTACTOR, Command(GRID_BREAKER, "write", 1), values)
    assert (reason is not None) == refused
    if refused:
        why = f"no usable value of {ISLAND_STATE}" if phase is None else f"islanding sequence is active (phase {phase})"
        assert reason.startswith(f"close {GRID_BREAKER}: ") and why in reason
    assert lock(K.CONTACTOR, Command(GRID_BREAKER, "write", 0), values) is None          # opening
    assert lock(K.CONTACTOR, Command(CONTACTOR, "write", 1), values) is None             # a rack contactor


def test_site_interlocks_cover_the_site(tmp_path, site_values):
    site = make_site(tmp_path, racks=2, chemistry="lfp")
    rated = site.pcs[0].rated_power_kw
    locks = site_interlocks(site, max_contactor_diff_v=10.0, soc_floor_pct=5.0)
    for kind, cmd in [(K.SETPOINT, setpoint(rated / 2)), (K.SETPOINT, setpoint(-rated / 2)),
                      (K.CONTACTOR, Command(CONTACTOR, "write", 1)),
                      (K.RESET_TRIP, Command("site.protection", "reset"))]:
        assert check_interlocks(locks, kind, cmd, site_values) == []
    bad = {**site_values, BUS_V: 700.0, TEMPS[1]: vector(np.full(16, -3.0)), SOCS[0]: 2.0,
           TRIP_CAUSE_PERSISTS: True}
    assert len(check_interlocks(locks, K.SETPOINT, setpoint(rated * 1.5), bad)) == 2    # rating + cold
    assert len(check_interlocks(locks, K.SETPOINT, setpoint(-rated / 2), bad)) == 1     # SOC floor
    assert len(check_interlocks(locks, K.CONTACTOR, Command(CONTACTOR, "write", 1), bad)) == 1
    assert len(check_interlocks(locks, K.RESET_TRIP, Command("site.protection", "reset"), bad)) == 1
    close = Command(GRID_BREAKER, "write", 1)
    assert check_interlocks(locks, K.CONTACTOR, close, {**site_values, ISLAND_STATE: "connected"}) == []
    assert len(check_interlocks(locks, K.CONTACTOR, close, {**site_values, ISLAND_STATE: "islanded"})) == 1


def test_site_interlocks_skip_the_freezing_rule_for_other_chemistries(tmp_path, site_values):
    site = make_site(tmp_path, racks=2, chemistry="nmc")
    cold = {**site_values, TEMPS[0]: vector(np.full(16, -5.0))}
    assert check_interlocks(site_interlocks(site), K.SETPOINT, setpoint(site.pcs[0].rated_power_kw / 2), cold) == []


def _freezing_points(site) -> list[str]:
    locks = site_interlocks(site, cell_sources(site, rack_points(site)))
    return [p for lock in locks if isinstance(lock, LfpChargeBelowFreezing) for p in lock.temperature_points]


@pytest.mark.parametrize("options, points", [
    ({"rack_regmap": "sunspec_803"}, ["min_temperature_c"] * 2),          # the coldest extreme of each rack
    ({"rack_regmap": "sunspec_805"}, ["cell_temperatures_c"] * 2),
    ({"rack_regmap": "sunspec_802"}, []),             # no temperatures: left to the BMS's charge current limit
    ({"racks": 1, "bms_ble": 'protocol = "jbd"'}, ["temperatures_c"]),   # the pack's sensors
    ({"bms_can": True, "can_options": "cell_temperature_frames = false"}, ["temperatures_c"] * 2),
])
def test_the_freezing_rule_reads_each_racks_own_temperatures(tmp_path, options, points):
    site = make_site(tmp_path, **{"racks": 2, **options})
    assert _freezing_points(site) == [f"{r.path}.{p}" for r, p in zip(site.racks, points)]


R1, R2 = "site.bess1.rack01", "site.bess1.rack02"


@pytest.mark.parametrize("options, readings, refused", [
    ({"rack_regmap": "sunspec_803"}, {f"{R1}.min_temperature_c": 4.0, f"{R2}.min_temperature_c": 3.0}, None),
    ({"rack_regmap": "sunspec_803"}, {f"{R1}.min_temperature_c": 4.0, f"{R2}.min_temperature_c": -1.0}, "-1.0 °C"),
    ({"rack_regmap": "sunspec_802"}, {}, None),
    ({"racks": 1, "bms_ble": 'protocol = "jbd"'}, {f"{R1}.temperatures_c": vector([6.0, 7.0])}, None),
    ({"racks": 1, "bms_ble": 'protocol = "jbd"'}, {f"{R1}.temperatures_c": vector([6.0, -2.0])}, "-2.0 °C"),
])
def test_lfp_charge_on_extremes_and_pack_sensors_is_refused_only_when_they_read_freezing(
        tmp_path, site_values, options, readings, refused):
    site = make_site(tmp_path, **{"racks": 2, **options})
    values = {k: v for k, v in site_values.items() if k not in TEMPS} | readings     # no per-cell vectors
    reasons = check_interlocks(site_interlocks(site, cell_sources(site, rack_points(site))), K.SETPOINT,
                               setpoint(site.pcs[0].rated_power_kw / 2), values)
    if refused is None:
        assert reasons == []
    else:
        assert len(reasons) == 1 and f"LFP cell at {refused} is below 0.0 °C" in reasons[0]
