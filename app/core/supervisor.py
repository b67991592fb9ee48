"""Thread supervisor: named worker threads, restart with backoff on exception, ordered shutdown.

A worker is any object with a `name` and `run(stop: threading.Event)`; `run` returns when `stop` is
set. If it raises, the supervisor logs the traceback, posts an ALARM event and restarts it after an
exponential backoff (1 s, 2 s, 4 s ... 30 s). Workers are stopped stage by stage in the order given
to `stop_all` (e.g. ems → protection → drivers → historian); an optional `on_stopped()` hook runs in
the worker's own thread after its last `run`.
"""
from __future__ import annotations

import logging
import threading
import traceback
from dataclasses import dataclass, field
from typing import Protocol

from app.core.clock import Clock, SystemClock
from app.core.events import Event, EventJournal, Severity

log = logging.getLogger(__name__)


class Worker(Protocol):
    name: str

    def run(self, stop: threading.Event) -> None: ...


@dataclass
class _Slot:
    worker: Worker
    stage: str
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    restarts: int = 0


class Supervisor:
    """Owns every long-lived thread of the application."""

    def __init__(self, journal: EventJournal, clock: Clock | None = None,
                 backoff_s: float = 1.0, backoff_max_s: float = 30.0) -> None:
        self.journal = journal
        self.clock = clock or SystemClock()
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()

    def start(self, worker: Worker, stage: str) -> None:
        """Start `worker` on a thread named after it, in shutdown stage `stage`."""
        slot = _Slot(worker, stage)
        slot.thread = threading.Thread(target=self._guard, args=(slot,), name=worker.name, daemon=True)
        with self._lock:
            self._slots.append(slot)
        slot.thread.start()

    def _guard(self, slot: _Slot) -> None:
        delay = self.backoff_s
        while not slot.stop.is_set():
            try:
                slot.worker.run(slot.stop)
                if not slot.stop.is_set():
                    raise RuntimeError("run() returned before stop was requested")
            except Exception as exc:  # noqa: BLE001 - a worker must never die silently
                slot.restarts += 1
                log.error("thread %s crashed (restart %d in %.0f s):\n%s", slot.worker.name, slot.restarts,
                          delay, traceback.format_exc())
                self.journal.post(Event(self.clock.time(), f"thread.{slot.worker.name}", "thread_crash",
                                        f"Thread {slot.worker.name} crashed: {type(exc).__name__}: {exc}; "
                                        f"restart {slot.restarts} in {delay:.0f} s", Severity.ALARM))
                if slot.stop.wait(delay):
                    break
                delay = min(delay * 2, self.backoff_max_s)
        hook = getattr(slot.worker, "on_stopped", None)
        if hook:
            try:
                hook()
            except Exception:  # noqa: BLE001
                log.exception("thread %s: on_stopped failed", slot.worker.name)

    def restarts(self, name: str) -> int:
        return sum(s.restarts for s in self._slots if s.worker.name == name)

    @property
    def names(self) -> list[str]:
        return [s.worker.name for s in self._slots if s.thread and s.thread.is_alive()]

    def stop_all(self, order: list[str], timeout_s: float = 10.0) -> list[str]:
        """Stop stages in `order` (unlisted stages last); returns names of threads that did not end."""
        stages = list(order) + sorted({s.stage for s in self._slots} - set(order))
        stuck: list[str] = []
        for stage in stages:
            slots = [s for s in self._slots if s.stage == stage]
            for s in slots:
                s.stop.set()
            for s in slots:
                if s.thread:
                    s.thread.join(timeout_s)
                    if s.thread.is_alive():
                        stuck.append(s.worker.name)
                        log.error("thread %s did not stop within %.0f s", s.worker.name, timeout_s)
        with self._lock:
            self._slots = [s for s in self._slots if s.thread and s.thread.is_alive()]
        return stuck
