"""A fake Google Books and Open Library, on 127.0.0.1, answering from the recorded replies
in ``tests/fixtures/google_books`` and ``tests/fixtures/open_library``.

- ``/books/v1/volumes?q=…`` answers the recorded search (whatever the query; a test may set
  another body with ``google_search``), ``/books/v1/volumes/{id}`` the recorded volume for
  ``OPy6E5ZhXs0C`` and 404 for any other id;
- ``/openlibrary/search.json?q=…`` answers the recorded search; ``q=isbn:<isbn>`` and
  ``q=key:/works/<id>`` keep only the recorded works with that ISBN or key.

Faults are queued per service (``"google"`` or ``"openlibrary"``): the next answers can be
any status, body and headers (a 429 with ``Retry-After``, a 503). Standard library only::

    with FakeBooks() as books:
        settings = Settings(google_books_base_url=books.google_url,
                            open_library_base_url=books.open_library_url)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.serving import ThreadedFake

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GOOGLE_SEARCH = FIXTURES / "google_books" / "volumes_q=unknown_harry_potter_results.json"
GOOGLE_VOLUME = FIXTURES / "google_books" / "volume_OPy6E5ZhXs0C.json"
OPEN_LIBRARY_SEARCH = FIXTURES / "open_library" / "search_q=mistborn_page=1.json"
_JSON = "application/json; charset=UTF-8"


@dataclass(frozen=True, slots=True)
class Logged:
    service: str  # google | openlibrary
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeBooks) -> None:
        self.fake = fake
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, body, extra = self.server.fake.answer(self.path, headers)
        self.send_response(status)
        self.send_header("Content-Type", extra.get("content-type", _JSON))
        for name, value in extra.items():
            if name != "content-type":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are in ``FakeBooks.requests``."""


class FakeBooks(ThreadedFake):
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.google_search: bytes = GOOGLE_SEARCH.read_bytes()
        self.volumes: dict[str, bytes] = {"OPy6E5ZhXs0C": GOOGLE_VOLUME.read_bytes()}
        self.ol_search: dict[str, Any] = json.loads(OPEN_LIBRARY_SEARCH.read_bytes())
        self.requests: list[Logged] = []
        self.faults: dict[str, list[tuple[int, bytes, dict[str, str]]]] = {
            "google": [],
            "openlibrary": [],
        }
        self._lock = threading.Lock()

    def make_server(self) -> ThreadingHTTPServer:
        return _Server((self.host, self.port), self)

    @property
    def google_url(self) -> str:
        return f"{self.base_url}/books/v1"

    @property
    def open_library_url(self) -> str:
        return f"{self.base_url}/openlibrary"

    def queue_fault(
        self, service: str, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> None:
        with self._lock:
            self.faults[service].append((status, body, dict(headers or {})))

    def count(self, service: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.service == service)

    def answer(self, raw: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        parts = urlsplit(raw)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        service = "google" if parts.path.startswith("/books/v1/") else "openlibrary"
        with self._lock:
            self.requests.append(Logged(service, parts.path, query, headers))
            if self.faults[service]:
                return self.faults[service].pop(0)
        if parts.path == "/books/v1/volumes":
            return 200, self.google_search, {}
        if parts.path.startswith("/books/v1/volumes/"):
            volume = self.volumes.get(parts.path.rsplit("/", 1)[-1])
            if volume is None:
                return (
                    404,
                    b'{"error":{"code":404,"message":"The volume ID could not be found."}}',
                    {},
                )
            return 200, volume, {}
        if parts.path == "/openlibrary/search.json":
            return 200, json.dumps(self._ol(query.get("q", ""))).encode(), {}
        return 404, b'{"error":"not found"}', {}

    def _ol(self, q: str) -> dict[str, Any]:
        docs = self.ol_search["docs"]
        if q.startswith("isbn:"):
            docs = [d for d in docs if q[5:] in (d.get("isbn") or [])]
        elif q.startswith("key:"):
            docs = [d for d in docs if d.get("key") == q[4:]]
        return {**self.ol_search, "numFound": len(docs), "num_found": len(docs), "docs": docs}
