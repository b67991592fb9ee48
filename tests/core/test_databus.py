import queue
import threading

import numpy as np
from hypothesis import given, strategies as st

from app.core.databus import DataBus
from app.core.sample import Quality, Sample, vector


def s(value, t=1.0, quality=Quality.GOOD):
    return Sample(value, t, t, t, quality)


def test_snapshot_holds_latest_value_per_point():
    bus = DataBus()
    bus.publish("site.pcs1.active_power_kw", s(1.0))
    bus.publish("site.pcs1.active_power_kw", s(2.0))
    assert bus.snapshot()["site.pcs1.active_power_kw"].value == 2.0
    assert bus.get("site.nothing") is None


def test_take_dirty_is_per_consumer_and_only_returns_changes():
    bus = DataBus()
    bus.publish("site.a.x", s(1))
    assert set(bus.take_dirty("gui")) == {"site.a.x"}          # first call: everything
    assert bus.take_dirty("gui") == {}
    bus.publish("site.a.y", s(2))
    assert set(bus.take_dirty("gui")) == {"site.a.y"}
    assert set(bus.take_dirty("other")) == {"site.a.x", "site.a.y"}


@given(st.lists(st.tuples(st.sampled_from(["site.a.x", "site.a.y", "site.b.z"]), st.integers()), max_size=40))
def test_take_dirty_returns_the_last_value_written(writes):
    bus = DataBus()
    bus.take_dirty("c")
    expected = {}
    for point, value in writes:
        bus.publish(point, s(value))
        expected[point] = value
    assert {p: smp.value for p, smp in bus.take_dirty("c").items()} == expected


def test_subscribers_get_every_matching_sample_in_order():
    bus = DataBus()
    q: queue.SimpleQueue = queue.SimpleQueue()
    bus.subscribe("site.bess1.*.cell_voltages_v", q)
    for i in range(5):
        bus.publish("site.bess1.rack01.cell_voltages_v", s(vector([3.3 + i])))
        bus.publish("site.bess1.rack01.current_a", s(float(i)))
    got = [q.get_nowait() for _ in range(q.qsize())]
    assert [p for p, _ in got] == ["site.bess1.rack01.cell_voltages_v"] * 5
    assert [float(smp.value[0]) for _, smp in got] == [np.float32(3.3 + i) for i in range(5)]


def test_publish_is_thread_safe_under_concurrent_writers():
    bus = DataBus()
    q: queue.SimpleQueue = queue.SimpleQueue()
    bus.subscribe("site.*", q)

    def writer(n):
        for i in range(2000):
            bus.publish(f"site.w{n}.v", s(i))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert q.qsize() == 8000
    assert all(bus.get(f"site.w{n}.v").value == 1999 for n in range(4))


def test_vector_values_are_read_only_copies():
    source = np.array([3.3, 3.4])
    v = vector(source)
    source[0] = 0.0
    assert v.dtype == np.float32 and v[0] == np.float32(3.3)
    assert not v.flags.writeable


def test_forced_point_shows_the_manual_value_while_the_source_goes_on_underneath():
    bus = DataBus()
    bus.publish("site.pcs1.active_power_kw", s(10.0))
    bus.force("site.pcs1.active_power_kw", s(0.0, quality=Quality.MANUAL))
    bus.publish("site.pcs1.active_power_kw", s(12.0))            # the driver polls again
    assert bus.get("site.pcs1.active_power_kw").value == 0.0
    assert bus.get("site.pcs1.active_power_kw").quality is Quality.MANUAL
    assert bus.forced() == ["site.pcs1.active_power_kw"]
    assert bus.release("site.pcs1.active_power_kw")
    assert bus.get("site.pcs1.active_power_kw").value == 12.0
    assert not bus.release("site.pcs1.active_power_kw")
