"""The writer thread end to end: round trips, quality, events, retention, disk full, integrity."""
import sqlite3

import numpy as np
import pytest

from app.core.clock import SystemClock
from app.core.events import Event, Severity
from app.core.sample import Quality, Sample, vector
from app.historian.reader import HistorianReader
from app.historian.retention import RetentionPolicy, estimate_disk_usage
from app.historian.schema import QUALITY_CODE
from app.historian.writer import HistorianWriter, startup_check

from conftest import T0, running, wait_until

RACK = "site.bess1.rack01.cell_voltages_v"
DAY = 86400.0


def _publish_second(bus, clock, i, cells=8, quality=Quality.GOOD):
    t = clock.time()
    bus.publish(RACK, Sample(vector(3.3 + 0.001 * (np.arange(cells) + i % 7)), t, t, t, quality))
    bus.publish("site.pcs1.active_power_kw", Sample(float(i), t, t, t))
    bus.publish("site.pcs1.running", Sample(i % 2 == 0, t, t, t))
    bus.publish("site.pcs1.mode", Sample(f"mode {i}", t, t, t))
    bus.publish("site.bess1.rack01.cycle_count", Sample(1000 + i, t, t, t))


def _step(writer, clock, seconds):
    """Advance the manual clock by one flush period and wait until the writer has written everything."""
    commits = writer.commits
    clock.advance(seconds)
    wait_until(lambda: writer.commits > commits and writer.buffered == 0, what="a commit")


def test_round_trip_vector_scalar_events_and_quality(db_path, rig):
    bus, journal, clock = rig
    writer = HistorianWriter(db_path, bus, journal, clock, flush_period_s=1.0, block_s=60)
    with running(writer):
        for i in range(130):
            _publish_second(bus, clock, i, quality=Quality.COMM_LOST if 50 <= i < 55 else Quality.GOOD)
            if i == 20:
                journal.post(Event(clock.time(), "protection", "trip", "Rack 1 cell 3 overvoltage 3.71 V",
                                   Severity.TRIP, RACK, 3.71, 3.65))
            _step(writer, clock, 1.0)
    assert writer.integrity.ok
    with HistorianReader(db_path) as r:
        s = r.raw(RACK, T0, T0 + 200, cell=8)
        assert len(s.t) == 130
        assert np.allclose(s.value, 3.3 + 0.001 * (7 + np.arange(130) % 7), atol=1e-6)
        lost = s.quality == QUALITY_CODE[Quality.COMM_LOST]
        assert np.array_equal(np.flatnonzero(lost), np.arange(50, 55))
        assert np.array_equal(r.raw("site.pcs1.active_power_kw", T0, T0 + 200).value, np.arange(130.0))
        assert list(r.raw("site.pcs1.running", T0, T0 + 200).value[:3]) == [1.0, 0.0, 1.0]
        assert r.raw("site.pcs1.mode", T0, T0 + 200).value[129] == "mode 129"
        assert r.raw("site.bess1.rack01.cycle_count", T0, T0 + 200).value[-1] == 1129
        trips = r.events(T0, T0 + 200, Severity.TRIP)
        assert [(e.kind, e.point, e.value, e.limit) for e in trips] == [("trip", RACK, 3.71, 3.65)]
        assert r.events(T0, T0 + 200, text="OVERVOLT")[0].message.startswith("Rack 1")
        assert r.events(T0, T0 + 200, text="100%") == []
        assert any(e.kind == "integrity_ok" for e in r.events(T0, T0 + 200))
        assert [p.name for p in r.points("site.pcs1.*")] == ["site.pcs1.active_power_kw", "site.pcs1.mode",
                                                            "site.pcs1.running"]


