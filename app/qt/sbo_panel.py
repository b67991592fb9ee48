"""Select-before-operate panel: every operator command goes select -> confirm -> execute -> result.

Select shows exactly what will happen, the current and requested value and the outcome of the
authorisation and interlock checks (SelectBeforeOperate does both, and audits every step), then counts
down the confirmation timeout. Confirm re-checks on fresh values and submits the Command to its owner;
the result comes back on the Future's done callback (any thread) through a queued signal, so the GUI
thread never waits. The outcome is shown as verified (read-back), executed, failed, refused or timed
out. Critical commands ask for the password first when the re-authentication window would not last
until the confirmation deadline."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6 import QtCore, QtGui, QtWidgets

from app.core.commands import Command, CommandResult, CommandStatus
from app.qt.session import OperatorSession
from app.qt.style import set_state
from app.security.interlocks import usable_values
from app.security.roles import CRITICAL, CommandKind, permitted
from app.security.sbo import CommandRefused, SboToken, SelectBeforeOperate

if TYPE_CHECKING:
    from app.runtime import Runtime

RESULT_TIMEOUT_S = 10.0
"""A confirmed command with no result from its owner by then is recorded as failed (link stalled)."""

HEADLINE = {"verified": "✔ VERIFIED", "executed": "● EXECUTED, no read-back", "failed": "✖ FAILED",
            "refused": "✖ REFUSED", "timeout": "⌛ TIMED OUT", "cancelled": "○ CANCELLED",
            "selected": "▶ SELECTED", "executing": "⏳ EXECUTING", "notice": "✖ NOT SELECTED"}
STATE = {"failed": "alarm", "refused": "alarm", "timeout": "warn", "notice": "warn"}
HISTORY_LINES = 50


@dataclass(frozen=True)
class _Sent:
    token_id: str
    command: Command
    description: str


class SboPanel(QtWidgets.QGroupBox):
    """One command at a time. `request(kind, command, description)` selects; Confirm/Cancel (or
    Ctrl+Enter / Esc) finish it; the outcome (verified, executed, failed, refused, timed out, cancelled)
    is shown in `result` and listed in `history`."""

    _result = QtCore.Signal(object)              # CommandResult, emitted from the owner's thread

    def __init__(self, runtime: "Runtime", session: OperatorSession, sbo: SelectBeforeOperate) -> None:
        super().__init__("Select before operate")
        self.runtime, self.session, self.sbo = runtime, session, sbo
        self.clock = runtime.security.clock
        self._token: SboToken | None = None
        self._description = ""
        self._sent: dict[int, _Sent] = {}        # command id -> what is awaiting its result
        lay = QtWidgets.QVBoxLayout(self)
        self.what = QtWidgets.QLabel("Nothing selected. Choose a command on the left.")
        self.what.setWordWrap(True)
        self.what.setObjectName("sboWhat")
        lay.addWidget(self.what)
        self.change = QtWidgets.QLabel("")
        self.change.setObjectName("value")
        self.change.setWordWrap(True)
        lay.addWidget(self.change)
        self.checks = QtWidgets.QLabel("")
        self.checks.setWordWrap(True)
        lay.addWidget(self.checks)
        self.countdown = QtWidgets.QLabel("")
        self.countdown.setObjectName("sboCountdown")
        lay.addWidget(self.countdown)
        buttons = QtWidgets.QHBoxLayout()
        lay.addLayout(buttons)
        self.confirm_button = QtWidgets.QPushButton("Confirm (Ctrl+Enter)")
        self.confirm_button.clicked.connect(self.confirm)
        self.cancel_button = QtWidgets.QPushButton("Cancel (Esc)")
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.confirm_button)
        buttons.addWidget(self.cancel_button)
        for key, slot in (("Ctrl+Return", self.confirm), ("Ctrl+Enter", self.confirm), ("Escape", self.cancel)):
            QtGui.QShortcut(QtGui.QKeySequence(key), self, activated=slot,
                            context=QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.result = QtWidgets.QLabel("")
        self.result.setObjectName("sboResult")
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.result)
        lay.addWidget(QtWidgets.QLabel("Recent commands (newest first)"))
        self.history = QtWidgets.QListWidget()
        self.history.setWordWrap(True)
        lay.addWidget(self.history, 1)
        self._result.connect(self._on_result)
        self.session.changed.connect(self._session_changed)
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(200)
        self.timer.timeout.connect(self._tick)
        self.timer.start()
        self._set_buttons()

    # --- the four steps -------------------------------------------------------------------
    def request(self, kind: CommandKind, command: Command, description: str) -> bool:
        """Select `command` (cancelling a pending selection first). True if selected; otherwise the
        refusal (authorisation or interlocks, each reason on its own line) is shown."""
        if self._sent:
            busy = next(iter(self._sent.values()))
            self.notice(f"{description}: wait for the result of “{busy.description}” first")
            return False
        if self._token is not None:
            self.cancel()
        self._reauthenticate_for(kind)
        self.what.setText(description)
        self.change.setText("")
        try:
            token = self.sbo.select(command, kind, self.session.session, self.clock.monotonic(), self._values())
        except CommandRefused as exc:
            self.checks.setText("Refused at select: nothing was sent.")
            self._show("refused", description, exc.reasons)
            return False
        self._token, self._description = token, description
        self.change.setText(f"{command.target}: {_fmt(token.old_value)} → {_fmt(command.value)}"
                            f"  ({command.action})")
        self.checks.setText("Authorised; no interlock refuses it (checked now on live values, and again on "
                            "confirm).")
        self._show("selected", description)
        self._tick()
        self.confirm_button.setFocus()
        return True

    def confirm(self) -> None:
        """Operate: re-checked on fresh values, then submitted; the result arrives asynchronously."""
        token = self._token
        if token is None:
            return
        for attempt in (1, 2):
            try:
                command = self.sbo.confirm(token.id, self.session.session, self.clock.monotonic(), self._values())
                break
            except CommandRefused as exc:
                if self.clock.monotonic() > token.expires_at:
                    self._timed_out()
                    return
                if attempt == 1 and exc.needs_reauth and self.session.reauthenticate():
                    continue
                self._show("refused", f"{self._description} (at confirm; still selected until the timeout)",
                           exc.reasons)
                return
        self._token = None
        self._sent[command.id] = _Sent(token.id, command, self._description)
        self.countdown.setText("")
        self._show("executing", f"{self._description}: sent to the owner of {command.target}, awaiting the "
                   "result and read-back")
        QtCore.QTimer.singleShot(int(RESULT_TIMEOUT_S * 1000), self, lambda cid=command.id: self._no_result(cid))
        self.runtime.router.submit(command).add_done_callback(lambda f: self._result.emit(f.result()))

    def cancel(self) -> None:
        token, self._token = self._token, None
        if token is None:
            return
        self.countdown.setText("")
        try:
            self.sbo.cancel(token.id, self.clock.monotonic())
        except CommandRefused:          # it timed out in the meantime (and was audited as such)
            self._show("timeout", self._timeout_text())
            return
        self._show("cancelled", f"{self._description}: nothing was sent")

    def hideEvent(self, event) -> None:
        """Leaving the screen (or closing the window) deselects: a selection is never left behind."""
        self.cancel()
        super().hideEvent(event)

    def _on_result(self, result: CommandResult) -> None:
        sent = self._sent.pop(result.command.id, None)
        if sent is None:                # already recorded as failed for want of a result
            self._history(f"late result for “{result.command.target}”: {result.status.value} {result.message}")
            return
        outcome = self.sbo.record_result(sent.token_id, result)
        detail = [result.message] if result.message else []
        if outcome == "verified" and isinstance(result.readback, (int, float, str)):
            detail.append(f"read-back {_fmt(result.readback)} (requested {_fmt(sent.command.value)})")
        self._show(outcome, sent.description, detail)

    def _no_result(self, command_id: int) -> None:
        sent = self._sent.get(command_id)
        if sent is not None:
            self._on_result(CommandResult(sent.command, CommandStatus.TIMEOUT,
                                          f"no result from the owner within {RESULT_TIMEOUT_S:g} s"))

    def notice(self, text: str) -> None:
        """Show why nothing was selected (e.g. a field left empty); not a command step, not audited."""
        self._show("notice", text)

    # --- helpers ----------------------------------------------------------------------------
    def _reauthenticate_for(self, kind: CommandKind) -> None:
        """Ask the password before selecting when it would be needed before the confirmation deadline."""
        s = self.session.session
        if s is None:
            return
        now = self.clock.monotonic()
        decision = self.runtime.security.authorise(s, kind)
        stale_by_deadline = kind in CRITICAL and permitted(s.role, kind) and not s.auth_fresh(now + self.sbo.timeout_s)
        if decision.needs_reauth or (decision.allowed and stale_by_deadline):
            self.session.reauthenticate()

    def _values(self) -> dict[str, Any]:
        return usable_values(self.runtime.bus.snapshot())

    def _tick(self) -> None:
        now = self.clock.monotonic()
        expired = self.sbo.expire(now)
        if self._token is not None and any(t.id == self._token.id for t in expired):
            self._timed_out()
        elif self._token is not None:
            left = max(0, math.ceil(self._token.expires_at - now))
            self.countdown.setText(f"Confirm within {left} s (Ctrl+Enter) — Esc cancels")
        self._set_buttons()

    def _timed_out(self) -> None:
        self._token = None
        self.countdown.setText("")
        self._show("timeout", self._timeout_text())

    def _timeout_text(self) -> str:
        return f"{self._description}: not confirmed within {self.sbo.timeout_s:g} s, nothing was sent: select again"

    def _session_changed(self, _text: str) -> None:
        s = self.session.session
        if self._token is not None and (s is None or s.id != self._token.session_id):
            self.cancel()

    def _set_buttons(self) -> None:
        self.confirm_button.setEnabled(self._token is not None)
        self.cancel_button.setEnabled(self._token is not None)

    def _show(self, outcome: str, text: str, reasons: list[str] | tuple[str, ...] = ()) -> None:
        lines = [f"{HEADLINE[outcome]}: {text}", *(f"• {r}" for r in reasons)]
        self.result.setText("\n".join(lines))
        set_state(self.result, STATE.get(outcome, ""))
        if outcome not in ("selected", "executing"):
            self._history(" ".join(lines))
        self._set_buttons()

    def _history(self, line: str) -> None:
        self.history.insertItem(0, f"{time.strftime('%H:%M:%S', time.localtime(self.clock.time()))}  {line}")
        while self.history.count() > HISTORY_LINES:
            self.history.takeItem(self.history.count() - 1)


def _fmt(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
