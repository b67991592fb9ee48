"""User management screen: the admin adds users (also through the dialog), changes roles, disables,
resets passwords and unlocks; an operator cannot and sees the refusal; everyone changes their own
password."""
from __future__ import annotations

import pytest
from PySide6 import QtCore, QtWidgets

from app.qt.screens.users import UsersScreen
from app.qt.session import OperatorSession
from app.runtime import Runtime
from app.security.passwords import HashParams
from app.security.roles import Role
from app.security.service import SecuritySettings
from app.security.users import AuthenticationError
from support import PASSWORD, add_accounts, make_site

NEW = "granite 88 meadow fox"


@pytest.fixture
def screen(tmp_path, qtbot):
    """The users screen over a runtime that is built but not started (only the security service is used)."""
    rt = Runtime(make_site(tmp_path), tmp_path / "data", dispatch=False,
                 security=SecuritySettings(hash_params=HashParams.cheap()))
    sec = rt.security
    add_accounts(sec, (Role.OPERATOR, Role.VIEWER), logout_admin=False)
    host = QtWidgets.QWidget()
    qtbot.addWidget(host)
    session = OperatorSession(sec, rt.router, host)
    s = UsersScreen(rt, session)
    qtbot.addWidget(s)
    s.show()
    yield s
    s.background.wait()
    session.timer.stop()
    assert rt.stop() == []


def _login(screen, role: Role) -> None:
    screen.session.session = screen.security.login(role.value, PASSWORD[role], "test")
    screen.session.changed.emit(role.value)


def _status(screen, qtbot, prefix: str) -> str:
    qtbot.waitUntil(lambda: screen.status.text().startswith(prefix), timeout=5000)
    return screen.status.text()


def _table(screen) -> dict[str, list[str]]:
    return {screen.table.item(r, 0).text(): [screen.table.item(r, c).text() for c in range(1, 5)]
            for r in range(screen.table.rowCount())}


def test_the_admin_adds_a_user_who_can_then_log_in(screen, qtbot):
    _login(screen, Role.ADMIN)
    assert set(_table(screen)) == {"admin", "operator", "viewer"}
    screen.add_user("dana", Role.OPERATOR, NEW)
    assert _status(screen, qtbot, "✔") == "✔ Done: add dana as operator"
    assert _table(screen)["dana"] == ["operator", "enabled", "allowed", "0"]
    assert screen.security.login("dana", NEW, "test").role is Role.OPERATOR

    screen.add_user("dana", Role.VIEWER, NEW)
    assert "a user named 'dana' already exists" in _status(screen, qtbot, "✖ FAILED")


def test_the_admin_adds_a_user_through_the_dialog(screen, qtbot):
    _login(screen, Role.ADMIN)

    def fill():
        d = QtWidgets.QApplication.activeModalWidget()
        d.user.setText("erin")
        d.role.setCurrentText("engineer")
        d.password.setText(NEW)
        d.again.setText(NEW + "x")
        d._ok()
        assert d.error.text() == "The new passwords differ."
        d.again.setText(NEW)
        d._ok()
    QtCore.QTimer.singleShot(100, fill)
    screen.add_user_dialog()
    _status(screen, qtbot, "✔ Done: add erin as engineer")
    assert screen.security.users.get("erin").role is Role.ENGINEER


def test_an_operator_cannot_add_a_user_and_sees_why(screen, qtbot):
    _login(screen, Role.OPERATOR)
    assert screen.table.rowCount() == 0
    assert "only an admin sees and manages the accounts" in screen.note.text()
    screen.add_user("mallory", Role.ADMIN, NEW)
    assert "role operator may not manage_users" in _status(screen, qtbot, "✖ REFUSED: add mallory as admin")
    with pytest.raises(Exception, match="no user named 'mallory'"):
        screen.security.users.get("mallory")
    refused = screen.security.audit.records(0)[-1]
    assert (refused.action, refused.user, refused.result) == ("user.add", "operator", "refused")


def test_the_admin_changes_a_role_disables_resets_and_unlocks(screen, qtbot):
    sec = screen.security
    _login(screen, Role.ADMIN)
    screen.set_role("viewer", Role.OPERATOR)
    _status(screen, qtbot, "✔ Done: make viewer operator")
    assert _table(screen)["viewer"][0] == "operator"

    screen.table.selectRow(list(_table(screen)).index("operator"))
    screen.role.setCurrentText("engineer")
    _click(screen, "Set role")
    _status(screen, qtbot, "✔ Done: make operator engineer")
    _click(screen, "Disable")
    _status(screen, qtbot, "✔ Done: disable operator")
    assert _table(screen)["operator"][1] == "✕ DISABLED"
    with pytest.raises(AuthenticationError, match="disabled"):
        sec.login("operator", PASSWORD[Role.OPERATOR], "test")
    screen.set_enabled("operator", True)
    _status(screen, qtbot, "✔ Done: enable operator")

    for _ in range(sec.settings.lockout.max_failures):
        with pytest.raises(AuthenticationError):
            sec.login("operator", "not the password", "test")
    screen.refresh()
    assert _table(screen)["operator"][2].startswith("✕ LOCKED OUT until")
    screen.unlock("operator")
    _status(screen, qtbot, "✔ Done: unlock operator")
    screen.reset_password("operator", NEW)
    _status(screen, qtbot, "✔ Done: reset the password of operator")
    assert sec.login("operator", NEW, "test").role is Role.ENGINEER
    assert [r.action for r in sec.audit.records(0) if r.user == "admin"][-6:] == \
        ["user.role", "user.role", "user.enabled", "user.enabled", "user.unlock", "user.password"]


def _click(screen, text: str) -> None:
    next(b for b in screen.findChildren(QtWidgets.QPushButton) if b.text() == text).click()


def test_the_last_admin_cannot_be_demoted(screen, qtbot):
    _login(screen, Role.ADMIN)
    screen.set_role("admin", Role.VIEWER)
    assert "'admin' is the last enabled admin" in _status(screen, qtbot, "✖ FAILED")


def test_everyone_changes_their_own_password(screen, qtbot):
    screen.change_own_password(PASSWORD[Role.VIEWER], NEW)
    assert screen.status.text() == "✖ Log in first to change your password."
    _login(screen, Role.VIEWER)
    screen.change_own_password("not my password", NEW)
    _status(screen, qtbot, "✖ FAILED: change your password")
    screen.change_own_password(PASSWORD[Role.VIEWER], NEW)
    _status(screen, qtbot, "✔ Done: change your password")
    assert screen.security.login("viewer", NEW, "test").role is Role.VIEWER
