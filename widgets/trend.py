"""Trend plot: several series against wall-clock time, optional min/max band, zoom/pan with the mouse,
and a cursor line whose readout names every series' value at that instant."""
from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

PENS = ["#1e1e1e", "#1f4e9c", "#6b3fa0", "#2f7d32", "#8a5a00", "#5a5a5a"]   # no alarm colours for data


class TrendPlot(pg.PlotWidget):
    """`set_series(name, t, v, vmin=None, vmax=None, steps=False)`; `readout` signal carries the cursor text."""

    readout = QtCore.Signal(str)

    def __init__(self, unit: str = "", parent=None) -> None:
        super().__init__(parent, axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        self.setBackground(QtGui.QColor("#e6e6e6"))
        self.showGrid(x=True, y=True, alpha=0.25)
        self.setLabel("left", unit)
        self.addLegend(offset=(10, 10), labelTextColor="#1e1e1e", brush=pg.mkBrush(230, 230, 230, 210))
        self._series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._steps: set[str] = set()
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._bands: dict[str, pg.FillBetweenItem] = {}
        self.cursor = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen("#404040", style=QtCore.Qt.PenStyle.DashLine))
        self.addItem(self.cursor, ignoreBounds=True)
        self.cursor.sigPositionChanged.connect(self._emit_readout)
        self.getPlotItem().scene().sigMouseMoved.connect(self._mouse_moved)

    def set_series(self, name: str, t: np.ndarray, v: np.ndarray, vmin: np.ndarray | None = None,
                   vmax: np.ndarray | None = None, steps: bool = False) -> None:
        """With `steps`, `t` holds the len(v) + 1 step edges and v[i] holds from t[i] to t[i + 1] (a plan)."""
        pen = pg.mkPen(PENS[list(self._curves).index(name) % len(PENS)] if name in self._curves
                       else PENS[len(self._curves) % len(PENS)], width=1.5)
        if name not in self._curves:
            self._curves[name] = self.plot([], [], name=name, pen=pen, connect="finite")
        self._curves[name].setData(t, v, stepMode="center" if steps and len(v) else None)
        self._series[name] = (t, v)
        if steps:
            self._steps.add(name)
        else:
            self._steps.discard(name)
        self.enableAutoRange(axis="y")
        if vmin is not None and vmax is not None:
            if name in self._bands:
                self.removeItem(self._bands[name])
            lo = pg.PlotDataItem(t, vmin, pen=None)
            hi = pg.PlotDataItem(t, vmax, pen=None)
            self._bands[name] = pg.FillBetweenItem(lo, hi, brush=pg.mkBrush(90, 90, 90, 50))
            self.addItem(self._bands[name])
        if len(t) and not self.cursor.value():
            self.cursor.setValue(float(t[-1]))

    def clear_series(self) -> None:
        for item in list(self._curves.values()) + list(self._bands.values()):
            self.removeItem(item)
        self.getPlotItem().legend.clear()
        self._curves.clear()
        self._bands.clear()
        self._series.clear()
        self._steps.clear()

    def show_range(self, t_from: float, t_to: float) -> None:
        self.setXRange(t_from, t_to, padding=0)
        self.enableAutoRange(axis="y")

    def value_at(self, name: str, t: float) -> float:
        ts, vs = self._series[name]
        if not len(vs):
            return float("nan")
        if name in self._steps:
            i = int(np.searchsorted(ts, t, side="right")) - 1
            return float(vs[i]) if 0 <= i < len(vs) else float("nan")
        i = int(np.clip(np.searchsorted(ts, t), 1, len(ts) - 1)) if len(ts) > 1 else 0
        j = i if len(ts) == 1 or abs(ts[i] - t) < abs(ts[i - 1] - t) else i - 1
        return float(vs[j])

    def readout_text(self, stamp: bool = True) -> str:
        """The cursor's time (unless not `stamp`) and the value of every series that has data."""
        t = float(self.cursor.value())
        parts = [time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))] if stamp else []
        parts += [f"{name} = {self.value_at(name, t):.4g}" for name, (_, v) in self._series.items() if len(v)]
        return "  ·  ".join(parts)

    def _emit_readout(self) -> None:
        if self._series:
            self.readout.emit(self.readout_text())

    def _mouse_moved(self, pos) -> None:
        vb = self.getPlotItem().vb
        if self.sceneBoundingRect().contains(pos):
            self.cursor.setValue(vb.mapSceneToView(pos).x())
