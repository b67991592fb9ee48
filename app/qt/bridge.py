"""GUI side of the DataBus: a ≈10 Hz QTimer pulls `take_dirty()` and new journal events and emits
one signal per tick (never one per value). Drivers never call Qt."""
from __future__ import annotations

from PySide6 import QtCore

from app.core.databus import DataBus
from app.core.events import EventJournal


class BusPoller(QtCore.QObject):
    changed = QtCore.Signal(dict)        # point -> Sample, only points changed since the last tick
    events = QtCore.Signal(list)         # new Events, oldest first

    def __init__(self, bus: DataBus, journal: EventJournal, period_ms: int = 100, parent=None) -> None:
        super().__init__(parent)
        self.bus, self.journal = bus, journal
        self._seq = 0
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(period_ms)
        self.timer.timeout.connect(self.poll)

    def start(self) -> None:
        self.timer.start()

    def poll(self) -> None:
        dirty = self.bus.take_dirty("gui")
        if dirty:
            self.changed.emit(dirty)
        new = self.journal.since(self._seq)
        if new:
            self._seq = new[-1].seq
            self.events.emit(new)
