"""Alarm texts that name the priority, rule, point, value and limit, e.g.
"HIGH cell overvoltage warn: site.bess1.rack03.module07.cell012.voltage_v = 3.612 V > 3.600 V"."""
from __future__ import annotations

import math
from typing import Any

from app.alarms.model import AlarmDefinition, Direction


def fmt_value(value: Any, defn: AlarmDefinition) -> str:
    """A value with the definition's decimals and unit ("3.612 V"); "no reading" for None/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no reading"
    if isinstance(value, bool):
        text = "active" if value else "inactive"
    elif isinstance(value, (int, float)):
        text = f"{value:.{defn.decimals}f}"
    else:
        text = str(value)
    return f"{text} {defn.unit}" if defn.unit and not isinstance(value, bool) else text


def reading(defn: AlarmDefinition, point: str, value: Any) -> str:
    """"point = value op limit", the operator comparing the value with the limit truthfully."""
    head = f"{point} = {fmt_value(value, defn)}"
    if defn.direction is Direction.DISCRETE or not isinstance(value, (int, float)) or isinstance(value, bool) \
            or math.isnan(value):
        return head
    if defn.direction is Direction.HIGH:
        op = ">" if value > defn.limit else "<="
    else:
        op = "<" if value < defn.limit else ">="
    return f"{head} {op} {fmt_value(defn.limit, defn)}"


def alarm_message(defn: AlarmDefinition, point: str, value: Any, action: str, detail: str = "") -> str:
    """The transition message: "<PRIORITY> <rule>[ <action text>]: <reading>[; <detail>]"."""
    verb = "" if action == "activate" else f" {ACTION_TEXT[action]}"
    text = f"{defn.priority.name} {defn.rule}{verb}: {reading(defn, point, value)}"
    return f"{text}; {detail}" if detail else text


ACTION_TEXT = {
    "clear": "returned to normal",
    "ack": "acknowledged",
    "shelve": "shelved",
    "unshelve": "unshelved",
    "shelve_expired": "shelving expired",
    "suppress": "suppressed",
    "unsuppress": "no longer suppressed",
    "out_of_service": "out of service",
    "return_to_service": "returned to service",
    "reset": "reset",
}
