"""Append-only, hash-chained audit trail in SQLite (DATA_DIR/audit.sqlite).

Each record's hash is SHA-256 over the previous record's hash followed by the canonical JSON of the
record (seq, time, user, source, action, target, old_value, new_value, result, detail). Triggers refuse
UPDATE and DELETE; a one-row head anchor (seq, hash), moved forward in the same transaction as each
append, exposes a truncated tail. `verify` names the first broken record. Anyone who can rewrite the
whole file can rebuild a consistent chain: publishing the head hash elsewhere (`head()`) closes that.
"""
from __future__ import annotations

import csv
import datetime as dt
import enum
import hashlib
import json
import math
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from app.core.clock import Clock
from app.core.errors import UserError

AUDIT_FILE = "audit.sqlite"
GENESIS = "0" * 64
FIELDS = ("seq", "time", "user", "source", "action", "target", "old_value", "new_value", "result", "detail")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, time REAL NOT NULL, user TEXT NOT NULL, source TEXT NOT NULL,
    action TEXT NOT NULL, target TEXT NOT NULL, old_value TEXT NOT NULL, new_value TEXT NOT NULL,
    result TEXT NOT NULL, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_head_no_delete BEFORE DELETE ON audit_head
    BEGIN SELECT RAISE(ABORT, 'audit head anchor cannot be deleted'); END;
CREATE TRIGGER IF NOT EXISTS audit_head_forward BEFORE UPDATE ON audit_head WHEN NEW.seq <> OLD.seq + 1
    BEGIN SELECT RAISE(ABORT, 'audit head anchor only moves forward one record at a time'); END;
"""


class AuditLogMissing(UserError):
    """There is no audit log where one was expected (wrong --data-dir?)."""


@dataclass(frozen=True)
class AuditRecord:
    """One stored record. old_value/new_value are canonical JSON text (`null` when not applicable)."""

    seq: int
    time: float
    user: str
    source: str
    action: str
    target: str
    old_value: str
    new_value: str
    result: str
    detail: str
    prev_hash: str
    hash: str

    def describe(self) -> str:
        """'record 17 (2024-05-01T10:00:00Z, alice, login)' for error messages."""
        return f"record {self.seq} ({_iso(self.time)}, {self.user}, {self.action} {self.target})".rstrip()


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    message: str
    first_bad_seq: int | None = None


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 text, no NaN (non-JSON values become strings)."""
    return json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def record_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """SHA-256 hex over prev_hash + canonical JSON of the record's FIELDS."""
    body = canonical_json({k: fields[k] for k in FIELDS})
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


