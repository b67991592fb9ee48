"""Each protocol end to end over bumble: simulated pack (GATT peripheral) -> BleDriver (central) ->
canonical points equal to the plant's values at the protocol's resolution."""
from __future__ import annotations

import numpy as np
import pytest

from app.sim.ble_pack import PackReading, jk_probes
from ble_site import ble_site, plant_for, serving, sim_links
from drivers.ble.driver import BleDriver
from support import Stack, running, wait_for

RACK = "site.bess1.rack01"


def _run_one(options: str, **site_kwargs):
    site = ble_site([options], **site_kwargs)
    plant = plant_for(site)
    stack = Stack()
    (sim,) = sim_links(site, plant)
    driver = BleDriver(site.link("pack1"), stack.bus, stack.router, stack.journal, stack.clock, racks=site.racks)
    with serving(sim), running(stack, driver):
        wait_for(lambda: stack.value(f"{RACK}.cell_voltages_v") is not None
                 and stack.value(f"{RACK}.pack_voltage_v") is not None, timeout=5, what="pack points")
        values = {p.rsplit(".", 1)[1]: s.value for p, s in stack.bus.snapshot().items() if p.startswith(RACK)}
    reading = PackReading.from_model(plant.racks[RACK], sim.config.temperature_sensors)
    return values, reading, driver


def test_jbd_pack_values_arrive_decoded():
    values, r, driver = _run_one('protocol = "jbd"')
    np.testing.assert_allclose(values["cell_voltages_v"], r.cell_voltages_v, atol=0.0006)
    assert values["cell_voltages_v"].dtype == np.float32 and len(values["cell_voltages_v"]) == 8
    assert values["pack_voltage_v"] == pytest.approx(r.pack_voltage_v, abs=0.006)
    assert values["current_a"] == pytest.approx(12.5)
    assert values["soc_pct"] == round(r.soc_pct)
    np.testing.assert_allclose(values["temperatures_c"], r.temperatures_c, atol=0.06)
    assert values["remaining_capacity_ah"] == pytest.approx(r.remaining_capacity_ah, abs=0.006)
    assert values["charge_fet_on"] is True and values["alarms"] == ""
    assert driver.stats.snapshot()["errors"] == 0


@pytest.mark.parametrize("variant", ["jk02_24s", "jk02_32s"])
def test_jk_pack_values_arrive_decoded(variant):
    values, r, driver = _run_one(f'protocol = "jk", variant = "{variant}"')
    np.testing.assert_allclose(values["cell_voltages_v"], r.cell_voltages_v, atol=0.0006)
    assert values["cell_count"] == 8
    assert values["pack_voltage_v"] == pytest.approx(r.pack_voltage_v, abs=0.0006)
    assert values["current_a"] == pytest.approx(12.5)
    np.testing.assert_allclose(values["temperatures_c"], jk_probes(r), atol=0.06)
    assert values["soc_pct"] == round(r.soc_pct) and values["soh_pct"] == 100
    assert values["full_capacity_ah"] == pytest.approx(r.full_capacity_ah, abs=0.0006)
    assert driver.stats.snapshot()["errors"] == 0


def test_daly_pack_values_arrive_decoded():
    values, r, driver = _run_one('protocol = "daly"', cells=5)       # 10 cells: 4 frames of 0x95
    np.testing.assert_allclose(values["cell_voltages_v"], r.cell_voltages_v, atol=0.0006)
    assert len(values["cell_voltages_v"]) == 10
    assert values["pack_voltage_v"] == pytest.approx(r.pack_voltage_v, abs=0.06)
    assert values["current_a"] == pytest.approx(12.5, abs=0.06)
    assert values["soc_pct"] == pytest.approx(r.soc_pct, abs=0.06)
    np.testing.assert_allclose(values["temperatures_c"], np.round(r.temperatures_c))
    assert values["max_cell_number"] == int(np.argmax(r.cell_voltages_v)) + 1
    assert values["min_cell_voltage_v"] == pytest.approx(r.cell_voltages_v.min(), abs=0.0006)
    assert values["discharge_fet_on"] is True and values["alarms"] == ""
    assert driver.stats.snapshot()["errors"] == 0


@pytest.mark.parametrize("pack_probes, configured", [(1, 2), (3, 2)])
def test_temperatures_come_as_many_as_the_site_file_configures(pack_probes, configured):
    """A pack with fewer probes than configured: NaN slots (a reading protection flags); more: trimmed.
    Either way the mismatch is counted as a link error."""
    pack = ble_site([f'protocol = "jbd", temperature_sensors = {pack_probes}'])
    site = ble_site([f'protocol = "jbd", temperature_sensors = {configured}'])
    plant = plant_for(pack)
    stack = Stack()
    (sim,) = sim_links(pack, plant)
    driver = BleDriver(site.link("pack1"), stack.bus, stack.router, stack.journal, stack.clock, racks=site.racks)
    with serving(sim), running(stack, driver):
        wait_for(lambda: stack.value(f"{RACK}.temperatures_c") is not None, timeout=5, what="temperatures")
    temps = stack.value(f"{RACK}.temperatures_c")
    sent = PackReading.from_model(plant.racks[RACK], pack_probes).temperatures_c
    assert temps.dtype == np.float32 and temps.shape == (configured,)
    np.testing.assert_allclose(temps[:pack_probes], sent[:configured], atol=0.06)
    assert np.isnan(temps[pack_probes:]).all()
    assert driver.stats.snapshot()["errors"] >= 1
    assert f"the BMS reports {pack_probes} temperature sensors, the site file configures {configured}" in \
        driver.stats.snapshot()["last_error"]
