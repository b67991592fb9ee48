"""Override panel: manual commands to the plant, every one through select-before-operate.

Rack contactors, PCS active/reactive setpoints and run/stop, the grid breaker, load feeder and PCS
operating mode (with a reason; contactor and mode commands), the EMS operating mode, cell balancing,
forcing a point to a manual value and releasing it, and taking an alarm out of service. Each button
builds one Command and hands it to the SboPanel on the right, which selects (authorisation, interlocks,
audit), counts down the confirmation, executes and shows the result. Targets nobody owns yet (the EMS
on "site.ems", balancing, "site.overrides") are refused by the router and shown as failed with the
router's reason.

Override commands (owner to come): target "site.overrides", action "force" with value
{"point": name, "value": number} or "release" with value {"point": name}; the reason travels in the
Command."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from PySide6 import QtCore, QtWidgets

from app.core.commands import Command
from app.ems.settings import MODES          # the mode names the EMS thread's set_mode accepts
from app.qt.sbo_panel import SboPanel
from app.qt.session import OperatorSession
from app.security.interlocks import site_interlocks
from app.security.roles import CommandKind

if TYPE_CHECKING:
    from app.runtime import Runtime



K = CommandKind


class ControlScreen(QtWidgets.QWidget):
    """`runtime` gives the site, bus, router and security; `session` the logged-in operator."""

    def __init__(self, runtime: "Runtime", session: OperatorSession, modes: Sequence[str] = MODES) -> None:
        super().__init__()
        self.runtime, self.session = runtime, session
        self.site = runtime.site
        self.sbo = runtime.security.sbo(site_interlocks(runtime.site, runtime.protection.sources))
        self.panel = SboPanel(runtime, session, self.sbo)
        outer = QtWidgets.QHBoxLayout(self)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        body = QtWidgets.QWidget()
        grid = QtWidgets.QGridLayout(body)
        scroll.setWidget(body)
        outer.addWidget(scroll, 1)
        self.panel.setFixedWidth(340)
        outer.addWidget(self.panel)
        rows = ((self._contactor_group(), self._pcs_group()), (self._grid_group(),),
                (self._mode_group(modes), self._balancing_group()), (self._force_group(), self._inhibit_group()))
        for r, groups in enumerate(rows):
            for c, group in enumerate(groups):
                grid.addWidget(group, r, c, 1, 2 // len(groups))
        grid.setRowStretch(len(rows), 1)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(500)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self.refresh()

    # --- groups ----------------------------------------------------------------------------
    def _contactor_group(self) -> QtWidgets.QGroupBox:
        box, form = _group("Rack contactor")
        self.rack = QtWidgets.QComboBox()
        self.rack.addItems([r.path for r in self.site.racks])
        self.rack.currentIndexChanged.connect(self.refresh)
        form.addRow("Rack", self.rack)
        self.rack_state = _readout()
        form.addRow("Now", self.rack_state)
        form.addRow(_buttons(("Close…", lambda: self.contactor(True)), ("Open…", lambda: self.contactor(False))))
        return box

    def _pcs_group(self) -> QtWidgets.QGroupBox:
        box, form = _group("Power conversion (PCS)")
        self.pcs = QtWidgets.QComboBox()
        self.pcs.addItems([p.id for p in self.site.pcs])
        self.pcs.currentIndexChanged.connect(self._pcs_changed)
        form.addRow("PCS", self.pcs)
        self.pcs_state = _readout()
        form.addRow("Now", self.pcs_state)
        self.kw = _spin(" kW")
        self.kw.setToolTip("+ = charging the battery, − = discharging")
        form.addRow("Active (+ charge)", _with(self.kw, "Set kW…", self.set_active_power))
        self.kvar = _spin(" kvar")
        form.addRow("Reactive", _with(self.kvar, "Set kvar…", self.set_reactive_power))
        form.addRow(_buttons(("Run…", lambda: self.run_pcs(True)), ("Stop…", lambda: self.run_pcs(False))))
        self._pcs_changed()
        return box

    def _grid_group(self) -> QtWidgets.QGroupBox:
        box, form = _group("Grid connection and islanding")
        self.grid_state = _readout()
        self.grid_state.setWordWrap(True)
        form.addRow("Now", self.grid_state)
        form.addRow("Grid breaker", _buttons(("Close…", lambda: self.breaker(True)),
                                             ("Open…", lambda: self.breaker(False))))
        form.addRow("Load feeder", _buttons(("On…", lambda: self.feeder(True)),
                                            ("Off…", lambda: self.feeder(False))))
        form.addRow("Mode of the selected PCS", _buttons(("Grid-forming…", lambda: self.pcs_mode(True)),
                                                         ("Grid-following…", lambda: self.pcs_mode(False))))
        self.grid_reason = QtWidgets.QLineEdit()
        self.grid_reason.setPlaceholderText("why (required)")
        form.addRow("Reason", self.grid_reason)
        return box

    def _mode_group(self, modes: Sequence[str]) -> QtWidgets.QGroupBox:
        box, form = _group("Operating mode (EMS)")
        self.mode_state = _readout()
        form.addRow("Now", self.mode_state)
        self.mode = QtWidgets.QComboBox()
        self.mode.addItems(list(modes))
        form.addRow("New mode", _with(self.mode, "Set mode…", self.set_mode))
        return box

    def _balancing_group(self) -> QtWidgets.QGroupBox:
        box, form = _group("Cell balancing")
        self.bess = QtWidgets.QComboBox()
        self.bess.addItems([b.id for b in self.site.bess])
        form.addRow("BESS", self.bess)
        form.addRow(_buttons(("Balancing on…", lambda: self.balancing(True)),
                             ("Balancing off…", lambda: self.balancing(False))))
        return box

    def _force_group(self) -> QtWidgets.QGroupBox:
        box, form = _group("Force a point (manual value)")
        self.force_point = QtWidgets.QComboBox()
        self.force_point.setEditable(True)
        self.force_point.setInsertPolicy(QtWidgets.QComboBox.InsertPolicy.NoInsert)
        self.force_point.lineEdit().setPlaceholderText("point name, e.g. site.bess1.rack01.soc_pct")
        form.addRow("Point", self.force_point)
        self.force_value = QtWidgets.QLineEdit()
        self.force_value.setPlaceholderText("number")
        form.addRow("Value", self.force_value)
        self.force_reason = QtWidgets.QLineEdit()
        self.force_reason.setPlaceholderText("why (required for force)")
        form.addRow("Reason", self.force_reason)
        form.addRow(_buttons(("Force…", self.force), ("Release…", self.release)))
        return box

    def _inhibit_group(self) -> QtWidgets.QGroupBox:
        box, form = _group("Alarm out of service")
        self.alarm_tag = QtWidgets.QComboBox()
        self.alarm_tag.setEditable(True)
        self.alarm_tag.setInsertPolicy(QtWidgets.QComboBox.InsertPolicy.NoInsert)
        self.alarm_tag.lineEdit().setPlaceholderText("alarm tag")
        form.addRow("Alarm", self.alarm_tag)
        self.inhibit_reason = QtWidgets.QLineEdit()
        self.inhibit_reason.setPlaceholderText("why (required, ISA-18.2)")
        form.addRow("Reason", self.inhibit_reason)
        form.addRow(_buttons(("Out of service…", self.inhibit_alarm), ("Return to service…", self.restore_alarm)))
        return box

    # --- commands ----------------------------------------------------------------------------
    def contactor(self, close: bool) -> bool:
        rack = self.rack.currentText()
        pcs = next(b.pcs for b in self.site.bess if any(r.path == rack for r in b.racks))
        what = (f"CLOSE the contactor of {rack}: connects the rack to the DC bus of {pcs}" if close else
                f"OPEN the contactor of {rack}: disconnects the rack from the DC bus of {pcs}")
        return self.panel.request(K.CONTACTOR, Command(f"{rack}.contactor_command", "write", int(close)), what)

    def breaker(self, close: bool) -> bool:
        what = ("CLOSE the grid breaker: connects the site to the public grid (the breaker's sync check holds "
                "the close until the site is dead or in sync)" if close else
                "OPEN the grid breaker: disconnects the site from the public grid; without a grid-forming "
                "PCS the site blacks out")
        return self._switching(K.CONTACTOR, "site.meter.breaker_command", int(close), what)

    def feeder(self, on: bool) -> bool:
        what = ("Switch the site load feeder ON: loads and PV are supplied" if on else
                "Switch the site load feeder OFF: loads and PV are disconnected")
        return self._switching(K.CONTACTOR, "site.meter.load_feeder_enable", int(on), what)

    def pcs_mode(self, forming: bool) -> bool:
        pcs = self.pcs.currentText()
        what = (f"Set {pcs} GRID-FORMING: it makes the site's voltage and frequency (only behind an open breaker)"
                if forming else f"Set {pcs} grid-following: it follows its setpoint and needs the grid")
        return self._switching(K.MODE, f"site.{pcs}.operating_mode", int(forming), what)

    def _switching(self, kind: CommandKind, target: str, value: int, what: str) -> bool:
        reason = self.grid_reason.text().strip()
        if not reason:
            return self._incomplete("Grid connection and islanding: enter the reason")
        return self.panel.request(kind, Command(target, "write", value, reason=reason), what)

    def set_active_power(self) -> bool:
        pcs, kw = self.pcs.currentText(), round(self.kw.value(), 1)
        flow = "charging" if kw > 0 else "discharging" if kw < 0 else "no power flow"
        return self.panel.request(K.SETPOINT, Command(f"site.{pcs}.active_power_setpoint_kw", "write", kw),
                                  f"Set the active power of {pcs} to {kw:+.1f} kW ({flow})")

    def set_reactive_power(self) -> bool:
        pcs, kvar = self.pcs.currentText(), round(self.kvar.value(), 1)
        return self.panel.request(K.SETPOINT, Command(f"site.{pcs}.reactive_power_setpoint_kvar", "write", kvar),
                                  f"Set the reactive power of {pcs} to {kvar:+.1f} kvar")

    def run_pcs(self, run: bool) -> bool:
        pcs = self.pcs.currentText()
        what = (f"RUN {pcs}: it follows its power setpoints" if run else
                f"STOP {pcs}: its power goes to 0 kW whatever the setpoint")
        return self.panel.request(K.SETPOINT, Command(f"site.{pcs}.run", "write", int(run)), what)

    def set_mode(self) -> bool:
        name = self.mode.currentText()
        return self.panel.request(K.MODE, Command("site.ems", "set_mode", name),
                                  f"Switch the EMS operating mode to '{name}'")

    def balancing(self, on: bool) -> bool:
        bess = self.bess.currentText()
        return self.panel.request(K.BALANCING, Command(f"site.{bess}.balancing", "write", int(on)),
                                  f"Turn cell balancing {'ON' if on else 'OFF'} for {bess}")

    def force(self) -> bool:
        point, reason = self.force_point.currentText().strip(), self.force_reason.text().strip()
        try:
            value = float(self.force_value.text())
        except ValueError:
            return self._incomplete("Force: enter the manual value as a number")
        if not point or not reason:
            return self._incomplete("Force: enter the point and the reason")
        return self.panel.request(K.FORCE_POINT, Command("site.overrides", "force", {"point": point, "value": value},
                                                         reason=reason),
                                  f"FORCE {point} to {value:g}: the manual value replaces the measurement "
                                  "(quality OVERRIDDEN) until released")

    def release(self) -> bool:
        point = self.force_point.currentText().strip()
        if not point:
            return self._incomplete("Release: enter the point")
        return self.panel.request(K.FORCE_POINT, Command("site.overrides", "release", {"point": point},
                                                         reason=self.force_reason.text().strip()),
                                  f"RELEASE {point}: the measured value returns")

    def inhibit_alarm(self) -> bool:
        tag, reason = self.alarm_tag.currentText().strip(), self.inhibit_reason.text().strip()
        if not tag or not reason:
            return self._incomplete("Out of service: enter the alarm and the reason")
        return self.panel.request(K.ALARM_INHIBIT, Command("site.alarms", "out_of_service", tag, reason=reason),
                                  f"Take alarm {tag} OUT OF SERVICE: it will not annunciate until returned")

    def restore_alarm(self) -> bool:
        tag = self.alarm_tag.currentText().strip()
        if not tag:
            return self._incomplete("Return to service: enter the alarm")
        return self.panel.request(K.ALARM_INHIBIT, Command("site.alarms", "return_to_service", tag,
                                                           reason=self.inhibit_reason.text().strip()),
                                  f"Return alarm {tag} to service")

    def _incomplete(self, text: str) -> bool:
        self.panel.notice(text)
        return False

    # --- live readouts ---------------------------------------------------------------------------
    def _pcs_changed(self) -> None:
        rated = next(p.rated_power_kw for p in self.site.pcs if p.id == self.pcs.currentText())
        for spin in (self.kw, self.kvar):
            spin.setRange(-rated, rated)
        self.refresh()

    def refresh(self) -> None:
        """Current state next to the controls (cheap: a few bus reads) and the pick lists."""
        if not self.isVisible():
            return
        bus = self.runtime.bus
        rack, pcs = self.rack.currentText(), self.pcs.currentText()
        closed, volts = bus.get(f"{rack}.contactor_closed"), bus.get(f"{rack}.pack_voltage_v")
        bess_pcs = next(b.pcs for b in self.site.bess if any(r.path == rack for r in b.racks))
        dc = bus.get(f"site.{bess_pcs}.dc_voltage_v")
        self.rack_state.setText(f"{_text(closed, lambda v: 'CLOSED' if v else 'OPEN')} · pack "
                                f"{_text(volts, '{:.1f} V'.format)} · DC bus {_text(dc, '{:.1f} V'.format)}")
        kw, kvar, state = (bus.get(f"site.{pcs}.{p}") for p in ("active_power_kw", "reactive_power_kvar", "state"))
        self.pcs_state.setText(f"{_text(kw, '{:+.1f} kW'.format)} · {_text(kvar, '{:+.1f} kvar'.format)} · "
                               f"{_text(state, lambda v: {0: 'STOPPED', 1: 'RUNNING', 2: 'FAULT', 3: 'ISLAND'}.get(v, str(v)))}")
        self.mode_state.setText(_text(bus.get("site.ems.mode"), str))
        breaker, feeder, island, mode = (bus.get(p) for p in ("site.meter.breaker_closed",
                                                               "site.meter.load_feeder_enable",
                                                               "site.ems.island_state", f"site.{pcs}.operating_mode"))
        self.grid_state.setText(f"breaker {_text(breaker, lambda v: 'CLOSED' if v else 'OPEN')} · feeder "
                                f"{_text(feeder, lambda v: 'ON' if v else 'OFF')} · island {_text(island, str)} · "
                                f"{pcs} {_text(mode, lambda v: 'GRID-FORMING' if v else 'grid-following')}")
        summary = self.runtime.protection.alarm_summary
        _fill(self.alarm_tag, sorted({a.tag for a in (*summary.active, *summary.hidden)}))
        _fill(self.force_point, sorted(p for p, s in bus.snapshot().items() if not isinstance(s.value, str)
                                       and not hasattr(s.value, "__len__")))

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()


def _group(title: str) -> tuple[QtWidgets.QGroupBox, QtWidgets.QFormLayout]:
    box = QtWidgets.QGroupBox(title)
    return box, QtWidgets.QFormLayout(box)


def _readout() -> QtWidgets.QLabel:
    label = QtWidgets.QLabel("--")
    label.setObjectName("value")
    return label


def _spin(suffix: str) -> QtWidgets.QDoubleSpinBox:
    spin = QtWidgets.QDoubleSpinBox()
    spin.setDecimals(1)
    spin.setSuffix(suffix)
    spin.setKeyboardTracking(False)
    return spin


def _with(field: QtWidgets.QWidget, text: str, slot) -> QtWidgets.QWidget:
    row = QtWidgets.QWidget()
    lay = QtWidgets.QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(field, 1)
    button = QtWidgets.QPushButton(text)
    button.clicked.connect(slot)
    lay.addWidget(button)
    return row


def _buttons(*specs) -> QtWidgets.QWidget:
    row = QtWidgets.QWidget()
    lay = QtWidgets.QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    for text, slot in specs:
        button = QtWidgets.QPushButton(text)
        button.clicked.connect(slot)
        lay.addWidget(button)
    return row


def _text(sample, fmt) -> str:
    """A value as text, its quality named when not GOOD (colour is not the only cue)."""
    if sample is None:
        return "--"
    text = fmt(sample.value)
    return text if sample.quality.usable else f"{text} ({sample.quality.value})"


def _fill(combo: QtWidgets.QComboBox, items: list[str]) -> None:
    """Replace the pick list of an editable combo without touching what the user typed."""
    if [combo.itemText(i) for i in range(combo.count())] == items:
        return
    text = combo.currentText()
    combo.blockSignals(True)
    combo.clear()
    combo.addItems(items)
    combo.setEditText(text)
    combo.blockSignals(False)
