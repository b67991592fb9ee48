"""User management: the accounts table and their administration (add, change role, enable/disable,
reset password, unlock) for admins, and changing one's own password for everyone.

SecurityService authorises (manage_users is admin-only and critical), audits and refuses; this screen
asks for the password first when the re-authentication window has passed and shows every refusal.
Calls that hash passwords run off the GUI thread (app/qt/background.py)."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

from PySide6 import QtCore, QtGui, QtWidgets

from app.core.errors import UserError
from app.qt.background import Background
from app.qt.dialogs import ok_cancel
from app.qt.session import OperatorSession
from app.qt.style import set_state
from app.security.roles import CommandKind, Role, permitted
from app.security.sbo import CommandRefused
from app.security.sessions import Session

if TYPE_CHECKING:
    from app.runtime import Runtime

COLUMNS = ("User", "Role", "Account", "Login", "Failed logins")


class AccountDialog(QtWidgets.QDialog):
    """New account (`user` None: name and role asked), password reset (`user` given) or own password
    change (`current`: the current password is asked too). New passwords are typed twice."""

    def __init__(self, parent, title: str, user: str | None = None, current: bool = False) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        form = QtWidgets.QFormLayout(self)
        self.user = QtWidgets.QLineEdit(user or "")
        self.user.setReadOnly(user is not None)
        form.addRow("User", self.user)
        self.role = QtWidgets.QComboBox()
        self.role.addItems([r.value for r in Role])
        if user is None:
            form.addRow("Role", self.role)
        self.current = _password()
        if current:
            form.addRow("Current password", self.current)
        self.password, self.again = _password(), _password()
        form.addRow("New password", self.password)
        form.addRow("Repeat new password", self.again)
        self.error = QtWidgets.QLabel("")
        form.addRow(self.error)
        form.addRow(ok_cancel(self, self._ok))

    def _ok(self) -> None:
        if not self.user.text().strip():
            self.error.setText("Enter the user name.")
        elif self.password.text() != self.again.text():
            self.error.setText("The new passwords differ.")
        else:
            self.accept()


class UsersScreen(QtWidgets.QWidget):
    def __init__(self, runtime: "Runtime", session: OperatorSession) -> None:
        super().__init__()
        self.security, self.session = runtime.security, session
        self.background = Background(self)
        lay = QtWidgets.QVBoxLayout(self)
        self.note = QtWidgets.QLabel("")
        self.note.setWordWrap(True)
        lay.addWidget(self.note)
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        lay.addWidget(self.table, 1)
        admin = QtWidgets.QHBoxLayout()
        lay.addLayout(admin)
        self.role = QtWidgets.QComboBox()
        self.role.addItems([r.value for r in Role])
        admin.addWidget(_button("Add user… (Ctrl+N)", self.add_user_dialog))
        admin.addWidget(QtWidgets.QLabel("Selected user:"))
        admin.addWidget(self.role)
        for text, slot in (("Set role", lambda: self._selected(lambda u: self.set_role(u, self._role()))),
                           ("Enable", lambda: self._selected(lambda u: self.set_enabled(u, True))),
                           ("Disable", lambda: self._selected(lambda u: self.set_enabled(u, False))),
                           ("Reset password…", lambda: self._selected(self.reset_password_dialog)),
                           ("Unlock", lambda: self._selected(self.unlock))):
            admin.addWidget(_button(text, slot))
        admin.addStretch(1)
        admin.addWidget(_button("Change my password…", self.change_own_password_dialog))
        QtGui.QShortcut(QtGui.QKeySequence("Ctrl+N"), self, activated=self.add_user_dialog,
                        context=QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.status = QtWidgets.QLabel("")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.session.changed.connect(lambda _text: self.refresh())
        self.refresh()

    # --- table -------------------------------------------------------------------------------
    def refresh(self) -> None:
        """The accounts (a quick local query) for an admin; everybody else sees only what they may do."""
        s = self.session.session
        now = self.security.clock.monotonic()
        if s is None or s.is_locked(now) or not permitted(s.role, CommandKind.MANAGE_USERS):
            self.table.setRowCount(0)
            who = "Log in" if s is None else ("Unlock the session" if s.is_locked(now) else
                                              f"Logged in as {s.username} ({s.role.value})")
            self.note.setText(f"{who}: only an admin sees and manages the accounts; everybody can change their "
                              "own password.")
            return
        self.note.setText("Accounts of this installation (changes need the admin's password within the last "
                          f"{s.policy.reauth_window_s:g} s and are audited).")
        wall = self.security.clock.time()
        users = self.security.users.list_users()
        self.table.setRowCount(len(users))
        for row, u in enumerate(users):
            locked = u.locked_out(wall)
            values = (u.username, u.role.value, "enabled" if u.enabled else "✕ DISABLED",
                      f"✕ LOCKED OUT until {time.strftime('%H:%M:%S', time.localtime(u.locked_until))}"
                      if locked else "allowed", str(u.failures))
            for col, value in enumerate(values):
                item = QtWidgets.QTableWidgetItem(value)
                if (col == 2 and not u.enabled) or (col == 3 and locked):
                    item.setBackground(QtGui.QColor("#f5a000"))
                self.table.setItem(row, col, item)

    def _role(self) -> Role:
        return Role(self.role.currentText())

    def _selected(self, action: Callable[[str], None]) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            self._show("✖ Select a user in the table first.", "warn")
            return
        action(self.table.item(rows[0].row(), 0).text())

    # --- administration (admin) --------------------------------------------------------------------
    def add_user(self, username: str, role: Role, password: str) -> None:
        self._admin(f"add {username} as {role.value}", lambda s: self.security.add_user(s, username, role, password))

    def set_role(self, username: str, role: Role) -> None:
        self._admin(f"make {username} {role.value}", lambda s: self.security.set_role(s, username, role))

    def set_enabled(self, username: str, enabled: bool) -> None:
        self._admin(f"{'enable' if enabled else 'disable'} {username}",
                    lambda s: self.security.set_enabled(s, username, enabled))

    def reset_password(self, username: str, password: str) -> None:
        self._admin(f"reset the password of {username}", lambda s: self.security.reset_password(s, username, password))

    def unlock(self, username: str) -> None:
        self._admin(f"unlock {username}", lambda s: self.security.unlock_user(s, username))

    def add_user_dialog(self) -> None:
        d = AccountDialog(self, "Add a user")
        if d.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            self.add_user(d.user.text().strip(), Role(d.role.currentText()), d.password.text())

    def reset_password_dialog(self, username: str) -> None:
        d = AccountDialog(self, f"Reset the password of {username}", user=username)
        if d.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            self.reset_password(username, d.password.text())

    # --- own password (everyone) ------------------------------------------------------------------
    def change_own_password(self, current: str, new: str) -> None:
        s = self.session.session
        if s is None:
            self._show("✖ Log in first to change your password.", "warn")
            return
        self._run("change your password", lambda: self.security.change_own_password(s, current, new))

    def change_own_password_dialog(self) -> None:
        s = self.session.session
        if s is None:
            self._show("✖ Log in first to change your password.", "warn")
            return
        d = AccountDialog(self, "Change my password", user=s.username, current=True)
        if d.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            self.change_own_password(d.current.text(), d.password.text())

    # --- helpers ---------------------------------------------------------------------------------
    def _admin(self, what: str, call: Callable[[Session | None], Any]) -> None:
        """Ask the password when that is all that stands in the way, then let the service decide."""
        decision = self.security.authorise(self.session.session, CommandKind.MANAGE_USERS)
        if decision.needs_reauth:
            self.session.reauthenticate()
        s = self.session.session
        self._run(what, lambda: call(s))

    def _run(self, what: str, call: Callable[[], Any]) -> None:
        self._show(f"⏳ {what}…", "")
        self.background.run(call, lambda _result, error: self._done(what, error))

    def _done(self, what: str, error: Exception | None) -> None:
        if isinstance(error, CommandRefused):
            self._show(f"✖ REFUSED: {what}: {error}", "alarm")
        elif isinstance(error, UserError):
            self._show(f"✖ FAILED: {what}: {error}", "alarm")
        elif error is not None:
            raise error
        else:
            self._show(f"✔ Done: {what}", "")
        self.refresh()

    def _show(self, text: str, state: str) -> None:
        self.status.setText(text)
        set_state(self.status, state)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()


def _password() -> QtWidgets.QLineEdit:
    edit = QtWidgets.QLineEdit()
    edit.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
    return edit


def _button(text: str, slot) -> QtWidgets.QPushButton:
    button = QtWidgets.QPushButton(text)
    button.clicked.connect(slot)
    return button
