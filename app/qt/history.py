"""Historian queries off the GUI thread: a QThreadPool runs the reader call, a signal brings the result
back to the GUI thread tagged with the request id (stale answers are dropped by the caller)."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Callable

from PySide6 import QtCore

from app.core.errors import UserError
from app.historian.reader import HistorianReader


class _Job(QtCore.QRunnable):
    def __init__(self, owner: "HistoryQueries", rid: int, work: Callable[[HistorianReader], Any]) -> None:
        super().__init__()
        self.owner, self.rid, self.work = owner, rid, work

    def run(self) -> None:
        try:
            with HistorianReader(self.owner.db_path) as reader:
                result, error = self.work(reader), ""
        except (UserError, OSError) as exc:
            result, error = None, str(exc)
        self.owner.done.emit(self.rid, result, error)


class HistoryQueries(QtCore.QObject):
    done = QtCore.Signal(int, object, str)          # request id, result, error text ('' when ok)

    def __init__(self, db_path: Path, parent=None) -> None:
        super().__init__(parent)
        self.db_path = db_path
        self.pool = QtCore.QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._ids = itertools.count(1)

    def submit(self, work: Callable[[HistorianReader], Any]) -> int:
        rid = next(self._ids)
        self.pool.start(_Job(self, rid, work))
        return rid

    def wait(self, ms: int = 5000) -> bool:
        return self.pool.waitForDone(ms)
