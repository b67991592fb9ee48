"""Electro-thermal plant model: racks of cells (vectorised per rack), each BESS's DC bus, PCS units
with power limits, ramps and grid-following/grid-forming operation, the site's load and PV, its grid
breaker and load feeder.

Pure state + `Plant.step(dt)` in simulated seconds (any dt: steps longer than the thermal/RC time
constants allow are sub-stepped). Endpoints (Modbus, CAN, BLE servers) read the models' public fields
and write setpoints, contactor and balancing commands into them, under the simulator's lock. Faults are
set by app/sim/plant_faults.py through the documented fault fields of RackModel, PcsModel and Plant.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from app.core.chemistry import get_chemistry
from app.core.site import Bess, Pcs, Rack, Site
from app.sim.bms_master import BmsMaster
from app.sim.profiles import NOMINAL_HZ, NOMINAL_V, SiteProfiles
from app.sim.thermal import RackThermal

SELF_DISCHARGE_PER_MONTH = 0.03       # median self-discharge (fraction of capacity), log-normal spread
MONTH_S = 30 * 86400.0
SENSOR_RAIL_V = 6.5535                # an open sense wire reads the AFE's full-scale code (0xFFFF x 100 uV)
SENSOR_OK, SENSOR_STUCK, SENSOR_OPEN, SENSOR_ZERO = 0, 1, 2, 3
# Beyond the table (overcharge above SOC 1, overdischarge below 0) the cell voltage runs away steeply
# instead of the charge being clipped; a cell is destroyed past SOC_ABUSE_LIMIT either way.
ABUSE_V_PER_SOC = 20.0                # 0.2 V per 1 % of capacity beyond the table
SOC_ABUSE_LIMIT = 0.05

# Thermal runaway onset: an exothermic reaction whose heat grows e-fold every RUNAWAY_THETA_K above
# the temperature at onset, and a separator short whose resistance (relative to R0) falls e-fold every
# RUNAWAY_SHORT_THETA_K; the reaction has burnt out at RUNAWAY_END_C. At onset the reaction gives
# RUNAWAY_ONSET_MARGIN times the heat the cell's cooling can still hold (Semenov: G * theta / e), so
# it runs away instead of settling. Off-gas (H2, CO) is released in proportion to the reaction rate.
RUNAWAY_THETA_K = 12.0
RUNAWAY_ONSET_MARGIN = 2.5
RUNAWAY_SHORT_R0_MULTIPLE = 1.0e4
RUNAWAY_SHORT_THETA_K = 6.0
RUNAWAY_END_C = 650.0
GAS_H2_PPM_PER_K = 50.0               # ppm of H2 at the rack's detector per kelvin of reaction heating
GAS_CO_PER_H2 = 0.5
GAS_AIR_CHANGE_S = {True: 600.0, False: 7200.0}   # rack air exchange time, fan on / off

RC_STEP_FRACTION = 1.0                # sub-steps of at most one RC time constant (the RC update is exact)
MAX_DT_PER_STEP_K = 1.0               # during a runaway: at most this many kelvin per sub-step
MIN_STEP_S = 0.01

PCS_EFFICIENCY = 0.97
DC_TAPER_FRACTION = 0.03              # PCS tapers power over the last 3 % of the cell voltage span
ISLAND_DROOP = 0.02                   # island frequency falls 2 % per rated power delivered above the reference
SYNC_WINDOW_HZ = 0.2                  # the breaker's sync check: island within this of the grid frequency ...
SYNC_WINDOW_V = 0.05 * NOMINAL_V      # ... and voltage
BLEED_RESISTOR_OHM = 33.0             # passive balancing resistor per cell (BalancingSettings' default)
WATCHDOG_EPS_S = 1e-6                 # sub-steps summing to the balancing timeout count as reaching it


class RackModel:
    """One rack of series cells behind one contactor, and its BMS (slave).

    Per cell (numpy arrays, cell 1 first, module-major): OCV(SOC, T) from the chemistry table + R0 +
    one RC pair, R0 and R1 scaled with temperature; capacity, resistance and self-discharge spread;
    the losses heat a RackThermal. The readings `soc`, `temp_c`, `current_a`, `cell_voltages()` and
    `pack_voltage` are what the BMS measures: the true state (`true_*`) unless a fault bends a
    sensor or reboots the BMS; assigning them sets the true state. `contactor_closed` is the
    contactor's actual state; assigning it is a command (a welded contactor ignores an open).
    `throughput_ah` counts the charge through the terminals (the BMS's cycle counter).
    `bleed` marks the cells whose balancing resistor (`bleed_resistor_ohm`) the BMS has switched on
    (`command_bleed`); they discharge through it while the BMS is up, and the resistor's heat goes to
    the BMS board, not the cell. With `balancing_timeout_s` > 0 the BMS drops the bleed once the last
    command is that many simulated seconds old (`bleed_age_s`) and sets `bleed_timed_out`.

    Fault fields (app/sim/plant_faults.py): offset_v, drift_v, drift_v_per_s, short_s (internal
    short conductance, S), runaway_t0_c (NaN = none), sensor_mode, sensor_hold_v, current_offset_a,
    welded, reboot_s (seconds left of a BMS reboot), thermal.hvac_enabled; `dead` marks cells a
    runaway has burnt out (0 V, no charge).
    """

    def __init__(self, rack: Rack, chemistry: str, capacity_ah: np.ndarray, soc: np.ndarray, r0_ohm: np.ndarray,
                 r1_ohm: np.ndarray, tau_s: np.ndarray, self_discharge_per_s: np.ndarray, temp_c: np.ndarray,
                 ambient_c: float) -> None:
        n = rack.cell_count
        self.rack, self.chemistry, self.chem = rack, chemistry, get_chemistry(chemistry)
        self.capacity_ah, self.r0_ohm, self.r1_ohm, self.tau_s = capacity_ah, r0_ohm, r1_ohm, tau_s
        self.self_discharge_per_s = self_discharge_per_s
        self.true_soc, self.true_temp_c = soc, temp_c
        self.true_current_a = 0.0
        self.throughput_ah = 0.0
        self.v_rc = np.zeros(n)
        self.thermal = RackThermal(rack.modules, rack.cells_per_module, capacity_ah, ambient_c)
        self.gas_h2_ppm = self.gas_co_ppm = 0.0
        self.heartbeat = 0
        self.contactor_command = True
        self._closed = True
        self.bleed = np.zeros(n, bool)
        self.bleed_resistor_ohm = BLEED_RESISTOR_OHM
        self.balancing_timeout_s = 0.0    # the BMS's balancing watchdog; 0 = none
        self.bleed_age_s = 0.0            # simulated seconds since the last balancing command
        self.bleed_timed_out = False      # the watchdog dropped the bleed (register_points serves it)
        self.offset_v = np.zeros(n)       # added to the measured voltage (Plant.inject_cell_offset)
        self.drift_v = np.zeros(n)
        self.drift_v_per_s = np.zeros(n)
        self.short_s = np.zeros(n)
        self.runaway_t0_c = np.full(n, np.nan)
        self.dead = np.zeros(n, bool)
        self.sensor_mode = np.zeros(n, np.int8)
        self.sensor_hold_v = np.zeros(n)
        self.current_offset_a = 0.0
        self.welded = False
        self.reboot_s = 0.0
        self._heat_rate_k_per_s = 0.0     # hottest cell's heating rate in the last sub-step
        self._decay: tuple[float, np.ndarray] = (0.0, np.ones(n))

    @classmethod
    def create(cls, rack: Rack, chemistry: str, capacity_ah: float, rng: np.random.Generator,
               ambient_c: float = 25.0) -> "RackModel":
        """A rack of new cells with seeded spread: capacity 1 %, resistance 5 %, self-discharge
        log-normal (median 3 %/month), SOC 50 +- 1 %, temperature ambient +- 0.3 C."""
        n = rack.cell_count
        chem = get_chemistry(chemistry)
        r_rc = chem.r1_ohm_ah + chem.r2_ohm_ah        # the table's two RC pairs lumped into one
        tau = (chem.r1_ohm_ah * chem.tau1_s + chem.r2_ohm_ah * chem.tau2_s) / r_rc
        cap = capacity_ah * rng.normal(1.0, 0.01, n)
        spread = rng.normal(1.0, 0.05, n)
        return cls(rack, chemistry, capacity_ah=cap,
                   soc=np.clip(rng.normal(0.5, 0.01, n), 0.05, 0.95),
                   r0_ohm=chem.r0_ohm_ah / cap * spread, r1_ohm=r_rc / cap * spread, tau_s=np.full(n, tau),
                   self_discharge_per_s=SELF_DISCHARGE_PER_MONTH / MONTH_S * rng.lognormal(0.0, 0.4, n),
                   temp_c=ambient_c + rng.normal(0.0, 0.3, n), ambient_c=ambient_c)

    # --- what the BMS reports ---------------------------------------------------------------------
    @property
    def online(self) -> bool:
        """False while the BMS reboots (its readings are zeros)."""
        return self.reboot_s <= 0.0

    @property
    def soc(self) -> np.ndarray:
        """SOC fraction per cell as the BMS reports it (0..1; the true SOC may run past either end)."""
        return np.clip(self.true_soc, 0.0, 1.0) if self.online else np.zeros_like(self.true_soc)

    @soc.setter
    def soc(self, value) -> None:
        self.true_soc = np.asarray(value, float)

    @property
    def temp_c(self) -> np.ndarray:
        return self.true_temp_c if self.online else np.zeros_like(self.true_temp_c)

    @temp_c.setter
    def temp_c(self, value) -> None:
        self.true_temp_c = np.asarray(value, float)

    @property
    def current_a(self) -> float:
        return self.true_current_a + self.current_offset_a if self.online else 0.0

    @current_a.setter
    def current_a(self, value: float) -> None:
        self.true_current_a = float(value)

    def true_cell_voltages(self) -> np.ndarray:
        """Terminal voltage of every cell (V)."""
        i = self.true_current_a if self._closed else 0.0
        r0 = self.r0_ohm * self.chem.resistance_scale(self.true_temp_c)
        g = self._short_conductance(r0) + self._bleed_conductance()
        return (self._emf_now() + i * r0) / (1.0 + r0 * g)

    def cell_voltages(self) -> np.ndarray:
        """Cell voltages as the BMS measures them (V, cell 1 first)."""
        if not self.online:
            return np.zeros_like(self.true_soc)
        v = self.true_cell_voltages() + self.offset_v + self.drift_v
        if self.sensor_mode.any():
            v = np.where(self.sensor_mode == SENSOR_STUCK, self.sensor_hold_v, v)
            v[self.sensor_mode == SENSOR_OPEN] = SENSOR_RAIL_V
            v[self.sensor_mode == SENSOR_ZERO] = 0.0
        return v

    @property
    def pack_voltage(self) -> float:
        return float(self.cell_voltages().sum())

    # --- contactor and BMS state ------------------------------------------------------------------
    @property
    def contactor_closed(self) -> bool:
        return self._closed

    @contactor_closed.setter
    def contactor_closed(self, value: bool) -> None:
        self.contactor_command = bool(value)
        self.drive_contactor()

    def drive_contactor(self) -> None:
        """Apply the coil state: commanded and BMS up. A welded contactor that is closed stays closed."""
        coil = self.contactor_command and self.online
        self._closed = coil or (self.welded and self._closed)
        if not self._closed:
            self.true_current_a = 0.0

    def command_bleed(self, cells: tuple[int, ...]) -> None:
        """The BMS's balancing command: bleed the 1-based `cells`, stop bleeding the others."""
        self.bleed[:] = False
        self.bleed[np.asarray(cells, int) - 1] = True
        self.bleed_age_s, self.bleed_timed_out = 0.0, False

    def _bleed_left_s(self) -> float:
        """Seconds until the balancing watchdog drops the bleed (inf: no timeout or nothing bleeding)."""
        if self.balancing_timeout_s <= 0.0 or not self.bleed.any():
            return math.inf
        return self.balancing_timeout_s - self.bleed_age_s

    def reboot(self, seconds: float) -> None:
        """Reboot the BMS for `seconds` (0 ends a reboot): readings zero, heartbeat restarts from 0,
        contactor coils drop out meanwhile."""
        self.reboot_s = max(0.0, float(seconds))
        self.heartbeat = 0
        self.drive_contactor()

    def clear_faults(self) -> None:
        """Back to healthy sensors, contactor, BMS and HVAC (the cells keep their state)."""
        for arr in (self.offset_v, self.drift_v, self.drift_v_per_s, self.short_s):
            arr[:] = 0.0
        self.runaway_t0_c[:] = np.nan
        self.dead[:] = False
        self.sensor_mode[:] = SENSOR_OK
        self.current_offset_a = 0.0
        self.welded = False
        self.thermal.hvac_enabled = True
        self.reboot(0.0)

    # --- physics ----------------------------------------------------------------------------------
    def _emf_now(self) -> np.ndarray:
        """OCV(SOC, T) + RC voltage per cell; a dead cell has none."""
        soc = self.true_soc
        within = np.clip(soc, 0.0, 1.0)
        emf = self.chem.ocv(within, self.true_temp_c) + ABUSE_V_PER_SOC * (soc - within) + self.v_rc
        return np.where(self.dead, 0.0, emf) if self.dead.any() else emf

    def _short_conductance(self, r0: np.ndarray) -> np.ndarray:
        """Internal short conductance per cell (S): the injected short plus the separator short of a
        runaway; none in an empty or dead cell (nothing left to drive it)."""
        g = self.short_s
        if not np.isnan(self.runaway_t0_c).all():
            rise = np.minimum(np.nan_to_num(self.true_temp_c - self.runaway_t0_c, nan=-np.inf), 200.0)
            g = g + np.exp(rise / RUNAWAY_SHORT_THETA_K) / (RUNAWAY_SHORT_R0_MULTIPLE * r0)
        return g * ((self.true_soc > 0.0) & ~self.dead) if g.any() else g

    def _bleed_conductance(self) -> np.ndarray | float:
        """Conductance of the balancing resistors switched on (S per cell); none while the BMS is down,
        in an empty or dead cell."""
        if not (self.online and self.bleed.any()):
            return 0.0
        return self.bleed * ((self.true_soc > 0.0) & ~self.dead) / self.bleed_resistor_ohm

    def max_step_s(self) -> float:
        """Longest sub-step this rack integrates accurately now."""
        limit = min(self.thermal.max_step_s(), RC_STEP_FRACTION * float(self.tau_s.min()))
        if self._heat_rate_k_per_s > 0.0:
            limit = min(limit, MAX_DT_PER_STEP_K / self._heat_rate_k_per_s)
        return max(min(limit, self._bleed_left_s()), MIN_STEP_S)   # the watchdog fires on a step boundary

    def prepare(self, h: float) -> tuple[float, float]:
        """Start a sub-step of `h` s: cache the cells' state; return the string's Thevenin equivalent
        (emf V, resistance ohm) at the end of the sub-step, for the DC bus solution.

        The end-of-step equivalent (backward Euler) adds the RC response and the OCV slope times the
        charge moved over `h` to the resistance, so currents circulating between parallel racks stay
        stable at any step length."""
        if self._bleed_left_s() <= WATCHDOG_EPS_S:
            self.bleed[:] = False
            self.bleed_timed_out = True
        soc, temp = self.true_soc, self.true_temp_c
        self._scale = self.chem.resistance_scale(temp)
        self._r0 = self.r0_ohm * self._scale
        self._emf = self._emf_now()
        self._g_short = self._short_conductance(self._r0)
        self._g = self._g_short + self._bleed_conductance()
        if self._decay[0] != h:
            self._decay = (h, np.exp(-h / self.tau_s))
        rc = 1.0 - self._decay[1]
        within = np.clip(soc, 0.0, 1.0)
        slope = np.where(soc == within, self.chem.ocv_slope(within, temp), ABUSE_V_PER_SOC)
        emf = self._emf - self.v_rc * rc
        res = self._r0 + self.r1_ohm * self._scale * rc + slope * (h / 3600.0) / self.capacity_ah
        if not self._g.any():
            return float(emf.sum()), float(res.sum())
        den = 1.0 + res * self._g
        return float((emf / den).sum()), float((res / den).sum())

    def advance(self, h: float, ambient_c: float) -> None:
        """Finish the sub-step of `h` s begun by `prepare(h)`, at the rack current `true_current_a`."""
        i = self.true_current_a if self._closed else 0.0
        self.bleed_age_s += h
        self.throughput_ah += abs(i) * h / 3600.0
        r1 = self.r1_ohm * self._scale
        heat = self.v_rc * self.v_rc / r1
        if self._g.any():                     # short and bleed currents bypass the terminals
            v = (self._emf + i * self._r0) / (1.0 + self._r0 * self._g)
            i_src = i - v * self._g
            heat += v * v * self._g_short
        else:
            i_src = i
        heat += i_src * i_src * self._r0
        self.true_soc = np.clip(self.true_soc + i_src * (h / 3600.0) / self.capacity_ah
                                - self.self_discharge_per_s * h, -SOC_ABUSE_LIMIT, 1.0 + SOC_ABUSE_LIMIT)
        decay = self._decay[1]
        self.v_rc = self.v_rc * decay + i_src * r1 * (1.0 - decay)
        if np.isnan(self.runaway_t0_c).all():
            self._vent_gas(h, 0.0)
        else:
            heat = heat + self._runaway_heat(h)
        before = self.true_temp_c
        self.true_temp_c = self.thermal.step(before, heat, h, ambient_c)
        self._heat_rate_k_per_s = max(0.0, float(np.max(self.true_temp_c - before))) / h
        if self.drift_v_per_s.any():
            self.drift_v += self.drift_v_per_s * h
        if self.reboot_s > 0.0:
            self.reboot_s = max(0.0, self.reboot_s - h)
            if self.reboot_s == 0.0:
                self.drive_contactor()

    def _runaway_heat(self, h: float) -> np.ndarray:
        """Reaction heat (W) of cells in runaway; releases their off-gas into the rack air."""
        t = self.true_temp_c
        started = ~np.isnan(self.runaway_t0_c)
        self.dead |= started & (t >= RUNAWAY_END_C)
        self.true_soc[self.dead] = 0.0
        active = started & ~self.dead
        rise = np.where(active, t - np.nan_to_num(self.runaway_t0_c), 0.0)
        onset_w = RUNAWAY_ONSET_MARGIN * self.thermal.cooling_w_per_k * RUNAWAY_THETA_K / math.e
        heat_w = np.where(active, onset_w * np.exp(np.minimum(rise, 200.0) / RUNAWAY_THETA_K), 0.0)
        c = self.thermal.heat_capacity_j_per_k
        heat_w = np.minimum(heat_w, np.maximum(0.0, c * (RUNAWAY_END_C - t) / h))   # burns out at the end
        self._vent_gas(h, GAS_H2_PPM_PER_K * float((heat_w / c).sum()) * h)
        return heat_w

    def _vent_gas(self, h: float, h2_ppm: float) -> None:
        """Off-gas released over `h` s (ppm of H2, CO in proportion) while the air exchange clears it."""
        if self.gas_h2_ppm or self.gas_co_ppm or h2_ppm:
            keep = math.exp(-h / GAS_AIR_CHANGE_S[self.thermal.ventilation])
            self.gas_h2_ppm = self.gas_h2_ppm * keep + h2_ppm
            self.gas_co_ppm = self.gas_co_ppm * keep + GAS_CO_PER_H2 * h2_ppm

    def step(self, dt: float, ambient_c: float) -> None:
        """Advance this rack alone by `dt` s at its present current (sub-stepped)."""
        left = dt
        while left > 1e-12:
            h = min(left, self.max_step_s())
            self.prepare(h)
            self.advance(h, ambient_c)
            left -= h
        if self.online:
            self.heartbeat = (self.heartbeat + 1) & 0xFFFF

    def dc_window(self) -> tuple[float, float]:
        """Charge and discharge headroom 0..1 the PCS sees at this rack's open-circuit voltage."""
        n = self.rack.cell_count
        span = self.chem.v_max - self.chem.v_min
        emf = float(self._emf.sum())
        taper = DC_TAPER_FRACTION * span * n
        return (min(1.0, max(0.0, (n * self.chem.v_max - emf) / taper)),
                min(1.0, max(0.0, (emf - n * self.chem.v_min) / taper)))


@dataclass
class PcsModel:
    """One PCS: follows its active power setpoint within its rating and ramp, or, commanded
    `grid_forming`, forms the site's AC bus behind the open grid breaker (island) with the setpoint as
    its power reference (the island frequency droops with the power delivered above it). + = charging.

    `island` is True while it acts as a voltage source (grid-forming with DC; on the grid it then
    delivers its setpoint). `state` is stopped / running / island / fault; `state_code` 0 / 1 / 3 / 2
    (pcs_generic's 0 stopped, 1 running, 2 fault, 3 grid-forming); a grid-following PCS without grid
    voltage is stopped. A trip latches `fault` until `reset()`."""

    pcs: Pcs
    setpoint_kw: float = 0.0
    setpoint_kvar: float = 0.0
    run: bool = True
    power_kw: float = 0.0
    reactive_kvar: float = 0.0
    ramp_kw_per_s: float = 0.0
    efficiency: float = PCS_EFFICIENCY
    grid_hz: float = NOMINAL_HZ
    grid_v: float = NOMINAL_V
    dc_voltage_v: float = 0.0
    dc_current_a: float = 0.0
    grid_forming: bool = False
    island: bool = False
    fault: str = ""
    heartbeat: int = 0

    def __post_init__(self) -> None:
        if not self.ramp_kw_per_s:
            self.ramp_kw_per_s = self.pcs.rated_power_kw   # full power in one second

    @property
    def state(self) -> str:
        if self.fault:
            return "fault"
        if self.island:
            return "island"
        return "running" if self.run and self.grid_v > 0.0 else "stopped"

    @property
    def state_code(self) -> int:
        return {"stopped": 0, "running": 1, "fault": 2, "island": 3}[self.state]

    def trip(self, reason: str) -> None:
        """Trip: 0 kW at once, state fault until reset()."""
        self.fault = reason
        self.power_kw = self.reactive_kvar = 0.0
        self.island = False

    def reset(self) -> None:
        self.fault = ""

    def follow(self, h: float, lo_kw: float, hi_kw: float) -> None:
        """Grid-following: ramp toward the setpoint clipped to [lo_kw, hi_kw]; reactive power within
        the apparent power left (active power has priority)."""
        target = min(hi_kw, max(lo_kw, self.setpoint_kw)) if self.run and not self.fault else 0.0
        step = self.ramp_kw_per_s * h
        self.power_kw = min(hi_kw, max(lo_kw, self.power_kw + min(step, max(-step, target - self.power_kw))))
        q_max = math.sqrt(max(0.0, self.pcs.rated_power_kw ** 2 - self.power_kw ** 2))
        self.reactive_kvar = min(q_max, max(-q_max, self.setpoint_kvar)) if self.run and not self.fault else 0.0

    def dc_power_w(self) -> float:
        """DC power into the battery for the present AC power (conversion losses)."""
        p = self.power_kw * 1000.0
        return p * self.efficiency if p > 0 else p / self.efficiency


class Plant:
    """The whole simulated site: PCS units and their BESS racks, site load, PV and grid connection.

    Site-level readings (kW, + = import from the grid): `load_kw` (demand), `pv_kw`, `grid_import_kw`,
    `unserved_load_kw`; `grid_hz`, `grid_v` of the site's AC bus (the grid through the closed breaker,
    the island, or 0 in a blackout); `mains_hz`, `mains_v` of the public grid (0 while lost).
    `grid_connected` is False while the public grid is lost (fault `grid_loss`). Commands:
    `breaker_command` (the grid breaker `breaker_closed` follows it; a close waits for the sync check),
    `feeder_closed` (the site's loads and PV), each PcsModel's `grid_forming`. On grid loss with the
    breaker closed the site blacks out: grid-following PCS stop. `auto_island` (site file
    `[simulator] pcs_auto_island`) models PCS with their own transfer switch: any running PCS forms the
    island and the breaker follows the grid by itself. `masters` holds one BmsMaster per BESS
    aggregating its racks. Call from one thread at a time (the simulator's lock)."""

    def __init__(self, site: Site, seed: int = 1, ambient_c: float = 25.0, start_time_s: float = 0.0,
                 profiles: SiteProfiles | None = None) -> None:
        rng = np.random.default_rng(seed)
        self.site = site
        self.ambient_c = ambient_c
        self.start_time_s = start_time_s
        self.profiles = profiles or SiteProfiles.for_site(site, seed)
        self.pcs = {p.id: PcsModel(p) for p in site.pcs}
        self.racks: dict[str, RackModel] = {}
        self.bess_of: dict[str, Bess] = {}
        for b in site.bess:
            for r in b.racks:
                self.racks[r.path] = RackModel.create(r, b.chemistry, b.cell_capacity_ah, rng, ambient_c)
            self.bess_of[b.id] = b
        self._dc_bus = {p.id: [self.racks[r.path] for b in site.bess if b.pcs == p.id for r in b.racks]
                        for p in site.pcs}
        self.masters = {b.id: BmsMaster(b.path, [self.racks[r.path] for r in b.racks]) for b in site.bess}
        self.time_s = 0.0
        self.grid_connected = True
        self.auto_island = site.simulator.pcs_auto_island
        self.breaker_command = self.breaker_closed = self.feeder_closed = True
        self.grid_hz, self.grid_v = self.mains_hz, self.mains_v = NOMINAL_HZ, NOMINAL_V
        self.load_kw = self.pv_kw = self.grid_import_kw = self.unserved_load_kw = 0.0
        self._update_site()

    @property
    def now_s(self) -> float:
        """Simulated epoch time (start_time_s + time stepped)."""
        return self.start_time_s + self.time_s

    def step(self, dt: float) -> None:
        """Advance the plant by dt seconds of simulated time, in sub-steps short enough for the
        fastest thermal/RC time constant (and for the heating rate of a runaway)."""
        left = dt
        while left > 1e-12:
            h = min([left] + [r.max_step_s() for r in self.racks.values()])
            self._substep(h)
            left -= h
        for pcs in self.pcs.values():
            pcs.heartbeat = (pcs.heartbeat + 1) & 0xFFFF
        for r in self.racks.values():
            if r.online:
                r.heartbeat = (r.heartbeat + 1) & 0xFFFF

    def _substep(self, h: float) -> None:
        self._drive_breaker()
        thevenin = {path: r.prepare(h) for path, r in self.racks.items()}
        closed = {pid: [r for r in racks if r.contactor_closed] for pid, racks in self._dc_bus.items()}
        limits = {}          # (lo, hi) kW per PCS with DC available and no fault
        for pid, pcs in self.pcs.items():
            if closed[pid] and not pcs.fault:
                rated = pcs.pcs.rated_power_kw
                windows = [r.dc_window() for r in closed[pid]]
                limits[pid] = (-rated * min(w[1] for w in windows), rated * min(w[0] for w in windows))
        if self.grid_connected and self.breaker_closed:
            for pid, pcs in self.pcs.items():
                pcs.island = pcs.grid_forming and pcs.run and pid in limits
                if pid in limits:
                    pcs.follow(h, *limits[pid])
                else:                        # no DC (all contactors open) or tripped: no power
                    pcs.power_kw = pcs.reactive_kvar = 0.0
        else:
            self._island(limits)
        for pid, pcs in self.pcs.items():
            self._solve_dc_bus(pcs, closed[pid], thevenin)
        for r in self.racks.values():
            r.advance(h, self.ambient_c)
        self.time_s += h
        self._update_site()

    def _drive_breaker(self) -> None:
        """The grid breaker follows its command; its sync check lets a close through only onto a dead
        site bus, or with the grid present and the island within SYNC_WINDOW_HZ/_V of it. Auto-islanding
        PCS open it on grid loss and reclose it on return (dropping the island first)."""
        if self.auto_island:
            self.breaker_closed = self.grid_connected
        elif not self.breaker_command:
            self.breaker_closed = False
        elif not self.breaker_closed:
            live = any(p.island for p in self.pcs.values())
            in_sync = (abs(self.grid_hz - self.mains_hz) <= SYNC_WINDOW_HZ
                       and abs(self.grid_v - self.mains_v) <= SYNC_WINDOW_V)
            self.breaker_closed = not live or (self.grid_connected and in_sync)

    def _feeder_kw(self) -> tuple[float, float]:
        """(load, PV) kW on the site's feeder: nothing while it is off."""
        return (self._load_now, self._pv_now) if self.feeder_closed else (0.0, 0.0)

    def _island(self, limits: dict[str, tuple[float, float]]) -> None:
        """No grid on the site's bus: behind the open breaker, running grid-forming PCS with DC (any
        running PCS with DC under `auto_island`) form the island and share load - PV by rating; the
        others stop. Nothing can form the island through a closed breaker onto the dead grid."""
        forming = [] if self.breaker_closed else [
            pid for pid, p in self.pcs.items() if p.run and pid in limits and (p.grid_forming or self.auto_island)]
        rated = sum(self.pcs[pid].pcs.rated_power_kw for pid in forming)
        load, pv = self._feeder_kw()
        net = load - pv                           # kW the batteries must supply (+) or absorb (-)
        for pid, pcs in self.pcs.items():
            pcs.island = pid in forming
            if pcs.island:
                lo, hi = limits[pid]
                pcs.power_kw = min(hi, max(lo, -net * pcs.pcs.rated_power_kw / rated))
                pcs.reactive_kvar = 0.0
            else:
                pcs.power_kw = pcs.reactive_kvar = 0.0

    def _solve_dc_bus(self, pcs: PcsModel, closed: list[RackModel], thevenin: dict) -> None:
        """Racks in parallel on the PCS's DC bus: bus voltage V from P = V * sum((V - E_k) / R_k),
        rack currents (V - E_k) / R_k (circulating currents between racks at unequal SOC included)."""
        if not closed:
            pcs.dc_voltage_v = pcs.dc_current_a = 0.0
            return
        emf = np.array([thevenin[r.rack.path][0] for r in closed])
        res = np.array([thevenin[r.rack.path][1] for r in closed])
        g, s = float((1.0 / res).sum()), float((emf / res).sum())
        p = pcs.dc_power_w()
        v = (s + math.sqrt(max(0.0, s * s + 4.0 * g * p))) / (2.0 * g)
        currents = (v - emf) / res
        for r, i in zip(closed, currents):
            r.true_current_a = float(i)
        pcs.dc_voltage_v, pcs.dc_current_a = v, float(currents.sum())

    def _update_site(self) -> None:
        """Site load, PV and grid readings at the present time, and the power balance."""
        t = self.now_s
        self._load_now, self._pv_now = self.profiles.load_kw(t), self.profiles.pv_kw(t)
        self.mains_hz, self.mains_v = self.profiles.grid_hz_v(t) if self.grid_connected else (0.0, 0.0)
        battery_kw = sum(p.power_kw for p in self.pcs.values())
        self.load_kw = self._load_now
        load, pv = self._feeder_kw()
        if self.grid_connected and self.breaker_closed:
            self.grid_hz, self.grid_v = self.mains_hz, self.mains_v
            self.pv_kw, self.unserved_load_kw = pv, self._load_now - load
            self.grid_import_kw = load - pv + battery_kw
        else:
            forming = [p for p in self.pcs.values() if p.island]
            self.grid_import_kw = 0.0
            if forming:
                rated = sum(p.pcs.rated_power_kw for p in forming)
                supplied = -battery_kw
                self.pv_kw = min(pv, load - supplied)                           # surplus PV is curtailed
                self.unserved_load_kw = max(0.0, self._load_now - self.pv_kw - supplied)
                above_reference = sum(p.setpoint_kw for p in forming) - battery_kw
                self.grid_hz = NOMINAL_HZ * (1.0 - ISLAND_DROOP * above_reference / rated)
                self.grid_v = NOMINAL_V
            else:                                                               # blackout
                self.pv_kw = 0.0
                self.unserved_load_kw = self._load_now
                self.grid_hz = self.grid_v = 0.0
        for p in self.pcs.values():
            p.grid_hz, p.grid_v = self.grid_hz, self.grid_v

    # --- fault injection API (tests, training mode; more in app/sim/plant_faults.py) -----------------
    def inject_cell_offset(self, rack_path: str, cell: int, volts: float) -> None:
        """Add `volts` to the measured voltage of cell number `cell` (1-based) of a rack."""
        self.racks[rack_path].offset_v[cell - 1] = volts

    def clear_faults(self) -> None:
        """End every plant fault: sensors, shorts, runaways, contactors, BMSs, HVAC, PCS trips, grid."""
        for r in self.racks.values():
            r.clear_faults()
        for p in self.pcs.values():
            p.reset()
        self.grid_connected = True
