"""Operator windows derived from the limit ladders (resources/limits/<chemistry>.toml with the site's
overrides): what the heatmaps and cell detail show as normal / warn / trip, so the screens and the
protection engine can never disagree."""
from __future__ import annotations

from app.protection.limit_file import LimitSet

Window = tuple[float, float, float, float]          # (low_trip, low_warn, high_warn, high_trip)


def voltage_window(limits: LimitSet) -> Window:
    ov, uv = limits.ladders["cell_overvoltage"].levels, limits.ladders["cell_undervoltage"].levels
    return uv[2], uv[0], ov[0], ov[2]


def temperature_window(limits: LimitSet) -> Window:
    """Charging limits at the cold end (the stricter), discharge limits at the hot end."""
    cold, hot = limits.ladders["charge_undertemperature"].levels, limits.ladders["discharge_overtemperature"].levels
    return cold[2], cold[0], hot[0], hot[2]


def deviation_window(limits: LimitSet) -> Window:
    """Deviation of a cell from its rack mean: the imbalance ladder's warn and trip, both directions."""
    dv = limits.ladders["cell_imbalance"].levels
    return -dv[2], -dv[0], dv[0], dv[2]
