"""Audit trail: append-only, hash chain, tamper detection naming the first broken record, concurrent
appends, CSV export and the CLI's verify_audit."""
from __future__ import annotations

import csv
import sqlite3
import threading

import pytest

from app.core.clock import ManualClock
from app.security.audit import FIELDS, AuditLog, AuditLogMissing, canonical_json, verify_audit


@pytest.fixture
def log(tmp_path):
    clock = ManualClock()
    with AuditLog(tmp_path / "audit.sqlite", clock) as audit:
        for n in range(1, 6):
            clock.advance(1)
            audit.append("setting.change", f"limit{n}", user="eng", source="console", old_value=n, new_value=n + 1)
        yield audit


def attacker(log: AuditLog) -> sqlite3.Connection:
    """Someone with write access to the file: drops the triggers and edits rows directly."""
    db = sqlite3.connect(log.path, isolation_level=None)
    for trigger in ("audit_no_update", "audit_no_delete", "audit_head_forward", "audit_head_no_delete"):
        db.execute(f"DROP TRIGGER {trigger}")
    return db


def test_an_intact_log_verifies(log, tmp_path):
    assert log.verify().ok and log.verify().records == 5
    ok, message = verify_audit(tmp_path)
    assert ok and "5 records" in message


def test_update_and_delete_are_refused_by_the_database(log):
    db = sqlite3.connect(log.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit SET user = 'mallory' WHERE seq = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit WHERE seq = 5")
    with pytest.raises(sqlite3.DatabaseError, match="forward"):
        db.execute("UPDATE audit_head SET seq = 3")
    db.close()
    assert log.verify().ok


@pytest.mark.parametrize("field", [f for f in FIELDS if f != "seq"] + ["prev_hash", "hash"])
def test_editing_any_field_names_that_record(log, tmp_path, field):
    db = attacker(log)
    db.execute(f"UPDATE audit SET {field} = ? WHERE seq = 3", (2.5 if field == "time" else "tampered",))
    db.close()
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 3 and "record 3" in result.message
    ok, message = verify_audit(tmp_path)
    assert not ok and message.startswith("record 3")


def test_a_deleted_record_is_named(log):
    db = attacker(log)
    db.execute("DELETE FROM audit WHERE seq = 3")
    db.close()
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 3 and "record 3 is missing" in result.message


def test_reordered_records_are_detected_at_the_first_moved_one(log):
    db = attacker(log)
    cols = [f for f in FIELDS if f != "seq"] + ["prev_hash", "hash"]
    two, three = (db.execute(f"SELECT {', '.join(cols)} FROM audit WHERE seq = ?", (n,)).fetchone() for n in (2, 3))
    assign = ", ".join(f"{c} = ?" for c in cols)
    db.execute(f"UPDATE audit SET {assign} WHERE seq = 2", three)
    db.execute(f"UPDATE audit SET {assign} WHERE seq = 3", two)
    db.close()
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 2


def test_a_truncated_tail_is_detected_by_the_head_anchor(log):
    db = attacker(log)
    db.execute("DELETE FROM audit WHERE seq >= 4")
    db.close()
    result = log.verify()
    assert not result.ok and "truncated" in result.message and result.first_bad_seq == 4


def test_a_removed_head_anchor_is_detected(log):
    db = attacker(log)
    db.execute("DELETE FROM audit_head")
    db.close()
    assert "head anchor is missing" in log.verify().message


def test_concurrent_appends_from_threads_and_a_second_connection_keep_the_chain(tmp_path):
    clock = ManualClock()
    path = tmp_path / "audit.sqlite"
    with AuditLog(path, clock) as gui, AuditLog(path, clock) as protection:
        def writer(audit: AuditLog, name: str) -> None:
            for n in range(40):
                audit.append("command.execute", f"site.pcs1.{name}", user=name, source="thread", new_value=n)
        threads = [threading.Thread(target=writer, args=(gui if i % 2 else protection, f"t{i}"), name=f"audit-{i}")
                   for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        result = gui.verify()
        assert result.ok and result.records == 240
        assert [r.seq for r in protection.records()] == list(range(1, 241))
        assert gui.head()[0] == 240


def test_csv_export_has_every_record_and_defuses_formulas(tmp_path):
    clock = ManualClock()
    with AuditLog(tmp_path / "audit.sqlite", clock) as audit:
        audit.append("login", "", user="=HYPERLINK(\"x\")", source="console")
        audit.append("setting.change", "soc_floor_pct", user="eng", source="console", old_value=-5.0, new_value=8)
        out = tmp_path / "audit.csv"
        assert audit.export_csv(out) == 2
        head = audit.head()[1]
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["seq"] for r in rows] == ["1", "2"] and rows[0]["time_utc"].endswith("Z")
    assert rows[0]["user"].startswith("'=") and rows[1]["old_value"] == "-5.0"
    assert rows[1]["hash"] == head
    assert not (tmp_path / "audit.csv.part").exists()


def test_verify_audit_without_a_log_is_a_user_error_and_creates_nothing(tmp_path):
    with pytest.raises(AuditLogMissing, match="--data-dir"):
        verify_audit(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_values_are_stored_as_canonical_json():
    assert canonical_json({"b": 1, "a": [1.5, None, float("nan")]}) == '{"a":[1.5,null,"nan"],"b":1}'
