"""Distance to trip (L2/L3) for one rack: every protection quantity with its value, its next limit,
the margin and the time to reach that limit at the current rate of change, plus the rack's derating
(CCL/DCL and why). Reads the protection thread's frozen verdict of the rack (no extra I/O)."""
from __future__ import annotations

import math

from PySide6 import QtCore, QtGui, QtWidgets

from app.protection.ladder import Level
from app.protection.limit_file import QUANTITIES, RUNGS

COLUMNS = ("Quantity", "Level", "Value", "Next limit", "Margin", "Rate /min", "Time to limit", "Worst")
UNIT = {"v": "V", "crate": "A", "c": "°C"}


def next_limit(levels: tuple[float, float, float], side: str, level: Level) -> tuple[str, float] | None:
    """The rung above the current level (None when already tripped)."""
    if level >= Level.TRIP:
        return None
    return RUNGS[int(level)], levels[int(level)]


def time_to_limit(margin: float, rate_per_s: float) -> float:
    """Seconds until the margin is used up at `rate_per_s` (toward the limit positive); inf if not approaching."""
    return margin / rate_per_s if rate_per_s > 1e-12 and margin > 0 else math.inf


class DistanceScreen(QtWidgets.QWidget):
    def __init__(self, runtime) -> None:
        super().__init__()
        self.runtime = runtime
        self.protection = runtime.protection
        self._history: dict[tuple[str, str], tuple[float, float]] = {}
        self._rates: dict[tuple[str, str], float] = {}
        lay = QtWidgets.QVBoxLayout(self)
        bar = QtWidgets.QHBoxLayout()
        lay.addLayout(bar)
        bar.addWidget(QtWidgets.QLabel("Rack"))
        self.rack_box = QtWidgets.QComboBox()
        self.rack_box.addItems([g.rack.path for g in self.protection.guards])
        bar.addWidget(self.rack_box)
        self.state = QtWidgets.QLabel("")
        self.state.setObjectName("value")
        bar.addWidget(self.state, 1)
        self.table = QtWidgets.QTableWidget(len(QUANTITIES), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        lay.addWidget(self.table, 1)
        self.derating = QtWidgets.QLabel("")
        self.derating.setObjectName("value")
        self.derating.setWordWrap(True)
        lay.addWidget(self.derating)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self.rack_box.currentIndexChanged.connect(lambda _: self.refresh())

    def select(self, rack_path: str) -> None:
        self.rack_box.setCurrentText(rack_path)

    def refresh(self) -> None:
        guard = self.protection.by_path.get(self.rack_box.currentText())
        verdict = guard.verdict if guard else None
        if verdict is None:
            self.state.setText("no verdict yet (no data)")
            return
        self.state.setText(f"{guard.state}" + (f": {verdict.cause}" if verdict.cause else ""))
        limits = self.protection.limits[guard.bess.id]
        now = self.runtime.clock.monotonic()
        for row, s in enumerate(verdict.ladder.statuses):
            side, unit = QUANTITIES[s.quantity]
            spec = limits.ladders[s.quantity]
            scale = guard.rack.cell_count if s.quantity.startswith("pack_") else (
                guard.bess.cell_capacity_ah if unit == "crate" else 1.0)
            nxt = next_limit(tuple(x * scale for x in spec.levels), side, s.level)
            sign = 1.0 if side == "high" else -1.0
            rate = self._rate((guard.rack.path, s.quantity), s.value, now)
            cells = [s.quantity.replace("_", " "), s.level.name, f"{s.value:.3f} {UNIT[unit]}"]
            if nxt is None or not math.isfinite(s.value):
                cells += ["—", "—", f"{rate * 60:+.3g}" if math.isfinite(rate) else "—", "—"]
            else:
                margin = sign * (nxt[1] - s.value)
                ttl = time_to_limit(margin, sign * rate)
                cells += [f"{nxt[0]} {nxt[1]:.3f} {UNIT[unit]}", f"{margin:.3f}",
                          f"{rate * 60:+.3g}" if math.isfinite(rate) else "—",
                          "not approaching" if math.isinf(ttl) else _duration(ttl)]
            cells.append("" if s.index < 0 else f"#{s.index + 1}")
            for col, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                if col == 1 and s.level > Level.NORMAL:
                    item.setText({Level.WARN: "◆ WARN", Level.ALARM: "▲ ALARM", Level.TRIP: "■ TRIP"}[s.level])
                    item.setBackground(QtGui.QColor({Level.WARN: "#fff07a", Level.ALARM: "#f5a000",
                                                     Level.TRIP: "#dc1e1e"}[s.level]))
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        d = verdict.derating
        self.derating.setText(f"CCL {d.ccl_a:.0f} A ({d.ccl_reason or 'not limited'}) · "
                              f"DCL {d.dcl_a:.0f} A ({d.dcl_reason or 'not limited'}) · "
                              f"CVL {d.cvl_v:.1f} V · DVL {d.dvl_v:.1f} V")

    def _rate(self, key: tuple[str, str], value: float, now: float) -> float:
        """Exponentially smoothed rate of change per second of one quantity."""
        prev = self._history.get(key)
        self._history[key] = (value, now)
        if prev is None or now <= prev[1] or not (math.isfinite(value) and math.isfinite(prev[0])):
            return self._rates.get(key, math.nan)
        raw = (value - prev[0]) / (now - prev[1])
        old = self._rates.get(key)
        self._rates[key] = raw if old is None or not math.isfinite(old) else 0.7 * old + 0.3 * raw
        return self._rates[key]


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
