"""L4 link diagnostics: per-link statistics (frames, errors, timeouts, reconnects, latency) refreshed 1/s,
the raw-frame monitor of the selected link (last 200 frames) and its record button (capture file)."""
from __future__ import annotations

import time

from PySide6 import QtCore, QtGui, QtWidgets

COLUMNS = ("Link", "Kind", "Address", "Status", "Frames ok", "Errors", "Timeouts", "Reconnects",
           "Latency p50 / p95 ms", "Last good", "Last error")


class LinksScreen(QtWidgets.QWidget):
    def __init__(self, drivers, bus) -> None:
        super().__init__()
        self.drivers, self.bus = drivers, bus
        lay = QtWidgets.QVBoxLayout(self)
        self.table = QtWidgets.QTableWidget(len(drivers), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        lay.addWidget(self.table, 2)
        bar = QtWidgets.QHBoxLayout()
        lay.addLayout(bar)
        self.caption = QtWidgets.QLabel("Raw frames: select a link above")
        bar.addWidget(self.caption, 1)
        self.record = QtWidgets.QPushButton("● Record…")
        self.record.setCheckable(True)
        self.record.clicked.connect(self.toggle_recording)
        bar.addWidget(self.record)
        self.frames = QtWidgets.QPlainTextEdit()
        self.frames.setReadOnly(True)
        self.frames.setObjectName("value")
        self.frames.setMaximumBlockCount(400)
        lay.addWidget(self.frames, 3)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.itemSelectionChanged.connect(self.refresh)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self.refresh()

    def refresh(self) -> None:
        for row, d in enumerate(self.drivers):
            st = d.stats.snapshot()
            status = self.bus.get(f"{d.status_point}.status")
            p50, p95 = st["latency_p50_ms"], st["latency_p95_ms"]
            values = (d.link.name, d.link.kind, d.link.address, status.value if status else "--",
                      st["frames_ok"], st["errors"], st["timeouts"], st["reconnects"],
                      f"{p50:.1f} / {p95:.1f}" if p50 is not None else "--",
                      time.strftime("%H:%M:%S", time.localtime(st["last_good_wall"])) if st["last_good_wall"] else "never",
                      st["last_error"])
            for col, value in enumerate(values):
                item = QtWidgets.QTableWidgetItem(str(value))
                if col == 3 and value != "ONLINE":
                    item.setText(f"✕ {value}")
                    item.setBackground(QtGui.QColor("#f5a000"))
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        self._show_frames()

    def selected(self):
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.drivers[rows[0].row()] if rows else None

    def _show_frames(self) -> None:
        d = self.selected()
        if d is None:
            return
        rec = d.monitor.path
        self.caption.setText(f"Raw frames of {d.link.name} ({d.link.kind} {d.link.address}), newest last"
                             + (f" — RECORDING to {rec}" if rec else ""))
        self.record.setChecked(d.monitor.recording)
        self.frames.setPlainText("\n".join(f"{time.strftime('%H:%M:%S', time.localtime(t))}.{int(t % 1 * 1000):03d} "
                                            f"{direction} {text}" for t, direction, text in list(d.monitor.frames)))
        self.frames.verticalScrollBar().setValue(self.frames.verticalScrollBar().maximum())

    def toggle_recording(self, path: str | None = None) -> None:
        """Start recording the selected link's raw frames to a file (asks where), or stop it."""
        d = self.selected()
        if d is None:
            self.record.setChecked(False)
            return
        if d.monitor.recording:
            d.monitor.stop_recording()
        else:
            if not isinstance(path, str):
                path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Record raw frames to",
                                                                f"{d.link.name}-capture.log", "Capture (*.log)")
            if path:
                d.monitor.start_recording(path)
        self.refresh()
