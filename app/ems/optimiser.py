"""Cost-optimal battery dispatch over the horizon as a MILP solved with HiGHS (highspy).

Formulation per step t (dt hours), all powers in kW at the point of connection:
  charge c_t in [0, max_charge], discharge d_t in [0, max_discharge], curtailment k_t in [0, pv_t],
  import i_t >= 0, export e_t >= 0 with  i_t - e_t = load_t - pv_t + k_t + c_t - d_t,
  energy E_t = E_{t-1} + (eta_c c_t - d_t / eta_d) dt within a per-step window (the SOC band, or the
  fastest recovery trajectory when the initial SOC is outside it), peak >= i_t, peak >= existing_peak,
  E_N >= final target, i_t <= import limit, e_t <= export limit.
  cost = sum (p_imp i - p_exp e) dt + demand_charge * peak + degradation * sum (c + d) dt.

Mutual exclusion is enforced lazily and exactly. Charging and discharging in one step only pays when
energy is worth burning (negative prices, an out-of-band start); importing and exporting in one step
only pays when p_exp > p_imp. The model is first solved without binaries; overlapping charge and
discharge is netted where the battery has room for the energy netting keeps; every step whose solution
still breaks an exclusion gets a binary (c_t <= C z_t, d_t <= D (1 - z_t), or the same on i_t/e_t) and the
model is solved again. A relaxation whose optimum satisfies every exclusion is optimal for the full
problem, so the loop ends with the true optimum, usually after zero or a few binaries. Simultaneous
import and export with p_imp >= p_exp is harmless: netting it never raises cost, import or peak.

Soft constraints. The SOC window is hard (b = 0 always satisfies it). If the rest is infeasible the
planner relaxes lexicographically, least important first kept last: it minimises import-limit excess
(kWh), then export-limit excess, then the final-SOC shortfall, each fixed before the next, and then
the cost. Which ones were relaxed is reported in ``Dispatch.warnings``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np

from app.ems.scenario import Scenario

EXCLUSION_TOL_KW = 1e-6      # smaller overlaps are numerical noise; netting them is harmless
_STAGE_SLACK = 1e-7          # relative + absolute room when fixing a lexicographic stage optimum
_WARN_TOL_KW = 1e-4
_WINDOW_ROOM = 1e-9           # fraction of capacity the recovery trajectory may lag (solver tolerance)


@dataclass(frozen=True, eq=False)
class Dispatch:
    """Optimal plan: battery_kw (+ = charging), curtail_kw, solver objective and what was relaxed."""

    battery_kw: np.ndarray
    curtail_kw: np.ndarray
    objective: float            # the solver's cost; plan.py reports the re-simulated one instead
    warnings: tuple[str, ...]
    binaries: int               # exclusion binaries the lazy loop needed
    solves: int                 # HiGHS runs
    solve_s: float              # wall time spent in optimise()


def energy_window_kwh(scn: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """Per-step bounds on stored energy (kWh, end of step): the SOC band or, while an initial SOC
    outside it is being recovered, the single trajectory that moves towards the band as fast as the
    battery and grid power limits allow (breaking a grid limit to get there faster, or moving away
    from the band again, is not allowed); the band from the step the trajectory reaches it."""
    bat, grid, dt = scn.battery, scn.grid, scn.dt_h
    cap = bat.capacity_kwh
    e0, emin, emax = (bat.initial_soc_pct * cap / 100, bat.soc_min_pct * cap / 100,
                      bat.soc_max_pct * cap / 100)
    lo, hi = np.full(scn.steps, emin), np.full(scn.steps, emax)
    room = _WINDOW_ROOM * cap
    if e0 < emin:
        up = np.clip(grid.import_limit_kw - scn.load_kw + scn.pv_kw, 0, bat.max_charge_kw)
        path = e0 + np.cumsum(up * bat.charge_efficiency * dt)
        recovering = path < emin
        lo = np.where(recovering, np.maximum(path - room, e0), emin)
        hi = np.where(recovering, path, emax)
    elif e0 > emax:
        down = np.clip(grid.export_limit_kw + scn.load_kw, 0, bat.max_discharge_kw)
        path = e0 - np.cumsum(down / bat.discharge_efficiency * dt)
        recovering = path > emax
        lo = np.where(recovering, path, emin)
        hi = np.where(recovering, np.minimum(path + room, e0), emax)
    return lo, hi


class _Columns:
    """Column layout: eight per-step blocks, two scalars, then the lazily added binaries."""

    BLOCKS = ("c", "d", "k", "imp", "exp", "E", "s_imp", "s_exp")

    def __init__(self, n: int, n_bin: int):
        self.n = n
        for i, name in enumerate(self.BLOCKS):
            setattr(self, name, np.arange(i * n, (i + 1) * n))
        self.peak = 8 * n
        self.s_fin = 8 * n + 1
        self.bin0 = 8 * n + 2
        self.total = self.bin0 + n_bin


class _Problem:
    """The dispatch model for one scenario; builds and solves HiGHS models for each stage."""

    def __init__(self, scn: Scenario, time_limit_s: float):
        self.scn = scn
        self.time_limit_s = time_limit_s
        bat = scn.battery
        self.i_max = np.maximum(0.0, scn.load_kw + bat.max_charge_kw)           # largest import
        self.e_max = np.maximum(0.0, scn.pv_kw - scn.load_kw + bat.max_discharge_kw)  # largest export
        self.e_lo, self.e_hi = energy_window_kwh(scn)
        self.e_final = bat.final_soc_min_pct * bat.capacity_kwh / 100
        self.grid_risky = scn.export_price_per_kwh > scn.import_price_per_kwh
        self.bin_cd: list[int] = []     # steps with a charge/discharge binary
        self.bin_g: list[int] = []      # steps with an import/export binary
        self.solves = 0
        self.timed_out = False
        self.deadline = time.monotonic() + time_limit_s
        self.stage_caps: dict[str, float] = {}    # slack block -> max total allowed
        self.allow_slack = False

    # -- model ---------------------------------------------------------------------------------
    def _objective(self, cols: _Columns, stage: str) -> np.ndarray:
        scn, dt = self.scn, self.scn.dt_h
        cost = np.zeros(cols.total)
        if stage == "import":
            cost[cols.s_imp] = dt
        elif stage == "export":
            cost[cols.s_exp] = dt
        elif stage == "final":
            cost[cols.s_fin] = 1.0
        else:
            deg = scn.battery.degradation_cost_per_kwh * dt
            cost[cols.c] = deg
            cost[cols.d] = deg
            cost[cols.imp] = scn.import_price_per_kwh * dt
            cost[cols.exp] = -scn.export_price_per_kwh * dt
            cost[cols.peak] = scn.grid.demand_charge_per_kw
        return cost

    def _build(self, stage: str) -> highspy.HighsLp:
        scn, bat, grid = self.scn, self.scn.battery, self.scn.grid
        n, dt = scn.steps, scn.dt_h
        bcd, bg = np.asarray(self.bin_cd, int), np.asarray(self.bin_g, int)
        cols = _Columns(n, bcd.size + bg.size)
        z, y = cols.bin0 + np.arange(bcd.size), cols.bin0 + bcd.size + np.arange(bg.size)

        lower, upper = np.zeros(cols.total), np.ones(cols.total)
        upper[cols.c], upper[cols.d], upper[cols.k] = bat.max_charge_kw, bat.max_discharge_kw, scn.pv_kw
        slack = self.allow_slack
        # with hard grid limits the limits themselves bound the flows (and tighten the big-Ms)
        imp_ub = self.i_max if slack else np.minimum(self.i_max, grid.import_limit_kw)
        exp_ub = self.e_max if slack else np.minimum(self.e_max, grid.export_limit_kw)
        upper[cols.imp], upper[cols.exp] = imp_ub, exp_ub
        lower[cols.E], upper[cols.E] = self.e_lo, self.e_hi
        upper[cols.s_imp] = self.i_max if slack else 0.0
        upper[cols.s_exp] = self.e_max if slack else 0.0
        upper[cols.s_fin] = max(0.0, self.e_final - float(self.e_lo.min())) if slack else 0.0
        if "s_fin" in self.stage_caps:
            upper[cols.s_fin] = min(upper[cols.s_fin], self.stage_caps["s_fin"])
        lower[cols.peak] = grid.existing_peak_kw
        upper[cols.peak] = max(grid.existing_peak_kw, float(self.i_max.max()))

        rows, cidx, vals, rlo, rhi = [], [], [], [], []
        r = 0

        def add(row_ids, col_ids, coef):
            rows.append(np.broadcast_to(row_ids, np.shape(col_ids)).ravel())
            cidx.append(np.asarray(col_ids).ravel())
            vals.append(np.broadcast_to(np.asarray(coef, float), np.shape(col_ids)).ravel())

        t = np.arange(n)
        # power balance: imp - exp - k - c + d = load - pv
        for col, coef in ((cols.imp, 1), (cols.exp, -1), (cols.k, -1), (cols.c, -1), (cols.d, 1)):
            add(r + t, col, coef)
        rlo.append(scn.load_kw - scn.pv_kw), rhi.append(scn.load_kw - scn.pv_kw)
        r += n
        # energy: E_t - E_{t-1} - eta_c dt c_t + dt/eta_d d_t = E0 (t = 0) or 0
        add(r + t, cols.E, 1.0)
        add(r + t[1:], cols.E[:-1], -1.0)
        add(r + t, cols.c, -bat.charge_efficiency * dt)
        add(r + t, cols.d, dt / bat.discharge_efficiency)
        e0 = np.zeros(n)
        e0[0] = bat.initial_soc_pct * bat.capacity_kwh / 100
        rlo.append(e0), rhi.append(e0)
        r += n
        # peak - imp_t >= 0
        add(r + t, np.full(n, cols.peak), 1.0)
        add(r + t, cols.imp, -1.0)
        rlo.append(np.zeros(n)), rhi.append(np.full(n, np.inf))
        r += n
        # imp - s_imp <= import limit ; exp - s_exp <= export limit
        for col, s_col, lim in ((cols.imp, cols.s_imp, grid.import_limit_kw),
                                (cols.exp, cols.s_exp, grid.export_limit_kw)):
            add(r + t, col, 1.0)
            add(r + t, s_col, -1.0)
            rlo.append(np.full(n, -np.inf)), rhi.append(np.full(n, lim))
            r += n
        # E_N + s_fin >= final target
        add(np.array([r]), np.array([cols.E[-1], cols.s_fin]), 1.0)
        rlo.append(np.array([self.e_final])), rhi.append(np.array([np.inf]))
        r += 1
        # lexicographic caps on total slack of earlier stages
        for name in ("s_imp", "s_exp"):
            if name in self.stage_caps:
                add(np.array([r]), getattr(cols, name), 1.0)
                rlo.append(np.array([-np.inf])), rhi.append(np.array([self.stage_caps[name]]))
                r += 1
        # exclusion binaries: c <= C z, d <= D (1 - z) ; imp <= I y, exp <= X (1 - y)
        for steps, bins, a, b, amax, bmax in (
                (bcd, z, cols.c, cols.d, np.full(n, bat.max_charge_kw), np.full(n, bat.max_discharge_kw)),
                (bg, y, cols.imp, cols.exp, imp_ub, exp_ub)):
            m = steps.size
            if not m:
                continue
            k = np.arange(m)
            add(r + k, a[steps], 1.0)
            add(r + k, bins, -amax[steps])
            rlo.append(np.full(m, -np.inf)), rhi.append(np.zeros(m))
            r += m
            add(r + k, b[steps], 1.0)
            add(r + k, bins, bmax[steps])
            rlo.append(np.full(m, -np.inf)), rhi.append(bmax[steps].astype(float))
            r += m

        row, col, val = np.concatenate(rows), np.concatenate(cidx), np.concatenate(vals)
        order = np.lexsort((row, col))
        row, col, val = row[order], col[order], val[order]
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = cols.total, r
        lp.col_cost_ = self._objective(cols, stage)
        lp.col_lower_, lp.col_upper_ = lower, upper
        lp.row_lower_, lp.row_upper_ = np.concatenate(rlo), np.concatenate(rhi)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.searchsorted(col, np.arange(cols.total + 1)).astype(np.int32)
        lp.a_matrix_.index_ = row.astype(np.int32)
        lp.a_matrix_.value_ = val
        if cols.total > cols.bin0:
            integrality = [highspy.HighsVarType.kContinuous] * cols.total
            integrality[cols.bin0:] = [highspy.HighsVarType.kInteger] * (cols.total - cols.bin0)
            lp.integrality_ = integrality
        self._cols = cols
        return lp

    # -- solving -------------------------------------------------------------------------------
    def _run(self, stage: str) -> dict | None:
        """Solve one stage model once; a dict of named solution blocks, or None if infeasible.
        Presolve can call a model with sub-1e-6 bounds infeasible, so that verdict is confirmed
        without presolve."""
        lp = self._build(stage)
        for presolve in ("choose", "off"):
            # the bare solver class (exported by highspy): highspy.Highs() prints a banner on stdout
            # from its constructor, before output_flag can be cleared, which would corrupt `plan --json`
            h = highspy._Highs()
            h.setOptionValue("output_flag", False)
            h.setOptionValue("presolve", presolve)
            h.setOptionValue("mip_rel_gap", 1e-7)
            h.setOptionValue("mip_abs_gap", 1e-7)
            h.setOptionValue("time_limit", max(1.0, self.deadline - time.monotonic()))
            h.passModel(lp)
            h.run()
            self.solves += 1
            status = h.getModelStatus()
            if status not in (highspy.HighsModelStatus.kInfeasible,
                              highspy.HighsModelStatus.kUnboundedOrInfeasible):
                break
        else:
            return None
        feasible = h.getInfo().primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
        if status != highspy.HighsModelStatus.kOptimal:
            if not (status == highspy.HighsModelStatus.kTimeLimit and feasible):
                raise RuntimeError(f"HiGHS failed on the dispatch model: {h.modelStatusToString(status)}")
            self.timed_out = True
        x = np.asarray(h.getSolution().col_value)
        cols = self._cols
        sol = {name: x[getattr(cols, name)] for name in _Columns.BLOCKS}
        sol["s_fin"] = float(x[cols.s_fin])
        sol["objective"] = float(h.getInfo().objective_function_value)
        return sol

    def _net_overlaps(self, sol: dict) -> np.ndarray:
        """Replace simultaneous charge and discharge by their net wherever the battery has room for
        the energy that netting keeps (grid flows unchanged, throughput and final-SOC shortfall only
        fall, so the solution stays optimal). Returns the mask of steps where that is impossible."""
        bat, dt = self.scn.battery, self.scn.dt_h
        c, d, energy = sol["c"], sol["d"], sol["E"]
        stuck = np.zeros(c.size, bool)
        for t in np.flatnonzero(np.minimum(c, d) > EXCLUSION_TOL_KW):
            both = min(c[t], d[t])
            gain = both * (1 / bat.discharge_efficiency - bat.charge_efficiency) * dt
            if gain <= float(np.min(self.e_hi[t:] - energy[t:])):
                c[t] -= both
                d[t] -= both
                energy[t:] += gain
            else:
                stuck[t] = True
        return stuck

    def solve_stage(self, stage: str) -> dict | None:
        """Solve a stage exactly: add exclusion binaries where the relaxation breaks one, repeat."""
        while True:
            sol = self._run(stage)
            if sol is None:
                return None
            overlap_cd = self._net_overlaps(sol)
            overlap_g = (np.minimum(sol["imp"], sol["exp"]) > EXCLUSION_TOL_KW) & self.grid_risky
            new_cd = np.setdiff1d(np.flatnonzero(overlap_cd), self.bin_cd)
            new_g = np.setdiff1d(np.flatnonzero(overlap_g), self.bin_g)
            if not (new_cd.size or new_g.size) or self.timed_out:
                return sol
            self.bin_cd = sorted(set(self.bin_cd) | set(new_cd.tolist()))
            self.bin_g = sorted(set(self.bin_g) | set(new_g.tolist()))


def optimise(scn: Scenario, time_limit_s: float = 30.0) -> Dispatch:
    """Cost-optimal dispatch for ``scn``; never infeasible (see module docstring for relaxations)."""
    started = time.monotonic()
    prob = _Problem(scn, time_limit_s)
    sol = prob.solve_stage("cost")
    if sol is None:
        prob.allow_slack = True
        for stage, block in (("import", "s_imp"), ("export", "s_exp"), ("final", "s_fin")):
            total = max(0.0, float(np.sum(_solved(prob.solve_stage(stage), stage)[block])))
            prob.stage_caps[block] = total + _STAGE_SLACK * (1 + total)
        sol = _solved(prob.solve_stage("cost"), "cost")
    battery_kw = np.clip(sol["c"] - sol["d"], -scn.battery.max_discharge_kw, scn.battery.max_charge_kw)
    curtail_kw = np.clip(sol["k"], 0.0, scn.pv_kw)
    warnings = _warnings(scn, sol, prob)
    return Dispatch(battery_kw, curtail_kw, sol["objective"], tuple(warnings),
                    len(prob.bin_cd) + len(prob.bin_g), prob.solves, time.monotonic() - started)


def _solved(sol: dict | None, stage: str) -> dict:
    if sol is None:  # every stage with slacks allowed is feasible (b = 0 meets the SOC window)
        raise RuntimeError(f"dispatch model infeasible in the {stage!r} stage despite its slacks")
    return sol


def _warnings(scn: Scenario, sol: dict, prob: _Problem) -> list[str]:
    bat, grid = scn.battery, scn.grid
    out: list[str] = []
    soc = 100 * sol["E"] / bat.capacity_kwh
    for outside, side, limit in ((bat.initial_soc_pct < bat.soc_min_pct, "below battery.soc_min_pct",
                                  bat.soc_min_pct),
                                 (bat.initial_soc_pct > bat.soc_max_pct, "above battery.soc_max_pct",
                                  bat.soc_max_pct)):
        if outside:
            inside = np.flatnonzero((soc >= bat.soc_min_pct - 1e-6) & (soc <= bat.soc_max_pct + 1e-6))
            back = (f"back in the band at the end of step {inside[0]}" if inside.size
                    else f"still outside the band at the end of the horizon ({soc[-1]:.2f} %)")
            out.append(f"battery.initial_soc_pct {bat.initial_soc_pct:g} is {side} {limit:g}: "
                       f"moving towards the band as fast as the power limits allow, {back}")
    g = sol["imp"] - sol["exp"]
    for excess, key, what in ((g - grid.import_limit_kw, "grid.import_limit_kw", "import"),
                              (-g - grid.export_limit_kw, "grid.export_limit_kw", "export")):
        over = np.flatnonzero(excess > _WARN_TOL_KW)
        if over.size:
            out.append(f"{key} relaxed: {what} exceeds {getattr(grid, key.split('.')[1]):g} kW at "
                       f"{over.size} step(s) (first step {over[0]}, worst {excess.max():.3f} kW over); "
                       f"no feasible dispatch keeps within it")
    if soc[-1] < bat.final_soc_min_pct - 1e-4:
        out.append(f"battery.final_soc_min_pct {bat.final_soc_min_pct:g} relaxed: unreachable, the plan "
                   f"ends at {soc[-1]:.2f} %")
    if prob.timed_out:
        out.append(f"solver time limit ({prob.time_limit_s:g} s) reached: plan is feasible but not "
                   f"proven cost-optimal")
    return out
