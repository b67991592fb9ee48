"""Training mode: the "Training" menu, the inject-fault dialog, the dock of active faults and the
"TRAINING: N simulated faults active" text in the status bar and title.

Only built when the runtime runs the in-process simulator (`runtime.training`), never against a real
plant. Injecting and clearing are operator actions of kind `simulate_fault` through the session
(authorised, audited with the spec, then a Command to `site.sim`, app/sim/training.py). The faults'
alarms and events are the normal ones: that is the training.
"""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Callable

from PySide6 import QtCore, QtWidgets

from app.core.commands import Command
from app.core.errors import UserError
from app.core.site import Site
from app.qt.dialogs import ok_cancel
from app.qt.style import set_state
from app.sim.training import KINDS, TARGET, TrainingFault, TrainingFaults

if TYPE_CHECKING:
    from app.qt.main_window import MainWindow

KIND = "simulate_fault"
GROUPS = (("cell", "Cell faults"), ("rack", "Rack faults"), ("pcs", "PCS faults"), ("site", "Site faults"),
          ("link", "Link faults"))
ONLY_SIMULATED = "Training mode: faults in the in-process plant simulator only, never in a real plant"


class InjectFaultDialog(QtWidgets.QDialog):
    """Kind (grouped by target), target, parameter and reason -> a fault spec, checked by
    `training.parse` (errors inline) and handed to `submit(spec, reason)`; closes when that returns True."""

    def __init__(self, parent: QtWidgets.QWidget | None, site: Site, training: TrainingFaults,
                 submit: Callable[[str, str], bool]) -> None:
        super().__init__(parent)
        self.setWindowTitle("Training: inject fault")
        self.site, self.training, self.submit = site, training, submit
        layout = QtWidgets.QHBoxLayout(self)
        self.kinds = QtWidgets.QTreeWidget()
        self.kinds.setHeaderHidden(True)
        self.kinds.setMinimumWidth(200)
        for target, title in GROUPS:
            group = QtWidgets.QTreeWidgetItem(self.kinds, [title])
            group.setFlags(QtCore.Qt.ItemFlag.ItemIsEnabled)
            for name in (k for k, fk in KINDS.items() if fk.target == target):
                QtWidgets.QTreeWidgetItem(group, [name])
        self.kinds.expandAll()
        rows = len(GROUPS) + len(KINDS)
        self.kinds.setMinimumHeight(rows * self.kinds.sizeHintForRow(0) + 2 * self.kinds.frameWidth() + 4)
        layout.addWidget(self.kinds)
        right = QtWidgets.QWidget()
        right.setMinimumWidth(440)
        self.form = QtWidgets.QFormLayout(right)
        layout.addWidget(right, 1)
        note = QtWidgets.QLabel(ONLY_SIMULATED + ".")
        note.setWordWrap(True)
        self.form.addRow(note)
        self.help = QtWidgets.QLabel()
        self.help.setWordWrap(True)
        self.form.addRow("What it does", self.help)
        self.rack = QtWidgets.QComboBox()
        self.rack.addItems([r.path for r in site.racks])
        self.form.addRow("Rack", self.rack)
        self.cell = QtWidgets.QSpinBox()
        self.form.addRow("Cell", self.cell)
        self.pcs = QtWidgets.QComboBox()
        self.pcs.addItems([p.id for p in site.pcs])
        self.form.addRow("PCS", self.pcs)
        self.link = QtWidgets.QComboBox()
        self.link.addItems(training.links)
        self.form.addRow("Link", self.link)
        self.param = QtWidgets.QLineEdit()
        self.param_label = QtWidgets.QLabel()
        self.form.addRow(self.param_label, self.param)
        self.reason = QtWidgets.QLineEdit()
        self.reason.setPlaceholderText("exercise, e.g. 'drill 3: cell overvoltage'")
        self.form.addRow("Reason", self.reason)
        self.spec_label = QtWidgets.QLabel()
        self.spec_label.setObjectName("value")
        self.spec_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.form.addRow("Spec", self.spec_label)
        self.error = QtWidgets.QLabel()
        self.error.setWordWrap(True)
        self.form.addRow(self.error)
        self.buttons = ok_cancel(self, self._ok)
        self.inject_button = self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Ok)
        self.inject_button.setText("Inject")
        self.form.addRow(self.buttons)
        self.kinds.currentItemChanged.connect(self._kind_changed)
        self.rack.currentIndexChanged.connect(self._rack_changed)
        for signal in (self.cell.valueChanged, self.pcs.currentIndexChanged, self.link.currentIndexChanged,
                       self.param.textChanged):
            signal.connect(self._show_spec)
        self._rack_changed()
        self.select("cell_drift")

    def select(self, kind: str) -> None:
        """Choose `kind` in the list."""
        item = self.kinds.findItems(kind, QtCore.Qt.MatchFlag.MatchExactly | QtCore.Qt.MatchFlag.MatchRecursive)[0]
        self.kinds.setCurrentItem(item)

    @property
    def kind(self) -> str:
        item = self.kinds.currentItem()
        return item.text(0) if item is not None and item.parent() is not None else ""

    def spec(self) -> str:
        """The fault spec the fields describe (not yet checked)."""
        fk = KINDS.get(self.kind)
        if fk is None:
            return ""
        keys = {"cell": [("rack", self.rack.currentText()), ("cell", self.cell.value())],
                "rack": [("rack", self.rack.currentText())], "pcs": [("pcs", self.pcs.currentText())],
                "site": [], "link": [("link", self.link.currentText())]}[fk.target]
        if fk.param and self.param.text().strip():
            keys.append((fk.param, self.param.text().strip()))
        body = ",".join(f"{k}={v}" for k, v in keys)
        return f"{self.kind}:{body}" if body else self.kind

    def _kind_changed(self) -> None:
        fk = KINDS.get(self.kind)
        target = fk.target if fk else ""
        for widget, shown in ((self.rack, target in ("cell", "rack")), (self.cell, target == "cell"),
                              (self.pcs, target == "pcs"), (self.link, target == "link"),
                              (self.param, bool(fk and fk.param))):
            self.form.setRowVisible(widget, shown)
        self.help.setText(fk.help if fk else "Choose a kind of fault on the left.")
        if fk and fk.param:
            self.param_label.setText(f"{fk.param} ({fk.unit})" if fk.unit else fk.param)
            computed = fk.default is not None and math.isnan(fk.default)
            self.param.setText("" if fk.default is None or computed else f"{fk.default:g}")
            self.param.setPlaceholderText("computed if empty (see above)" if computed else "required")
        self._show_spec()

    def _rack_changed(self) -> None:
        rack = next((r for r in self.site.racks if r.path == self.rack.currentText()), None)
        self.cell.setRange(1, rack.cell_count if rack else 1)
        self._show_spec()

    def _show_spec(self) -> None:
        self.spec_label.setText(self.spec())
        self.error.setText("")
        set_state(self.error, "")

    def _ok(self) -> None:
        spec = self.spec()
        try:
            if not spec:
                raise UserError("choose a kind of fault on the left")
            self.training.parse(spec)
        except UserError as exc:
            self.error.setText(f"✖ Not injected: {exc}")
            set_state(self.error, "warn")
            return
        if self.submit(spec, self.reason.text().strip()):
            self.accept()