def test_retention_and_rollups_follow_the_clock(db_path, rig):
    bus, journal, clock = rig
    policy = RetentionPolicy(raw_days=1, rollup_1m_days=2, rollup_15m_days=3, events_days=3)
    writer = HistorianWriter(db_path, bus, journal, clock, flush_period_s=10.0, block_s=300, retention=policy)
    with running(writer):
        for i in range(180):  # 3 min at 1 Hz, flushed every 10 s
            _publish_second(bus, clock, i)
            clock.advance(1.0) if i % 10 != 9 else _step(writer, clock, 1.0)
        with HistorianReader(db_path) as r:
            before = r.downsample(RACK, T0, T0 + 1800, 900, cell=1)
            before_1m = r.downsample("site.pcs1.active_power_kw", T0, T0 + 1800, 60)
        _step_days(writer, clock, 1.5, db_path, "SELECT count(*) FROM frames")
        with HistorianReader(db_path) as r:
            assert len(r.raw(RACK, T0, T0 + 1800, cell=1).t) == 0
            assert len(r.raw("site.pcs1.active_power_kw", T0, T0 + 1800).t) == 0
            after = r.downsample(RACK, T0, T0 + 1800, 900, cell=1)
            assert np.array_equal(after.n, before.n) and np.allclose(after.vmax, before.vmax, equal_nan=True)
            after_1m = r.downsample("site.pcs1.active_power_kw", T0, T0 + 1800, 60)
            assert np.array_equal(after_1m.n, before_1m.n) and np.allclose(after_1m.vavg, before_1m.vavg, equal_nan=True)
        _step_days(writer, clock, 1.0, db_path, "SELECT count(*) FROM rollups WHERE level = 60")
        with HistorianReader(db_path) as r:
            assert r.downsample(RACK, T0, T0 + 1800, 60, cell=1).n.sum() == 0
            assert r.downsample(RACK, T0, T0 + 1800, 900, cell=1).n.sum() == 180
        _step_days(writer, clock, 1.0, db_path, "SELECT count(*) FROM rollups")


def _step_days(writer, clock, days, db_path, count_sql):
    clock.advance(days * DAY)

    def gone():
        with sqlite3.connect(db_path) as conn:
            return conn.execute(count_sql).fetchone()[0] == 0
    wait_until(gone, what=count_sql)


def test_disk_usage_estimate(db_path, rig):
    bus, journal, clock = rig
    writer = HistorianWriter(db_path, bus, journal, clock, flush_period_s=10.0, block_s=60)
    with running(writer):
        for i in range(600):
            _publish_second(bus, clock, i, cells=200)
            clock.advance(1.0) if i % 10 != 9 else _step(writer, clock, 1.0)
    policy = RetentionPolicy(raw_days=10, rollup_1m_days=20, rollup_15m_days=30, events_days=30)
    u = estimate_disk_usage(db_path, policy, now=clock.time(), window_s=300)
    assert u.per_day["raw"] > 200 * 86400 * 0.1  # at least 0.1 byte per cell value
    assert u.per_day["raw"] < 200 * 86400 * 2 + 4 * 86400 * 60
    assert u.per_day["rollup_1m"] > 0 and u.per_day["rollup_15m"] > 0
    expected = (u.per_day["raw"] * 10 + u.per_day["rollup_1m"] * 20 + u.per_day["rollup_15m"] * 30
                + u.per_day["events"] * 30)
    assert u.projected_bytes == pytest.approx(expected)
    assert u.bytes_per_day == pytest.approx(sum(u.per_day.values())) and u.current_bytes > 0


def test_disk_full_is_an_alarm_and_writing_resumes(db_path, rig):
    bus, journal, _ = rig
    clock = SystemClock()
    writer = HistorianWriter(db_path, bus, journal, clock, flush_period_s=0.02, max_db_bytes=1,
                             max_buffer_bytes=200_000)
    with running(writer):
        t = clock.time()
        noise = np.random.default_rng(0).random((200, 1000))  # incompressible enough to need pages
        for i in range(200):  # 4 kB per sample: more than the buffer may hold
            bus.publish(RACK, Sample(vector(3.3 + noise[i]), t + i, t, t))
        wait_until(lambda: writer.disk_full and writer.dropped > 0, what="disk full and drops")
        kinds = [(e.kind, e.severity) for e in journal.since(0)]
        assert ("disk_full", Severity.ALARM) in kinds and ("buffer_overflow", Severity.ALARM) in kinds
        assert writer.buffered <= 200_000 // 4000 + 1
        writer.max_db_bytes = None
        wait_until(lambda: not writer.disk_full and writer.buffered == 0, what="writing resumed")
        assert any(e.kind == "disk_ok" for e in journal.since(0))
    with HistorianReader(db_path) as r:
        s = r.raw(RACK, t, t + 1000, cell=1000)
        assert 0 < len(s.t) <= 200 - writer.dropped + 2  # drops may include the two ALARM events
        assert np.array_equal(s.t, t + np.arange(200 - len(s.t), 200))  # the oldest were dropped


def test_corrupt_database_is_kept_aside_and_reported(db_path, rig):
    _, journal, clock = rig
    db_path.write_bytes(b"SQLite format 3\x00" + b"\x13" * 8000)
    report = startup_check(db_path, journal, clock)
    assert not report.ok and report.moved_to and not db_path.exists()
    assert open(report.moved_to, "rb").read(16) == b"SQLite format 3\x00"
    alarm = journal.since(0)[-1]
    assert alarm.severity == Severity.ALARM and report.moved_to in alarm.message
