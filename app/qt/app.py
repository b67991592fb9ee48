"""GUI entry: QApplication + MainWindow around a started Runtime; ordered shutdown on close."""
from __future__ import annotations

import signal
import sys

from PySide6 import QtCore, QtWidgets

from app.qt.main_window import MainWindow
from app.qt.style import stylesheet
from app.runtime import Runtime


def run_gui(runtime: Runtime, duration_s: float | None = None) -> int:
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setStyleSheet(stylesheet())
    window = MainWindow(runtime)
    window.resize(1366, 768)
    runtime.start()
    window.show()
    signal.signal(signal.SIGINT, lambda *_: app.quit())
    signal.signal(signal.SIGTERM, lambda *_: app.quit())
    keepalive = QtCore.QTimer()          # lets Python see SIGINT while Qt's loop runs
    keepalive.start(200)
    keepalive.timeout.connect(lambda: None)
    if duration_s is not None:
        QtCore.QTimer.singleShot(int(duration_s * 1000), app.quit)
    try:
        app.exec()
    finally:
        window.close()
        stuck = runtime.stop()
    return 1 if stuck else 0
