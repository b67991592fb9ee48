"""Helpers shared by tests: free loopback ports, waiting on conditions, generated site files."""
from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from app.core.clock import SystemClock
from app.core.commands import CommandRouter
from app.core.databus import DataBus
from app.core.events import EventJournal
from app.core.supervisor import Supervisor

from app.core.site import Site, load_site
from app.security.roles import Role


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02, what: str = "condition", journal=None):
    """Wait on a condition with a timeout (never a bare sleep); returns the predicate's value.
    With `journal` (an EventJournal) a timeout lists its events, to show what happened instead."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            events = "".join(f"\n  {e.kind}: {e.message}" for e in journal.since(0)) if journal else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{events}")
        time.sleep(interval)


def site_text(bms_port: int, pcs_port: int, racks: int = 2, modules: int = 2, cells: int = 8,
              poll_s: float = 0.2, stale_after_s: float = 1.0, chemistry: str = "lfp", bms_can: bool = False,
              rack_regmap: str = "rack_generic", capacity_ah: float = 100.0, can_options: str = "",
              bms_ble: str = "") -> str:
    """A small site on loopback ports: one PCS link, one BMS link with `racks` racks, simulator on.
    The BMS link is Modbus TCP on `bms_port` (racks with register map `rack_regmap`), or with `bms_can`
    Pylontech CAN served as socketcand there (`can_options`: more link options, e.g.
    'cell_temperature_frames = false'), or with `bms_ble` (its options, e.g. 'protocol = "jbd"') one
    BLE pack over bumble's in-process air."""
    rated_kw = round(racks * modules * cells * 3.2 * capacity_ah / 1000 * 0.5, 1)    # a 0.5C PCS
    bms_link = (f'kind = "can"\naddress = "can0"\noptions = {{ interface = "socketcand", host = "127.0.0.1", '
                f'port = {bms_port}{", " + can_options if can_options else ""} }}' if bms_can else
                f'kind = "ble"\naddress = "C0:00:00:00:01:01"\noptions = {{ {bms_ble}, transport = "bumble" }}'
                if bms_ble else f'kind = "modbus-tcp"\naddress = "127.0.0.1:{bms_port}"')
    rack_lines = ",\n".join(f'  {{ link = "bms1", unit_id = {i + 1}, regmap = "{rack_regmap}" }}' for i in range(racks))
    return f"""
[site]
name = "Test site"

[simulator]
enabled = true

[protection]
period_s = 0.05
stale_after_s = {stale_after_s}

[protection.limits]
cell_overvoltage_trip_delay_s = 0.2

[[link]]
name = "bms1"
{bms_link}
poll_period_s = {poll_s}
timeout_s = 0.3

[[link]]
name = "pcs1"
kind = "modbus-tcp"
address = "127.0.0.1:{pcs_port}"
poll_period_s = {poll_s}
timeout_s = 0.3

[[pcs]]
id = "pcs1"
link = "pcs1"
unit_id = 1
rated_power_kw = {rated_kw}

[[meter]]
id = "meter"
link = "pcs1"
unit_id = 2

[[bess]]
id = "bess1"
chemistry = "{chemistry}"
cell_capacity_ah = {capacity_ah}
pcs = "pcs1"
modules_per_rack = {modules}
cells_per_module = {cells}
racks = [
{rack_lines},
]
"""


def make_site(tmp_path: Path, **kwargs) -> Site:
    path = tmp_path / "site.toml"
    path.write_text(site_text(free_port(), free_port(), **kwargs), encoding="utf-8")
    return load_site(path)


def charging_ems(site: Site) -> dict:
    """Runtime keyword arguments for a deterministic dispatch: manual mode charging at 0.5 x rated power."""
    from app.ems.settings import EmsSettings
    return {"ems_mode": "manual", "ems": EmsSettings(manual_kw=0.5 * site.pcs[0].rated_power_kw)}