class ActiveFaultsDock(QtWidgets.QDockWidget):
    """The training faults in force, each with its Clear button; Inject… and Clear all beside them."""

    COLUMNS = ("#", "Fault", "Target", "Since", "By", "")

    def __init__(self, inject: Callable[[], None], clear: Callable[[int], bool], clear_all: Callable[[], bool]) -> None:
        super().__init__("Training faults")
        self.clear = clear
        body = QtWidgets.QWidget()
        layout = QtWidgets.QHBoxLayout(body)
        self.table = QtWidgets.QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table, 1)
        side = QtWidgets.QVBoxLayout()
        caption = QtWidgets.QLabel(ONLY_SIMULATED + ".")
        caption.setWordWrap(True)
        caption.setFixedWidth(260)
        side.addWidget(caption)
        for text, slot in (("Inject fault…", inject), ("Clear all faults", clear_all)):
            button = QtWidgets.QPushButton(text)
            button.clicked.connect(lambda _=False, slot=slot: slot())
            side.addWidget(button)
        side.addStretch(1)
        layout.addLayout(side)
        self.setWidget(body)

    def show_faults(self, faults: tuple[TrainingFault, ...]) -> None:
        self.table.setRowCount(len(faults))
        for i, f in enumerate(faults):
            since = time.strftime("%H:%M:%S", time.localtime(f.since))
            for j, text in enumerate((str(f.id), f.spec, f.target, since, f.user)):
                self.table.setItem(i, j, QtWidgets.QTableWidgetItem(text))
            button = QtWidgets.QPushButton("Clear")
            button.setToolTip(f"End training fault #{f.id} {f.spec}")
            button.clicked.connect(lambda _=False, fid=f.id: self.clear(fid))
            self.table.setCellWidget(i, len(self.COLUMNS) - 1, button)
        self.table.resizeColumnsToContents()


