"""Main window: header (site, protection banner, alarm counts), F-key navigation, screen stack."""
from __future__ import annotations

import time

from PySide6 import QtCore, QtGui, QtWidgets

from app.core.events import Event, Severity
from app.core.sample import Sample
from app.qt.bridge import BusPoller
from app.qt.screens.cells import CellsScreen
from app.qt.screens.events import EventsScreen
from app.qt.screens.overview import OverviewScreen
from app.qt.style import set_state
from app.runtime import Runtime


class MainWindow(QtWidgets.QMainWindow):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime
        site = runtime.site
        self.setWindowTitle(f"ESMS — {site.name}")
        central = QtWidgets.QWidget()
        self.setCentralWidget(central)
        outer = QtWidgets.QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)

        header = QtWidgets.QFrame()
        header.setObjectName("header")
        hl = QtWidgets.QHBoxLayout(header)
        name = QtWidgets.QLabel(site.name + ("  [SIMULATED PLANT]" if site.simulator.enabled else ""))
        name.setObjectName("siteName")
        hl.addWidget(name)
        hl.addStretch(1)
        self.banner = QtWidgets.QLabel("PROTECTION: STARTING")
        self.banner.setObjectName("banner")
        hl.addWidget(self.banner)
        self.alarm_counts = QtWidgets.QLabel("")
        hl.addWidget(self.alarm_counts)
        self.clock_label = QtWidgets.QLabel("")
        self.clock_label.setObjectName("value")
        hl.addWidget(self.clock_label)
        outer.addWidget(header)

        body = QtWidgets.QHBoxLayout()
        outer.addLayout(body, 1)
        nav = QtWidgets.QVBoxLayout()
        body.addLayout(nav)
        self.stack = QtWidgets.QStackedWidget()
        body.addWidget(self.stack, 1)
        self.overview = OverviewScreen(site)
        self.cells = CellsScreen(site)
        self.events = EventsScreen()
        self.buttons: list[QtWidgets.QPushButton] = []
        for i, (title, screen) in enumerate((("Overview", self.overview), ("Cells", self.cells),
                                             ("Events", self.events))):
            self.stack.addWidget(screen)
            button = QtWidgets.QPushButton(f"F{i + 1}  {title}")
            button.setObjectName("nav")
            button.setCheckable(True)
            button.clicked.connect(lambda _=False, i=i: self.show_screen(i))
            QtGui.QShortcut(QtGui.QKeySequence(f"F{i + 1}"), self, activated=lambda i=i: self.show_screen(i))
            nav.addWidget(button)
            self.buttons.append(button)
        nav.addStretch(1)
        self.show_screen(0)
        self.cells.cellHovered.connect(lambda text: self.statusBar().showMessage(text))

        self._alarms = {Severity.TRIP: 0, Severity.ALARM: 0}
        self.poller = BusPoller(runtime.bus, runtime.journal, parent=self)
        self.poller.changed.connect(self.on_changed)
        self.poller.events.connect(self.on_events)
        self.poller.start()

    def show_screen(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        for i, b in enumerate(self.buttons):
            b.setChecked(i == index)

    def on_changed(self, dirty: dict[str, Sample]) -> None:
        self.overview.update_values(dirty)
        self.cells.update_values(dirty)
        state = dirty.get("site.protection.state")
        if state is not None:
            self.banner.setText(f"PROTECTION: {state.value}")
            set_state(self.banner, {"NORMAL": "", "TRIPPED": "trip"}.get(state.value, "alarm"))
        self.clock_label.setText(time.strftime("%H:%M:%S", time.localtime(self.runtime.clock.time())))

    def on_events(self, events: list[Event]) -> None:
        self.events.add_events(events)
        for e in events:
            if e.severity in self._alarms:
                self._alarms[e.severity] += 1
        self.alarm_counts.setText(f"trips {self._alarms[Severity.TRIP]} · alarms {self._alarms[Severity.ALARM]}")

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self.poller.timer.stop()
        super().closeEvent(event)
