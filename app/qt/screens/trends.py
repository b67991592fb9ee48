"""Trends: any recorded points from the historian, time-range presets, live tail, zoom/pan, cursor readout.

A vector point is shown as its rack min/avg/max (band), a single cell as `point#N`. Queries run off the GUI
thread (app/qt/history.py) and are downsampled to about 1,000 buckets."""
from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.historian.reader import HistorianReader, nice_bucket
from app.qt.history import HistoryQueries
from widgets.trend import TrendPlot

PRESETS = (("10 min", 600), ("1 h", 3600), ("8 h", 8 * 3600), ("24 h", 86400), ("7 d", 7 * 86400))


def query_series(reader: HistorianReader, spec: str, t_from: float, t_to: float) -> dict:
    """One trend series: `point` or `point#cell` -> dict(t, avg, min, max) downsampled to ≤ ~1,000 buckets."""
    point, _, cell = spec.partition("#")
    bucket = nice_bucket(t_to - t_from, 1000)
    b = reader.downsample(point, t_from, t_to, bucket, cell=int(cell) if cell else None)
    keep = b.n > 0
    return {"t": b.t[keep] + bucket / 2, "avg": b.vavg[keep], "min": b.vmin[keep], "max": b.vmax[keep]}


class TrendsScreen(QtWidgets.QWidget):
    def __init__(self, queries: HistoryQueries, clock) -> None:
        super().__init__()
        self.queries, self.clock = queries, clock
        self.specs: list[str] = []
        self.span_s = 600
        self._pending: dict[int, str] = {}
        lay = QtWidgets.QVBoxLayout(self)
        bar = QtWidgets.QHBoxLayout()
        lay.addLayout(bar)
        self.point_edit = QtWidgets.QLineEdit()
        self.point_edit.setPlaceholderText("point or point#cell, e.g. site.bess1.rack01.cell_voltages_v#12 — Enter adds")
        self.point_edit.returnPressed.connect(self._add_from_edit)
        bar.addWidget(self.point_edit, 1)
        for label, span in PRESETS:
            b = QtWidgets.QPushButton(label)
            b.clicked.connect(lambda _=False, s=span: self.set_span(s))
            bar.addWidget(b)
        self.live = QtWidgets.QCheckBox("Live tail")
        self.live.setChecked(True)
        bar.addWidget(self.live)
        clear = QtWidgets.QPushButton("Clear")
        clear.clicked.connect(self.clear)
        bar.addWidget(clear)
        self.plot = TrendPlot()
        lay.addWidget(self.plot, 1)
        self.readout = QtWidgets.QLabel("")
        self.readout.setObjectName("value")
        lay.addWidget(self.readout)
        self.error = QtWidgets.QLabel("")
        lay.addWidget(self.error)
        self.plot.readout.connect(self.readout.setText)
        self.queries.done.connect(self._on_result)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(2000)
        self.timer.timeout.connect(lambda: self.live.isChecked() and self.refresh())
        self.timer.start()
        self.completer_model = QtCore.QStringListModel(self)
        completer = QtWidgets.QCompleter(self.completer_model, self)
        completer.setFilterMode(QtCore.Qt.MatchFlag.MatchContains)
        self.point_edit.setCompleter(completer)
        QtGui.QShortcut(QtGui.QKeySequence("Ctrl+L"), self, activated=self.point_edit.setFocus)

    def set_point_names(self, names: list[str]) -> None:
        self.completer_model.setStringList(names)

    def _add_from_edit(self) -> None:
        spec = self.point_edit.text().strip()
        if spec:
            self.add(spec)
            self.point_edit.clear()

    def add(self, spec: str) -> None:
        if spec not in self.specs:
            self.specs.append(spec)
        self.refresh()

    def clear(self) -> None:
        self.specs.clear()
        self.plot.clear_series()

    def set_span(self, span_s: float) -> None:
        self.span_s = span_s
        self.refresh()

    def refresh(self) -> None:
        t_to = self.clock.time()
        t_from = t_to - self.span_s
        for spec in self.specs:
            rid = self.queries.submit(lambda r, s=spec: query_series(r, s, t_from, t_to))
            self._pending[rid] = spec
        self.plot.show_range(t_from, t_to)

    def _on_result(self, rid: int, result, error: str) -> None:
        spec = self._pending.pop(rid, None)
        if spec is None:
            return
        if error:
            self.error.setText(f"{spec}: {error}")
            return
        self.error.setText("")
        band = "#" not in spec and result["t"].size and not np.array_equal(result["min"], result["max"])
        self.plot.set_series(spec, result["t"], result["avg"], result["min"] if band else None,
                             result["max"] if band else None)
        self.readout.setText(self.plot.readout_text())
