"""Sorting the devices table by a column (issue #9) on SQLite and PostgreSQL: every key both
ways with the devices that have no value last, ties by name then id so that pages neither
repeat nor lose a device; the header links with aria-sort and an arrow, the sort kept by the
pager, the refresh and the filter form; the API's same ``sort``; refused values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import TransactionalDatabase
from tests.integration.test_network_pages import BROWSER, HTMX, add_device, browser, set_state
from tests.support.app import api
from vigil.core.auth.permissions import Role
from vigil.core.problems import BadRequest
from vigil.network import device_queries, service

KEYS = ("name", "status", "rtt", "loss", "site", "type", "address")
RANK = {"down": 0, "unreachable": 1, "unknown": 2, "up": 3}


@dataclass(frozen=True)
class Dev:
    id: int
    name: str
    address: str
    type: str
    site: str | None
    status: str  # "unknown" without a state row
    rtt: float | None
    loss: float | None

    def value(self, key: str) -> Any:
        return RANK[self.status] if key == "status" else getattr(self, key)


def inventory(db: TransactionalDatabase) -> list[Dev]:
    """Twelve devices created out of name order, with ties on every column but name and
    address, and no value for some: never polled (no state row), polled but down (a state
    row without RTT or loss), no site."""
    rows = [
        # name, address, type, site, state: None or (status, rtt, loss)
        ("kappa", "10.0.0.11", "router", "waw", ("up", 1.5, 0.0)),
        ("alpha", "10.0.0.25", "switch", None, None),
        ("delta", "10.0.0.22", "router", "krk", ("up", 0.25, 0.0)),
        ("golf", "10.0.0.29", "server", "waw", ("down", None, None)),
        ("bravo", "10.0.0.12", "ap", "krk", ("up", 1.5, 50.0)),
        ("hotel", "10.0.0.21", "switch", "gdn", ("unreachable", None, 100.0)),
        ("echo", "10.0.0.27", "router", None, ("up", 12.0, 0.0)),
        ("india", "10.0.0.23", "server", "krk", ("unknown", None, None)),
        ("charlie", "10.0.0.10", "switch", "waw", ("up", 0.25, 25.0)),
        ("juliet", "10.0.0.24", "ap", None, None),
        ("foxtrot", "10.0.0.28", "router", "gdn", ("up", 3.0, 0.0)),
        ("lima", "10.0.0.26", "server", "waw", ("down", None, 100.0)),
    ]
    devices = []
    for name, address, kind, site, state in rows:
        device_id = add_device(db, name=name, address=address, type=kind, site=site)
        status, rtt, loss = state or ("unknown", None, None)
        if state:
            set_state(db, device_id, status, last_rtt_ms=rtt, last_loss_pct=loss)
        devices.append(Dev(device_id, name, address, kind, site, status, rtt, loss))
    return devices


def expected(devices: list[Dev], sort: str) -> list[int]:
    """The order ``sort`` promises, computed here: by the key (stable: ties keep the name
    then id order, also when reversed), devices without a value last either way."""
    key, descending = sort.removeprefix("-"), sort.startswith("-")
    by_name = sorted(devices, key=lambda d: (d.name, d.id), reverse=key == "name" and descending)
    valued = [d for d in by_name if d.value(key) is not None]
    valued.sort(key=lambda d: d.value(key), reverse=descending)
    return [d.id for d in valued + [d for d in by_name if d.value(key) is None]]


def shown(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-device="(\d+)"', html)]


def headers(html: str) -> dict[str, str]:
    """Each column header's opening tag and content, by its label."""
    head = re.search(r"<thead>(.*?)</thead>", html, re.S)
    assert head, html
    cells = re.findall(r"(<th [^>]*>)(.*?)</th>", head.group(1), re.S)
    return {re.sub(r"<[^>]+>|[\u25b2\u25bc]", "", body).strip(): tag + body for tag, body in cells}


def test_every_key_both_ways_with_the_devices_without_a_value_last(
    db: TransactionalDatabase,
) -> None:
    devices = inventory(db)
    client = browser(db, Role.VIEWER)
    assert expected(devices, "rtt")[:4] == [  # the fixture's ties, as this test reads them
        next(d.id for d in devices if d.name == n) for n in ("charlie", "delta", "bravo", "kappa")
    ]
    for key in KEYS:
        for sort in (key, f"-{key}"):
            order = expected(devices, sort)
            with db.session() as session:
                rows, total = device_queries.table_rows(
                    session, service.DeviceFilter(), 50, 0, sort
                )
            assert (total, [r.id for r in rows]) == (12, order), sort
            page = client.get(f"/network?sort={sort}", headers=BROWSER)
            assert page.status_code == 200, page.text
            assert shown(page.text) == order, sort
            listed = client.get("/api/v1/devices", params={"sort": sort}).json()
            assert [d["id"] for d in listed["items"]] == order, sort
    # No value is last both ways: never polled, down without an RTT, no site.
    unpolled = {d.id for d in devices if d.rtt is None}
    for sort in ("rtt", "-rtt"):
        assert set(expected(devices, sort)[-len(unpolled) :]) == unpolled
    assert [d.name for d in devices if d.id in expected(devices, "-site")[-3:]] == [
        "alpha",
        "echo",
        "juliet",
    ]
    # Sorting and filters together: the filters narrow, the sort orders.
    krk = client.get("/network?site=krk&sort=-rtt", headers=HTMX)
    assert shown(krk.text) == [
        d for d in expected(devices, "-rtt") if d in {x.id for x in devices if x.site == "krk"}
    ]


