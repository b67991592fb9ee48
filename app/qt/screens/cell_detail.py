"""L4 cell detail: one cell's live values against its limits and rack, and its trends (last 10 minutes)."""
from __future__ import annotations

import numpy as np
from PySide6 import QtWidgets

from app.core import points
from app.core.sample import Sample
from app.core.site import Rack, Site
from app.protection.limit_file import load_limits
from app.protection.limits import temperature_window, voltage_window
from app.qt.history import HistoryQueries
from app.qt.screens.trends import query_series
from widgets.trend import TrendPlot

SPAN_S = 600


class CellDetailScreen(QtWidgets.QWidget):
    def __init__(self, site: Site, queries: HistoryQueries, clock) -> None:
        super().__init__()
        self.site, self.queries, self.clock = site, queries, clock
        self.rack: Rack | None = None
        self.cell = 0
        self._pending: dict[int, str] = {}
        lay = QtWidgets.QVBoxLayout(self)
        self.title = QtWidgets.QLabel("Click a cell on the Cells screen (F3)")
        self.title.setObjectName("boxTitle")
        lay.addWidget(self.title)
        form = QtWidgets.QFormLayout()
        lay.addLayout(form)
        self.rows: dict[str, QtWidgets.QLabel] = {}
        for name in ("Voltage", "Temperature", "Deviation from rack mean", "Rank in rack (1 = highest V)",
                     "Voltage limits", "Temperature limits", "Quality"):
            label = QtWidgets.QLabel("--")
            label.setObjectName("value")
            form.addRow(name, label)
            self.rows[name] = label
        self.plot_v = TrendPlot("V")
        self.plot_t = TrendPlot("°C")
        lay.addWidget(self.plot_v, 1)
        lay.addWidget(self.plot_t, 1)
        self.queries.done.connect(self._on_result)

    def show_cell(self, rack_path: str, cell: int) -> None:
        self.rack = next(r for r in self.site.racks if r.path == rack_path)
        self.cell = cell
        module, pos = divmod(cell - 1, self.rack.cells_per_module)
        bess = next(b for b in self.site.bess if b.id == self.rack.bess)
        limits = load_limits(bess.chemistry, self.site.protection.overrides)
        lo_t, lo_w, hi_w, hi_t = voltage_window(limits)
        tlo_t, tlo_w, thi_w, thi_t = temperature_window(limits)
        self.title.setText(f"Cell {points.cell_label(self.rack.number, module + 1, pos + 1)} — "
                           f"{points.cell(self.rack.bess, self.rack.number, module + 1, pos + 1, 'voltage_v')}")
        self.rows["Voltage limits"].setText(f"warn {lo_w:g}..{hi_w:g} V, trip {lo_t:g}..{hi_t:g} V")
        self.rows["Temperature limits"].setText(f"warn {tlo_w:g}..{thi_w:g} °C, trip {tlo_t:g}..{thi_t:g} °C")
        self.plot_v.clear_series()
        self.plot_t.clear_series()
        self.refresh_trends()

    def refresh_trends(self) -> None:
        if self.rack is None:
            return
        t_to = self.clock.time()
        t_from = t_to - SPAN_S
        for suffix in ("cell_voltages_v", "cell_temperatures_c"):
            for spec in (f"{self.rack.path}.{suffix}#{self.cell}", f"{self.rack.path}.{suffix}"):
                rid = self.queries.submit(lambda r, s=spec: query_series(r, s, t_from, t_to))
                self._pending[rid] = spec
        self.plot_v.show_range(t_from, t_to)
        self.plot_t.show_range(t_from, t_to)

    def _on_result(self, rid: int, result, error: str) -> None:
        spec = self._pending.pop(rid, None)
        if spec is None or error:
            return
        plot = self.plot_v if "voltages" in spec else self.plot_t
        if "#" in spec:
            plot.set_series(f"cell {self.cell}", result["t"], result["avg"])
        else:
            plot.set_series("rack avg (band: min..max)", result["t"], result["avg"], result["min"], result["max"])

    def update_values(self, dirty: dict[str, Sample]) -> None:
        if self.rack is None:
            return
        volts = dirty.get(f"{self.rack.path}.cell_voltages_v")
        temps = dirty.get(f"{self.rack.path}.cell_temperatures_c")
        i = self.cell - 1
        if volts is not None:
            v = volts.value
            self.rows["Voltage"].setText(f"{v[i]:.3f} V")
            self.rows["Deviation from rack mean"].setText(f"{(v[i] - np.nanmean(v)) * 1000:+.1f} mV")
            self.rows["Rank in rack (1 = highest V)"].setText(f"{int(np.sum(v > v[i])) + 1} of {v.size}")
            self.rows["Quality"].setText(volts.quality.value)
        if temps is not None:
            self.rows["Temperature"].setText(f"{temps.value[i]:.1f} °C")
