"""SunSpec racks under protection over the real links (simulator + Modbus drivers + protection thread):
an 802 rack (min/max cell voltage only, no temperatures) and an 803 rack (min/max voltage and
temperature) run NORMAL on their extremes, and a drifting cell trips through max_cell_voltage_v; an 805
rack (per-cell data) trips on the cell. Either way the trip sequence opens the rack's contactor over the
wire (SunSpec SetOp / StrSetCon behind contactor_command), the PCS goes to 0 kW, and the hold is
released once the rack's contactor reads open (contactor_closed from State / StrSt)."""
from __future__ import annotations

import pytest

from app.protection.thread import ProtectionThread
from app.sim.plant_faults import PlantFaultInjector
from app.sim.simulator import Simulator
from drivers.registry import build_driver, rack_points
from support import Stack, make_site, running, wait_for

RACK, OTHER = "site.bess1.rack01", "site.bess1.rack02"
TRIP = f"{RACK}.cell_overvoltage.trip"
NAMED = {"sunspec_802": f"{RACK}.max_cell_voltage_v", "sunspec_803": f"{RACK}.max_cell_voltage_v",
         "sunspec_805": f"{RACK}.module01.cell003.voltage_v"}


@pytest.mark.parametrize("regmap", sorted(NAMED))
def test_a_drifting_cell_trips_and_opens_the_sunspec_racks_contactor_over_the_wire(tmp_path, regmap):
    site = make_site(tmp_path, racks=2, modules=2, cells=4, poll_s=0.1, rack_regmap=regmap)
    stack = Stack()
    sim = Simulator(site, stack.clock)
    sim.start_endpoints()
    drivers = [build_driver(site, link, stack.bus, stack.router, stack.journal, stack.clock) for link in site.links]
    protection = ProtectionThread(site, stack.bus, stack.router, stack.journal, stack.clock, rack_points(site))
    value = stack.value
    with running(stack, sim, *drivers, protection):
        wait_for(lambda: value(f"{RACK}.protection_state") == value(f"{OTHER}.protection_state") == "NORMAL"
                 and value("site.pcs1.protection_hold") is False and value(f"{RACK}.contactor_closed")
                 and value(f"{RACK}.ccl_a") > 0 and value(f"{RACK}.dcl_a") > 0,        # usable (802: by its BMS limits)
                 timeout=10, what="both racks NORMAL and usable, PCS not held, contactor reads closed",
                 journal=stack.journal)
        faults = PlantFaultInjector.for_simulator(sim)
        drift = faults.inject(f"cell_drift:rack={RACK},cell=3,rate_v_per_min=12")
        wait_for(lambda: protection.alarms.view(TRIP).latched, timeout=15, what="overvoltage trip",
                 journal=stack.journal)
        faults.clear(drift)                          # the cell stops rising: one cause, one trip
        wait_for(lambda: sim.plant.pcs["pcs1"].setpoint_kw == 0.0, timeout=10, what="PCS 0 kW",
                 journal=stack.journal)
        wait_for(lambda: not sim.plant.racks[RACK].contactor_closed, timeout=10, what="rack01 contactor open",
                 journal=stack.journal)
        wait_for(lambda: not value(f"{RACK}.contactor_closed") and value("site.pcs1.protection_hold") is False,
                 timeout=10, what="open contactor read back, rack isolated, PCS hold released", journal=stack.journal)
        assert sim.plant.racks[OTHER].contactor_closed and value(f"{OTHER}.protection_state") == "NORMAL"
        assert value("site.bess1.trip_scope") == "rack" and value(f"{RACK}.protection_state") == "TRIPPED"
    trip = next(e for e in stack.journal.since(0) if e.message.startswith("URGENT cell overvoltage trip"))
    assert trip.point == NAMED[regmap] and trip.value > 3.65 and trip.limit == pytest.approx(3.65)
    assert trip.message == f"URGENT cell overvoltage trip: {NAMED[regmap]} = {trip.value:.3f} V > 3.650 V; " \
                           "latched until reset"
