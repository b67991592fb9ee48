"""Sends one rack's balancing decisions to its BMS; called by the estimation thread once per frame.

A decision becomes `Command(f"{rack}.balancing_cells_command", "write", cells, "estimation", reason)`
(app/core/balancing_command.py) to the rack's link driver when its cells differ from those the BMS
last accepted; the first frame sends too, so a command left in the BMS by an earlier run is cleared.
One command is in flight at a time and never waited for: its result is taken on a later frame and
told in `status` (published as `<rack>.balancing_command`):

  "sent: 3,17", "sent: none"          the BMS took it (read back where its protocol allows)
  "rejected: ...", "timeout: ..."     sent again after RETRY_S, or at once for a new decision
  "not supported by the BMS: ..."     the protocol has no balancing command: never sent again

A BMS with a balancing timeout (app/core/balancing_command.py TIMEOUT_POINT) is first given
`timeout_s` (a non-empty set waits until it holds it; clears never wait), and a non-empty set is then
written again at least every timeout_s / 3 while it stands, so the BMS stops bleeding by itself when
the refreshes stop. Without a timeout a set is sent only when it changes.

Each result that is a failure or changes `status` is posted to the event journal when one is given
(a refresh or the timeout accepted is not).
"""
from __future__ import annotations

import math
from concurrent.futures import Future

from app.core.balancing_command import NOT_SUPPORTED, POINT, TIMEOUT_POINT, format_cells
from app.core.commands import Command, CommandResult, CommandRouter
from app.core.events import Event, EventJournal, Severity
from app.estimation.balancing import BalancingDecision

USER = "estimation"
RETRY_S = 30.0
TIMEOUT_S = 60           # BMS balancing timeout: a few refreshes and a retry fit in it; a lost ESMS bleeds ~1 min
FRAMES_PER_TIMEOUT = 6   # a refresh is sent on a frame and written up to a frame later: T/3 + 2 frames <= 2T/3


def timeout_for(frame_s: float) -> int:
    """The BMS balancing timeout (whole seconds) for decisions every `frame_s`: TIMEOUT_S, longer for
    slow frames so that refreshes always land in time."""
    return max(TIMEOUT_S, math.ceil(FRAMES_PER_TIMEOUT * frame_s))


def reason(decision: BalancingDecision) -> str:
    """Why the command is sent: the cells or a stop, the measured spread, what inhibits balancing."""
    what = f"balance cells {format_cells(decision.cells)}" if decision.cells else "stop balancing"
    spread = f"ΔV {1000 * decision.dv_v:.0f} mV"
    if decision.metric == "soc":
        spread += f", ΔSOC {100 * decision.dsoc:.1f} %"
    return f"{what}: {spread}" + (f" ({decision.inhibit})" if decision.inhibit else "")


class BalancingSender:
    """The balancing command of one rack (`rack` path) through `router`; see the module docstring."""

    def __init__(self, rack: str, router: CommandRouter, journal: EventJournal | None = None,
                 timeout_s: int = TIMEOUT_S) -> None:
        self.rack, self.target = rack, f"{rack}.{POINT}"
        self.router, self.journal, self.timeout_s = router, journal, timeout_s
        self.accepted: tuple[int, ...] | None = None      # cells the BMS holds (None: not known)
        self.supported = True
        self.timeout_set = False                           # the BMS holds timeout_s
        self.status = ""
        self._pending: Future[CommandResult] | None = None
        self._sent_at = 0.0                                # when the command in flight was sent
        self._written_at = -math.inf                       # when the accepted cells were sent
        self._failed: tuple[int, ...] | None = None
        self._retry_at = self._timeout_retry_at = 0.0

    def update(self, decision: BalancingDecision, now: float, has_timeout: bool = False) -> str:
        """Take the result of the command in flight, send `decision.cells` if they differ from what the
        BMS holds (or are due for a refresh); `now` is the clock's wall time, `has_timeout` whether the
        BMS has a balancing timeout. Returns `status`."""
        if self._pending is not None and self._pending.done():
            result, self._pending = self._pending.result(), None
            self._take(result, now)
        if self._pending is None and self.supported:
            command = self._next(decision, now, has_timeout)
            if command is not None:
                self._pending, self._sent_at = self.router.submit(command), now
        return self.status

    def _next(self, decision: BalancingDecision, now: float, has_timeout: bool) -> Command | None:
        cells = decision.cells
        if cells and has_timeout and not self.timeout_set:
            if now < self._timeout_retry_at:
                return None
            return Command(f"{self.rack}.{TIMEOUT_POINT}", "write", self.timeout_s, USER,
                           f"balancing timeout {self.timeout_s} s")
        refresh = bool(cells) and has_timeout and now >= self._written_at + self.timeout_s / 3
        due = cells != self._failed or now >= self._retry_at
        if (cells != self.accepted or refresh) and due:
            return Command(self.target, "write", cells, USER, reason(decision))
        return None

    def stop(self) -> Future[CommandResult] | None:
        """Clear the BMS's command (the estimation thread stops): the future of the clear, None if the
        BMS holds no cells."""
        if not (self.supported and self.accepted):
            return None
        return self.router.submit(Command(self.target, "write", (), USER, "stop balancing: estimation stopped"))

    def _take(self, result: CommandResult, now: float) -> None:
        before, cells = self.status, result.command.value
        if result.command.target != self.target:          # the balancing timeout
            self.timeout_set = result.ok
            if not result.ok:
                self._timeout_retry_at = now + RETRY_S
                self.status = f"{result.status.value}: {result.message}"
        elif result.ok:
            self.accepted, self._failed, self._written_at = cells, None, self._sent_at
            self.status = f"sent: {format_cells(cells) or 'none'}"
        elif NOT_SUPPORTED in result.message:
            self.supported = False
            self.status = f"not supported by the BMS: {result.message}"
        else:
            self._failed, self._retry_at = cells, now + RETRY_S
            self.status = f"{result.status.value}: {result.message}"
        if self.journal is not None and not (result.ok and self.status == before):
            self.journal.post(Event(now, "estimation", "balancing_command",
                                    f"{self.rack}: {result.command.reason} -> {self.status}",
                                    Severity.INFO if result.ok or not self.supported else Severity.WARNING,
                                    point=f"{self.rack}.balancing_command"))