class TrainingMode(QtCore.QObject):
    """Adds the Training menu, the dock and the TRAINING text to `window` (whose runtime has `training`)."""

    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.window, self.session = window, window.session
        self.runtime = window.runtime
        self.training: TrainingFaults = window.runtime.training
        self.title = window.windowTitle()
        self.shown: tuple[TrainingFault, ...] = ()
        self.dock = ActiveFaultsDock(self.open_inject_dialog, self.clear, self.clear_all)
        window.addDockWidget(QtCore.Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        self.dock.hide()
        self.menu = window.menuBar().addMenu("&Training")
        self.menu.menuAction().setToolTip(ONLY_SIMULATED)
        self.menu.setToolTipsVisible(True)
        self.menu.addSection("Simulated plant only")
        self.inject_action = self.menu.addAction("Inject fault…", self.open_inject_dialog)
        self.inject_action.setToolTip("Inject a cell, rack, PCS, site or link fault into the simulated plant "
                                      "(engineer; audited)")
        self.clear_all_action = self.menu.addAction("Clear all faults", self.clear_all)
        self.clear_all_action.setToolTip("End every training fault (engineer; audited)")
        self.menu.addSeparator()
        faults_action = self.dock.toggleViewAction()
        faults_action.setText("Active faults")
        self.menu.addAction(faults_action)
        self.status = QtWidgets.QLabel()
        window.statusBar().addPermanentWidget(self.status)
        self.status.hide()
        window.poller.changed.connect(self.refresh)

    def open_inject_dialog(self) -> None:
        dialog = InjectFaultDialog(self.window, self.runtime.site, self.training, self.inject)
        dialog.exec()
        dialog.deleteLater()

    def inject(self, spec: str, reason: str) -> bool:
        """Operator action: inject `spec` (True if the simulator accepted it)."""
        return self._act("inject_fault", spec, reason or "training")

    def clear(self, fault_id: int) -> bool:
        return self._act("clear_fault", fault_id, "training: fault cleared")

    def clear_all(self) -> bool:
        return self._act("clear_all_faults", None, "training: all faults cleared")

    def _act(self, action: str, value: object, reason: str) -> bool:
        done = self.session.act(KIND, Command(TARGET, action, value, reason=reason))
        self.refresh()
        if done and action == "inject_fault":
            self.dock.show()
        return done

    def refresh(self, _dirty: dict | None = None) -> None:
        """Show the faults in force (their list is replaced by the training thread; no lock)."""
        faults = self.training.active
        if faults == self.shown:
            return
        self.shown = faults
        self.dock.show_faults(faults)
        n = len(faults)
        text = f"TRAINING: {n} simulated fault{'' if n == 1 else 's'} active" if n else ""
        self.status.setText(text)
        self.status.setVisible(bool(n))
        set_state(self.status, "warn" if n else "")
        self.window.setWindowTitle(f"{self.title} — {text}" if n else self.title)
