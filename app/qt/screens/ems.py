"""EMS: the plan the dispatch follows (SOC, battery and grid kW, prices) next to the recent measured
history on one time axis with a "now" line, the active mode and why, island state, savings so far,
and the mode selector.

The plan is EmsThread.plan_snapshot() (immutable, read on a 1 s timer while the screen is shown);
mode, why, island state and savings are DataBus points; the history comes from the historian off the
GUI thread (app/qt/history.py). A mode change is select-before-operate with a reason, in an SboPanel
on the console's SelectBeforeOperate. Abnormal states (EMS not updating, a PCS held by protection,
islanded, MPC without a plan, a stale or ended plan) are coloured and spelled out."""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from app.core.commands import Command
from app.ems.plan_snapshot import PlanSnapshot
from app.ems.settings import MODES, EmsSettings
from app.historian.reader import HistorianReader, nice_bucket
from app.qt.history import HistoryQueries
from app.qt.sbo_panel import SboPanel
from app.qt.session import OperatorSession
from app.qt.style import set_state
from app.security.roles import CommandKind
from app.security.sbo import SelectBeforeOperate
from widgets.trend import TrendPlot

if TYPE_CHECKING:
    from app.runtime import Runtime

HISTORY_S = 3 * 3600            # measured history shown before now
HISTORY_EVERY_S = 10.0          # how often it is read again while the screen is shown
NOT_UPDATING_S = 5.0            # site.ems.mode older than this: the EMS thread is not running
ROWS = {"Mode": (1, 0, 1), "Setpoint": (1, 2, 1), "Island": (2, 0, 1), "Protection": (2, 2, 1),
        "Savings": (3, 0, 3), "Plan": (4, 0, 3), "Why": (5, 0, 3)}      # row, column, columns spanned
PLAN_CURVES = (("soc_plot", "planned SOC", "soc_pct", False),          # SOC at the end of each step
               ("power_plot", "planned battery (+ charge)", "battery_kw", True),   # the others: per step
               ("power_plot", "planned grid (+ import)", "grid_kw", True),
               ("power_plot", "forecast load", "load_kw", True), ("power_plot", "forecast PV", "pv_kw", True),
               ("price_plot", "import price", "import_price", True),
               ("price_plot", "export price", "export_price", True))
_EMPTY = np.zeros(0)


def plan_status(mode: str, plan: PlanSnapshot | None, now: float, settings: EmsSettings) -> tuple[str, str]:
    """The plan row: text and state ('' normal, 'warn' abnormal: MPC without a plan, stale, ended)."""
    if plan is None:
        if mode == "mpc":
            return ("MPC HAS NO PLAN YET: following the rule set until it has a day of load/PV history "
                    "and a measured SOC", "warn")
        return f"mode {mode} follows rules; no plan", ""
    age = now - plan.made_at
    text = (f"{plan.source}, {plan.steps} × {plan.step_minutes:g} min, {_hm(plan.start)} to {_hm(plan.end)}, "
            f"made {_age(age)} ago")
    if now >= plan.end:
        return f"PLAN ENDED: the EMS idles · {text}", "warn"
    if mode == "mpc" and age > 2 * settings.mpc_replan_minutes * 60:
        return f"PLAN STALE (re-planned every {settings.mpc_replan_minutes:g} min) · {text}", "warn"
    return text, ""


def query_history(reader: HistorianReader, soc_weights: dict[str, float], power_points: list[str],
                  t_from: float, t_to: float) -> dict[str, np.ndarray]:
    """Measured SOC % (weighted mean of the racks' soc_pct) and battery kW (sum of the PCS) per bucket,
    NaN where a point had no usable sample; empty while a point has no history yet."""
    bucket = nice_bucket(t_to - t_from, 500)
    known = {p.name for p in reader.points("site.*")}
    if not known.issuperset(soc_weights) or not known.issuperset(power_points):
        return {"t": _EMPTY, "soc": _EMPTY, "battery_kw": _EMPTY}
    socs = [reader.downsample(p, t_from, t_to, bucket) for p in soc_weights]
    weights = np.array(list(soc_weights.values()))[:, None] * np.array([b.n > 0 for b in socs])
    total = weights.sum(axis=0)
    weighted = (weights * np.nan_to_num(np.array([b.vavg for b in socs]))).sum(axis=0)
    soc = np.divide(weighted, total, out=np.full(total.shape, np.nan), where=total > 0)
    kw = np.sum([reader.downsample(p, t_from, t_to, bucket).vavg for p in power_points], axis=0)
    return {"t": socs[0].t + bucket / 2, "soc": soc, "battery_kw": kw}


