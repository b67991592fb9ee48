"""Model-predictive control: forecast load and PV, optimise the horizon, follow the first steps.

``MpcPlanner.plan`` builds a Scenario for the next ``horizon_steps`` from the forecasts, the known
prices, the battery's current SOC and the billing period's peak so far (``existing_peak_kw``, so the
demand charge only counts an increase), solves it with app/ems/optimiser.py and returns a Schedule
whose ``peak_kw`` lets ScheduleFollowing's real-time guard hold the planned peak against forecast
errors and whose ``outlook`` holds the forecasts, SOC and grid flow the plan expects. Re-planning
every few steps (receding horizon) is the caller's loop: the EMS worker (app/ems/worker.py) or the
backtest (app/ems/backtest.py). No I/O; HiGHS is the only compute.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from app.ems.forecast import ProfileForecaster
from app.ems.modes import Outlook, Schedule
from app.ems.optimiser import optimise
from app.ems.resimulate import resimulate
from app.ems.scenario import Battery, Grid, Scenario

# PV is planned at its pessimistic ~16th percentile (one error standard deviation low). The two
# forecast errors do not cost the same: PV that does not come leaves the battery short for the
# evening (lost peak-price discharge, and the demand peak it was meant to shave), while PV that comes
# unplanned to a battery charged overnight only loses the export price on the surplus. With the
# tariffs of app/ems/backtest.py this newsvendor ratio is about 3:1, i.e. the 20-25th percentile;
# the four-week backtest saves 10 % more at z = -1 than at z = 0 (z = -0.5 and -1 within 1 %).
PV_Z = -1.0


@dataclass(frozen=True)
class MpcPlanner:
    battery: Battery             # initial_soc_pct is replaced by the measured SOC at each plan
    grid: Grid                   # existing_peak_kw is replaced by the billing period's peak so far
    step_minutes: float
    horizon_steps: int
    load_model: ProfileForecaster
    pv_model: ProfileForecaster
    load_z: float = 0.0          # forecast shift in error standard deviations (caution for the peak)
    pv_z: float = PV_Z
    tilt_per_kwh: float = 0.01   # tie-break: import price + tilt * demand / max demand (see plan)
    time_limit_s: float = 5.0

    @property
    def min_history(self) -> int:
        return max(self.load_model.min_history, self.pv_model.min_history)

    def plan(self, start_s: float, load_history: np.ndarray, pv_history: np.ndarray, slot0: int,
             import_price: np.ndarray, export_price: np.ndarray, soc_pct: float,
             peak_so_far_kw: float) -> Schedule:
        """Plan from ``start_s`` (monotonic s, the start of the step after the history). Histories
        end just before ``start_s`` and begin at slot-of-week ``slot0``; price arrays cover at least
        the horizon (a shorter array shortens the horizon: the end of known prices or of a backtest)."""
        n = min(self.horizon_steps, len(import_price), len(export_price))
        load = self.load_model.forecast(load_history, slot0, n, self.load_z)
        pv = self.pv_model.forecast(pv_history, slot0, n, self.pv_z)
        # Within a flat price window the LP's choice of when to discharge is arbitrary; the tilt makes
        # it discharge where forecast demand is highest, which is where forecast errors push the peak.
        demand = np.maximum(load - pv, 0.0)
        tilt = self.tilt_per_kwh * demand / max(float(demand.max()), 1e-9)
        scn = self.scenario(load, pv, np.asarray(import_price[:n], float) + tilt,
                            np.asarray(export_price[:n], float), soc_pct, peak_so_far_kw)
        plan = optimise(scn, self.time_limit_s)
        imports = np.maximum(load - pv + plan.battery_kw, 0.0)   # PV curtailment never lowers import
        peak = max(peak_so_far_kw, float(imports.max()))
        replay = resimulate(scn, plan.battery_kw, plan.curtail_kw)
        outlook = Outlook(replay.soc_pct, scn.load_kw, scn.pv_kw, replay.import_kw - replay.export_kw)
        return Schedule(start_s, self.step_minutes * 60.0, plan.battery_kw, peak, "MPC plan", outlook)

    def scenario(self, load: np.ndarray, pv: np.ndarray, import_price: np.ndarray, export_price: np.ndarray,
                 soc_pct: float, peak_so_far_kw: float) -> Scenario:
        """The optimiser's view of the horizon (SOC clipped to 0..100 %, as a scenario allows)."""
        battery = replace(self.battery, initial_soc_pct=float(np.clip(soc_pct, 0.0, 100.0)))
        grid = replace(self.grid, existing_peak_kw=max(0.0, peak_so_far_kw))
        arrays = [np.asarray(a, float) for a in (load, pv, import_price, export_price)]
        for a in arrays:
            a.setflags(write=False)
        return Scenario(self.step_minutes, battery, grid, *arrays)
