"""Shared by the tests/modbus tests: a ModbusDriver running in its own thread over a real link."""
from __future__ import annotations

import contextlib
import threading

from app.core.clock import SystemClock
from app.core.commands import CommandRouter
from app.core.databus import DataBus
from app.core.events import EventJournal
from app.core.site import Link
from drivers.modbus.driver import ModbusDevice, ModbusDriver


def make_driver(link: Link, devices: list[ModbusDevice]) -> ModbusDriver:
    return ModbusDriver(link, DataBus(), CommandRouter(), EventJournal(), SystemClock(), devices)


@contextlib.contextmanager
def running(driver: ModbusDriver):
    """Run the driver's loop in its own thread (as the supervisor would) for the with-block."""
    stop = threading.Event()
    thread = threading.Thread(target=driver.run, args=(stop,), name=driver.name, daemon=True)
    thread.start()
    try:
        yield driver
    finally:
        stop.set()
        thread.join(5.0)
        driver.on_stopped()
        assert not thread.is_alive()


def quality(driver: ModbusDriver, point: str) -> str | None:
    sample = driver.bus.get(point)
    return sample.quality.value if sample else None