class EmsScreen(QtWidgets.QWidget):
    """`runtime.dispatch` is the EMS thread (None when dispatch is off); `sbo` the console's
    select-before-operate controller (shared with the control screen: one selection per target)."""

    def __init__(self, runtime: "Runtime", session: OperatorSession, sbo: SelectBeforeOperate,
                 queries: HistoryQueries) -> None:
        super().__init__()
        self.runtime, self.queries = runtime, queries
        self.panel = SboPanel(runtime, session, sbo)
        self._plan: PlanSnapshot | None = None
        self._mode_seen = ""
        self._pending: int | None = None
        self._history_at = -math.inf
        outer = QtWidgets.QHBoxLayout(self)
        left = QtWidgets.QVBoxLayout()
        outer.addLayout(left, 1)
        left.addWidget(self._header())
        currency = runtime.dispatch.settings.currency if runtime.dispatch else "price"
        self.soc_plot, self.power_plot, self.price_plot = TrendPlot("SOC %"), TrendPlot("kW"), \
            TrendPlot(f"{currency}/kWh")
        self.plots = (self.soc_plot, self.power_plot, self.price_plot)
        self.readout = QtWidgets.QLabel("")
        self.readout.setObjectName("value")
        self.readout.setWordWrap(True)
        self.now_lines = []
        for plot in self.plots:
            plot.setXLink(self.power_plot)
            plot.getAxis("left").enableAutoSIPrefix(False)
            plot.getAxis("left").setWidth(60)                # the three time axes line up
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#303030", width=2), label="now",
                                   labelOpts={"position": 0.08, "color": "#1e1e1e"})
            plot.addItem(line, ignoreBounds=True)
            self.now_lines.append(line)
            plot.cursor.sigPositionChanged.connect(lambda _line, p=plot: self._cursor_moved(p))
            left.addWidget(plot, 1)
        self.soc_plot.set_series("measured SOC", _EMPTY, _EMPTY)       # measured first: the same pen everywhere
        self.power_plot.set_series("measured battery (+ charge)", _EMPTY, _EMPTY)
        self._show_plan(None)
        left.addWidget(self.readout)
        side = QtWidgets.QVBoxLayout()
        outer.addLayout(side)
        side.addWidget(self._mode_group())
        side.addWidget(self.panel, 1)
        self.panel.setFixedWidth(380)
        self.queries.done.connect(self._on_history)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()

    def _header(self) -> QtWidgets.QFrame:
        box = QtWidgets.QFrame()
        box.setObjectName("plantBox")
        grid = QtWidgets.QGridLayout(box)
        title = QtWidgets.QLabel("DISPATCH (EMS)")
        title.setObjectName("boxTitle")
        grid.addWidget(title, 0, 0, 1, 4)
        self.values: dict[str, QtWidgets.QLabel] = {}
        for row, (r, c, span) in ROWS.items():
            label = QtWidgets.QLabel("--")
            label.setObjectName("value")
            label.setWordWrap(True)
            grid.addWidget(QtWidgets.QLabel(row), r, c)
            grid.addWidget(label, r, c + 1, 1, span)
            self.values[row] = label
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        return box

    def _mode_group(self) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Operating mode")
        box.setFixedWidth(380)
        form = QtWidgets.QFormLayout(box)
        self.mode = QtWidgets.QComboBox()
        self.mode.addItems(list(MODES))
        form.addRow("Mode", self.mode)
        self.reason = QtWidgets.QLineEdit()
        self.reason.setPlaceholderText("why (required)")
        form.addRow("Reason", self.reason)
        button = QtWidgets.QPushButton("Set mode…")
        button.clicked.connect(self.set_mode)
        form.addRow(button)
        return box

    def set_mode(self) -> bool:
        """Select set_mode for the chosen mode; Confirm on the panel sends it (authorised, audited)."""
        name, reason = self.mode.currentText(), self.reason.text().strip()
        if not reason:
            self.panel.notice("Mode: enter the reason")
            return False
        return self.panel.request(CommandKind.MODE, Command("site.ems", "set_mode", name, reason=reason),
                                  f"Switch the EMS operating mode to '{name}'")

    def _set(self, row: str, text: str, state: str = "") -> None:
        self.values[row].setText(text)
        set_state(self.values[row], state)

    def refresh(self) -> None:
        """Header from the bus, the plan when the EMS swapped it, the now line, the history when due."""
        if not self.isVisible():
            return
        ems, bus, clock = self.runtime.dispatch, self.runtime.bus, self.runtime.clock
        now = clock.time()
        get = bus.get
        mode = get("site.ems.mode")
        if ems is None or mode is None:
            self._set("Mode", "EMS not running (dispatch off)" if ems is None else "EMS starting", "stale")
        else:
            if mode.value != self._mode_seen:                # the selector starts from the active mode
                self._mode_seen = mode.value
                self.mode.setCurrentText(mode.value)
            late = clock.monotonic() - mode.recv_mono
            self._set("Mode", f"{mode.value}  (NOT UPDATING for {late:.0f} s)" if late > NOT_UPDATING_S
                      else mode.value, "alarm" if late > NOT_UPDATING_S else "")
        self._set("Why", *_text(get("site.ems.why"), str))
        self._set("Setpoint", *_text(get("site.ems.setpoint_kw"), "{:+.1f} kW (+ = charging)".format))
        island = get("site.ems.island_state")
        self._set("Island", *(("ISLAND: " + island.value, "alarm") if island and island.value != "connected"
                              else _text(island, str)))
        held = [p.id for p in self.runtime.site.pcs if (h := get(f"site.{p.id}.protection_hold")) and h.value]
        self._set("Protection", *((f"HELD by protection: {', '.join(held)} at 0 kW", "alarm") if held
                                  else ("free", "")))
        if ems is not None:
            currency = ems.settings.currency
            self._set("Savings", *_text(get("site.ems.savings"),
                                        lambda v: f"{v:+.2f} {currency} since start (energy cost vs no battery)"))
            plan = ems.plan_snapshot()
            self._set("Plan", *plan_status(mode.value if mode else ems.mode, plan, now, ems.settings))
            if plan is not self._plan:
                self._plan = plan
                self._show_plan(plan)
                self._fit(now)
        if now > self.power_plot.viewRange()[0][1]:       # "now" left the view: follow it
            self._fit(now)
        for line in self.now_lines:
            line.setValue(now)
        if self._pending is None and now - self._history_at >= HISTORY_EVERY_S:
            self._query_history(now)

    def _show_plan(self, plan: PlanSnapshot | None) -> None:
        """Plan curves; none for what the plan does not say (no plan, no forecast behind a schedule)."""
        edges = _EMPTY if plan is None else plan.step_edges()
        for plot, name, field, steps in PLAN_CURVES:
            values = _EMPTY if plan is None else getattr(plan, field)
            if not np.isfinite(values).any():
                values = _EMPTY
            t = _EMPTY if not values.size else edges if steps else edges[1:]
            getattr(self, plot).set_series(name, t, values, steps=steps)

    def _fit(self, now: float) -> None:
        """Time axis from the history shown to the end of the plan (an hour ahead without one)."""
        end = self._plan.end if self._plan is not None else now
        self.power_plot.show_range(now - HISTORY_S, max(end, now + 3600))
        for plot in self.plots:
            plot.enableAutoRange(axis="y")
            plot.cursor.setValue(now)

    def _cursor_moved(self, source: TrendPlot) -> None:
        """One cursor for the three plots; the readout names every value at it."""
        t = source.cursor.value()
        for plot in self.plots:
            plot.cursor.setValue(t)
        self.readout.setText("  ·  ".join(p.readout_text(stamp=p is self.soc_plot) for p in self.plots))

    def _query_history(self, now: float) -> None:
        site = self.runtime.site
        weights = {f"{r.path}.soc_pct": r.cell_count * b.cell_capacity_ah for b in site.bess for r in b.racks}
        powers = [f"site.{p.id}.active_power_kw" for p in site.pcs]
        self._history_at = now
        self._pending = self.queries.submit(lambda r: query_history(r, weights, powers, now - HISTORY_S, now))

    def _on_history(self, rid: int, result, error: str) -> None:
        if rid != self._pending:
            return
        self._pending = None
        if error:
            self.readout.setText(f"history: {error}")
            return
        if not result["t"].size:
            self._history_at = -math.inf            # nothing recorded yet (start-up): ask again next tick
        self.soc_plot.set_series("measured SOC", result["t"], result["soc"])
        self.power_plot.set_series("measured battery (+ charge)", result["t"], result["battery_kw"])

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()


def _finite_or_empty(values: np.ndarray) -> np.ndarray:
    """A plan array, or nothing to draw when the plan does not say (all NaN: no forecast)."""
    return values if np.isfinite(values).any() else _EMPTY


def _text(sample, fmt) -> tuple[str, str]:
    if sample is None:
        return "--", "stale"
    text = fmt(sample.value)
    return (text, "") if sample.quality.usable else (f"{text} ({sample.quality.value})", "stale")


def _hm(t: float) -> str:
    return time.strftime("%a %H:%M", time.localtime(t))


def _age(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 \
        else f"{seconds / 3600:.1f} h"
