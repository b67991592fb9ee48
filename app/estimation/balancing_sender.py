"""Sends one rack's balancing decisions to its BMS; called by the estimation thread once per frame.

A decision becomes `Command(f"{rack}.balancing_cells_command", "write", cells, "estimation", reason)`
(app/core/balancing_command.py) to the rack's link driver when its cells differ from those the BMS
last accepted; the first frame sends too, so a command left in the BMS by an earlier run is cleared.
One command is in flight at a time and never waited for: its result is taken on a later frame and
told in `status` (published as `<rack>.balancing_command`):

  "sent: 3,17", "sent: none"          the BMS took it (read back where its protocol allows)
  "rejected: ...", "timeout: ..."     sent again after RETRY_S, or at once for a new decision
  "not supported by the BMS: ..."     the protocol has no balancing command: never sent again

Each result is posted to the event journal when one is given.
"""
from __future__ import annotations

from concurrent.futures import Future

from app.core.balancing_command import NOT_SUPPORTED, POINT, format_cells
from app.core.commands import Command, CommandResult, CommandRouter
from app.core.events import Event, EventJournal, Severity
from app.estimation.balancing import BalancingDecision

USER = "estimation"
RETRY_S = 30.0


def reason(decision: BalancingDecision) -> str:
    """Why the command is sent: the cells or a stop, the measured spread, what inhibits balancing."""
    what = f"balance cells {format_cells(decision.cells)}" if decision.cells else "stop balancing"
    spread = f"ΔV {1000 * decision.dv_v:.0f} mV"
    if decision.metric == "soc":
        spread += f", ΔSOC {100 * decision.dsoc:.1f} %"
    return f"{what}: {spread}" + (f" ({decision.inhibit})" if decision.inhibit else "")


class BalancingSender:
    """The balancing command of one rack (`rack` path) through `router`; see the module docstring."""

    def __init__(self, rack: str, router: CommandRouter, journal: EventJournal | None = None) -> None:
        self.rack, self.target = rack, f"{rack}.{POINT}"
        self.router, self.journal = router, journal
        self.accepted: tuple[int, ...] | None = None      # cells the BMS holds (None: not known)
        self.supported = True
        self.status = ""
        self._pending: Future[CommandResult] | None = None
        self._failed: tuple[int, ...] | None = None
        self._retry_at = 0.0

    def update(self, decision: BalancingDecision, now: float) -> str:
        """Take the result of the command in flight, send `decision.cells` if they differ from what the
        BMS holds; `now` is the clock's wall time. Returns `status`."""
        if self._pending is not None and self._pending.done():
            result, self._pending = self._pending.result(), None
            self._take(result, now)
        cells = decision.cells
        due = cells != self._failed or now >= self._retry_at
        if self._pending is None and self.supported and cells != self.accepted and due:
            self._pending = self.router.submit(Command(self.target, "write", cells, USER, reason(decision)))
        return self.status

    def stop(self) -> Future[CommandResult] | None:
        """Clear the BMS's command (the estimation thread stops): the future of the clear, None if the
        BMS holds no cells."""
        if not (self.supported and self.accepted):
            return None
        return self.router.submit(Command(self.target, "write", (), USER, "stop balancing: estimation stopped"))

    def _take(self, result: CommandResult, now: float) -> None:
        cells = result.command.value
        if result.ok:
            self.accepted, self._failed = cells, None
            self.status = f"sent: {format_cells(cells) or 'none'}"
        elif NOT_SUPPORTED in result.message:
            self.supported = False
            self.status = f"not supported by the BMS: {result.message}"
        else:
            self._failed, self._retry_at = cells, now + RETRY_S
            self.status = f"{result.status.value}: {result.message}"
        if self.journal is not None:
            self.journal.post(Event(now, "estimation", "balancing_command",
                                    f"{self.rack}: {result.command.reason} -> {self.status}",
                                    Severity.INFO if result.ok or not self.supported else Severity.WARNING,
                                    point=f"{self.rack}.balancing_command"))
