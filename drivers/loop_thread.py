"""An asyncio loop on its own thread serving until stop() — the simulator-side servers' common shape
(Modbus TCP, Modbus RTU, Modbus replay). Subclasses implement `_serve()`: set up, call
`self._ready.set()` once serving, then return when `self._stop` is set."""
from __future__ import annotations

import abc
import asyncio
import threading


class LoopThread(abc.ABC):
    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def _start_thread(self, what: str, timeout: float) -> None:
        """Run the loop; returns once `_serve` is ready, else stops and raises OSError naming `what`."""
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error:
            self.stop()
            raise OSError(f"{self.name}: cannot {what}: {self._error or 'timeout'}")

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:   # reported to start(); the thread ends
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self._serve()

    @abc.abstractmethod
    async def _serve(self) -> None: ...

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop and self._stop and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive())
