"""Blocking calls off the GUI thread (audit reads, chain verification, CSV export, password hashing):
a one-thread QThreadPool runs the call, a queued signal brings its result or exception back to the GUI
thread, where the caller's callback runs. Calls run one at a time, in submission order."""
from __future__ import annotations

import itertools
from typing import Any, Callable

from PySide6 import QtCore

Done = Callable[[Any, "Exception | None"], None]


class _Call(QtCore.QRunnable):
    def __init__(self, owner: "Background", cid: int, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.owner, self.cid, self.fn = owner, cid, fn

    def run(self) -> None:
        try:
            result, error = self.fn(), None
        except Exception as exc:            # handed to the caller's callback on the GUI thread
            result, error = None, exc
        self.owner.finished.emit(self.cid, result, error)


class Background(QtCore.QObject):
    """`run(fn, done)`: fn() on the worker thread, then done(result, error) on the GUI thread (error is
    None on success). A callback should re-raise errors a user cannot cause (bugs)."""

    finished = QtCore.Signal(int, object, object)

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QtCore.QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._ids = itertools.count(1)
        self._callbacks: dict[int, Done] = {}
        self.finished.connect(self._deliver)

    def run(self, fn: Callable[[], Any], done: Done) -> None:
        cid = next(self._ids)
        self._callbacks[cid] = done
        self.pool.start(_Call(self, cid, fn))

    def wait(self, ms: int = 5000) -> bool:
        """Block until queued calls finished (shutdown, tests); their callbacks run on the next event loop pass."""
        return self.pool.waitForDone(ms)

    def _deliver(self, cid: int, result: Any, error: Exception | None) -> None:
        self._callbacks.pop(cid)(result, error)
