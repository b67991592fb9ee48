"""Historian queries off the GUI thread: the reader call runs on a Background worker and the result comes
back to the GUI thread on `done`, tagged with the request id (stale answers are dropped by the caller)."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Callable

from PySide6 import QtCore

from app.core.errors import UserError
from app.historian.reader import HistorianReader
from app.qt.background import Background


class HistoryQueries(QtCore.QObject):
    done = QtCore.Signal(int, object, str)          # request id, result, error text ('' when ok)

    def __init__(self, db_path: Path, parent=None) -> None:
        super().__init__(parent)
        self.db_path = db_path
        self.background = Background(self)
        self._ids = itertools.count(1)

    def submit(self, work: Callable[[HistorianReader], Any]) -> int:
        rid = next(self._ids)

        def call():
            with HistorianReader(self.db_path) as reader:
                return work(reader)
        self.background.run(call, lambda result, error: self._deliver(rid, result, error))
        return rid

    def _deliver(self, rid: int, result, error: Exception | None) -> None:
        if error is not None and not isinstance(error, (UserError, OSError)):
            raise error                              # a bug, not a missing point or file
        self.done.emit(rid, result, "" if error is None else str(error))

    def wait(self, ms: int = 5000) -> bool:
        return self.background.wait(ms)
