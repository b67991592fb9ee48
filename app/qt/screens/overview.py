"""L1 site overview: power flow grid ↔ PCS ↔ BESS with live values, link status, protection state.
A BESS's cell voltage and temperature extremes and racks online are its aggregate (app/aggregator.py).
The grid box shows the grid breaker, load feeder and island phase of app/ems/island.py; an open breaker
with the grid there is abnormal unless the islanding sequence is under way."""
from __future__ import annotations

import math
import numbers
from dataclasses import replace

from PySide6 import QtCore, QtWidgets

from app.core.sample import Sample
from app.core.site import Site
from app.qt.style import set_state


def _fmt(sample: Sample | None, fmt: str, unit: str) -> tuple[str, str]:
    """Display text and state ('', 'stale') of a sample; bad quality is spelled out, not just coloured."""
    if sample is None:
        return f"-- {unit}", "stale"
    if isinstance(sample.value, float) and math.isnan(sample.value):
        return f"-- {unit}", "stale"
    text = f"{format(sample.value, fmt)} {unit}".strip()
    if not sample.quality.usable:
        return f"{text} ({sample.quality.value})", "stale"
    if sample.quality.value == "MANUAL":
        return f"{text} (MANUAL)", "warn"
    return text, ""


def _switch(sample: Sample | None, on: str, off: str) -> tuple[str, str]:
    """A two-state point as text and state, its quality spelled out as by _fmt; missing or NaN: '--'."""
    value = None if sample is None else sample.value
    if not isinstance(value, numbers.Real) or value != value:
        return "--", "stale"
    return _fmt(replace(sample, value=on if value else off), "", "")


class _Box(QtWidgets.QFrame):
    """A plant object on the power-flow line: title and labelled value rows."""

    def __init__(self, title: str, rows: list[str], max_width: int = 420, lines: int = 1) -> None:
        super().__init__()
        self.setObjectName("plantBox")
        lay = QtWidgets.QFormLayout(self)
        head = QtWidgets.QLabel(title)
        head.setObjectName("boxTitle")
        lay.addRow(head)
        self.values: dict[str, QtWidgets.QLabel] = {}
        for row in rows:
            label = QtWidgets.QLabel("--")
            label.setObjectName("value")
            label.setWordWrap(True)
            label.setMaximumWidth(max_width)
            label.setMinimumHeight(lines * label.fontMetrics().lineSpacing())
            lay.addRow(row, label)
            self.values[row] = label

    def set(self, row: str, text: str, state: str = "") -> None:
        label = self.values[row]
        label.setText(text)
        set_state(label, state)


