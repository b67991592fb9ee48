"""Test-wide fixtures: Qt offscreen, a fixture that fails any test leaking a thread, free ports."""
from __future__ import annotations

import os
import threading
import time

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Threads that live for the whole session by design (not started by the code under test); "Dummy-" are
# Qt-owned pool threads that ran Python code (Python keeps their placeholder objects).
_ALLOWED_PREFIXES = ("pydevd", "QDBusConnection", "asyncio_", "ThreadPoolExecutor", "Dummy-")


def _threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}


@pytest.fixture(autouse=True)
def no_thread_leaks():
    """Fail a test that leaves a thread running it started (after a short grace for joins)."""
    before = _threads()
    yield
    deadline = time.monotonic() + 3.0
    while True:
        leaked = [t for t in _threads() - before if not t.name.startswith(_ALLOWED_PREFIXES)]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not leaked, f"test leaked threads: {sorted(t.name for t in leaked)}"
