"""What the fake servers share: serving on 127.0.0.1 from a daemon thread (start, stop, a
context manager) and, as a process, serving until SIGTERM or SIGINT."""

from __future__ import annotations

import signal
import threading
from http.server import ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import ClassVar, Self


class ThreadedFake:
    """A fake API served by a ``ThreadingHTTPServer`` that :meth:`make_server` builds;
    ``api_path`` is the base URL's path (``/api`` for NBP)."""

    api_path: ClassVar[str] = ""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def make_server(self) -> ThreadingHTTPServer:
        raise NotImplementedError

    def after_shutdown(self, server: ThreadingHTTPServer) -> None:
        """Hook run once the server stopped (e.g. drop open keep-alive connections)."""

    def start(self) -> str:
        """Start serving in a daemon thread; returns the base URL."""
        if self._server is None:
            server = self.make_server()
            self._server = server
            self.port = server.server_address[1]
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{type(self).__name__}:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self.base_url

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        self.after_shutdown(server)
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://{self.host}:{self.port}{self.api_path}"


def serve_until_signal(fake: ThreadedFake) -> int:
    """Process mode: prints ``READY <base url>`` once listening, serves until SIGTERM or
    SIGINT, then stops. Returns the exit code."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"READY {fake.start()}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        fake.stop()
    return 0
