import threading
import time

import pytest

from app.core.clock import ManualClock, ScaledClock


def test_manual_clock_wait_returns_when_time_is_advanced():
    clock = ManualClock()
    stop = threading.Event()
    done = []
    t = threading.Thread(target=lambda: done.append(clock.wait(stop, 10.0)))
    t.start()
    clock.advance(5.0)
    assert t.is_alive()
    clock.advance(5.0)
    t.join(2.0)
    assert done == [False]


def test_manual_clock_wait_returns_true_when_event_set():
    clock = ManualClock()
    stop = threading.Event()
    stop.set()
    assert clock.wait(stop, 100.0) is True


def test_scaled_clock_runs_faster_and_waits_shorter():
    clock = ScaledClock(100.0)
    t0, w0 = clock.monotonic(), time.monotonic()
    clock.wait(threading.Event(), 5.0)          # 5 simulated seconds = 50 ms real
    real = time.monotonic() - w0
    assert real < 1.0
    assert clock.monotonic() - t0 >= 5.0


@pytest.mark.parametrize("speed", [0, -1, 1001])
def test_scaled_clock_rejects_speeds_outside_1_to_1000(speed):
    with pytest.raises(ValueError):
        ScaledClock(speed)
