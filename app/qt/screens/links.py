"""L4 link diagnostics: per-link statistics (frames, errors, timeouts, reconnects, latency) refreshed 1/s."""
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
        lay.addWidget(self.table)
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
