"""Audit viewer: the hash-chained audit trail as a table with filters (text, user, action, time range),
chain verification (intact, or the first broken record highlighted) and export to CSV.

Any logged-in role may view and export (an export is itself audited); nobody sees the trail without a
session. Reading, verifying and exporting run off the GUI thread (app/qt/background.py); new records
are fetched incrementally every few seconds while the screen is shown."""
from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6 import QtCore, QtGui, QtWidgets

from app.core.errors import UserError
from app.qt.background import Background
from app.qt.session import OperatorSession
from app.qt.style import set_state
from app.qt.table_model import RowsModel
from app.security.audit import AuditRecord, VerifyResult
from app.security.roles import CommandKind

if TYPE_CHECKING:
    from app.runtime import Runtime

COLUMNS = ("Seq", "Time (local)", "User", "Source", "Action", "Target", "Old value", "New value", "Result", "Detail")
ALL = "(all)"
REFRESH_MS = 2000


class AuditModel(RowsModel):
    columns = COLUMNS

    def __init__(self) -> None:
        super().__init__()
        self.broken_seq: int | None = None

    def append(self, records: list[AuditRecord]) -> None:
        if records:
            self.beginInsertRows(QtCore.QModelIndex(), len(self.rows), len(self.rows) + len(records) - 1)
            self.rows.extend(records)
            self.endInsertRows()

    def clear(self) -> None:
        self.beginResetModel()
        self.rows, self.broken_seq = [], None
        self.endResetModel()

    def mark_broken(self, seq: int | None) -> None:
        self.broken_seq = seq
        if self.rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.rows) - 1, 0))

    def data(self, index, role=QtCore.Qt.ItemDataRole.DisplayRole):
        r = self.rows[index.row()]
        col = index.column()
        broken = r.seq == self.broken_seq
        if role in (QtCore.Qt.ItemDataRole.DisplayRole, QtCore.Qt.ItemDataRole.ToolTipRole):
            return (f"✖ {r.seq} BROKEN" if broken else str(r.seq), _local(r.time), r.user, r.source, r.action,
                    r.target, _value(r.old_value), _value(r.new_value), r.result, r.detail)[col]
        if role == QtCore.Qt.ItemDataRole.BackgroundRole and col == 0 and broken:
            return QtGui.QBrush(QtGui.QColor("#dc1e1e"))
        if role == QtCore.Qt.ItemDataRole.ForegroundRole and col == 0 and broken:
            return QtGui.QBrush(QtGui.QColor("#ffffff"))
        return None


