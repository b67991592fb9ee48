"""Training mode, simulator side: the owner of Commands on `site.sim` (only with the in-process simulator).

Actions: `inject_fault` (value: a plant or link fault spec, app/sim/plant_faults.py and faults.py;
readback: the fault's id), `clear_fault` (value: an id) and `clear_all_faults`. Injecting a kind
again on the same target replaces the earlier fault. Every change is posted to the journal; the
operator's authorisation and audit are the caller's (the GUI's session). `active` is the immutable
list of faults in force, replaced (never mutated) by this thread, so the GUI reads it without a lock.
"""
from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass

from app.core.clock import Clock
from app.core.commands import CommandRouter, CommandStatus, PendingCommand
from app.core.errors import UserError
from app.core.events import Event, EventJournal, Severity
from app.sim.faults import LINK_FAULT_KINDS, FaultInjector, LinkFault, parse_link_fault
from app.sim.plant_faults import FAULT_KINDS, PlantFault, PlantFaultInjector, parse_fault
from app.sim.simulator import Simulator

TARGET = "site.sim"
KINDS = {**FAULT_KINDS, **LINK_FAULT_KINDS}
"""Every fault kind the training mode offers, plant and link."""


@dataclass(frozen=True)
class TrainingFault:
    """A fault in force: its id, spec, what it acts on, who injected it and when (wall time)."""

    id: int
    spec: str
    target: str
    user: str
    since: float


class TrainingFaults:
    """Supervisor worker: drains the `site.sim` command queue every `period_s` and keeps `active`."""

    name = "training"

    def __init__(self, sim: Simulator, router: CommandRouter, journal: EventJournal, clock: Clock,
                 period_s: float = 0.1) -> None:
        self.site = sim.site
        self.router, self.journal, self.clock, self.period_s = router, journal, clock, period_s
        self._plant = PlantFaultInjector.for_simulator(sim)
        self._links = FaultInjector.for_simulator(sim)
        self.links: list[str] = self._links.links
        self.active: tuple[TrainingFault, ...] = ()
        self._faults: dict[int, tuple[TrainingFault, PlantFault | LinkFault, int | None]] = {}
        self._ids = itertools.count(1)
        self._queue = router.register(TARGET)

    def parse(self, spec: str) -> PlantFault | LinkFault:
        """The fault a spec names, checked against the site and the simulated links; UserError if bad."""
        kind = spec.strip().partition(":")[0].strip()
        return parse_link_fault(spec, self.links) if kind in LINK_FAULT_KINDS else parse_fault(spec, self.site)

    def run(self, stop: threading.Event) -> None:
        while not self.clock.wait(stop, self.period_s):
            while not self._queue.empty():
                self.handle(self._queue.get_nowait())
            self._refresh()

    def on_stopped(self) -> None:
        self.router.unregister(TARGET)

    def handle(self, pending: PendingCommand) -> None:
        """Apply one command; `active` is up to date before the reply."""
        cmd = pending.command
        status, readback = CommandStatus.ACCEPTED, None
        try:
            if cmd.action == "inject_fault" and isinstance(cmd.value, str):
                readback = self._inject(self.parse(cmd.value), cmd.user, cmd.reason)
                message = f"training fault #{readback} {cmd.value} injected"
            elif cmd.action == "clear_fault" and isinstance(cmd.value, int) and not isinstance(cmd.value, bool):
                self._clear(cmd.value, cmd.user)
                message = f"training fault #{cmd.value} cleared"
            elif cmd.action == "clear_all_faults":
                ids = list(self._faults)
                for fid in ids:
                    self._clear(fid, cmd.user)
                message = f"{len(ids)} training faults cleared"
            else:
                status, message = CommandStatus.REJECTED, (f"{TARGET}: no action {cmd.action!r} with value "
                                                           f"{cmd.value!r} (inject_fault SPEC, clear_fault ID, "
                                                           "clear_all_faults)")
        except UserError as exc:
            status, message = CommandStatus.REJECTED, str(exc)
        self._refresh()
        pending.reply(status, message, readback)

    def _inject(self, fault: PlantFault | LinkFault, user: str, reason: str) -> int:
        if isinstance(fault, LinkFault):
            self._links.apply(fault)
            plant_id = None
        else:
            plant_id = self._plant.inject(fault)
        for fid, (_, old, _) in list(self._faults.items()):       # replaced in the injectors too
            if (old.kind, old.target) == (fault.kind, fault.target):
                del self._faults[fid]
        fid = next(self._ids)
        wall = self.clock.time()
        self._faults[fid] = (TrainingFault(fid, str(fault), fault.target, user, wall), fault, plant_id)
        self.journal.post(Event(wall, TARGET, "inject_fault", f"TRAINING: fault #{fid} {fault} injected by {user}"
                                + (f": {reason}" if reason else ""), Severity.WARNING))
        return fid

    def _clear(self, fid: int, user: str) -> None:
        if fid not in self._faults:
            raise UserError(f"no active training fault #{fid}")
        entry, fault, plant_id = self._faults.pop(fid)
        if isinstance(fault, LinkFault):
            self._links.apply(fault, on=False)
        else:
            self._plant.clear(plant_id)
        self.journal.post(Event(self.clock.time(), TARGET, "clear_fault",
                                f"TRAINING: fault #{fid} {entry.spec} cleared by {user}"))

    def _refresh(self) -> None:
        """Drop faults that ended by themselves (a BMS reboot) and publish the new `active`."""
        if any(plant_id is not None for _, _, plant_id in self._faults.values()):
            in_plant = self._plant.active()
            for fid, (_, _, plant_id) in list(self._faults.items()):
                if plant_id is not None and plant_id not in in_plant:
                    del self._faults[fid]
        self.active = tuple(entry for entry, _, _ in self._faults.values())
