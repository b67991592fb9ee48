"""Lumped thermal model of one rack, vectorised over its cells.

Each cell is one heat capacity. It exchanges heat with its neighbours in the same module (the cells of
a module stand in a row, face to face) and with the rack's air. The air exchanges heat with the
outdoor ambient through the enclosure, is cooled by an HVAC unit (thermostat on the hottest cell, with
hysteresis) and stirred by a ventilation fan (the `ventilation` flag: forced convection and fresh air).
The air node has little heat capacity next to the cells, so it is solved as quasi-steady each step;
the cells are integrated with explicit Euler below `max_step_s()`.

Parameters are for a 280 Ah prismatic cell (about 5.4 kg, 1 kJ/(kg K)); conductances scale with the
cell's surface, i.e. capacity^(2/3).
"""
from __future__ import annotations

import numpy as np

REF_CAPACITY_AH = 280.0
HEAT_CAPACITY_J_PER_K_AH = 20.0
G_NEIGHBOUR_W_PER_K = 1.5        # cell to cell through the pressed faces and the busbar
G_AIR_NATURAL_W_PER_K = 0.4      # cell to rack air, fan off
G_AIR_FORCED_W_PER_K = 1.2       # cell to rack air, fan on
G_ENCLOSURE_W_PER_K = 0.1        # rack air to outdoor per cell, sealed
G_VENTILATED_W_PER_K = 0.4       # rack air to outdoor per cell, fan exchanging air
HVAC_COOLING_W = 12.0            # cooling capacity per cell (covers 0.5C losses)
HVAC_ON_C, HVAC_OFF_C = 30.0, 26.0
HVAC_SUPPLY_C = 18.0             # the unit cannot cool the air below its supply temperature
STEP_FRACTION = 0.5              # largest Euler step as a fraction of the fastest cell time constant


class RackThermal:
    """Heat flows of one rack of `modules` x `cells_per_module` cells (cell 1 first, module-major).

    `step` is called by the plant thread with the cells' heat in W; the flags `ventilation` and
    `hvac_enabled` (False: the HVAC failed) may be set between steps."""

    def __init__(self, modules: int, cells_per_module: int, capacity_ah: np.ndarray, ambient_c: float) -> None:
        self.shape = (modules, cells_per_module)
        area = (np.asarray(capacity_ah, float) / REF_CAPACITY_AH) ** (2.0 / 3.0)
        self.heat_capacity_j_per_k = HEAT_CAPACITY_J_PER_K_AH * np.asarray(capacity_ah, float)
        self._g_neighbour = G_NEIGHBOUR_W_PER_K * float(area.mean())
        self._g_air = {False: G_AIR_NATURAL_W_PER_K * area, True: G_AIR_FORCED_W_PER_K * area}
        self._g_air_sum = {k: float(v.sum()) for k, v in self._g_air.items()}
        self._g_outdoor = {False: G_ENCLOSURE_W_PER_K * float(area.sum()),
                           True: G_VENTILATED_W_PER_K * float(area.sum())}
        self._hvac_w = HVAC_COOLING_W * float(area.sum())
        self.cooling_w_per_k = 2.0 * self._g_neighbour + self._g_air[True]   # per cell, to neighbours and air
        fastest = self.heat_capacity_j_per_k.min() / (4.0 * self._g_neighbour + self._g_air[True].max())
        self._max_step_s = STEP_FRACTION * float(fastest)
        self.ventilation = True
        self.hvac_enabled = True
        self.hvac_on = False
        self.air_c = float(ambient_c)

    def max_step_s(self) -> float:
        """Longest step `step` integrates accurately (half the fastest cell time constant)."""
        return self._max_step_s

    def step(self, temp_c: np.ndarray, heat_w: np.ndarray, dt: float, ambient_c: float) -> np.ndarray:
        """New cell temperatures after `dt` s with `heat_w` generated in each cell."""
        hottest = float(temp_c.max())
        self.hvac_on = self.hvac_enabled and hottest > (HVAC_OFF_C if self.hvac_on else HVAC_ON_C)
        g_air, g_out = self._g_air[self.ventilation], self._g_outdoor[self.ventilation]
        g_total = self._g_air_sum[self.ventilation] + g_out
        air = (float(g_air @ temp_c) + g_out * ambient_c) / g_total
        if self.hvac_on:            # cools the air toward its supply temperature, never below it
            air = max(air - self._hvac_w / g_total, min(air, HVAC_SUPPLY_C))
        self.air_c = air
        q = heat_w + g_air * (air - temp_c)
        flux = self._g_neighbour * np.diff(temp_c.reshape(self.shape), axis=1)   # W from cell j+1 to cell j
        q2 = q.reshape(self.shape)
        q2[:, :-1] += flux
        q2[:, 1:] -= flux
        return temp_c + dt * q / self.heat_capacity_j_per_k
