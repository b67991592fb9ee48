"""Electro-thermal plant model (vectorised per rack): cells as OCV(SOC) + R0 + one RC pair, lumped
cell temperatures, rack contactors, and a PCS that follows its setpoint with a ramp limit.

Pure state + `step(dt)`; endpoints (Modbus servers etc.) read it and write setpoints into it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.core.site import Bess, Pcs, Rack, Site

# Cell open-circuit voltage vs SOC at 25 °C, simplified from published curves (LFP: A123 ANR26650
# as parameterised by Prada et al. 2013; NMC: LG M50 as in Chen et al. 2020; LTO: Toshiba SCiB
# datasheet; Na-ion: CATL/HiNa published discharge curves). Used only to make plausible plant data.
_SOC = np.array([0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0])
OCV_TABLES = {
    "lfp": np.array([2.80, 3.10, 3.20, 3.25, 3.27, 3.30, 3.32, 3.33, 3.35, 3.40, 3.55]),
    "nmc": np.array([3.00, 3.35, 3.45, 3.55, 3.62, 3.72, 3.88, 3.97, 4.06, 4.12, 4.20]),
    "lto": np.array([1.80, 2.10, 2.20, 2.25, 2.28, 2.32, 2.38, 2.42, 2.48, 2.55, 2.70]),
    "naion": np.array([2.00, 2.50, 2.70, 2.90, 3.00, 3.10, 3.25, 3.35, 3.50, 3.65, 3.90]),
}


def ocv(chemistry: str, soc: np.ndarray) -> np.ndarray:
    return np.interp(soc, _SOC, OCV_TABLES[chemistry])


@dataclass
class RackModel:
    rack: Rack
    chemistry: str
    capacity_ah: np.ndarray
    soc: np.ndarray
    r0_ohm: np.ndarray
    r1_ohm: np.ndarray
    tau_s: np.ndarray
    temp_c: np.ndarray
    v_rc: np.ndarray = field(init=False)
    offset_v: np.ndarray = field(init=False)   # fault injection: added to the measured voltage
    current_a: float = 0.0
    contactor_closed: bool = True
    heartbeat: int = 0

    def __post_init__(self) -> None:
        self.v_rc = np.zeros_like(self.soc)
        self.offset_v = np.zeros_like(self.soc)

    @classmethod
    def create(cls, rack: Rack, chemistry: str, capacity_ah: float, rng: np.random.Generator) -> "RackModel":
        n = rack.cell_count
        return cls(rack, chemistry,
                   capacity_ah=capacity_ah * rng.normal(1.0, 0.01, n),
                   soc=np.clip(rng.normal(0.5, 0.01, n), 0.05, 0.95),
                   r0_ohm=0.25e-3 * rng.normal(1.0, 0.05, n) * (280.0 / capacity_ah),
                   r1_ohm=0.15e-3 * np.ones(n) * (280.0 / capacity_ah),
                   tau_s=np.full(n, 60.0),
                   temp_c=25.0 + rng.normal(0.0, 0.3, n))

    def cell_voltages(self) -> np.ndarray:
        i = self.current_a if self.contactor_closed else 0.0
        return ocv(self.chemistry, self.soc) + i * self.r0_ohm + self.v_rc + self.offset_v

    @property
    def pack_voltage(self) -> float:
        return float(self.cell_voltages().sum())

    def step(self, dt: float, ambient_c: float) -> None:
        i = self.current_a if self.contactor_closed else 0.0
        self.soc = np.clip(self.soc + i * dt / (3600.0 * self.capacity_ah), 0.0, 1.0)
        decay = np.exp(-dt / self.tau_s)
        self.v_rc = self.v_rc * decay + i * self.r1_ohm * (1.0 - decay)
        heat_w = i * i * (self.r0_ohm + self.r1_ohm)
        # lumped thermal mass ~ 2 kJ/K per 100 Ah, cooling 1 W/K per cell toward ambient (HVAC)
        c_th = 20.0 * self.capacity_ah
        self.temp_c = self.temp_c + dt * (heat_w - 1.0 * (self.temp_c - ambient_c)) / c_th
        self.heartbeat = (self.heartbeat + 1) & 0xFFFF


@dataclass
class PcsModel:
    pcs: Pcs
    setpoint_kw: float = 0.0
    setpoint_kvar: float = 0.0
    run: bool = True
    power_kw: float = 0.0
    ramp_kw_per_s: float = 0.0
    grid_hz: float = 50.0
    heartbeat: int = 0

    def __post_init__(self) -> None:
        if not self.ramp_kw_per_s:
            self.ramp_kw_per_s = self.pcs.rated_power_kw   # full power in one second

    def step(self, dt: float, available: bool) -> None:
        rated = self.pcs.rated_power_kw
        target = float(np.clip(self.setpoint_kw, -rated, rated)) if self.run and available else 0.0
        delta = np.clip(target - self.power_kw, -self.ramp_kw_per_s * dt, self.ramp_kw_per_s * dt)
        self.power_kw += float(delta)
        self.heartbeat = (self.heartbeat + 1) & 0xFFFF


class Plant:
    """The whole simulated site: PCS units and their BESS racks."""

    def __init__(self, site: Site, seed: int = 1, ambient_c: float = 25.0) -> None:
        rng = np.random.default_rng(seed)
        self.site = site
        self.ambient_c = ambient_c
        self.pcs = {p.id: PcsModel(p) for p in site.pcs}
        self.racks: dict[str, RackModel] = {}
        self.bess_of: dict[str, Bess] = {}
        for b in site.bess:
            for r in b.racks:
                self.racks[r.path] = RackModel.create(r, b.chemistry, b.cell_capacity_ah, rng)
            self.bess_of[b.id] = b
        self.time_s = 0.0

    def step(self, dt: float) -> None:
        """Advance the plant by dt seconds of simulated time."""
        for b in self.site.bess:
            pcs = self.pcs[b.pcs]
            racks = [self.racks[r.path] for r in b.racks]
            closed = [r for r in racks if r.contactor_closed]
            pcs.step(dt, available=bool(closed))
            for r in racks:
                r.current_a = 0.0
            if closed:
                dc_v = float(np.mean([r.pack_voltage for r in closed]))
                i_rack = pcs.power_kw * 1000.0 / dc_v / len(closed)
                for r in closed:
                    r.current_a = i_rack
            for r in racks:
                r.step(dt, self.ambient_c)
        self.time_s += dt

    # --- fault injection API (tests, training mode) -----------------------------------------
    def inject_cell_offset(self, rack_path: str, cell: int, volts: float) -> None:
        """Add `volts` to the measured voltage of cell number `cell` (1-based) of a rack."""
        self.racks[rack_path].offset_v[cell - 1] = volts

    def clear_faults(self) -> None:
        for r in self.racks.values():
            r.offset_v[:] = 0.0
