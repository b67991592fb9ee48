"""The simulator's CAN BMS: Pylontech frames byte-exact from the pure encoders, cell frames from the DBC,
broadcast on a real python-can virtual bus."""
from __future__ import annotations

import threading

import can
import numpy as np
import pytest

from app.core.clock import SystemClock
from app.core.errors import ConfigError
from app.sim.can_endpoint import CanEndpoint, CanSimLink, broadcast_period_s
from can_site import can_site, plant_for
from drivers.bms import pylon_can
from drivers.can import layout
from support import wait_for


def _rack(site, plant, number=1):
    return plant.racks[site.racks[number - 1].path]


def test_pylontech_frames_are_the_pure_encoders_output_for_the_plant_state():
    site = can_site('interface = "virtual"')
    plant = plant_for(site, current_a=-20.0)
    model = _rack(site, plant)
    frames = {m.arbitration_id: bytes(m.data) for m in CanEndpoint(model).frames()[:6]}
    cells = model.rack.cell_count
    assert frames == {
        0x351: pylon_can.encode_limits(charge_voltage_limit_v=cells * 3.6, charge_current_limit_a=0.5 * np.mean(
            model.capacity_ah), discharge_current_limit_a=0.5 * np.mean(model.capacity_ah),
            discharge_voltage_limit_v=cells * 2.0),
        0x355: pylon_can.encode_soc_soh(soc_pct=45, soh_pct=100),
        0x356: pylon_can.encode_measurements(pack_voltage_v=model.pack_voltage, current_a=-20.0,
                                             temperatures_c=[float(np.mean(model.temp_c))]),
        0x359: pylon_can.encode_alarms([], module_count=4),
        0x35C: pylon_can.encode_requests(charge_enable=True, discharge_enable=True, force_charge_request=False),
        0x35E: b"ESMS-SIM",
    }


def test_cell_frames_carry_every_cell_in_mv_and_tenths_of_a_degree():
    site = can_site('interface = "virtual"', modules=3, cells=5)          # 15 cells: last slot padded
    plant = plant_for(site)
    model = _rack(site, plant)
    msgs = CanEndpoint(model).frames()[6:]
    specs = layout.cell_frames()
    volts = [layout.decode_cell_frame(specs[0x360], bytes(m.data)) for m in msgs if m.arbitration_id == 0x360]
    temps = [layout.decode_cell_frame(specs[0x361], bytes(m.data)) for m in msgs if m.arbitration_id == 0x361]
    assert [g for g, _ in volts] == [0, 1, 2, 3] == [g for g, _ in temps]
    v = np.array([x for _, slots in volts for x in slots])
    t = np.array([x for _, slots in temps for x in slots])
    assert np.isnan(v[15]) and np.isnan(t[15])
    np.testing.assert_allclose(v[:15], model.cell_voltages(), atol=0.0005)
    np.testing.assert_allclose(t[:15], model.temp_c, atol=0.05)


def test_second_unit_uses_the_next_id_window():
    site = can_site('interface = "virtual"', racks=2)
    plant = plant_for(site)
    ids = {m.arbitration_id for m in CanEndpoint(_rack(site, plant, 2)).frames()}
    assert ids == {0x371, 0x375, 0x376, 0x379, 0x37C, 0x37E, 0x380, 0x381}


def test_a_pack_above_the_low_voltage_frame_range_is_a_config_error():
    site = can_site('interface = "virtual"', modules=8, cells=16)          # 128 LFP cells, 460 V
    with pytest.raises(ConfigError, match="rack01: 128 lfp cells .* use fewer cells"):
        CanEndpoint(_rack(site, plant_for(site)))


def test_sim_link_serves_only_virtual_or_socketcand():
    site = can_site('interface = "pcan"')
    with pytest.raises(ConfigError, match="options.interface"):
        CanSimLink(site.link("bms1"), list(plant_for(site).racks.values()), SystemClock())


def test_broadcast_period_is_1_s_or_half_the_poll_period():
    assert broadcast_period_s(can_site('interface = "virtual"', poll_s=5.0).link("bms1")) == 1.0
    assert broadcast_period_s(can_site('interface = "virtual"', poll_s=0.2).link("bms1")) == 0.1


def test_sim_link_broadcasts_whole_cycles_on_the_virtual_channel():
    site = can_site('interface = "virtual"', address="test-endpoint-bus")
    plant = plant_for(site)
    sim = CanSimLink(site.link("bms1"), list(plant.racks.values()), SystemClock())
    listener = can.Bus(interface="virtual", channel="test-endpoint-bus")
    seen: list[can.Message] = []
    try:
        sim.start()

        def two_cycles():
            while (msg := listener.recv(0.05)) is not None:
                seen.append(msg)
            return sum(m.arbitration_id == 0x351 for m in seen) >= 2
        wait_for(two_cycles, timeout=5, what="two broadcast cycles")
    finally:
        sim.stop()
        listener.shutdown()
    first = [m.arbitration_id for m in seen[seen.index(next(m for m in seen if m.arbitration_id == 0x351)):]][:14]
    assert first == [0x351, 0x355, 0x356, 0x359, 0x35C, 0x35E] + [0x360] * 4 + [0x361] * 4
    assert not sim.running


def test_cycles_are_built_under_the_simulators_step_lock():
    site = can_site('interface = "virtual"', address="test-endpoint-lock")
    plant = plant_for(site)
    step_lock = threading.Lock()
    sim = CanSimLink(site.link("bms1"), list(plant.racks.values()), SystemClock(), lock=step_lock)
    listener = can.Bus(interface="virtual", channel="test-endpoint-lock")
    try:
        with step_lock:                     # the simulator is stepping the plant
            sim.start()
            assert listener.recv(0.3) is None
        assert listener.recv(2.0) is not None
    finally:
        sim.stop()
        listener.shutdown()
