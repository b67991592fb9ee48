"""Alarm summary (ISA-18.2): active and hidden alarms sorted by priority, filter, ack / ack all visible /
shelve with reason / unshelve / reset, flood banner, and the first-out + trip snapshot viewer.

The alarm manager lives on the protection thread; this screen reads its frozen summary and sends
operator actions as Commands to "site.alarms" through `act(kind, command)` (security + audit)."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.alarms.model import AlarmState, AlarmSummary, AlarmView, Priority
from app.core.commands import Command
from app.qt.dialogs import ok_cancel
from app.qt.table_model import RowsModel

SHAPE = {Priority.URGENT: "■ URGENT", Priority.HIGH: "▲ HIGH", Priority.MEDIUM: "◆ MEDIUM", Priority.LOW: "● LOW"}
COLOUR = {Priority.URGENT: "#dc1e1e", Priority.HIGH: "#f5a000", Priority.MEDIUM: "#fff07a", Priority.LOW: "#cfe3ff"}
COLUMNS = ("Priority", "State", "Since", "Point", "Rule", "Value", "Limit", "Message")
SHELVE_CHOICES = (("until it returns to normal (one-shot)", None), ("15 minutes", 900.0), ("1 hour", 3600.0),
                  ("8 hours", 8 * 3600.0))


class AlarmModel(RowsModel):
    columns = COLUMNS

    def set_summary(self, summary: AlarmSummary) -> None:
        self.beginResetModel()
        self.rows = list(summary.active) + list(summary.hidden)
        self.endResetModel()

    def data(self, index, role=QtCore.Qt.ItemDataRole.DisplayRole):
        a = self.rows[index.row()]
        col = index.column()
        if role == QtCore.Qt.ItemDataRole.DisplayRole:
            state = a.state.value + (" (latched)" if a.latched else "") + (" CHATTERING" if a.chattering else "")
            return (SHAPE[a.priority], state, time.strftime("%H:%M:%S", time.localtime(a.state_since)), a.point,
                    a.rule, _fmt(a.value), "" if a.limit is None else f"{a.limit:g}", a.message)[col]
        if role == QtCore.Qt.ItemDataRole.UserRole:          # sort keys
            return (int(a.priority), a.state.value, a.state_since, a.point, a.rule, _fmt(a.value),
                    a.limit or 0.0, a.message)[col]
        if role == QtCore.Qt.ItemDataRole.BackgroundRole and col == 0 and a.state is not AlarmState.SHELVED:
            return QtGui.QBrush(QtGui.QColor(COLOUR[a.priority]))
        if role == QtCore.Qt.ItemDataRole.ForegroundRole and col == 0 and a.priority is Priority.URGENT:
            return QtGui.QBrush(QtGui.QColor("#ffffff"))
        if role == QtCore.Qt.ItemDataRole.FontRole and a.state in (AlarmState.UNACK, AlarmState.RTN_UNACK):
            font = QtGui.QFont()
            font.setBold(True)                               # unacknowledged: bold (shape, not only colour)
            return font
        return None


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "" if value is None else str(value)


class AlarmsScreen(QtWidgets.QWidget):
    """`act(kind, command)` is the window's security-checked command path; returns True when accepted."""

    def __init__(self, act: Callable[[str, Command], bool], first_outs: Callable[[], tuple]) -> None:
        super().__init__()
        self.act, self.first_outs = act, first_outs
        self._version = -1
        lay = QtWidgets.QVBoxLayout(self)
        self.flood = QtWidgets.QLabel("")
        self.flood.setObjectName("banner")
        self.flood.setVisible(False)
        lay.addWidget(self.flood)
        bar = QtWidgets.QHBoxLayout()
        lay.addLayout(bar)
        self.filter = QtWidgets.QLineEdit()
        self.filter.setPlaceholderText("filter (point, rule, state, message) — Ctrl+F")
        bar.addWidget(self.filter, 1)
        self.counts = QtWidgets.QLabel("")
        bar.addWidget(self.counts)
        self.model = AlarmModel()
        self.proxy = QtCore.QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(QtCore.Qt.ItemDataRole.UserRole)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(QtCore.Qt.CaseSensitivity.CaseInsensitive)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.table = QtWidgets.QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, QtCore.Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        for col, width in enumerate((90, 150, 70, 300, 220, 70, 60)):
            self.table.setColumnWidth(col, width)
        lay.addWidget(self.table, 1)
        buttons = QtWidgets.QHBoxLayout()
        lay.addLayout(buttons)
        for text, key, slot in (("Ack (Ctrl+K)", "Ctrl+K", self.ack_selected),
                                ("Ack all visible (Ctrl+Shift+K)", "Ctrl+Shift+K", self.ack_all_visible),
                                ("Shelve… (Ctrl+H)", "Ctrl+H", self.shelve_selected),
                                ("Unshelve", None, self.unshelve_selected),
                                ("Reset trip…", None, self.reset_selected),
                                ("First-out… (Ctrl+O)", "Ctrl+O", self.show_first_out)):
            b = QtWidgets.QPushButton(text)
            b.clicked.connect(slot)
            buttons.addWidget(b)
            if key:
                QtGui.QShortcut(QtGui.QKeySequence(key), self, activated=slot)
        buttons.addStretch(1)
        QtGui.QShortcut(QtGui.QKeySequence("Ctrl+F"), self, activated=self.filter.setFocus)
        self.status = QtWidgets.QLabel("")
        lay.addWidget(self.status)

    def set_summary(self, summary: AlarmSummary) -> None:
        if summary.version == self._version:
            return
        self._version = summary.version
        selected = {v.tag for v in self.selected()}
        self.model.set_summary(summary)
        for row in range(self.proxy.rowCount()):
            if self.model.rows[self.proxy.mapToSource(self.proxy.index(row, 0)).row()].tag in selected:
                self.table.selectRow(row)
        counts = " · ".join(f"{p.name} {summary.by_priority.get(p, 0)} ({summary.unacked_by_priority.get(p, 0)} unack)"
                            for p in Priority)
        self.counts.setText(f"active: {counts} · hidden {len(summary.hidden)}")
        open_floods = [f for f in summary.floods if f.end is None]
        self.flood.setVisible(bool(open_floods))
        if open_floods:
            f = open_floods[0]
            self.flood.setText(f"⚠ ALARM FLOOD on {f.position}: {f.count} alarms since "
                               f"{time.strftime('%H:%M:%S', time.localtime(f.start))} — handle by priority")
            self.flood.setProperty("state", "alarm")
            self.flood.style().polish(self.flood)

    def selected(self) -> list[AlarmView]:
        rows = {self.proxy.mapToSource(i).row() for i in self.table.selectionModel().selectedRows()}
        return [self.model.rows[r] for r in sorted(rows) if r < len(self.model.rows)]

    def visible(self) -> list[AlarmView]:
        return [self.model.rows[self.proxy.mapToSource(self.proxy.index(r, 0)).row()]
                for r in range(self.proxy.rowCount())]

    def _send(self, kind: str, action: str, value, reason: str = "") -> bool:
        ok = self.act(kind, Command("site.alarms", action, value, reason=reason))
        self.status.setText(f"{action}: {'done' if ok else 'not done'}")
        return ok

    def ack_selected(self) -> None:
        for a in self.selected():
            self._send("ack_alarm", "ack", a.tag)

    def ack_all_visible(self) -> None:
        tags = [a.tag for a in self.visible() if a.state in (AlarmState.UNACK, AlarmState.RTN_UNACK)]
        if tags:
            self._send("ack_alarm", "ack_all", tags)

    def shelve_selected(self) -> None:
        targets = self.selected()
        if not targets:
            return
        dialog = ShelveDialog(self, ", ".join(a.point for a in targets))
        if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            for a in targets:
                self._send("shelve_alarm", "shelve", {"tag": a.tag, "duration_s": dialog.duration_s},
                           dialog.reason)

    def unshelve_selected(self) -> None:
        for a in self.selected():
            self._send("shelve_alarm", "unshelve", a.tag)

    def reset_selected(self) -> None:
        for a in self.selected():
            if a.latched:
                self._send("reset_trip", "reset", {"tag": a.tag, "authorised": True})

    def show_first_out(self) -> None:
        FirstOutDialog(self, self.first_outs()).exec()


