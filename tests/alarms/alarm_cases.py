"""Alarm definitions shared by the alarm tests (a rack-3 cell with warn and trip levels)."""
from __future__ import annotations

from app.alarms.model import AlarmDefinition, Direction, Priority

T0 = 1_700_000_000.0
RACK = "site.bess1.rack03"
CELL = f"{RACK}.module07.cell012.voltage_v"
WARN = f"{CELL}.ov_warn"
TRIP = f"{CELL}.ov_trip"
UV = f"{CELL}.uv_warn"
FAULT = f"{RACK}.frontend_fault"
CONTACTOR_OPEN = f"{RACK}.contactor_open"


def ov_warn(**overrides) -> AlarmDefinition:
    """HIGH cell overvoltage warning at 3.600 V, deadband 50 mV."""
    fields = dict(tag=WARN, point=CELL, rule="cell overvoltage warn", priority=Priority.HIGH, limit=3.600,
                  deadband=0.050, unit="V", group=RACK)
    return AlarmDefinition(**{**fields, **overrides})


def ov_trip(**overrides) -> AlarmDefinition:
    """URGENT latching cell overvoltage trip at 3.650 V, deadband 50 mV, rack 3 trip group."""
    fields = dict(tag=TRIP, point=CELL, rule="cell overvoltage trip", priority=Priority.URGENT, limit=3.650,
                  deadband=0.050, unit="V", latching=True, alarm_class="safety", group=RACK)
    return AlarmDefinition(**{**fields, **overrides})


def uv_warn(**overrides) -> AlarmDefinition:
    """MEDIUM cell undervoltage warning at 2.900 V, suppressed while the rack contactor is open."""
    fields = dict(tag=UV, point=CELL, rule="cell undervoltage warn", priority=Priority.MEDIUM, limit=2.900,
                  direction=Direction.LOW, deadband=0.050, unit="V", suppressed_by=CONTACTOR_OPEN, group=RACK)
    return AlarmDefinition(**{**fields, **overrides})


def frontend_fault(**overrides) -> AlarmDefinition:
    """LOW discrete BMS alarm bit (the caller decides active)."""
    fields = dict(tag=FAULT, point=FAULT, rule="BMS frontend fault", priority=Priority.LOW,
                  direction=Direction.DISCRETE, alarm_class="equipment")
    return AlarmDefinition(**{**fields, **overrides})
