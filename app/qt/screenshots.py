"""`make screenshots`: run the demo plant with the GUI (under Xvfb), save every screen as PNG in
docs/screenshots/, normal operation first, then after an injected cell overvoltage trip, and the
training mode's inject-fault dialog. The EMS runs MPC, seeded with two days of the simulated site's
load and PV so that its plan is there at once."""
from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from app.core.paths import EXAMPLE_SITE, ROOT
from app.core.site import load_site
from app.ems.settings import EmsSettings
from app.qt.main_window import MainWindow
from app.qt.style import stylesheet
from app.qt.training import InjectFaultDialog
from app.runtime import Runtime
from app.sim.profiles import SiteProfiles

SCREENS = ((0, "overview"), (1, "alarms"), (2, "cells"), (3, "distance-to-trip"), (4, "events"), (5, "trends"),
           (6, "cell-detail"), (7, "links"), (8, "control"), (12, "ems"))   # (index in the window's stack, file name)


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
        site = load_site(EXAMPLE_SITE)
        step_s = EmsSettings().mpc_step_minutes * 60
        history = SiteProfiles.for_site(site, site.simulator.seed).step_means(
            math.floor(time.time() / step_s) * step_s, step_s, int(2 * 86400 / step_s))
        runtime = Runtime(site, Path(data_dir), ems_mode="mpc", ems_history=history)
        window = MainWindow(runtime)
        window.resize(1366, 768)
        runtime.start()
        window.show()
        try:
            _pump(app, 4.0)
            window.trends.add("site.bess1.rack03.cell_voltages_v")
            window.trends.add("site.bess1.rack03.cell_voltages_v#37")
            window.open_cell("site.bess1.rack03", 37)
            for i, name in SCREENS:
                window.show_screen(i)
                _pump(app, 0.5)
                window.grab().save(str(out_dir / f"{i + 1}-{name}.png"))
            with runtime.simulator.lock:
                runtime.simulator.plant.inject_cell_offset("site.bess1.rack03", 37, 0.45)
            _pump(app, 3.0)
            for i, name in SCREENS:
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
