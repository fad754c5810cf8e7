"""Google Books and Open Library clients and the catalogue over them, against the recorded
replies (tests/fixtures/google_books, open_library) served by the fake on 127.0.0.1:
parsing, the API key header, retries honouring Retry-After (sleeps recorded, never slept),
giving up on a Retry-After beyond the cap, Open Library as the fallback and for missing page
counts, and the cache. Nothing here talks to the real services."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.books_server import GOOGLE_SEARCH, GOOGLE_VOLUME, OPEN_LIBRARY_SEARCH, FakeBooks
from vigil.core.cache import MemoryCache
from vigil.reading.catalog import Catalog, SourcesUnavailable
from vigil.reading.sources import SOURCES, BookSourceError, create_source
from vigil.reading.sources.google_books import (
    API_KEY_HEADER,
    GoogleBooks,
    parse_volume,
    parse_volumes,
)
from vigil.reading.sources.open_library import OpenLibrary, parse_search
from vigil.settings import Settings


@pytest.fixture
def books() -> Iterator[FakeBooks]:
    with FakeBooks() as fake:
        yield fake


def google(books: FakeBooks, sleeps: list[float], **kw: Any) -> GoogleBooks:
    return GoogleBooks(books.google_url, sleep=sleeps.append, backoff_initial=1.0, **kw)


def catalog(books: FakeBooks, sleeps: list[float], ttl: float = 60.0) -> Catalog:
    return Catalog(
        google(books, sleeps, max_attempts=2),
        OpenLibrary(books.open_library_url, sleep=sleeps.append, max_attempts=2),
        MemoryCache(),
        ttl,
    )


def test_the_recorded_google_search_parses() -> None:
    hits = parse_volumes(json.loads(GOOGLE_SEARCH.read_bytes()))
    assert len(hits) == 10
    first = hits[0]
    assert first.source_id == "s77iyQEACAAJ"
    assert first.title == "Fantastic Beasts and Where to Find Them"
    assert first.authors == ("J. K. Rowling",)
    assert first.page_count == 160
    assert first.isbn13 == "9781526620316"
    assert first.cover_url is not None
    assert first.cover_url.startswith("https://books.google.com/")
    # The recorded "Harry Potter" volume DAAAAAAACAAJ has no pageCount: unknown, not 0.
    assert next(h for h in hits if h.source_id == "DAAAAAAACAAJ").page_count is None


def test_the_recorded_volume_and_open_library_search_parse() -> None:
    eden = parse_volume(json.loads(GOOGLE_VOLUME.read_bytes()))
    assert (eden.title, eden.authors, eden.page_count, eden.isbn13) == (
        "East of Eden", ("John Steinbeck",), 608, "9781440631320"
    )  # fmt: skip
    works = parse_search(json.loads(OPEN_LIBRARY_SEARCH.read_bytes()))
    assert len(works) == 15
    empire = next(w for w in works if w.source_id == "OL5738148W")
    assert empire.title == "The Final Empire (Mistborn, Book 1)"
    assert empire.page_count == 671
    assert empire.cover_url == "https://covers.openlibrary.org/b/id/524535-M.jpg"
    assert next(w for w in works if w.source_id == "OL19913857W").page_count is None


def test_both_sources_are_registered() -> None:
    assert set(SOURCES) == {"google_books", "open_library"}
    settings = Settings(google_books_base_url="http://127.0.0.1:9/books/v1/")
    with create_source("google_books", settings) as source:
        assert isinstance(source, GoogleBooks)
        assert source.base_url == "http://127.0.0.1:9/books/v1"


def test_search_and_lookup_over_http_with_the_key_in_a_header(books: FakeBooks) -> None:
    with google(books, [], headers={API_KEY_HEADER: "secret-key"}) as client:
        hits = client.search("harry potter", 5)
        eden = client.lookup("OPy6E5ZhXs0C")
        assert client.lookup("nosuchvolume") is None
        assert "secret-key" not in repr(client)
    assert len(hits) == 5
    assert eden is not None
    assert eden.page_count == 608
    first = books.requests[0]
    assert first.path == "/books/v1/volumes"
    assert first.query == {"q": "harry potter", "maxResults": "5"}
    assert first.headers[API_KEY_HEADER] == "secret-key"
    assert "secret-key" not in json.dumps([r.query for r in books.requests])
    assert first.headers["user-agent"].startswith("Vigil/")


def test_429_is_retried_after_retry_after(books: FakeBooks) -> None:
    books.queue_fault("google", 429, b'{"error":{"code":429}}', {"Retry-After": "3"})
    books.queue_fault("google", 503, b"busy")
    sleeps: list[float] = []
    with google(books, sleeps, max_attempts=3) as client:
        assert len(client.search("x")) == 10
    assert len(sleeps) == 2
    assert sleeps[0] >= 3  # never sooner than Retry-After
    assert books.count("google") == 3


def test_a_retry_after_beyond_the_cap_gives_up_at_once(books: FakeBooks) -> None:
    books.queue_fault("google", 429, b"slow down", {"Retry-After": "3600"})
    sleeps: list[float] = []
    with google(books, sleeps, max_attempts=5) as client, pytest.raises(BookSourceError) as err:
        client.search("x")
    assert sleeps == []
    assert books.count("google") == 1
    assert "3600" in str(err.value)


def test_other_4xx_are_not_retried(books: FakeBooks) -> None:
    books.queue_fault("google", 400, b'{"error":{"message":"Invalid query"}}')
    with google(books, [], max_attempts=5) as client, pytest.raises(BookSourceError) as err:
        client.search("x")
    assert books.count("google") == 1
    assert "Invalid query" in str(err.value)


def test_open_library_answers_when_google_fails(books: FakeBooks) -> None:
    for _ in range(2):
        books.queue_fault("google", 503, b"down")
    result = catalog(books, []).search("mistborn")
    assert result.source == "open_library"
    assert "Google Books did not answer" in result.notes[0]
    assert [h.source for h in result.hits] == ["open_library"] * 10


def test_no_source_answering_is_one_clear_error(books: FakeBooks) -> None:
    for service in ("google", "openlibrary"):
        for _ in range(2):
            books.queue_fault(service, 503, b"down")
    with pytest.raises(SourcesUnavailable, match=r"Google Books: .*Open Library: "):
        catalog(books, []).search("anything")


def test_a_missing_page_count_comes_from_open_library_by_isbn(books: FakeBooks) -> None:
    # The recorded search, with the volume that has no pageCount carrying the ISBN of a
    # work in the recorded Open Library search (the Mistborn trilogy, median 1712 pages).
    payload = json.loads(GOOGLE_SEARCH.read_bytes())
    item = next(i for i in payload["items"] if i["id"] == "DAAAAAAACAAJ")
    item["volumeInfo"]["industryIdentifiers"] = [{"type": "ISBN_13", "identifier": "9780765381521"}]
    books.google_search = json.dumps(payload).encode()
    hits = catalog(books, []).search("harry potter").hits
    assert next(h for h in hits if h.source_id == "DAAAAAAACAAJ").page_count == 1712
    asked = [r.query["q"] for r in books.requests if r.service == "openlibrary"]
    assert asked == ["isbn:9780765381521"]  # only the hit without a page count


def test_searches_and_hits_are_cached(books: FakeBooks) -> None:
    shelf = catalog(books, [])
    first = shelf.search("Harry  Potter")
    before = len(books.requests)
    again = shelf.search("harry potter")  # the same query, normalised
    assert again.hits == first.hits
    assert len(books.requests) == before
    # A hit just found is looked up without a request.
    assert shelf.lookup("google_books", "s77iyQEACAAJ") == first.hits[0]
    assert len(books.requests) == before
    # Not cached: asked once, then remembered.
    assert shelf.lookup("google_books", "OPy6E5ZhXs0C") is not None
    assert shelf.lookup("google_books", "OPy6E5ZhXs0C") is not None
    assert len(books.requests) == before + 1


def test_open_library_lookup_by_work_key(books: FakeBooks) -> None:
    with OpenLibrary(books.open_library_url) as client:
        work = client.lookup("OL5738148W")
        assert client.lookup("not-a-key") is None
    assert work is not None
    assert work.page_count == 671
    assert books.requests[-1].query["q"] == "key:/works/OL5738148W"