class AuditLog:
    """The audit trail of one installation. `append` is thread-safe (and safe across processes:
    the chain head is read and extended inside one IMMEDIATE transaction)."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self.path = Path(path)
        self.clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "AuditLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(self, action: str, target: str = "", *, user: str, source: str, old_value: Any = None,
               new_value: Any = None, result: str = "ok", detail: str = "") -> AuditRecord:
        """Record one action (any thread). Never pass a secret: values are stored in clear."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                head = self._db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
                seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
                fields = {"seq": seq, "time": float(self.clock.time()), "user": str(user), "source": str(source),
                          "action": str(action), "target": str(target), "old_value": canonical_json(old_value),
                          "new_value": canonical_json(new_value), "result": str(result), "detail": str(detail)}
                rec = AuditRecord(**fields, prev_hash=prev, hash=record_hash(prev, fields))
                self._db.execute(f"INSERT INTO audit VALUES ({', '.join('?' * 12)})",
                                 [getattr(rec, f) for f in (*FIELDS, "prev_hash", "hash")])
                if head:
                    self._db.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, rec.hash))
                else:
                    self._db.execute("INSERT INTO audit_head VALUES (1, ?, ?)", (seq, rec.hash))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return rec

    def records(self, after_seq: int = 0) -> list[AuditRecord]:
        """Records with seq > after_seq, oldest first (for an audit viewer)."""
        with self._lock:
            return list(_rows(self._db, after_seq))

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the newest record; (0, GENESIS) when empty. Publish it to anchor the chain."""
        with self._lock:
            row = self._db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        return (row[0], row[1]) if row else (0, GENESIS)

    def verify(self) -> VerifyResult:
        with self._lock:
            return verify_connection(self._db)

    def export_csv(self, out: Path) -> int:
        """Write every record to a CSV file (written beside, then renamed: never half-written); row count."""
        out = Path(out)
        tmp = out.with_name(out.name + ".part")
        with self._lock:
            rows = list(_rows(self._db, 0))
        try:
            with tmp.open("w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["seq", "time_utc", "time", *FIELDS[2:], "prev_hash", "hash"])
                for r in rows:
                    w.writerow([r.seq, _iso(r.time), repr(r.time), *(_csv_safe(getattr(r, k)) for k in FIELDS[2:]),
                                r.prev_hash, r.hash])
            os.replace(tmp, out)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        return len(rows)


def verify_connection(db: sqlite3.Connection) -> VerifyResult:
    """Walk the chain in seq order; the first record that breaks it is named in the message."""
    prev_hash, expected, last = GENESIS, 1, None
    for rec in _rows(db, 0):
        if rec.seq != expected:
            return VerifyResult(False, expected - 1, f"record {expected} is missing (deleted): the next record "
                                f"is {rec.describe()}", expected)
        if rec.prev_hash != prev_hash:
            return VerifyResult(False, expected - 1, f"{rec.describe()} does not link to record {rec.seq - 1} "
                                "(records deleted or reordered)", rec.seq)
        fields = {k: getattr(rec, k) for k in FIELDS}
        if record_hash(prev_hash, fields) != rec.hash:
            return VerifyResult(False, expected - 1, f"{rec.describe()} was altered: its contents do not match "
                                "its hash", rec.seq)
        prev_hash, expected, last = rec.hash, expected + 1, rec
    count = expected - 1
    head = db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    if last is None and head is None:
        return VerifyResult(True, 0, "audit log intact: 0 records")
    if head is None:
        return VerifyResult(False, count, "the head anchor is missing (removed)", last.seq)
    if last is None or (head[0], head[1]) != (last.seq, last.hash):
        seen = last.describe() if last else "none"
        return VerifyResult(False, count, f"the log is truncated: the head anchor names record {head[0]} "
                            f"but the last record is {seen}", count + 1)
    return VerifyResult(True, count, f"audit log intact: {count} records, head {last.hash[:16]}")


def verify_audit(data_dir: Path) -> tuple[bool, str]:
    """For `esms audit verify`: (True, summary) if intact, else (False, message naming the first broken
    record). Opens the log read-only. Raises AuditLogMissing (a UserError, exit 2) if there is none."""
    path = Path(data_dir) / AUDIT_FILE
    if not path.is_file():
        raise AuditLogMissing(f"no audit log at {path} (use --data-dir to point at the installation)")
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        try:
            result = verify_connection(db)
        except sqlite3.DatabaseError as exc:
            return False, f"{path} is not a readable audit log: {exc}"
    finally:
        db.close()
    return result.ok, result.message


def _rows(db: sqlite3.Connection, after_seq: int) -> Iterator[AuditRecord]:
    cur = db.execute(f"SELECT {', '.join(FIELDS)}, prev_hash, hash FROM audit WHERE seq > ? ORDER BY seq",
                     (after_seq,))
    for row in cur:
        yield AuditRecord(*row)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:     # numpy scalar
        return _jsonable(value.item())
    if hasattr(value, "tolist"):                                          # numpy array
        return _jsonable(value.tolist())
    return str(value)


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _csv_safe(text: str) -> str:
    """Keep a spreadsheet from running a cell as a formula (CSV injection); numbers stay as they are."""
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text