class AuditFilter(QtCore.QSortFilterProxyModel):
    """Rows whose text contains `text` (any column, case-insensitive), by `user`, with `action`, and
    (when `span` is set) with a time in [start, end] (wall seconds)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.text, self.user, self.action = "", ALL, ALL
        self.span: tuple[float, float] | None = None

    def set(self, text: str, user: str, action: str, span: tuple[float, float] | None) -> None:
        self.beginFilterChange()
        self.text, self.user, self.action, self.span = text.lower(), user, action, span
        self.endFilterChange(QtCore.QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, row: int, parent) -> bool:
        r: AuditRecord = self.sourceModel().rows[row]
        if self.user != ALL and r.user != self.user or self.action != ALL and r.action != self.action:
            return False
        if self.span is not None and not self.span[0] <= r.time <= self.span[1]:
            return False
        if self.text:
            blob = " ".join((str(r.seq), _local(r.time), r.user, r.source, r.action, r.target, r.old_value,
                             r.new_value, r.result, r.detail)).lower()
            return self.text in blob
        return True


class AuditScreen(QtWidgets.QWidget):
    def __init__(self, runtime: "Runtime", session: OperatorSession) -> None:
        super().__init__()
        self.security, self.session = runtime.security, session
        self.background = Background(self)
        self._last_seq = 0
        self._loading = False
        lay = QtWidgets.QVBoxLayout(self)
        bar = QtWidgets.QHBoxLayout()
        lay.addLayout(bar)
        self.text = QtWidgets.QLineEdit()
        self.text.setPlaceholderText("filter text (any column) — Ctrl+F")
        bar.addWidget(self.text, 2)
        self.user = _combo()
        bar.addWidget(QtWidgets.QLabel("User"))
        bar.addWidget(self.user, 1)
        self.action = _combo()
        bar.addWidget(QtWidgets.QLabel("Action"))
        bar.addWidget(self.action, 1)
        self.use_span = QtWidgets.QCheckBox("From")
        bar.addWidget(self.use_span)
        now = QtCore.QDateTime.currentDateTime()
        self.start = _datetime(now.addSecs(-24 * 3600))
        self.end = _datetime(now.addSecs(3600))
        bar.addWidget(self.start)
        bar.addWidget(QtWidgets.QLabel("to"))
        bar.addWidget(self.end)
        self.model = AuditModel()
        self.proxy = AuditFilter(self)
        self.proxy.setSourceModel(self.model)
        for signal in (self.text.textChanged, self.user.currentTextChanged, self.action.currentTextChanged,
                       self.use_span.toggled, self.start.dateTimeChanged, self.end.dateTimeChanged):
            signal.connect(self._apply_filter)
        self.table = QtWidgets.QTableView()
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        for col, width in enumerate((50, 175, 80, 90, 120, 200, 80, 220, 70)):
            self.table.setColumnWidth(col, width)
        lay.addWidget(self.table, 1)
        bottom = QtWidgets.QHBoxLayout()
        lay.addLayout(bottom)
        self.verify_button = QtWidgets.QPushButton("Verify chain (Ctrl+Shift+V)")
        self.verify_button.clicked.connect(self.verify)
        bottom.addWidget(self.verify_button)
        self.export_button = QtWidgets.QPushButton("Export whole log to CSV… (Ctrl+Shift+S)")
        self.export_button.clicked.connect(self.export)
        bottom.addWidget(self.export_button)
        self.chain = QtWidgets.QLabel("Chain: not verified yet")
        self.chain.setWordWrap(True)
        bottom.addWidget(self.chain, 1)
        info = QtWidgets.QHBoxLayout()
        lay.addLayout(info)
        self.count = QtWidgets.QLabel("")
        info.addWidget(self.count)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        info.addWidget(self.status, 1)
        for key, slot in (("Ctrl+F", self.text.setFocus), ("Ctrl+Shift+V", self.verify),
                          ("Ctrl+Shift+S", self.export)):
            QtGui.QShortcut(QtGui.QKeySequence(key), self, activated=slot,
                            context=QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self.session.changed.connect(lambda _text: self.refresh())

    # --- access --------------------------------------------------------------------------------
    def _allowed(self) -> bool:
        """Viewing needs a session that may view (any role, not locked); says why not otherwise."""
        decision = self.security.authorise(self.session.session, CommandKind.VIEW)
        if not decision.allowed:
            self.model.clear()
            self._last_seq = 0
            self.count.setText(f"The audit trail is shown to logged-in users: {decision.reason}.")
        return decision.allowed

    def refresh(self) -> None:
        """Fetch records appended since the last fetch (off the GUI thread)."""
        if not self.isVisible() or self._loading or not self._allowed():
            return
        self._loading = True
        after = self._last_seq
        self.background.run(lambda: self.security.audit.records(after), self._loaded)

    def _loaded(self, records: list[AuditRecord] | None, error: Exception | None) -> None:
        self._loading = False
        if error is not None:
            raise error
        if not self.security.authorise(self.session.session, CommandKind.VIEW).allowed:
            return                           # logged out while loading: show nothing
        records = [r for r in records if r.seq > self._last_seq]
        if records:
            self._last_seq = records[-1].seq
            self.model.append(records)
            _fill(self.user, sorted({r.user for r in self.model.rows}))
            _fill(self.action, sorted({r.action for r in self.model.rows}))
        self.count.setText(f"{self.proxy.rowCount()} of {len(self.model.rows)} records shown")

    def _apply_filter(self) -> None:
        span = None
        if self.use_span.isChecked():
            span = (self.start.dateTime().toSecsSinceEpoch(), self.end.dateTime().toSecsSinceEpoch() + 0.999)
        self.proxy.set(self.text.text(), self.user.currentText(), self.action.currentText(), span)
        self.count.setText(f"{self.proxy.rowCount()} of {len(self.model.rows)} records shown")

    # --- verify and export ------------------------------------------------------------------------
    def verify(self) -> None:
        if not self._allowed():
            return
        self.chain.setText("Chain: verifying…")
        set_state(self.chain, "")
        self.background.run(self.security.audit.verify, self._verified)

    def _verified(self, result: VerifyResult | None, error: Exception | None) -> None:
        if error is not None:
            raise error
        if result.ok:
            self.chain.setText(f"✔ Chain OK — {result.message}")
            set_state(self.chain, "")
            self.model.mark_broken(None)
            return
        self.chain.setText(f"✖ CHAIN BROKEN at record {result.first_bad_seq} — {result.message}")
        set_state(self.chain, "trip")
        self.model.mark_broken(result.first_bad_seq)
        rows = [i for i, r in enumerate(self.model.rows) if r.seq == result.first_bad_seq]
        if rows:
            index = self.proxy.mapFromSource(self.model.index(rows[0], 0))
            if index.isValid():
                self.table.selectRow(index.row())
                self.table.scrollTo(index)

    def export(self) -> None:
        """Ask for a file name, then write the whole log (with hashes) to it: written beside and renamed,
        so the file is complete or absent. The export is audited."""
        if not self._allowed():
            return
        name = f"audit-{time.strftime('%Y%m%d-%H%M%S')}.csv"
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export the audit log", str(Path.home() / name),
                                                        "CSV files (*.csv)")
        if not path:
            return
        out = Path(path)
        session, audit = self.session.session, self.security.audit
        self.status.setText(f"Exporting to {out}…")
        self.background.run(lambda: self.security.perform(session, CommandKind.VIEW, "audit.export", str(out),
                                                          lambda: audit.export_csv(out), detail="CSV export"),
                            lambda count, error: self._exported(out, count, error))

    def _exported(self, out: Path, count: int | None, error: Exception | None) -> None:
        if isinstance(error, (UserError, OSError)):
            self.status.setText(f"✖ Export failed: {error}")
            set_state(self.status, "alarm")
            return
        if error is not None:
            raise error
        self.status.setText(f"✔ Exported {count} records to {out}")
        set_state(self.status, "")
        self.refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()


def _combo() -> QtWidgets.QComboBox:
    combo = QtWidgets.QComboBox()
    combo.addItem(ALL)
    combo.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
    return combo


def _fill(combo: QtWidgets.QComboBox, items: list[str]) -> None:
    current = combo.currentText()
    wanted = [ALL, *items]
    if [combo.itemText(i) for i in range(combo.count())] != wanted:
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(wanted)
        combo.setCurrentIndex(max(0, combo.findText(current)))
        combo.blockSignals(False)


def _datetime(value: QtCore.QDateTime) -> QtWidgets.QDateTimeEdit:
    edit = QtWidgets.QDateTimeEdit(value)
    edit.setDisplayFormat("yyyy-MM-dd HH:mm:ss")
    edit.setCalendarPopup(True)
    return edit


def _local(t: float) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _value(text: str) -> str:
    return "" if text == "null" else text
