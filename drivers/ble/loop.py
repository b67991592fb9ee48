"""The one asyncio event-loop thread shared by every BLE link of the process (DESIGN.md section 3).

`BLE_LOOP.acquire()` starts the `ble-loop` thread for the first user and `release()` stops it after
the last one (drivers acquire it for the life of their `run`, the simulator's BLE links for as long as
they serve), so nothing is left running when no BLE link is open. Driver threads hand coroutines to
it with `run(coro, timeout_s)`. `air()` is the process's bumble in-process radio medium (a LocalLink,
used from the loop thread only): simulated packs and bumble centrals of the same process meet there.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class BleLoop:
    """Reference-counted asyncio loop thread; thread-safe."""

    thread_name = "ble-loop"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._air: Any = None

    def acquire(self) -> None:
        """Start the loop thread if this is the first user; returns once the loop runs."""
        with self._lock:
            self._users += 1
            if self._loop is not None:
                return
            loop = asyncio.new_event_loop()
            started = threading.Event()
            self._thread = threading.Thread(target=self._main, args=(loop, started), name=self.thread_name,
                                            daemon=True)
            self._thread.start()
            started.wait()
            self._loop = loop

    def release(self) -> None:
        """Drop one user; the last one stops the loop (pending tasks are cancelled) and joins the thread."""
        with self._lock:
            self._users -= 1
            if self._users > 0 or self._loop is None:
                return
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
            self._air = None
            loop.call_soon_threadsafe(loop.stop)
        thread.join()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the BLE loop is not running: acquire() it first")
        return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
        """Run `coro` on the loop from another thread and return its result (its exception is raised
        here). After `timeout_s` it is cancelled and TimeoutError is raised."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"BLE operation took longer than {timeout_s:g} s") from None

    def air(self) -> Any:
        """The in-process bumble LocalLink of this loop's life (call on the loop thread)."""
        if self._air is None:
            from bumble.link import LocalLink
            self._air = LocalLink()
        return self._air

    def _main(self, loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        try:
            loop.run_forever()
        finally:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()


BLE_LOOP = BleLoop()
