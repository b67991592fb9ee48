"""Cell voltage trip limits per chemistry (trip level of the limits ladder; issue 6 adds warn/alarm
rungs, currents and temperatures).

Sources: LFP 3.65 V = maximum charge voltage of EVE LF280K / CATL 280 Ah LFP cell datasheets;
NMC 4.25 V = 4.20 V maximum charge voltage of LG INR21700-M50 (Chen et al., J. Electrochem. Soc.
167 (2020) 080534) plus 50 mV margin; LTO 2.85 V = Toshiba SCiB 2.7 V charge limit plus margin;
sodium-ion 4.05 V = CATL/HiNa 3.95-4.0 V charge limit plus margin.
"""
from __future__ import annotations

from dataclasses import dataclass

CELL_OV_TRIP_V = {"lfp": 3.65, "nmc": 4.25, "lto": 2.85, "naion": 4.05}


@dataclass(frozen=True)
class OvervoltageLimit:
    trip_v: float
    on_delay_s: float = 0.5      # must persist this long (filters single-sample glitches)
    release_v: float = 0.0       # hysteresis: condition clears below this

    @classmethod
    def for_chemistry(cls, chemistry: str, overrides: dict[str, float]) -> "OvervoltageLimit":
        trip = overrides.get("cell_overvoltage_trip_v", CELL_OV_TRIP_V[chemistry])
        return cls(trip_v=trip, on_delay_s=overrides.get("cell_overvoltage_delay_s", 0.5),
                   release_v=trip - overrides.get("cell_overvoltage_hysteresis_v", 0.05))


# Operating window shown to the operator (heatmap scale, distance to trip): warn levels sit inside
# the datasheet window, trip levels are the protection trips above (UV: datasheet discharge cut-off
# minus margin — LFP 2.5 V, NMC 2.5 V, LTO 1.5 V, Na-ion 1.5 V).
CELL_VOLTAGE_WINDOW = {          # (low_trip, low_warn, high_warn, high_trip) in V
    "lfp": (2.50, 2.90, 3.55, CELL_OV_TRIP_V["lfp"]),
    "nmc": (2.50, 3.00, 4.18, CELL_OV_TRIP_V["nmc"]),
    "lto": (1.50, 1.80, 2.75, CELL_OV_TRIP_V["lto"]),
    "naion": (1.50, 2.00, 3.95, CELL_OV_TRIP_V["naion"]),
}


def voltage_window(chemistry: str, overrides: dict[str, float]) -> tuple[float, float, float, float]:
    low_trip, low_warn, high_warn, _ = CELL_VOLTAGE_WINDOW[chemistry]
    return low_trip, low_warn, high_warn, OvervoltageLimit.for_chemistry(chemistry, overrides).trip_v

# Cell temperature window (°C) shown to the operator: (low_trip, low_warn, high_warn, high_trip).
# Low levels are the charge limits (no charging of LFP/NMC below 0 °C: EVE LF280K, LG M50 datasheets;
# LTO -30 °C: Toshiba SCiB; Na-ion -20 °C: CATL 1st-gen), high levels the discharge limits (55-60 °C).
CELL_TEMPERATURE_WINDOW = {
    "lfp": (0.0, 5.0, 45.0, 55.0),
    "nmc": (0.0, 5.0, 45.0, 60.0),
    "lto": (-30.0, -20.0, 50.0, 60.0),
    "naion": (-20.0, -10.0, 50.0, 60.0),
}
# Deviation of a cell from its rack mean (V): imbalance warn / trip (BMS vendors flag 30-50 mV on LFP).
CELL_DEVIATION_WINDOW_V = (-0.10, -0.03, 0.03, 0.10)
