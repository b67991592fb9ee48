"""Event list: newest first, severity as text plus a shape, point/value/limit named in the message."""
from __future__ import annotations

import time

from PySide6 import QtCore, QtGui, QtWidgets

from app.core.events import Event, Severity
from app.qt.table_model import RowsModel

SHAPES = {Severity.TRIP: "■ TRIP", Severity.ALARM: "▲ ALARM", Severity.WARNING: "◆ WARNING", Severity.INFO: "  info"}
COLOURS = {Severity.TRIP: "#dc1e1e", Severity.ALARM: "#f5a000", Severity.WARNING: "#fff07a"}
COLUMNS = ("Time", "Priority", "Source", "Message")


class EventModel(RowsModel):
    columns = COLUMNS

    def __init__(self, keep: int = 10_000) -> None:
        super().__init__()
        self.keep = keep

    def add(self, events: list[Event]) -> None:
        self.beginResetModel()
        self.rows = (list(reversed(events)) + self.rows)[: self.keep]
        self.endResetModel()

    def data(self, index, role=QtCore.Qt.ItemDataRole.DisplayRole):
        e = self.rows[index.row()]
        if role == QtCore.Qt.ItemDataRole.DisplayRole:
            return (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.time)) + f".{int(e.time % 1 * 10)}",
                    SHAPES[e.severity], e.source, e.message)[index.column()]
        if role == QtCore.Qt.ItemDataRole.BackgroundRole and index.column() == 1 and e.severity in COLOURS:
            return QtGui.QBrush(QtGui.QColor(COLOURS[e.severity]))
        if role == QtCore.Qt.ItemDataRole.ForegroundRole and index.column() == 1 and e.severity == Severity.TRIP:
            return QtGui.QBrush(QtGui.QColor("#ffffff"))
        return None


class EventsScreen(QtWidgets.QWidget):
    def __init__(self) -> None:
        super().__init__()
        lay = QtWidgets.QVBoxLayout(self)
        self.model = EventModel()
        self.table = QtWidgets.QTableView()
        self.table.setModel(self.model)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setColumnWidth(0, 170)
        self.table.setColumnWidth(1, 100)
        self.table.setColumnWidth(2, 160)
        lay.addWidget(self.table)

    def add_events(self, events: list[Event]) -> None:
        self.model.add(events)