def test_pages_of_a_sorted_table_neither_repeat_nor_lose_a_device(
    db: TransactionalDatabase,
) -> None:
    """Thirty devices whose loss is mostly the same and whose RTT is often missing: the
    pages of each order, joined, are the whole order once (the tie-break by name and id)."""
    ids = []
    for i in range(30):
        device_id = add_device(db, name=f"dev-{(i * 7) % 30:02d}", address=f"10.0.2.{i + 1}")
        ids.append(device_id)
        if i % 3:
            set_state(
                db, device_id, "up", last_rtt_ms=float(i % 4) or None, last_loss_pct=i % 2 * 50.0
            )
    client = browser(db, Role.VIEWER)
    for sort in ("loss", "-loss", "rtt", "-rtt", "status", "-site", "type"):
        whole = shown(client.get(f"/network?sort={sort}&size=50", headers=BROWSER).text)
        assert sorted(whole) == sorted(ids), sort
        pages = []
        for number in (1, 2):
            html = client.get(f"/network?sort={sort}&size=25&page={number}", headers=HTMX).text
            pages += shown(html)
        assert pages == whole, sort
        api_pages = []
        for offset in range(0, 30, 7):
            answer = client.get(
                "/api/v1/devices", params={"sort": sort, "limit": 7, "offset": offset}
            )
            api_pages += [d["id"] for d in answer.json()["items"]]
        assert api_pages == whole, sort


def test_the_headers_are_links_with_aria_sort_and_the_sort_is_kept(
    db: TransactionalDatabase,
) -> None:
    for i in range(30):
        add_device(db, name=f"dev-{i:02d}", address=f"10.0.3.{i + 1}", site="waw")
    client = browser(db, Role.VIEWER)

    default = headers(client.get("/network", headers=BROWSER).text)
    assert 'aria-sort="ascending"' in default["Name"]
    assert "\u25b2" in default["Name"]
    assert 'href="/network?sort=-name"' in default["Name"]  # sorted: the other way next
    assert sum("aria-sort" in cell for cell in default.values()) == 1
    assert 'href="/network?sort=rtt"' in default["Last RTT"]
    for unsortable in ("RTT, last hour", "Last poll (UTC)", "Tags"):
        assert "<a" not in default[unsortable]

    html = client.get("/network?site=waw&sort=-rtt&page=2&size=25", headers=BROWSER).text
    cells = headers(html)
    assert 'aria-sort="descending"' in cells["Last RTT"]
    assert "\u25bc" in cells["Last RTT"]
    assert sum("aria-sort" in cell for cell in cells.values()) == 1
    assert "\u25b2" not in html
    # Each header keeps the other filters, the page size, and goes back to page 1; HTMX
    # swaps the panel and pushes the address, as the pager does.
    assert 'href="/network?site=waw&amp;sort=rtt&amp;size=25"' in cells["Last RTT"]
    assert 'href="/network?site=waw&amp;size=25"' in cells["Name"]  # name: the default
    assert 'href="/network?site=waw&amp;sort=status&amp;size=25"' in cells["Status"]
    for cell in (cells["Last RTT"], cells["Site"]):
        assert 'hx-target="#devices-panel"' in cell
        assert 'hx-swap="outerHTML"' in cell
        assert 'hx-push-url="true"' in cell
    # The pager, the refresh and the filter form (a control of the form in the panel) keep it.
    assert 'href="/network?site=waw&amp;sort=-rtt&amp;size=25" hx-get' in html  # page 1
    assert 'hx-get="/network?site=waw&amp;sort=-rtt&amp;page=2&amp;size=25"' in html
    assert '<input type="hidden" name="sort" value="-rtt" form="device-filters">' in html
    assert '<form id="device-filters"' in html
    # The CSV export is in name order: no sort passed along.
    export = re.search(r'href="(/api/v1/devices/export[^"]*)"', html)
    assert export
    assert "sort" not in export.group(1)

    partial = client.get("/network?sort=type", headers=HTMX).text
    assert partial.lstrip().startswith('<section id="devices-panel"')
    assert 'aria-sort="ascending"' in headers(partial)["Type"]
    assert 'hx-get="/network?sort=type" hx-trigger="every 30s"' in partial


def test_a_wrong_sort_is_refused_as_the_other_filters_are(db: TransactionalDatabase) -> None:
    add_device(db)
    client = browser(db, Role.VIEWER)
    for bad in ("ping", "--rtt", "RTT", "rtt-", "tags", "", "name,id"):
        page = client.get("/network", params={"sort": bad}, headers=BROWSER)
        assert page.status_code == 422, bad
        assert "text/html" in page.headers["content-type"]
        assert client.get("/network", params={"sort": bad}, headers=HTMX).status_code == 422
        listed = client.get("/api/v1/devices", params={"sort": bad})
        assert listed.status_code == 422, bad
        assert listed.headers["content-type"] == "application/problem+json"
        assert "sort" in listed.json()["detail"]
    with pytest.raises(BadRequest, match="sort must be one of name, status, rtt"):
        service.device_order("ping")


def test_the_apis_sort_is_documented(db: TransactionalDatabase) -> None:
    client, _ = api(db)
    spec = client.get("/openapi.json")
    assert spec.status_code == 200, spec.text
    parameters = spec.json()["paths"]["/api/v1/devices"]["get"]["parameters"]
    sort = next(p for p in parameters if p["name"] == "sort")
    assert sort["in"] == "query"
    assert sort["schema"]["default"] == "name"
    assert "descending" in sort["description"]
    assert "last" in sort["description"]
