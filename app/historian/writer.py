"""The historian writer thread: DataBus samples + journal events -> SQLite, one batch per flush period.

Crash safety: the database is in WAL mode with synchronous=NORMAL and a batch is committed at least
every `flush_period_s`, so a kill -9 loses at most the uncommitted batch and never corrupts the file.
Disk full (or the optional `max_db_bytes` cap) posts one ALARM event; the writer keeps the unwritten
samples in memory up to `max_buffer_bytes` (oldest dropped beyond it, with an ALARM) and retries
every period; an INFO event says when writing works again.

Sample time: `source_ts`, except for unusable samples (STALE/BAD/COMM_LOST), which are
re-publications of an old value (Sample.with_quality keeps source_ts) and are stored at their
reception time so that periods of lost communication show in history.
"""
from __future__ import annotations

import collections
import logging
import math
import os
import queue
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

from app.core.clock import Clock
from app.core.databus import DataBus
from app.core.events import Event, EventJournal, Severity
from app.core.sample import Sample
from app.historian import schema
from app.historian.retention import RetentionPolicy, apply_retention
from app.historian.store import Batch, HistorianStore, ScalarSample, VectorSample, is_disk_full

log = logging.getLogger(__name__)
_ITEM_OVERHEAD = 120  # bytes of Python objects per buffered sample or event (estimate)


def startup_check(db_path: str | Path, journal: EventJournal, clock: Clock) -> schema.IntegrityReport:
    """Quick-check the database before writing. A damaged file (with its WAL) is moved aside to
    `<name>.corrupt-<epoch>` so a fresh one can be started and nothing is overwritten. Posts an INFO
    event when fine, an ALARM naming the kept file otherwise; returns the report."""
    report = schema.quick_check(db_path)
    if report.ok:
        journal.post(Event(clock.time(), "historian", "integrity_ok",
                           f"Historian database {db_path} passed its integrity check ({report.messages[0]})"))
        return report
    moved = f"{db_path}.corrupt-{int(clock.time())}"
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{db_path}{suffix}"):
            os.replace(f"{db_path}{suffix}", f"{moved}{suffix}")
    report = schema.IntegrityReport(False, report.messages, moved)
    journal.post(Event(clock.time(), "historian", "integrity_failed",
                       f"Historian database {db_path} failed its integrity check ({'; '.join(report.messages[:3])}); "
                       f"kept as {moved}, starting a new one", Severity.ALARM))
    return report


