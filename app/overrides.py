"""Operator overrides ("forcing"): owner of Commands on `site.overrides`.

`force` {"point", "value"}: the point is replaced on the DataBus by a MANUAL-quality sample (every
consumer sees MANUAL: screens, historian, protection) while its source keeps publishing underneath;
`release` {"point"}: the source's value is back. Who forced what, when and why is kept (`active`),
posted to the journal (historian), and audited by the GUI's SBO path. Only scalar points can be forced.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from app.core.clock import Clock
from app.core.commands import CommandRouter, CommandStatus, PendingCommand
from app.core.databus import DataBus
from app.core.events import Event, EventJournal, Severity
from app.core.sample import Quality, Sample

TARGET = "site.overrides"


@dataclass(frozen=True)
class Override:
    point: str
    value: float
    user: str
    since: float
    reason: str


class PointOverrides:
    name = "overrides"

    def __init__(self, bus: DataBus, router: CommandRouter, journal: EventJournal, clock: Clock,
                 period_s: float = 0.1) -> None:
        self.bus, self.router, self.journal, self.clock, self.period_s = bus, router, journal, clock, period_s
        self.active: dict[str, Override] = {}
        self._queue = router.register(TARGET)

    def run(self, stop: threading.Event) -> None:
        while not self.clock.wait(stop, self.period_s):
            while not self._queue.empty():
                self.handle(self._queue.get_nowait())

    def on_stopped(self) -> None:
        self.router.unregister(TARGET)

    def handle(self, pending: PendingCommand) -> None:
        cmd = pending.command
        value = cmd.value if isinstance(cmd.value, dict) else {}
        point = value.get("point")
        current = self.bus.get(point) if isinstance(point, str) else None
        wall, mono = self.clock.time(), self.clock.monotonic()
        if cmd.action == "force":
            if current is None:
                pending.reply(CommandStatus.REJECTED, f"no point {point!r} on the data bus")
            elif current.is_vector or isinstance(current.value, str):
                pending.reply(CommandStatus.REJECTED, f"{point} is not a number; only scalar points can be forced")
            elif not isinstance(value.get("value"), (int, float)) or isinstance(value.get("value"), bool):
                pending.reply(CommandStatus.REJECTED, f"force {point}: the value must be a number")
            elif not cmd.reason:
                pending.reply(CommandStatus.REJECTED, f"force {point}: a reason is required")
            else:
                forced = float(value["value"])
                self.bus.force(point, Sample(forced, wall, mono, wall, Quality.MANUAL))
                self.active[point] = Override(point, forced, cmd.user, wall, cmd.reason)
                self.journal.post(Event(wall, "operator", "force", f"MANUAL {point} = {forced:g} by {cmd.user} "
                                        f"(was {current.value}): {cmd.reason}", Severity.WARNING, point=point,
                                        value=forced))
                pending.reply(CommandStatus.ACCEPTED, f"{point} forced to {forced:g} (MANUAL)",
                              self.bus.get(point).value)
        elif cmd.action == "release":
            if isinstance(point, str) and self.bus.release(point):
                self.active.pop(point, None)
                self.journal.post(Event(wall, "operator", "release", f"{point} released by {cmd.user}", point=point))
                pending.reply(CommandStatus.ACCEPTED, f"{point} released")
            else:
                pending.reply(CommandStatus.REJECTED, f"{point} is not forced")
        else:
            pending.reply(CommandStatus.REJECTED, f"unknown override action {cmd.action!r}")
