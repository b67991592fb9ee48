"""Historian settings and export: database size, the disk-usage estimate for the configured retention,
and export of a selection to CSV/Parquet with a progress bar (the export runs off the GUI thread)."""
from __future__ import annotations

import time
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from app.historian.export import export
from app.historian.retention import estimate_disk_usage
from app.qt.background import Background


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


class HistoryScreen(QtWidgets.QWidget):
    progressed = QtCore.Signal(float)          # export progress 0..1, emitted from the export thread

    def __init__(self, runtime) -> None:
        super().__init__()
        self.runtime = runtime
        self.db_path = runtime.data_dir / "historian.sqlite"
        self.background = Background(self)
        lay = QtWidgets.QVBoxLayout(self)
        usage = QtWidgets.QGroupBox("Storage")
        form = QtWidgets.QFormLayout(usage)
        self.rows: dict[str, QtWidgets.QLabel] = {}
        for name in ("Database", "Size now", "Growth per day", "Projected size at full retention", "Retention"):
            label = QtWidgets.QLabel("--")
            label.setObjectName("value")
            form.addRow(name, label)
            self.rows[name] = label
        refresh = QtWidgets.QPushButton("Refresh estimate")
        refresh.clicked.connect(self.refresh)
        form.addRow(refresh)
        lay.addWidget(usage)
        box = QtWidgets.QGroupBox("Export")
        ef = QtWidgets.QFormLayout(box)
        now = QtCore.QDateTime.currentDateTime()
        self.t_from = QtWidgets.QDateTimeEdit(now.addSecs(-3600))
        self.t_to = QtWidgets.QDateTimeEdit(now)
        for edit in (self.t_from, self.t_to):
            edit.setDisplayFormat("yyyy-MM-dd HH:mm:ss")
            edit.setCalendarPopup(True)
        self.pattern = QtWidgets.QLineEdit("site.*")
        self.out = QtWidgets.QLineEdit(str(Path.home() / "esms-export.csv"))
        browse = QtWidgets.QPushButton("…")
        browse.clicked.connect(self._browse)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.out, 1)
        row.addWidget(browse)
        ef.addRow("From", self.t_from)
        ef.addRow("To", self.t_to)
        ef.addRow("Points (glob)", self.pattern)
        ef.addRow("File (.csv or .parquet)", row)
        self.export_button = QtWidgets.QPushButton("Export")
        self.export_button.clicked.connect(self.start_export)
        ef.addRow(self.export_button)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        ef.addRow(self.progress)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        ef.addRow(self.status)
        lay.addWidget(box)
        lay.addStretch(1)
        self.progressed.connect(lambda f: self.progress.setValue(int(f * 1000)))

    def showEvent(self, event) -> None:
        self.refresh()
        super().showEvent(event)

    def refresh(self) -> None:
        policy = self.runtime.historian.retention
        self.rows["Database"].setText(str(self.db_path))
        self.rows["Retention"].setText(f"raw {policy.raw_days:g} d · 1-min roll-ups {policy.rollup_1m_days:g} d · "
                                       f"15-min roll-ups {policy.rollup_15m_days:g} d · events {policy.events_days:g} d")
        if self.db_path.is_file():
            self.background.run(lambda: estimate_disk_usage(self.db_path, policy), self._show_usage)

    def _show_usage(self, usage, error) -> None:
        if error is not None:
            self.rows["Size now"].setText(f"cannot read: {error}")
            return
        self.rows["Size now"].setText(_size(usage.current_bytes))
        self.rows["Growth per day"].setText(f"{_size(usage.bytes_per_day)} at the current rate")
        self.rows["Projected size at full retention"].setText(_size(usage.projected_bytes))

    def _browse(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export to", self.out.text(),
                                                        "CSV (*.csv);;Parquet (*.parquet)")
        if path:
            self.out.setText(path)

    def start_export(self) -> None:
        t_from = self.t_from.dateTime().toSecsSinceEpoch()
        t_to = self.t_to.dateTime().toSecsSinceEpoch()
        pattern, out = self.pattern.text().strip(), self.out.text().strip()
        self.export_button.setEnabled(False)
        self.progress.setValue(0)
        self.status.setText(f"exporting {pattern} …")
        started = time.monotonic()
        self.background.run(lambda: export(self.db_path, float(t_from), float(t_to), pattern, out,
                                           progress=self.progressed.emit),
                            lambda rows, error: self._done(rows, error, out, started))

    def _done(self, rows, error, out: str, started: float) -> None:
        self.export_button.setEnabled(True)
        if error is not None:
            self.status.setText(f"✖ export failed: {error}")
            return
        self.progress.setValue(1000)
        self.status.setText(f"✔ {rows} rows written to {out} in {time.monotonic() - started:.1f} s")
