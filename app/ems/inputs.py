"""What every operating mode sees and returns: EmsInputs (one frozen snapshot) and Decision.

Sign convention everywhere: battery power + = charging, grid power + = import. ``max_charge_kw`` and
``max_discharge_kw`` are the protection limits for this cycle (CCL/DCL x pack voltage, PCS rating,
SOC headroom), both >= 0 and both 0 while protection holds the PCS. Site quantities the site cannot
measure are None; a mode that needs one and gets None answers with 0 kW and says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EmsInputs:
    """One EMS cycle's view of the site (built by app/ems/worker.py from DataBus points)."""

    time_s: float                      # monotonic seconds (rates and timers)
    hour: float                        # local time of day, 0 <= hour < 24 (price windows)
    max_charge_kw: float
    max_discharge_kw: float
    soc_pct: float | None = None
    load_kw: float | None = None       # site consumption
    pv_kw: float | None = None         # PV production
    grid_kw: float | None = None       # metered grid exchange, + = import (includes the battery)
    battery_kw: float | None = None    # measured PCS power, + = charging
    frequency_hz: float | None = None  # at the PCS terminals: the grid, or the island the PCS forms
    grid_available: bool = True        # the public grid is present (at the grid side of the breaker)
    grid_frequency_hz: float | None = None   # the public grid's frequency (meter, grid side)
    breaker_closed: bool | None = None       # grid breaker status (meter)
    grid_forming: bool | None = None         # a PCS the EMS may command reports grid-forming
    import_price: float | None = None  # per kWh
    export_price: float | None = None

    @property
    def demand_kw(self) -> float | None:
        """Import the site would draw without the battery: load - PV, else grid - battery."""
        if self.load_kw is not None and self.pv_kw is not None:
            return self.load_kw - self.pv_kw
        if self.grid_kw is not None and self.battery_kw is not None:
            return self.grid_kw - self.battery_kw
        return None


@dataclass(frozen=True)
class Decision:
    """A mode's answer: setpoint (kW, + = charging, within the limits), why (operator text), the
    mode's next state (opaque, immutable; pass it back on the next step), the states the site's devices
    must hold now as (point, value) pairs, point "meter.<name>" or "pcs.<name>" (every PCS), and an
    alarm text when something needs the operator."""

    setpoint_kw: float
    why: str
    state: Any = None
    devices: tuple[tuple[str, int], ...] = ()
    alarm: str = ""


def clamp(kw: float, inp: EmsInputs) -> float:
    """``kw`` within [-max_discharge_kw, max_charge_kw] (both 0 while protection holds)."""
    return min(max(kw, -inp.max_discharge_kw), inp.max_charge_kw) + 0.0


def limited(kw: float, inp: EmsInputs) -> tuple[float, str]:
    """Clamped setpoint and a suffix for the why text when the limits cut it."""
    out = clamp(kw, inp)
    if abs(out - kw) < 1e-9:
        return out, ""
    side = "charge" if kw > 0 else "discharge"
    limit = inp.max_charge_kw if kw > 0 else inp.max_discharge_kw
    return out, f" (limited by {side} limit {limit:.0f} kW)"


def fmt_kw(kw: float) -> str:
    """'charge 12 kW' / 'discharge 12 kW' / 'idle'."""
    if abs(kw) < 0.05:
        return "idle"
    return f"{'charge' if kw > 0 else 'discharge'} {abs(kw):.1f} kW"


def missing(mode: str, *names: str) -> Decision:
    """The answer of a mode whose required measurement is missing: 0 kW, saying which one."""
    return Decision(0.0, f"{mode}: no valid {', '.join(names)} -> idle")
