"""`make screenshots`: run the demo plant with the GUI (under Xvfb), save every screen as PNG in
docs/screenshots/, normal operation first, then after an injected cell overvoltage trip, and the
training mode's inject-fault dialog."""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from app.core.paths import EXAMPLE_SITE, ROOT
from app.core.site import load_site
from app.qt.main_window import MainWindow
from app.qt.style import stylesheet
from app.qt.training import InjectFaultDialog
from app.runtime import Runtime

SCREENS = ("overview", "alarms", "cells", "distance-to-trip", "events", "trends", "cell-detail", "links")


def _pump(app: QtWidgets.QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.02)


def _inject_dialog(app: QtWidgets.QApplication, window: MainWindow, path: Path) -> None:
    """The training mode's inject dialog, filled in for a drifting cell (not submitted)."""
    dialog = InjectFaultDialog(window, window.runtime.site, window.runtime.training, lambda spec, reason: False)
    dialog.select("cell_drift")
    dialog.rack.setCurrentText("site.bess1.rack02")
    dialog.cell.setValue(12)
    dialog.param.setText("0.02")
    dialog.reason.setText("drill 3: slow cell overvoltage")
    dialog.show()
    _pump(app, 0.5)
    dialog.grab().save(str(path))
    dialog.close()


def main(out_dir: Path = ROOT / "docs" / "screenshots") -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setStyleSheet(stylesheet())
    with tempfile.TemporaryDirectory() as data_dir:
        runtime = Runtime(load_site(EXAMPLE_SITE), Path(data_dir))
        window = MainWindow(runtime)
        window.resize(1366, 768)
        runtime.start()
        window.show()
        try:
            _pump(app, 4.0)
            window.trends.add("site.bess1.rack03.cell_voltages_v")
            window.trends.add("site.bess1.rack03.cell_voltages_v#37")
            window.open_cell("site.bess1.rack03", 37)
            for i, name in enumerate(SCREENS):
                window.show_screen(i)
                _pump(app, 0.5)
                window.grab().save(str(out_dir / f"{i + 1}-{name}.png"))
            with runtime.simulator.lock:
                runtime.simulator.plant.inject_cell_offset("site.bess1.rack03", 37, 0.45)
            _pump(app, 3.0)
            for i, name in enumerate(SCREENS):
                window.show_screen(i)
                _pump(app, 0.5)
                window.grab().save(str(out_dir / f"{i + 1}-{name}-trip.png"))
            _inject_dialog(app, window, out_dir / "training-inject-fault.png")
        finally:
            window.close()
            runtime.stop()
    print(f"saved {2 * len(SCREENS) + 1} screenshots in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
