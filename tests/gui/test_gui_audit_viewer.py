"""Audit viewer: records shown to every logged-in role (and to nobody else), filters, CSV export with a
file dialog, and chain verification showing a tampered record as broken."""
from __future__ import annotations

import csv
import sqlite3

import pytest
from PySide6 import QtCore, QtWidgets

from app.qt.screens.audit import AuditScreen
from app.qt.session import OperatorSession
from app.runtime import Runtime
from app.security.passwords import HashParams
from app.security.roles import Role
from app.security.service import SecuritySettings
from app.security.users import AuthenticationError
from support import PASSWORD, add_accounts, make_site



@pytest.fixture
def screen(tmp_path, qtbot):
    """The audit screen over a runtime that is built but not started (only the security service is used)."""
    rt = Runtime(make_site(tmp_path), tmp_path / "data", dispatch=False,
                 security=SecuritySettings(hash_params=HashParams.cheap()))
    sec = rt.security
    add_accounts(sec, (Role.OPERATOR, Role.VIEWER))
    with pytest.raises(AuthenticationError):
        sec.login("operator", "not the password", "test")
    host = QtWidgets.QWidget()
    qtbot.addWidget(host)
    session = OperatorSession(sec, rt.router, host)
    s = AuditScreen(rt, session)
    qtbot.addWidget(s)
    s.show()
    yield s
    s.background.wait()
    session.timer.stop()
    assert rt.stop() == []


def _login(screen, role: Role) -> None:
    screen.session.session = screen.security.login(role.value, PASSWORD[role], "test")
    screen.session.changed.emit(role.value)


def _loaded(screen, qtbot) -> None:
    qtbot.waitUntil(lambda: len(screen.model.rows) == len(screen.security.audit.records(0)), timeout=5000)


def _shown(screen) -> list[tuple[str, str]]:
    return [(screen.proxy.index(r, 2).data(), screen.proxy.index(r, 4).data()) for r in range(screen.proxy.rowCount())]


def test_nobody_logged_in_sees_no_records(screen, qtbot):
    screen.refresh()
    assert screen.model.rowCount() == 0
    assert screen.count.text() == "The audit trail is shown to logged-in users: log in to view."


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR, Role.ADMIN])
def test_every_role_sees_the_records_and_filters_them(screen, qtbot, role):
    _login(screen, role)
    _loaded(screen, qtbot)
    assert [screen.proxy.index(0, c).data() for c in (0, 2, 4, 5, 7)] == \
        ["1", "(first start)", "user.create", "admin", '{"role":"admin"}']

    screen.user.setCurrentText("operator")
    assert set(_shown(screen)) == {("operator", "login")}                  # the failed login (and this one)
    screen.user.setCurrentText("(all)")
    screen.action.setCurrentText("user.add")
    assert [u for _, u in _shown(screen)] == ["user.add", "user.add"]
    screen.action.setCurrentText("(all)")
    screen.text.setText("WRONG PASSWORD")
    assert [screen.proxy.index(r, 8).data() for r in range(screen.proxy.rowCount())] == ["failed"]
    screen.text.setText("")
    screen.use_span.setChecked(True)
    assert screen.proxy.rowCount() == len(screen.model.rows)              # default span: the last 24 hours
    screen.end.setDateTime(QtCore.QDateTime.currentDateTime().addSecs(-3600))
    assert screen.proxy.rowCount() == 0


def test_new_records_appear_without_reloading_everything(screen, qtbot):
    _login(screen, Role.OPERATOR)
    _loaded(screen, qtbot)
    screen.security.lock(screen.session.session)
    screen.refresh()
    _loaded(screen, qtbot)
    assert screen.model.rows[-1].action == "session.lock"


def test_export_writes_the_whole_log_to_the_chosen_csv_file(screen, qtbot, tmp_path, monkeypatch):
    out = tmp_path / "exports" / "audit.csv"
    out.parent.mkdir()
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "CSV files (*.csv)"))
    _login(screen, Role.VIEWER)
    expected = len(screen.security.audit.records(0))
    screen.export()
    qtbot.waitUntil(lambda: screen.status.text().startswith("✔ Exported"), timeout=5000)
    assert screen.status.text() == f"✔ Exported {expected} records to {out}"
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == expected and rows[0]["action"] == "user.create"
    assert sorted(p.name for p in out.parent.iterdir()) == ["audit.csv"]   # no partial file left beside it
    export = screen.security.audit.records(0)[-1]
    assert (export.action, export.user, export.target, export.result) == ("audit.export", "viewer", str(out), "ok")


def test_an_export_that_cannot_be_written_says_so(screen, qtbot, tmp_path, monkeypatch):
    out = tmp_path / "no such folder" / "audit.csv"
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    _login(screen, Role.VIEWER)
    screen.export()
    qtbot.waitUntil(lambda: screen.status.text().startswith("✖ Export failed"), timeout=5000)
    assert "no such folder" in screen.status.text() and not out.exists()
    assert screen.security.audit.records(0)[-1].result == "failed"


def test_verify_shows_an_intact_chain_then_names_the_tampered_record(screen, qtbot):
    _login(screen, Role.VIEWER)
    _loaded(screen, qtbot)
    screen.verify()
    qtbot.waitUntil(lambda: screen.chain.text().startswith("✔ Chain OK"), timeout=5000)

    db = sqlite3.connect(screen.security.audit.path)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET detail = 'nothing to see' WHERE seq = 3")
    db.commit()
    db.close()
    screen.verify()
    qtbot.waitUntil(lambda: screen.chain.text().startswith("✖ CHAIN BROKEN"), timeout=5000)
    assert screen.chain.text().startswith("✖ CHAIN BROKEN at record 3 — record 3 (")
    assert "was altered" in screen.chain.text()
    assert screen.chain.property("state") == "trip"
    assert screen.model.broken_seq == 3
    selected = screen.table.selectionModel().selectedRows()
    assert [screen.proxy.index(i.row(), 0).data() for i in selected] == ["✖ 3 BROKEN"]
