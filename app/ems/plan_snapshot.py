"""The plan the EMS follows, as other threads see it: one immutable PlanSnapshot per schedule.

``plan_snapshot(schedule, battery, settings, made_at, start)`` is called on the EMS thread when it
adopts a schedule (app/ems/worker.py); ``EmsThread.plan_snapshot()`` hands the result to any thread
(the GUI). Times are wall-clock epoch seconds, arrays are read-only with one value per step, NaN where
the plan does not say (an operator's schedule has no forecasts behind it). Prices come from the
settings' tariff at the local hour each step starts.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from app.ems.modes import Schedule
from app.ems.resimulate import soc_path
from app.ems.scenario import Battery
from app.ems.settings import EmsSettings


@dataclass(frozen=True, eq=False)
class PlanSnapshot:
    source: str                  # "MPC plan" or "operator plan"
    made_at: float               # when the EMS adopted it
    start: float                 # start of step 0
    step_minutes: float
    battery_kw: np.ndarray       # + = charging
    soc_pct: np.ndarray          # at the end of each step
    import_price: np.ndarray     # per kWh
    export_price: np.ndarray
    load_kw: np.ndarray          # forecasts
    pv_kw: np.ndarray
    grid_kw: np.ndarray          # + = import

    @property
    def steps(self) -> int:
        return int(self.battery_kw.size)

    @property
    def end(self) -> float:
        return self.start + self.steps * self.step_minutes * 60.0

    def step_edges(self) -> np.ndarray:
        """Wall time at which each step starts, then the end of the last one (steps + 1 values)."""
        return _edges(self.start, self.step_minutes * 60.0, self.steps)


def plan_snapshot(schedule: Schedule, battery: Battery, settings: EmsSettings, made_at: float,
                  start: float) -> PlanSnapshot:
    """Snapshot of ``schedule`` starting at wall time ``start``. ``battery`` (with the SOC measured at
    adoption as ``initial_soc_pct``, NaN if unknown) projects the SOC of a plan without an outlook."""
    kw = np.asarray(schedule.battery_kw, dtype=float)
    step_s = schedule.step_s
    hours = [_local_hour(t) for t in _edges(start, step_s, kw.size)[:-1]]
    unknown = np.full(kw.size, np.nan)
    o = schedule.outlook
    soc, load, pv, grid = (o.soc_pct, o.load_kw, o.pv_kw, o.grid_kw) if o is not None else \
        (soc_path(battery, kw, step_s / 3600), unknown, unknown, unknown)
    arrays = [np.array(a, dtype=float) for a in (kw, soc, settings.import_price(hours),
                                                 np.full(kw.size, settings.export_price), load, pv, grid)]
    for a in arrays:
        a.setflags(write=False)
    return PlanSnapshot(schedule.source, made_at, start, step_s / 60.0, *arrays)


def _edges(start: float, step_s: float, steps: int) -> np.ndarray:
    return start + np.arange(steps + 1) * step_s


def _local_hour(t: float) -> float:
    local = time.localtime(t)
    return local.tm_hour + local.tm_min / 60 + local.tm_sec / 3600
