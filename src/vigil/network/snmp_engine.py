"""One SNMP engine (:class:`~vigil.network.snmp_transport.SnmpTransport`) per process, on
an event loop of its own.

The engine's UDP sockets are asyncio transports of the loop they were opened on, and its
timers and pending requests live there too. Jobs, however, run on whatever thread the
scheduler or the Celery thread pool gives them, each one synchronous. So the process keeps
one daemon thread running one loop forever; the engine lives on it and every SNMP coroutine
of the process runs there (:meth:`SnmpRuntime.run` hands it over with
``run_coroutine_threadsafe`` and waits). What is kept across polls and jobs: one UDP socket
per address family, the targets and credentials, the v3 agents' discovered engine ids,
clocks and localised keys.

A child made by ``fork`` does not inherit threads: :func:`runtime` notices the new pid and
starts its own.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from vigil.network.snmp_transport import SnmpTransport

T = TypeVar("T")


class SnmpRuntime:
    """A daemon thread running one event loop, and the SNMP engine that lives on it."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="vigil-snmp", daemon=True)
        self._thread.start()
        self._ready.wait()
        self.engine: SnmpTransport = self.run(self._create_engine())

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    @staticmethod
    async def _create_engine() -> SnmpTransport:
        return SnmpTransport()  # its sockets are opened on first use, on this running loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Runs ``coro`` on the engine's loop and waits for its result (from any other
        thread; never from the loop's own thread, which would wait for itself)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("SnmpRuntime.run called from its own loop: await instead")
        return self.submit(coro).result(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self.loop.is_closed()

    def close(self) -> None:
        """Closes the engine's sockets and stops the thread (tests, shutdown)."""
        if not self.alive:
            return

        async def shut() -> None:
            self.engine.close()

        try:
            self.run(shut(), timeout=5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            if not self._thread.is_alive():
                self.loop.close()


_lock = threading.Lock()
_current: list[SnmpRuntime] = []  # the process's one runtime, once started


def runtime() -> SnmpRuntime:
    """The process's SNMP runtime, started on first use (again in a forked child)."""
    with _lock:
        if not _current or _current[0].pid != os.getpid() or not _current[0].alive:
            _current[:] = [SnmpRuntime()]
        return _current[0]