class HistorianWriter:
    """Supervisor worker that records every sample matching `pattern` and every journal event.

    run(stop) is called on the supervisor's "historian" thread; the properties may be read from any
    thread. `ready` is set once the writer is subscribed and the database is open.
    """

    name = "historian"

    def __init__(self, db_path: str | Path, bus: DataBus, journal: EventJournal, clock: Clock,
                 pattern: str = "site.*", flush_period_s: float = 1.0, *,
                 retention: RetentionPolicy | None = None, block_s: float = 300.0,
                 max_block_samples: int = 3600, max_buffer_bytes: int = 256 * 2 ** 20,
                 max_db_bytes: int | None = None, maintenance_period_s: float = 3600.0) -> None:
        self.db_path = Path(db_path)
        self.bus, self.journal, self.clock = bus, journal, clock
        self.pattern = pattern
        self.flush_period_s = float(flush_period_s)
        self.retention = retention or RetentionPolicy()
        self.block_s, self.max_block_samples = block_s, max_block_samples
        self.max_buffer_bytes = max_buffer_bytes
        self.max_db_bytes = max_db_bytes  # may be changed from another thread; applied before each write
        self.maintenance_period_s = maintenance_period_s
        self.integrity: schema.IntegrityReport | None = None
        self.ready = threading.Event()
        self._items: collections.deque[tuple[str, float, int, Any] | Event] = collections.deque()
        self._bytes = 0
        self._commits = 0
        self._dropped = 0
        self._full_since: float | None = None
        self._drop_alarmed = False
        self._warned: set[str] = set()

    # -- status (any thread) ---------------------------------------------------------------------------
    @property
    def commits(self) -> int:
        """Batches committed since construction."""
        return self._commits

    @property
    def buffered(self) -> int:
        """Samples and events waiting to be written."""
        return len(self._items)

    @property
    def dropped(self) -> int:
        """Samples and events dropped because the buffer was full while the disk was full."""
        return self._dropped

    @property
    def disk_full(self) -> bool:
        return self._full_since is not None

    # -- thread ---------------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Record until `stop` is set, then write everything received and seal open blocks."""
        events = self.journal.subscribe()  # first, so the integrity report is recorded too
        try:
            self.integrity = startup_check(self.db_path, self.journal, self.clock)
        except BaseException:
            self.journal.unsubscribe(events)
            raise
        sub = self.bus.subscribe(self.pattern, queue.SimpleQueue())
        store: HistorianStore | None = None
        pending_recover = True
        next_maintenance = next_flush = self.clock.monotonic()
        try:
            while True:
                if store is None:
                    store = self._guard(self._open_store, writes=False)
                if store is not None:
                    if pending_recover:
                        pending_recover = self._guard(store.recover) is None
                    self.ready.set()
                next_flush = max(next_flush + self.flush_period_s, self.clock.monotonic() - self.flush_period_s)
                stopping = self.clock.wait(stop, next_flush - self.clock.monotonic())
                self._drain(sub.queue, events)
                if store is not None and self._flush(store) and not stopping:
                    now = self.clock.time()
                    lag = 2 * self.flush_period_s
                    self._guard(lambda: store.roll_scalars(math.floor((now - lag) / self.block_s) * self.block_s))
                    self._guard(lambda: store.seal_idle(now - lag))
                    if self.clock.monotonic() >= next_maintenance:
                        if self._guard(lambda: store.run_maintenance(
                                lambda conn: apply_retention(conn, self.retention, now))) is not None:
                            next_maintenance = self.clock.monotonic() + self.maintenance_period_s
                if stopping:
                    break
        finally:
            self.bus.unsubscribe(sub)
            self.journal.unsubscribe(events)
            self._drain(sub.queue, events)
            if store is not None:
                self._flush(store)
                self._guard(store.close)
            if self._items:
                self.journal.post(Event(self.clock.time(), "historian", "data_lost",
                                        f"Historian stopped with {len(self._items)} samples/events unwritten "
                                        f"(database or disk full: {self.db_path})", Severity.ALARM))
            self.ready.clear()

    def _open_store(self) -> HistorianStore:
        return HistorianStore(self.db_path, block_s=self.block_s, max_block_samples=self.max_block_samples,
                              max_db_bytes=self.max_db_bytes)

    def _guard(self, work: Callable[[], Any], *, writes: bool = True) -> Any:
        """Run a database step; on disk full raise the ALARM (once) and return None. A step that
        `writes` and succeeds ends a disk-full episode."""
        try:
            result = work()
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            if self._full_since is None:
                self._full_since = self.clock.time()
                self.journal.post(Event(self.clock.time(), "historian", "disk_full",
                                        f"Historian cannot write {self.db_path}: {exc}; buffering in memory "
                                        f"(up to {self.max_buffer_bytes // 2 ** 20} MiB) and retrying",
                                        Severity.ALARM))
            return None
        if writes and self._full_since is not None:
            self.journal.post(Event(self.clock.time(), "historian", "disk_ok",
                                    f"Historian writing to {self.db_path} again ({self._dropped} samples/events "
                                    f"dropped while it could not)", Severity.INFO))
            self._full_since = None
            self._drop_alarmed = False
        return True if result is None else result

    def _drain(self, samples: queue.SimpleQueue, events: queue.SimpleQueue) -> None:
        while True:
            try:
                point, s = samples.get_nowait()
            except queue.Empty:
                break
            self._push(self._sample_item(point, s))
        while True:
            try:
                self._push(events.get_nowait())
            except queue.Empty:
                break
        if self._bytes > self.max_buffer_bytes:
            dropped = 0
            while self._bytes > self.max_buffer_bytes and self._items:
                self._bytes -= _size(self._items.popleft())
                dropped += 1
            self._dropped += dropped
            if not self._drop_alarmed:
                self._drop_alarmed = True
                self.journal.post(Event(self.clock.time(), "historian", "buffer_overflow",
                                        f"Historian buffer full ({self.max_buffer_bytes // 2 ** 20} MiB): "
                                        f"dropping oldest samples ({dropped} so far)", Severity.ALARM))

    @staticmethod
    def _sample_item(point: str, s: Sample) -> tuple[str, float, int, Any]:
        t = s.source_ts if s.quality.usable else max(s.source_ts, s.recv_wall)
        return point, t, schema.QUALITY_CODE[s.quality], s.value

    def _push(self, item: tuple[str, float, int, Any] | Event) -> None:
        self._items.append(item)
        self._bytes += _size(item)

    def _flush(self, store: HistorianStore) -> bool:
        """Write the buffer in one transaction; True when it is empty afterwards."""
        if store.max_db_bytes != self.max_db_bytes:
            store.set_max_db_bytes(self.max_db_bytes)
        if self._items:
            batch = Batch()
            for item in self._items:
                if isinstance(item, Event):
                    batch.events.append(item)
                elif isinstance(item[3], np.ndarray):
                    batch.vectors.append(VectorSample(item[0], item[1], item[2], item[3].reshape(-1)))
                else:
                    batch.scalars.append(ScalarSample(*item))
            if self._guard(lambda: store.write(batch)) is None:
                return False
            self._items.clear()
            self._bytes = 0
            self._commits += 1
            self._warn_rejected(store)
        return True

    def _warn_rejected(self, store: HistorianStore) -> None:
        for point in sorted(store.rejected - self._warned):
            self._warned.add(point)
            self.journal.post(Event(self.clock.time(), "historian", "kind_changed",
                                    f"Historian ignores samples of {point}: it changed between vector and "
                                    f"scalar values; rename the point or start a new database", Severity.WARNING,
                                    point=point))


def _size(item: tuple[str, float, int, Any] | Event) -> int:
    if isinstance(item, Event):
        return _ITEM_OVERHEAD + len(item.message)
    value = item[3]
    return _ITEM_OVERHEAD + (value.nbytes if isinstance(value, np.ndarray) else 0)
