"""BalancingSender (app/estimation/balancing_sender.py): what it sends to the owner of a rack, when, and
what it reports; the test plays the owning link thread on the router's queue."""
from __future__ import annotations

from app.core.commands import CommandRouter, CommandStatus
from app.core.events import EventJournal, Severity
from app.estimation.balancing import BalancingDecision
from app.estimation.balancing_sender import RETRY_S, TIMEOUT_S, BalancingSender, reason, timeout_for

RACK = "site.bess1.rack01"


def _decision(cells=(), dv_v=0.042, metric="voltage", inhibit="", dsoc=0.031):
    return BalancingDecision(tuple(cells), (), dv_v, dsoc, metric, inhibit, 0.0)


class Owner:
    """The rack's link thread: takes the queued commands and answers them."""

    def __init__(self, router: CommandRouter) -> None:
        self.queue = router.register(RACK)
        self.seen = []

    def answer(self, status=CommandStatus.ACCEPTED, message="") -> list:
        taken = []
        while not self.queue.empty():
            pending = self.queue.get_nowait()
            taken.append(pending.command)
            pending.reply(status, message)
        self.seen += taken
        return taken


def _setup():
    router, journal = CommandRouter(), EventJournal()
    return BalancingSender(RACK, router, journal), Owner(router), journal


def test_the_first_frame_clears_and_only_a_changed_set_of_cells_is_sent_again():
    sender, owner, journal = _setup()
    sender.update(_decision(), 0.0)
    (clear,) = owner.answer()
    assert (clear.target, clear.value, clear.user) == (f"{RACK}.balancing_cells_command", (), "estimation")
    assert sender.update(_decision(), 1.0) == "sent: none"
    for t in range(2, 5):
        sender.update(_decision(), float(t))
    assert owner.answer() == []
    sender.update(_decision((3, 17)), 5.0)
    (cmd,) = owner.answer()
    assert cmd.value == (3, 17) and cmd.reason == "balance cells 3,17: ΔV 42 mV"
    assert sender.update(_decision((3, 17)), 6.0) == "sent: 3,17"
    assert owner.answer() == []
    assert [e.message for e in journal.since(0)][-1] == f"{RACK}: balance cells 3,17: ΔV 42 mV -> sent: 3,17"


def test_a_rejected_command_is_retried_after_the_retry_time_or_at_once_for_a_new_decision():
    sender, owner, journal = _setup()
    sender.update(_decision((4,)), 0.0)
    owner.answer(CommandStatus.REJECTED, "bms1: link offline")
    assert sender.update(_decision((4,)), 1.0) == "rejected: bms1: link offline"
    assert journal.since(0)[-1].severity is Severity.WARNING
    sender.update(_decision((4,)), RETRY_S)
    assert owner.answer() == []
    sender.update(_decision((4,)), 1.0 + RETRY_S)
    assert [c.value for c in owner.answer(CommandStatus.TIMEOUT, "no response")] == [(4,)]
    sender.update(_decision((4, 5)), 2.0 + RETRY_S)                       # a new decision: sent at once
    assert [c.value for c in owner.answer()] == [(4, 5)]
    assert sender.update(_decision((4, 5)), 3.0 + RETRY_S) == "sent: 4,5"


def test_a_bms_without_a_balancing_command_is_reported_and_never_asked_again():
    sender, owner, journal = _setup()
    sender.update(_decision((2,)), 0.0)
    owner.answer(CommandStatus.REJECTED, f"{RACK}.balancing_cells_command: daly has no balancing command")
    status = sender.update(_decision((2,)), 1.0)
    assert status == f"not supported by the BMS: {RACK}.balancing_cells_command: daly has no balancing command"
    for t, cells in enumerate([(), (2,), (2, 3)], start=2):
        assert sender.update(_decision(cells), float(t) + RETRY_S) == status
    sender.stop()
    assert owner.answer() == [] and len(owner.seen) == 1
    assert journal.since(0)[-1].severity is Severity.INFO


def test_stop_clears_only_a_bms_that_holds_cells():
    sender, owner, _ = _setup()
    sender.update(_decision(), 0.0)
    owner.answer()
    sender.update(_decision(), 1.0)
    sender.stop()
    assert owner.answer() == []
    sender.update(_decision((7,)), 2.0)
    owner.answer()
    sender.update(_decision((7,)), 3.0)
    sender.stop()
    (clear,) = owner.answer()
    assert clear.value == () and clear.reason == "stop balancing: estimation stopped"


def test_a_bms_with_a_timeout_gets_it_first_and_a_standing_set_is_refreshed_every_third_of_it():
    sender, owner, journal = _setup()
    sender.update(_decision((4,)), 0.0, has_timeout=True)
    (timeout,) = owner.answer()
    assert (timeout.target, timeout.value, timeout.user) == (f"{RACK}.balancing_timeout_s", TIMEOUT_S, "estimation")
    sender.update(_decision((4,)), 1.0, has_timeout=True)
    assert [c.value for c in owner.answer()] == [(4,)]
    refreshed = []
    for t in range(2, 62):
        assert sender.update(_decision((4,)), float(t), has_timeout=True) == "sent: 4"
        refreshed += [t for c in owner.answer() if c.value == (4,)]
    assert refreshed == [21, 41, 61]                                    # written at 1, then every 20 s
    assert [e.message for e in journal.since(0)] == [f"{RACK}: balance cells 4: ΔV 42 mV -> sent: 4"]
    sender.update(_decision(()), 62.0, has_timeout=True)
    assert [c.value for c in owner.answer()] == [()]
    for t in range(63, 200):                                            # no set, nothing to refresh
        sender.update(_decision(()), float(t), has_timeout=True)
    assert owner.answer() == []


def test_a_clear_never_waits_for_the_timeout_and_a_set_waits_until_the_bms_holds_it():
    sender, owner, journal = _setup()
    sender.update(_decision(), 0.0, has_timeout=True)
    assert [c.value for c in owner.answer()] == [()]                   # the first frame clears at once
    sender.update(_decision((2,)), 1.0, has_timeout=True)
    owner.answer(CommandStatus.REJECTED, f"{RACK}.balancing_timeout_s: read-back 0 != 60")
    status = sender.update(_decision((2,)), 2.0, has_timeout=True)
    assert status == f"rejected: {RACK}.balancing_timeout_s: read-back 0 != 60"
    assert journal.since(0)[-1].severity is Severity.WARNING
    sender.update(_decision((2,)), 2.0 + RETRY_S - 0.1, has_timeout=True)
    assert owner.answer() == []                                         # no set without the timeout
    sender.update(_decision((2,)), 2.0 + RETRY_S, has_timeout=True)
    assert [c.target for c in owner.answer()] == [f"{RACK}.balancing_timeout_s"]


def test_the_timeout_fits_the_frame_period():
    assert timeout_for(1.0) == TIMEOUT_S == 60 and timeout_for(30.0) == 180


def test_the_reason_names_the_spread_and_what_inhibits():
    assert reason(_decision((1, 2), dv_v=0.0312)) == "balance cells 1,2: ΔV 31 mV"
    assert reason(_decision(metric="soc", dv_v=0.004)) == "stop balancing: ΔV 4 mV, ΔSOC 3.1 %"
    assert reason(_decision(inhibit="cell too hot")) == "stop balancing: ΔV 42 mV (cell too hot)"