class ShelveDialog(QtWidgets.QDialog):
    """Shelving needs a reason (ISA-18.2) and a duration; one-shot lasts until the alarm clears."""

    def __init__(self, parent, what: str) -> None:
        super().__init__(parent)
        self.setWindowTitle("Shelve alarm")
        form = QtWidgets.QFormLayout(self)
        form.addRow(QtWidgets.QLabel(f"Shelve: {what}"))
        self.reason_edit = QtWidgets.QLineEdit()
        form.addRow("Reason (required)", self.reason_edit)
        self.duration = QtWidgets.QComboBox()
        self.duration.addItems([text for text, _ in SHELVE_CHOICES])
        form.addRow("For", self.duration)
        form.addRow(ok_cancel(self, self._accept))

    @property
    def reason(self) -> str:
        return self.reason_edit.text().strip()

    @property
    def duration_s(self) -> float | None:
        return SHELVE_CHOICES[self.duration.currentIndex()][1]

    def _accept(self) -> None:
        if self.reason:
            self.accept()
        else:
            self.reason_edit.setPlaceholderText("a reason is required")


class FirstOutDialog(QtWidgets.QDialog):
    """Trips newest first: which condition came first, what followed, and the rack's values then."""

    def __init__(self, parent, records: tuple) -> None:
        super().__init__(parent)
        self.setWindowTitle("First-out and trip snapshots")
        self.resize(900, 600)
        lay = QtWidgets.QHBoxLayout(self)
        self.list = QtWidgets.QListWidget()
        lay.addWidget(self.list, 1)
        self.detail = QtWidgets.QPlainTextEdit()
        self.detail.setReadOnly(True)
        lay.addWidget(self.detail, 2)
        self.records = records
        for r in records:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.start))
            self.list.addItem(f"{when}  {r.group}: FIRST {r.first.rule}" + ("" if r.end else "  (standing)"))
        self.list.currentRowChanged.connect(self._show)
        if records:
            self.list.setCurrentRow(0)
        else:
            self.detail.setPlainText("No trips recorded.")

    def _show(self, row: int) -> None:
        r = self.records[row]
        lines = [f"FIRST-OUT: {r.first.message}", f"  condition since {time.strftime('%H:%M:%S', time.localtime(r.first.since))}"]
        lines += [f"then: {e.message}" for e in r.later]
        lines.append("")
        lines.append("Snapshot of the rack at the trip instant:")
        for point, value in sorted(r.snapshot.items()):
            if isinstance(value, np.ndarray) and value.size > 1:
                i = int(np.nanargmax(value))
                lines.append(f"  {point}: {value.size} values, min {np.nanmin(value):.3f}, "
                             f"max {value[i]:.3f} (#{i + 1}), mean {np.nanmean(value):.3f}")
            else:
                lines.append(f"  {point} = {value}")
        self.detail.setPlainText("\n".join(lines))
