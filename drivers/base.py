"""Driver base (python-can's BusABC is the model): one owner thread per link.

Template method: subclasses implement `open`, `close`, `poll` (one cycle: read, decode, return
values per point) and `execute` (one command). The base runs the loop: poll every period, publish
GOOD samples, execute queued commands, reconnect with exponential backoff and jitter, and mark every
point it owns COMM_LOST once no good poll happened for `comm_loss_periods` periods.
"""
from __future__ import annotations

import abc
import logging
import random
import threading
from typing import Any

from app.core.clock import Clock
from app.core.commands import CommandRouter, CommandStatus, PendingCommand
from app.core.databus import DataBus
from app.core.events import Event, EventJournal, Severity
from app.core.sample import Quality, Sample, vector
from app.core.site import Link
from drivers.monitor import FrameMonitor
from drivers.stats import LinkStats

log = logging.getLogger(__name__)


class LinkError(Exception):
    """The link failed (no connection, timeout, exception response): the driver reconnects."""

    def __init__(self, reason: str, timeout: bool = False) -> None:
        super().__init__(reason)
        self.timeout = timeout


class Driver(abc.ABC):
    """Owner of one link. `devices` maps a device path (`site.bess1.rack01`) to what the subclass needs."""

    backoff_min_s = 0.25
    backoff_max_s = 4.0

    def __init__(self, link: Link, bus: DataBus, router: CommandRouter, journal: EventJournal,
                 clock: Clock, device_paths: list[str]) -> None:
        self.link = link
        self.name = f"link-{link.name}"
        self.bus, self.router, self.journal, self.clock = bus, router, journal, clock
        self.device_paths = device_paths
        self.stats = LinkStats()
        self.monitor = FrameMonitor(link.address, clock.time)      # raw frames (diagnostics screen, recording)
        self.status_point = f"site.links.{link.name}"
        self._connected = False
        self._comm_lost = False
        self._published: set[str] = set()
        self._queues = {path: router.register(path) for path in device_paths}
        self._rng = random.Random(hash(link.name))

    # --- subclass interface -------------------------------------------------------------
    @abc.abstractmethod
    def open(self) -> None:
        """Connect; raise LinkError on failure."""

    @abc.abstractmethod
    def close(self) -> None:
        """Disconnect; never raises."""

    @abc.abstractmethod
    def poll(self) -> dict[str, Any]:
        """One acquisition cycle: {point name: value}. Raise LinkError when the link fails."""

    @abc.abstractmethod
    def execute(self, pending: PendingCommand) -> None:
        """Carry out one command and reply on it (with read-back where the protocol allows)."""

    # --- loop ----------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        period = self.link.poll_period_s
        missed = 0              # consecutive poll periods without a good poll
        failures = 0
        next_try = 0.0
        self._publish_status("CONNECTING")
        try:
            while not stop.is_set():
                started = self.clock.monotonic()
                if not self._connected and started >= next_try:
                    try:
                        self.open()
                        self._connected = True
                        failures = 0
                        self.stats.reconnected()
                    except LinkError as exc:
                        failures += 1
                        delay = min(self.backoff_min_s * 2 ** failures, self.backoff_max_s)
                        next_try = started + delay * self._rng.uniform(0.5, 1.0)
                        self.stats.error(str(exc), timeout=exc.timeout)
                missed += 1
                if self._connected:
                    try:
                        self._drain_commands()
                        values = self.poll()
                        missed = 0
                        self._publish_values(values)
                    except LinkError as exc:
                        self.stats.error(str(exc), timeout=exc.timeout)
                        log.warning("%s: %s", self.name, exc)
                        self.close()
                        self._connected = False
                        next_try = self.clock.monotonic()
                else:
                    self._reject_commands("link offline")
                if not self._comm_lost and missed >= self.link.comm_loss_periods:
                    self._mark_comm_lost()
                self.clock.wait(stop, max(0.0, period - (self.clock.monotonic() - started)))
        finally:
            self.close()
            self._connected = False

    def on_stopped(self) -> None:
        self.monitor.stop_recording()
        for path in self.device_paths:
            self.router.unregister(path)
        self._reject_commands("link stopped")

    def _publish_values(self, values: dict[str, Any]) -> None:
        mono, wall = self.clock.monotonic(), self.clock.time()
        items = [(p, Sample(vector(v) if hasattr(v, "__len__") and not isinstance(v, str) else v,
                            wall, mono, wall, Quality.GOOD)) for p, v in values.items()]
        items.extend(self._status_items("ONLINE", mono, wall))
        self.bus.publish_many(items)
        self._published.update(values)
        if self._comm_lost:
            self._comm_lost = False
            self.journal.post(Event(wall, self.status_point, "link_restored",
                                    f"Link {self.link.name} restored", Severity.INFO))

    def _mark_comm_lost(self) -> None:
        self._comm_lost = True
        mono, wall = self.clock.monotonic(), self.clock.time()
        items = []
        for point in sorted(self._published):
            old = self.bus.get(point)
            if old is not None:
                items.append((point, old.with_quality(Quality.COMM_LOST, mono, wall)))
        items.extend(self._status_items("COMM_LOST", mono, wall))
        self.bus.publish_many(items)
        snap = self.stats.snapshot()
        self.journal.post(Event(wall, self.status_point, "comm_lost",
                                f"Link {self.link.name} COMM_LOST: no good poll for "
                                f"{self.link.comm_loss_periods} periods ({snap['last_error'] or 'no reply'})",
                                Severity.ALARM, point=self.status_point))

    def _publish_status(self, status: str) -> None:
        self.bus.publish_many(self._status_items(status, self.clock.monotonic(), self.clock.time()))

    def _status_items(self, status: str, mono: float, wall: float) -> list[tuple[str, Sample]]:
        snap = self.stats.snapshot()
        values = {"status": status, "frames_ok": snap["frames_ok"], "errors": snap["errors"] + snap["timeouts"],
                  "latency_ms": snap["latency_p50_ms"] if snap["latency_p50_ms"] is not None else float("nan")}
        return [(f"{self.status_point}.{k}", Sample(v, wall, mono, wall)) for k, v in values.items()]

    def _drain_commands(self) -> None:
        for q in self._queues.values():
            while not q.empty():
                pending = q.get_nowait()
                try:
                    self.execute(pending)
                except LinkError as exc:
                    pending.reply(CommandStatus.TIMEOUT if exc.timeout else CommandStatus.REJECTED, str(exc))
                    raise

    def _reject_commands(self, why: str) -> None:
        for q in self._queues.values():
            while not q.empty():
                q.get_nowait().reply(CommandStatus.REJECTED, f"{self.link.name}: {why}")
