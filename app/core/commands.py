"""Commands travel the other way from samples: Command -> owning thread's queue -> CommandResult.

A driver (or the simulator's PCS link) registers the target prefix it owns with the CommandRouter;
anyone (protection, EMS, operator) submits and gets a Future of the result. Results are posted to
the event journal so they reach the historian/audit.
"""
from __future__ import annotations

import enum
import itertools
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

_ids = itertools.count(1)


class CommandStatus(enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class Command:
    """target: point/device path (`site.pcs1`); action: verb (`set_active_power_kw`)."""

    target: str
    action: str
    value: Any = None
    user: str = "system"
    reason: str = ""
    id: int = field(default_factory=lambda: next(_ids))


@dataclass(frozen=True)
class CommandResult:
    command: Command
    status: CommandStatus
    message: str = ""
    readback: Any = None

    @property
    def ok(self) -> bool:
        return self.status is CommandStatus.ACCEPTED


@dataclass
class PendingCommand:
    command: Command
    future: "Future[CommandResult]"

    def reply(self, status: CommandStatus, message: str = "", readback: Any = None) -> None:
        if not self.future.done():
            self.future.set_result(CommandResult(self.command, status, message, readback))


class CommandRouter:
    """Routes commands to the queue of the thread that owns the target (longest prefix wins)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[str, "queue.SimpleQueue[PendingCommand]"] = {}

    def register(self, prefix: str) -> "queue.SimpleQueue[PendingCommand]":
        """Claim a target prefix; returns the queue the owner thread must drain."""
        q: "queue.SimpleQueue[PendingCommand]" = queue.SimpleQueue()
        with self._lock:
            self._owners[prefix] = q
        return q

    def unregister(self, prefix: str) -> None:
        with self._lock:
            self._owners.pop(prefix, None)

    def submit(self, command: Command) -> "Future[CommandResult]":
        """Queue the command for its owner; the future is rejected at once if nobody owns the target."""
        pending = PendingCommand(command, Future())
        with self._lock:
            owner = max((p for p in self._owners if command.target == p or command.target.startswith(p + ".")),
                        key=len, default=None)
            q = self._owners.get(owner) if owner else None
        if q is None:
            pending.reply(CommandStatus.REJECTED, f"no link owns {command.target}")
        else:
            q.put(pending)
        return pending.future
