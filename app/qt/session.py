"""The operator's session in the GUI: first-admin setup, login/logout, idle lock, re-authentication
for critical commands, and `act()` — the one path by which the GUI changes anything (authorised by
app.security, audited, then submitted as a Command and its result awaited briefly)."""
from __future__ import annotations

import socket
from typing import Callable

from PySide6 import QtCore, QtWidgets

from app.core.commands import Command, CommandRouter
from app.core.errors import UserError
from app.qt.dialogs import ok_cancel
from app.security.roles import CommandKind
from app.security.sbo import CommandRefused
from app.security.service import SecurityService
from app.security.sessions import Session

SOURCE = f"gui@{socket.gethostname()}"
RESULT_TIMEOUT_S = 3.0


class PasswordDialog(QtWidgets.QDialog):
    """User name + password (+ confirmation for a new account)."""

    def __init__(self, parent, title: str, user: str | None = None, confirm: bool = False, note: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        form = QtWidgets.QFormLayout(self)
        if note:
            label = QtWidgets.QLabel(note)
            label.setWordWrap(True)
            form.addRow(label)
        self.user = QtWidgets.QLineEdit(user or "")
        self.user.setReadOnly(user is not None)
        form.addRow("User", self.user)
        self.password = QtWidgets.QLineEdit()
        self.password.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
        form.addRow("Password", self.password)
        self.again = QtWidgets.QLineEdit() if confirm else None
        if self.again is not None:
            self.again.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
            form.addRow("Repeat password", self.again)
        self.error = QtWidgets.QLabel("")
        form.addRow(self.error)
        form.addRow(ok_cancel(self, self._ok))

    def _ok(self) -> None:
        if self.again is not None and self.again.text() != self.password.text():
            self.error.setText("The passwords differ.")
            return
        self.accept()


class OperatorSession(QtCore.QObject):
    changed = QtCore.Signal(str)        # header text: who is logged in, or LOCKED / view only

    def __init__(self, security: SecurityService, router: CommandRouter, parent: QtWidgets.QWidget) -> None:
        super().__init__(parent)
        self.security, self.router, self.window = security, router, parent
        self.session: Session | None = None
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self._check_idle)
        self.timer.start()

    def describe(self) -> str:
        if self.session is None:
            return "not logged in (view only)"
        locked = " — LOCKED" if self.session.is_locked(self.security.clock.monotonic()) else ""
        return f"{self.session.username} ({self.session.role.value}){locked}"

    def login(self) -> bool:
        try:
            if self.security.needs_setup():
                d = PasswordDialog(self.window, "Create the administrator", confirm=True,
                                   note="First start: create the administrator account (no default passwords). "
                                        "The administrator manages users; operators and engineers control the plant.")
                if d.exec() != QtWidgets.QDialog.DialogCode.Accepted:
                    return False
                self.security.create_first_admin(d.user.text().strip(), d.password.text(), SOURCE)
            d = PasswordDialog(self.window, "Log in")
            if d.exec() != QtWidgets.QDialog.DialogCode.Accepted:
                return False
            self.session = self.security.login(d.user.text().strip(), d.password.text(), SOURCE)
        except UserError as exc:
            QtWidgets.QMessageBox.warning(self.window, "Log in", str(exc))
            return False
        self.changed.emit(self.describe())
        return True

    def logout(self) -> None:
        if self.session is not None:
            self.security.logout(self.session)
            self.session = None
            self.changed.emit(self.describe())

    def activity(self) -> None:
        if self.session is not None and not self.session.is_locked(self.security.clock.monotonic()):
            self.session = self.security.touch(self.session)

    def _check_idle(self) -> None:
        if self.session is not None:
            before = self.session.locked_flag
            self.session = self.security.check_idle(self.session)
            if self.session.locked_flag != before:
                self.changed.emit(self.describe())

    def reauthenticate(self) -> bool:
        if self.session is None:
            return self.login()
        d = PasswordDialog(self.window, "Confirm with your password", user=self.session.username,
                           note="This command needs your password (session locked or critical command).")
        if d.exec() != QtWidgets.QDialog.DialogCode.Accepted:
            return False
        try:
            self.session = self.security.reauthenticate(self.session, d.password.text())
        except UserError as exc:
            QtWidgets.QMessageBox.warning(self.window, "Password", str(exc))
            return False
        self.changed.emit(self.describe())
        return True

    def act(self, kind: str, command: Command, interactive: bool = True) -> bool:
        """Authorise `command` as `kind`, audit it, submit it and wait for its result. Refusals are shown
        (and, when a password would lift them, the password is asked once)."""
        for attempt in (1, 2):
            try:
                self.security.perform(self.session, CommandKind(kind), command.action, command.target,
                                      lambda: self._submit(command), new_value=command.value,
                                      detail=command.reason)
                return True
            except CommandRefused as exc:
                if attempt == 1 and interactive and (exc.needs_reauth or self.session is None) \
                        and self.reauthenticate():
                    continue
                if interactive:
                    QtWidgets.QMessageBox.warning(self.window, "Refused", str(exc))
                return False
            except UserError as exc:
                if interactive:
                    QtWidgets.QMessageBox.warning(self.window, "Command failed", str(exc))
                return False
        return False

    def _submit(self, command: Command):
        user = self.session.username if self.session else "(nobody)"
        cmd = Command(command.target, command.action, command.value, user, command.reason)
        result = self.router.submit(cmd).result(RESULT_TIMEOUT_S)
        if not result.ok:
            raise UserError(f"{command.target}: {result.message}")
        return result

    def emergency_stop(self, stop: Callable[[], object]) -> None:
        """Never blocked by login, lock or dialogs: runs `stop` at once, then audits."""
        self.security.emergency_stop(self.session, "site", SOURCE, stop)
