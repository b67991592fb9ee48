"""Per-cell heatmap in the physical layout (racks side by side, modules as rows, cells as columns).

One pyqtgraph ImageItem for the whole BESS (no widget per cell), coloured with numpy in one pass.
ISA-101: normal values are shades of grey; only abnormal bands get colour, and every abnormal or
stale state is also shown as text/shape (min/max markers, COMM_LOST labels over the rack).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

GAP = 1                      # blank columns between racks
STALE_RGBA = (150, 150, 150, 255)
EMPTY_RGBA = (0, 0, 0, 0)


@dataclass(frozen=True)
class Scale:
    """Fixed colour scale of one quantity: grey ramp inside [low_warn, high_warn], colour outside."""

    unit: str
    low_trip: float
    low_warn: float
    high_warn: float
    high_trip: float

    def rgba(self, values: np.ndarray) -> np.ndarray:
        """RGBA uint8 for each value (NaN -> transparent)."""
        out = np.zeros(values.shape + (4,), np.uint8)
        t = np.clip((values - self.low_warn) / max(self.high_warn - self.low_warn, 1e-9), 0, 1)
        grey = (200 - 110 * np.nan_to_num(t)).astype(np.uint8)     # light = low, dark = high
        out[..., 0] = out[..., 1] = out[..., 2] = grey
        out[..., 3] = 255
        bands = [(values > self.high_trip, (220, 30, 30)), (values > self.high_warn, (245, 160, 0)),
                 (values < self.low_trip, (40, 80, 220)), (values < self.low_warn, (120, 170, 250))]
        for mask, (r, g, b) in reversed(bands):
            out[mask, :3] = (r, g, b)
        out[np.isnan(values)] = EMPTY_RGBA
        return out


@dataclass(frozen=True)
class RackLayout:
    label: str
    modules: int
    cells_per_module: int


class CellHeatmap(pg.GraphicsLayoutWidget):
    """Heatmap of every cell of one BESS. Call `set_rack(i, values, stale)` then `refresh()`."""

    cellHovered = QtCore.Signal(str)
    cellClicked = QtCore.Signal(int, int, int)       # rack, module, cell (1-based)

    def __init__(self, racks: list[RackLayout], scale: Scale, quantity: str, parent=None) -> None:
        super().__init__(parent)
        self.setBackground(QtGui.QColor("#d4d4d4"))
        self.racks, self.scale, self.quantity = racks, scale, quantity
        self.rows = max(r.modules for r in racks)
        self._x0 = np.cumsum([0] + [r.cells_per_module + GAP for r in racks[:-1]])
        width = int(self._x0[-1] + racks[-1].cells_per_module)
        self._values = np.full((self.rows, width), np.nan, np.float32)
        self._stale = np.zeros(len(racks), bool)
        self.view = self.addViewBox(lockAspect=False, invertY=True, enableMouse=False)
        self.view.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)
        self.image.setAcceptHoverEvents(True)
        self.image.hoverEvent = self._hover
        self.image.mouseClickEvent = self._click
        self._labels = []
        for i, r in enumerate(racks):
            text = pg.TextItem(r.label, color="#202020", anchor=(0, 1))
            text.setPos(float(self._x0[i]), 0)
            self.view.addItem(text)
            stale = pg.TextItem("", color="#000000", fill=pg.mkBrush(255, 255, 255, 220), anchor=(0.5, 0.5))
            stale.setPos(float(self._x0[i]) + r.cells_per_module / 2, self.rows / 2)
            stale.setVisible(False)
            self.view.addItem(stale)
            self._labels.append(stale)
        self.markers = pg.ScatterPlotItem(size=12, pen=pg.mkPen("#000000", width=1.5), brush=None)
        self.view.addItem(self.markers)
        self.view.setRange(xRange=(0, width), yRange=(-1.2, self.rows), padding=0.02)

    def set_scale(self, scale: Scale) -> None:
        self.scale = scale
        self.refresh()

    def set_rack(self, index: int, values: np.ndarray | None, status: str = "") -> None:
        """Values of rack `index` (cell 1 first); status non-empty (e.g. 'COMM_LOST') greys it out."""
        r = self.racks[index]
        x0 = int(self._x0[index])
        block = self._values[: r.modules, x0: x0 + r.cells_per_module]
        if values is None:
            block[:] = np.nan
        else:
            block[:] = np.asarray(values, np.float32)[: r.modules * r.cells_per_module].reshape(
                r.modules, r.cells_per_module)
        self._stale[index] = bool(status)
        self._labels[index].setText(status)
        self._labels[index].setVisible(bool(status))

    def refresh(self) -> None:
        rgba = self.scale.rgba(self._values)
        for i, r in enumerate(self.racks):
            if self._stale[i]:
                x0 = int(self._x0[i])
                block = rgba[: r.modules, x0: x0 + r.cells_per_module]
                block[(block[..., 3] > 0)] = STALE_RGBA
        self.image.setImage(rgba, autoLevels=False)
        self._update_markers()

    def _update_markers(self) -> None:
        """Triangles on the highest (▲) and lowest (▼) live cell of the whole view."""
        live = self._values.copy()
        for i, r in enumerate(self.racks):
            if self._stale[i]:
                live[:, int(self._x0[i]): int(self._x0[i]) + r.cells_per_module] = np.nan
        if np.all(np.isnan(live)):
            self.markers.setData([])
            return
        hi = np.unravel_index(np.nanargmax(live), live.shape)
        lo = np.unravel_index(np.nanargmin(live), live.shape)
        self.markers.setData([
            {"pos": (hi[1] + 0.5, hi[0] + 0.5), "symbol": "t1"},
            {"pos": (lo[1] + 0.5, lo[0] + 0.5), "symbol": "t"},
        ])

    def cell_at(self, x: float, y: float) -> tuple[int, int, int] | None:
        """(rack, module, cell), 1-based, under image coordinates x, y; None in gaps."""
        col, row = int(np.floor(x)), int(np.floor(y))
        for i, r in enumerate(self.racks):
            c = col - int(self._x0[i])
            if 0 <= c < r.cells_per_module and 0 <= row < r.modules:
                return i + 1, row + 1, c + 1
        return None

    def describe(self, rack: int, module: int, cell: int) -> str:
        r = self.racks[rack - 1]
        v = self._values[module - 1, int(self._x0[rack - 1]) + cell - 1]
        s = self.scale
        state = "STALE" if self._stale[rack - 1] else (
            "TRIP" if v > s.high_trip or v < s.low_trip else "WARN" if v > s.high_warn or v < s.low_warn else "normal")
        return (f"{r.label} module {module:02d} cell {cell:03d}: {v:.3f} {s.unit} ({state}; "
                f"warn {s.low_warn:g}..{s.high_warn:g}, trip {s.low_trip:g}..{s.high_trip:g} {s.unit})")

    def _hover(self, event) -> None:
        if event.isExit():
            self.setToolTip("")
            return
        hit = self.cell_at(event.pos().x(), event.pos().y())
        text = self.describe(*hit) if hit else ""
        self.setToolTip(text)
        self.cellHovered.emit(text)

    def _click(self, event) -> None:
        hit = self.cell_at(event.pos().x(), event.pos().y())
        if hit:
            self.cellClicked.emit(*hit)


class Legend(QtWidgets.QLabel):
    """Text legend of a Scale, so colour is never the only cue."""

    def __init__(self, scale: Scale, quantity: str, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("legend")
        self.setWordWrap(True)
        self.set_scale(scale, quantity)

    def set_scale(self, scale: Scale, quantity: str) -> None:
        self.setText(
            f"{quantity}: grey = normal {scale.low_warn:g}–{scale.high_warn:g} {scale.unit} (light low, dark high) · "
            f"<span style='background:#f5a000'>&nbsp;amber&nbsp;</span> warn > {scale.high_warn:g} · "
            f"<span style='background:#dc1e1e;color:white'>&nbsp;red&nbsp;</span> trip > {scale.high_trip:g} · "
            f"<span style='background:#78aafa'>&nbsp;light blue&nbsp;</span> warn &lt; {scale.low_warn:g} · "
            f"<span style='background:#2850dc;color:white'>&nbsp;blue&nbsp;</span> trip &lt; {scale.low_trip:g} · "
            f"△ max ▽ min · flat grey + label = COMM_LOST/STALE")
