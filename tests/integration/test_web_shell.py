"""The web UI shell through the real app: home page and menu, static files (local, gzip,
cached by content hash), HTML error pages for browsers while the API keeps problem+json,
flash messages shown once, and partial answers for HTMX."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tests.conftest import TransactionalDatabase
from tests.support.app import api
from vigil.core.web import flash
from vigil.core.web.assets import VENDOR_FILES, asset_url, missing_vendor_files

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def client(db: TransactionalDatabase) -> Iterator[TestClient]:
    test_client, _ = api(db)
    with test_client:
        yield test_client


def test_home_lists_every_module_page_in_the_menu(client: TestClient) -> None:
    page = client.get("/", headers=BROWSER)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for path in ("/markets/dashboard", "/markets/gold"):
        assert f'href="{path}"' in page.text
    assert "<title>Home · Vigil</title>" in page.text


def test_pages_load_their_assets_from_this_server_only(client: TestClient) -> None:
    page = client.get("/markets/dashboard", headers=BROWSER).text
    assert "http://" not in page.replace('xmlns="http://', "")
    assert "https://" not in page
    for name in ("vendor/htmx.min.js", "vendor/pico.min.css", "vendor/lightweight-charts.js"):
        assert asset_url(name) in page


def test_vendor_files_are_installed() -> None:
    # `make install` copies them out of node_modules (package-lock.json); a missing file
    # would leave the UI without charts.
    assert missing_vendor_files() == [], "run `make install`"
    assert set(VENDOR_FILES) == {"htmx.min.js", "lightweight-charts.js", "pico.min.css"}


def test_static_files_are_gzipped_and_cached_by_content_hash(client: TestClient) -> None:
    url = asset_url("vendor/lightweight-charts.js")
    assert "?v=" in url
    assert "missing" not in url
    answer = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200
    assert answer.headers["content-encoding"] == "gzip"
    assert "immutable" in answer.headers["cache-control"]
    assert "LightweightCharts" in answer.text  # httpx undid the gzip
    raw = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert len(gzip.compress(raw.content)) < len(raw.content) / 2
    unversioned = client.get("/static/vigil.css")
    assert "immutable" not in unversioned.headers.get("cache-control", "")


def test_a_browser_gets_an_error_page_and_the_api_a_problem(client: TestClient) -> None:
    page = client.get("/markets/nowhere", headers=BROWSER)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "There is no page at /markets/nowhere." in page.text
    assert 'href="/markets/dashboard"' in page.text  # the menu is there to go on
    api_answer = client.get("/api/v1/markets/nowhere", headers=BROWSER)
    assert api_answer.status_code == 404
    assert api_answer.headers["content-type"] == "application/problem+json"
    script = client.get("/markets/nowhere")  # no Accept: text/html (curl, fetch)
    assert script.headers["content-type"] == "application/problem+json"


def test_bad_page_input_is_a_422_page_saying_what_is_wrong(client: TestClient) -> None:
    page = client.get("/markets/dashboard?range=10y", headers=BROWSER)
    assert page.status_code == 422
    assert "query parameter &#39;range&#39;" in page.text
    reversed_range = client.get(
        "/markets/dashboard?code=USD&from=2024-02-01&to=2024-01-01", headers=BROWSER
    )
    assert reversed_range.status_code in (404, 422)  # no USD here (404) or the range (422)


def test_an_htmx_error_is_answered_with_the_fragment_only(client: TestClient) -> None:
    answer = client.get("/markets/dashboard?range=bad", headers={**BROWSER, "HX-Request": "true"})
    assert answer.status_code == 422
    assert "<html" not in answer.text
    assert 'class="error-page"' in answer.text


def test_a_flash_message_is_shown_once(db: TransactionalDatabase) -> None:
    test_client, _ = api(db)

    def demo(_request: Request) -> Response:
        return flash(RedirectResponse("/", status_code=303), "Asset added: BTC", "success")

    test_client.app.add_route("/flash-demo", demo)  # type: ignore[attr-defined]

    with test_client:
        first = test_client.get("/flash-demo", headers=BROWSER)  # follows the redirect
        assert first.status_code == 200
        assert 'class="flash flash-success"' in first.text
        assert "Asset added: BTC" in first.text
        again = test_client.get("/", headers=BROWSER)
        assert "Asset added: BTC" not in again.text


def test_flash_refuses_an_unknown_level() -> None:
    with pytest.raises(ValueError, match="level"):
        flash(RedirectResponse("/"), "x", "loud")


def test_theme_switch_and_keyboard_skip_link_are_on_every_page(client: TestClient) -> None:
    page = client.get("/markets/gold", headers=BROWSER).text
    assert 'id="theme-toggle"' in page
    assert 'class="skip-link" href="#main"' in page
    assert 'id="main"' in page
    assert 'aria-current="page"' in page  # the menu marks where the user is
