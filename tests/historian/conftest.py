"""Helpers for historian tests: run a writer on a thread and always stop it; wait on conditions."""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import pytest

from app.core.clock import ManualClock
from app.core.databus import DataBus
from app.core.events import EventJournal
from app.historian.writer import HistorianWriter

T0 = 1_700_000_000.0


def wait_until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `cond` until true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)


@contextmanager
def running(writer: HistorianWriter) -> Iterator[HistorianWriter]:
    """Run `writer` on its own thread for the duration of the block; stop and join it afterwards."""
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,), name=writer.name)
    thread.start()
    try:
        wait_until(writer.ready.is_set, what="writer ready")
        yield writer
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive(), "historian writer did not stop"


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "historian.sqlite"


@pytest.fixture
def rig():
    """A bus, a journal and a manual clock at T0."""
    return DataBus(), EventJournal(), ManualClock(T0)