class Stack:
    """DataBus, journal, router and a supervisor to run drivers like the runtime does."""

    def __init__(self) -> None:
        self.clock = SystemClock()
        self.bus = DataBus()
        self.journal = EventJournal()
        self.router = CommandRouter()
        self.supervisor = Supervisor(self.journal, self.clock)

    def value(self, point: str):
        sample = self.bus.get(point)
        return None if sample is None else sample.value

    def quality(self, point: str) -> str | None:
        sample = self.bus.get(point)
        return None if sample is None else sample.quality.value


@contextlib.contextmanager
def running(stack: Stack, *workers):
    """Run workers under the stack's supervisor; stop them all on exit (no thread leaks)."""
    for w in workers:
        stack.supervisor.start(w, "drivers")
    try:
        yield
    finally:
        assert stack.supervisor.stop_all(["drivers"]) == []


def rack_values(stack: Stack, rack: str) -> dict:
    """Latest value of every point of `rack` (e.g. site.bess1.rack01)."""
    return {p: s.value for p, s in stack.bus.snapshot().items() if p.startswith(f"{rack}.")}


def same_values(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


class Trail:
    """Every value published at `point` from construction on, in order."""

    def __init__(self, bus: DataBus, point: str) -> None:
        self._sub = bus.subscribe(point)
        self._values: list = []

    def values(self) -> list:
        while not self._sub.queue.empty():
            self._values.append(self._sub.queue.get_nowait()[1].value)
        return list(self._values)

    def distinct(self) -> list:
        """The values with consecutive repeats collapsed."""
        out: list = []
        for v in self.values():
            if not out or not np.array_equal(out[-1], v):
                out.append(v)
        return out


def assert_fields(stack: Stack, rack: str, expected: dict) -> None:
    """The rack's points equal canonical decoder fields (lists arrive comma-joined or as vectors)."""
    for name, want in expected.items():
        got = stack.value(f"{rack}.{name}")
        if name in ("alarms", "balancing_cells"):
            assert got == ",".join(str(v) for v in want), name
        elif isinstance(want, list):
            np.testing.assert_allclose(got, want, atol=1e-6, err_msg=name)
        else:
            assert got == pytest.approx(want), name


def driver_polls(site: Site, link, n: int, between=lambda: None, monitor_to: Path | None = None) -> list[dict]:
    """`n` polls of a fresh driver for `link` (calling `between` after each; its raw-frame monitor
    recording to `monitor_to` if given), then closed."""
    from drivers.registry import build_driver
    driver = build_driver(site, link, DataBus(), CommandRouter(), EventJournal(), SystemClock())
    if monitor_to is not None:
        driver.monitor.start_recording(monitor_to)
    driver.open()
    try:
        out = []
        for _ in range(n):
            out.append(driver.poll())
            between()
        return out
    finally:
        driver.close()
        driver.on_stopped()


PASSWORD = {Role.ADMIN: "correct horse battery", Role.ENGINEER: "wrench tower 77 bolt",
            Role.OPERATOR: "staple gun 22 jump", Role.VIEWER: "lamp post 333 view"}


def add_accounts(security, roles, logout_admin: bool = True) -> None:
    """The first admin ("admin") and one account per role, named after it, with the PASSWORD of its role;
    the admin's session is closed again unless `logout_admin` is False."""
    security.create_first_admin("admin", PASSWORD[Role.ADMIN], "test")
    admin = security.login("admin", PASSWORD[Role.ADMIN], "test")
    for role in roles:
        security.add_user(admin, role.value, role, PASSWORD[role])
    if logout_admin:
        security.logout(admin)


@contextlib.contextmanager
def main_window(rt, qtbot):
    """`rt` started and its main window shown; afterwards the window closed and `rt` stopped cleanly."""
    from app.qt.main_window import MainWindow
    rt.start()
    w = MainWindow(rt)
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()
    assert rt.stop() == []
