"""Main window: header (site, protection banner, alarm counts), F-key navigation, screen stack."""
from __future__ import annotations

import time

from PySide6 import QtCore, QtGui, QtWidgets

from app.core.events import Event
from app.core.sample import Sample
from app.qt.bridge import BusPoller
from app.qt.history import HistoryQueries
from app.qt.screens.alarms import AlarmsScreen
from app.qt.screens.audit import AuditScreen
from app.qt.screens.control import ControlScreen
from app.qt.screens.ems import EmsScreen
from app.qt.screens.users import UsersScreen
from app.qt.screens.cell_detail import CellDetailScreen
from app.qt.screens.cells import CellsScreen
from app.qt.screens.distance import DistanceScreen
from app.qt.screens.events import EventsScreen
from app.qt.screens.history import HistoryScreen
from app.qt.screens.links import LinksScreen
from app.qt.screens.overview import OverviewScreen
from app.qt.screens.trends import TrendsScreen
from app.qt.session import OperatorSession
from app.qt.style import set_state
from app.qt.training import TrainingMode
from app.runtime import Runtime

KEYS = tuple(f"F{i}" for i in range(1, 13)) + ("Ctrl+D",)      # one per screen, in nav order


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
        self.session = OperatorSession(runtime.security, runtime.router, self)
        self.user_label = QtWidgets.QLabel(self.session.describe())
        hl.addWidget(self.user_label)
        self.login_button = QtWidgets.QPushButton("Log in")
        self.login_button.setToolTip("Log in / out (Ctrl+Shift+L)")
        self.login_button.clicked.connect(self.toggle_login)
        QtGui.QShortcut(QtGui.QKeySequence("Ctrl+Shift+L"), self, activated=self.toggle_login)
        hl.addWidget(self.login_button)
        self.session.changed.connect(self._session_changed)
        self.estop = QtWidgets.QPushButton("EMERGENCY STOP")
        self.estop.setToolTip("All PCS to 0 kW, all contactors open, latched (Ctrl+E); never needs a login")
        self.estop.setObjectName("estop")
        self.estop.clicked.connect(self.emergency_stop)
        QtGui.QShortcut(QtGui.QKeySequence("Ctrl+E"), self, activated=self.emergency_stop)
        hl.addWidget(self.estop)
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
        self.queries = HistoryQueries(runtime.data_dir / "historian.sqlite", self)
        self.overview = OverviewScreen(site)
        self.cells = CellsScreen(site)
        self.events = EventsScreen()
        self.trends = TrendsScreen(self.queries, runtime.clock)
        self.detail = CellDetailScreen(site, self.queries, runtime.clock)
        self.links = LinksScreen(runtime.drivers, runtime.bus)
        self.alarms = AlarmsScreen(self.session.act, lambda: runtime.protection.first_outs)
        self.distance = DistanceScreen(runtime)
        self.control = ControlScreen(runtime, self.session)
        self.audit = AuditScreen(runtime, self.session)
        self.users = UsersScreen(runtime, self.session)
        self.history = HistoryScreen(runtime)
        self.ems = EmsScreen(runtime, self.session, self.control.sbo, self.queries)
        self.buttons: list[QtWidgets.QPushButton] = []
        self.screens = (("Overview", self.overview), ("Alarms", self.alarms), ("Cells", self.cells),
                        ("Distance to trip", self.distance), ("Events", self.events), ("Trends", self.trends),
                        ("Cell detail", self.detail), ("Links", self.links), ("Control", self.control),
                        ("Audit", self.audit), ("Users", self.users), ("History", self.history), ("EMS", self.ems))
        for i, ((title, screen), key) in enumerate(zip(self.screens, KEYS, strict=True)):
            self.stack.addWidget(screen)
            button = QtWidgets.QPushButton(f"{key}  {title}")
            button.setObjectName("nav")
            button.setCheckable(True)
            button.clicked.connect(lambda _=False, i=i: self.show_screen(i))
            QtGui.QShortcut(QtGui.QKeySequence(key), self, activated=lambda i=i: self.show_screen(i))
            nav.addWidget(button)
            self.buttons.append(button)
        nav.addStretch(1)
        self.show_screen(0)
        QtWidgets.QApplication.instance().installEventFilter(self)
        self.cells.cellHovered.connect(lambda text: self.statusBar().showMessage(text))
        self.cells.cellClicked.connect(self.open_cell)

        self._known: dict[str, Sample] = {}
        self.poller = BusPoller(runtime.bus, runtime.journal, parent=self)
        self.poller.changed.connect(self.on_changed)
        self.poller.events.connect(self.on_events)
        self.poller.start()
        self.training = TrainingMode(self) if runtime.training else None     # in-process simulator only

    def show_screen(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        for i, b in enumerate(self.buttons):
            b.setChecked(i == index)

    def open_cell(self, rack_path: str, cell: int) -> None:
        """Drill down from the heatmap to the cell detail (L4)."""
        self.detail.show_cell(rack_path, cell)
        self.distance.select(rack_path)
        self.detail.update_values(self.runtime.bus.snapshot())
        self.show_screen(self.stack.indexOf(self.detail))

    def toggle_login(self) -> None:
        if self.session.session is None:
            self.session.login()
        else:
            self.session.logout()

    def _session_changed(self, text: str) -> None:
        self.user_label.setText(text)
        self.login_button.setText("Log out" if self.session.session else "Log in")

    def emergency_stop(self) -> None:
        """Always available: no login, no confirmation dialog (ISA/IEC practice for e-stops)."""
        user = self.session.session.username if self.session.session else "(nobody)"
        self.session.emergency_stop(lambda: self.runtime.emergency_stop(user))
        self.statusBar().showMessage("EMERGENCY STOP sent: all PCS 0 kW, all contactors open; reset on Alarms (F2)")

    def eventFilter(self, obj, event) -> bool:
        if event.type() in (QtCore.QEvent.Type.KeyPress, QtCore.QEvent.Type.MouseButtonPress):
            self.session.activity()
        return super().eventFilter(obj, event)

    def on_changed(self, dirty: dict[str, Sample]) -> None:
        summary = self.runtime.protection.alarm_summary
        self.alarms.set_summary(summary)
        unacked = sum(summary.unacked_by_priority.values())
        self.alarm_counts.setText(" · ".join(f"{p.name} {n}" for p, n in summary.by_priority.items() if n)
                                  + (f" · {unacked} unack" if unacked else "") or "no active alarms")
        self.overview.update_values(dirty)
        self.cells.update_values(dirty)
        self.detail.update_values(dirty)
        if any(p not in self._known for p in dirty):
            self._known.update(dirty)
            self.trends.set_point_names(sorted(p for p, s in self._known.items()
                                               if not isinstance(s.value, str)))
        state = dirty.get("site.protection.state")
        if state is not None:
            self.banner.setText(f"PROTECTION: {state.value}")
            set_state(self.banner, {"NORMAL": "", "TRIPPED": "trip"}.get(state.value, "alarm"))
        self.clock_label.setText(time.strftime("%H:%M:%S", time.localtime(self.runtime.clock.time())))

    def on_events(self, events: list[Event]) -> None:
        self.events.add_events(events)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        self.poller.timer.stop()
        self.trends.timer.stop()
        self.links.timer.stop()
        self.distance.timer.stop()
        self.queries.wait()
        self.audit.background.wait()
        self.users.background.wait()
        self.history.background.wait()
        self.session.timer.stop()
        QtWidgets.QApplication.instance().removeEventFilter(self)
        super().closeEvent(event)