class OverviewScreen(QtWidgets.QWidget):
    def __init__(self, site: Site) -> None:
        super().__init__()
        self.site = site
        outer = QtWidgets.QVBoxLayout(self)
        flow = QtWidgets.QHBoxLayout()
        outer.addLayout(flow)
        self.grid = _Box("GRID", ["Import (+) / export (−)", "Frequency", "Available", "Breaker", "Load feeder",
                                  "Island"])
        flow.addWidget(self.grid)
        self.site_box = _Box("LOAD / PV", ["Load", "PV"])
        self.pcs: dict[str, _Box] = {}
        self.bess: dict[str, _Box] = {}
        for p in site.pcs:
            flow.addWidget(self._arrow())
            self.pcs[p.id] = _Box(f"PCS {p.id}  ({p.rated_power_kw:g} kW)",
                                  ["Active power", "Setpoint", "State", "Mode", "Protection"])
            flow.addWidget(self.pcs[p.id])
            for b in (b for b in site.bess if b.pcs == p.id):
                flow.addWidget(self._arrow())
                self.bess[b.id] = _Box(f"BESS {b.id}  ({b.chemistry.upper()}, {len(b.racks)} racks, "
                                       f"{b.cell_count} cells)",
                                       ["SOC", "SOH", "Cell min / max", "Temperature min / max", "Racks online",
                                        "Protection", "Available charge / discharge", "Why limited"])
                flow.addWidget(self.bess[b.id])
        flow.addWidget(self._arrow())
        flow.addWidget(self.site_box)
        flow.addStretch(1)
        self.mode = _Box("DISPATCH", ["Mode", "Why"], max_width=16777215, lines=2)   # the why: full width
        outer.addWidget(self.mode)
        links = QtWidgets.QGroupBox("Links")
        self.links = QtWidgets.QFormLayout(links)
        self.link_labels: dict[str, QtWidgets.QLabel] = {}
        for link in site.links:
            label = QtWidgets.QLabel("--")
            label.setObjectName("value")
            self.links.addRow(f"{link.name} ({link.kind} {link.address})", label)
            self.link_labels[link.name] = label
        outer.addWidget(links)
        outer.addStretch(1)
        self._latest: dict[str, Sample] = {}

    @staticmethod
    def _arrow() -> QtWidgets.QLabel:
        a = QtWidgets.QLabel("⟷")
        a.setObjectName("flowArrow")
        a.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        return a

    def _grid_connection(self, available: Sample | None) -> None:
        """Breaker, load feeder and island phase rows of the grid box."""
        get = self._latest.get
        island = get("site.ems.island_state")
        islanding = island is not None and island.value != "connected"
        breaker = get("site.meter.breaker_closed")
        text, state = _switch(breaker, "CLOSED", "OPEN")
        if not state and not breaker.value and available is not None and available.value and not islanding:
            text, state = "✕ OPEN with the grid available", "alarm"
        self.grid.set("Breaker", text, state)
        self.grid.set("Load feeder", *_switch(get("site.meter.load_feeder_enable"), "ON", "OFF"))
        self.grid.set("Island", *(("ISLAND: " + str(island.value), "alarm") if islanding
                                  else _fmt(island, "", "")))

    def update_values(self, dirty: dict[str, Sample]) -> None:
        self._latest.update(dirty)
        get = self._latest.get
        for p in self.site.pcs:
            box = self.pcs[p.id]
            box.set("Active power", *_fmt(get(f"site.{p.id}.active_power_kw"), "+.1f", "kW (+ = charging)"))
            box.set("Setpoint", *_fmt(get(f"site.{p.id}.active_power_setpoint_kw"), "+.1f", "kW"))
            state = get(f"site.{p.id}.state")
            names = {0: "STOPPED", 1: "RUNNING", 2: "FAULT", 3: "ISLAND (grid-forming)"}
            text, st = _fmt(state, "", "")
            box.set("State", names.get(state.value, text) if state and not st else text,
                    "alarm" if state and state.value == 2 else st)
            box.set("Mode", *_switch(get(f"site.{p.id}.operating_mode"), "GRID-FORMING", "grid-following"))
            hold = get(f"site.{p.id}.protection_hold")
            box.set("Protection", "HOLD 0 kW" if hold and hold.value else "free", "alarm" if hold and hold.value else "")
            self.grid.set("Frequency", *_fmt(get(f"site.{p.id}.grid_frequency_hz"), ".2f", "Hz"))
        self.grid.set("Import (+) / export (−)", *_fmt(get("site.meter.grid_kw"), "+.1f", "kW"))
        available = get("site.meter.grid_available")
        self.grid.set("Available", "yes" if available and available.value else "-- (no meter)" if available is None
                      else "✕ GRID LOST", "" if available is None or available.value else "alarm")
        self._grid_connection(available)
        self.site_box.set("Load", *_fmt(get("site.meter.load_kw"), ".1f", "kW"))
        self.site_box.set("PV", *_fmt(get("site.meter.pv_kw"), ".1f", "kW"))
        self.mode.set("Mode", *_fmt(get("site.ems.mode"), "", ""))
        self.mode.set("Why", *_fmt(get("site.ems.why"), "", ""))
        for b in self.site.bess:
            box = self.bess[b.id]
            socs = [get(f"{r.path}.soc_pct") for r in b.racks]
            good = [s.value for s in socs if s is not None and s.quality.usable]
            box.set("SOC", f"{min(good):.1f} – {max(good):.1f} %" if good else "-- %", "" if good else "stale")
            for row, quantity, fmt, unit in (("Cell min / max", "cell_voltage_v", ".3f", "V"),
                                             ("Temperature min / max", "temperature_c", ".1f", "°C")):
                lo, lo_state = _fmt(get(f"site.{b.id}.min_{quantity}"), fmt, "")
                hi, hi_state = _fmt(get(f"site.{b.id}.max_{quantity}"), fmt, "")
                box.set(row, f"{lo.strip()} / {hi.strip()} {unit}", lo_state or hi_state)
            online = get(f"site.{b.id}.packs_online")
            live = online.value if online is not None else 0
            box.set("Racks online", f"{live} of {len(b.racks)}", "" if live == len(b.racks) else "alarm")
            states = [get(f"{r.path}.protection_state") for r in b.racks]
            bad = [f"{r.path.rsplit('.', 1)[1]} {s.value}" for r, s in zip(b.racks, states) if s and s.value != "NORMAL"]
            box.set("Protection", ", ".join(bad) if bad else "NORMAL", "alarm" if bad else "")
            sohs = [get(f"{r.path}.soh_pct") for r in b.racks]
            soh = [s.value for s in sohs if s is not None and s.quality.usable]
            box.set("SOH", f"{min(soh):.1f} – {max(soh):.1f} %" if soh else "-- %", "" if soh else "stale")
            ch, dis = get(f"site.{b.id}.available_charge_kw"), get(f"site.{b.id}.available_discharge_kw")
            box.set("Available charge / discharge",
                    f"{ch.value:.0f} / {dis.value:.0f} kW" if ch is not None and dis is not None else "-- kW")
            why = get(f"site.{b.id}.limit_reason")
            box.set("Why limited", why.value if why is not None and why.value else "not limited")
        for link in self.site.links:
            s = get(f"site.links.{link.name}.status")
            lat = get(f"site.links.{link.name}.latency_ms")
            status = s.value if s else "--"
            extra = f"  latency {lat.value:.1f} ms" if lat and isinstance(lat.value, float) and not math.isnan(lat.value) else ""
            label = self.link_labels[link.name]
            label.setText(("● " if status == "ONLINE" else "✕ ") + status + extra)
            set_state(label, "" if status == "ONLINE" else "alarm")
