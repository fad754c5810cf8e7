"""The network devices pages on SQLite and PostgreSQL, as signed-in browsers (cookie
sessions, CSRF tokens): the devices table with samples from real ICMP polls of loopback
addresses, its filters, paging and HTMX partial; the device page with RTT/loss, CPU/memory
and interface charts over a range; the forms (add, edit, delete, CSV import) with the API's
validation and audit rows; who may see and do what."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from tests.conftest import TransactionalDatabase
from tests.support.app import api
from tests.support.auth import make_user
from tests.support.web import BROWSER, csrf_of, web_sign_in
from vigil.core.auth.models import AuditEntry
from vigil.core.auth.permissions import Role
from vigil.network import device_queries, icmp, rollups, service
from vigil.network.credentials import Vault
from vigil.network.models import Device, DeviceState, Sample, SampleRollup
from vigil.network.schemas import DeviceIn
from vigil.settings import Settings

KEY = "test network key"
HTMX = {**BROWSER, "HX-Request": "true"}


def browser(db: TransactionalDatabase, role: Role, path: str = "/network") -> TestClient:
    client, _ = app(db)
    account = make_user(db, client.app.state.auth, role)  # type: ignore[attr-defined]
    web_sign_in(client, account.email, path)
    return client


def app(db: TransactionalDatabase) -> tuple[TestClient, Any]:
    return api(db, cache_ttl=0, rate_limit="", network_secret_key=KEY, ui_refresh_seconds=30)


def add_device(db: TransactionalDatabase, **fields: Any) -> int:
    with db.session(write=True) as session:
        body = DeviceIn.model_validate({"name": "core-1", "address": "10.0.0.1", **fields})
        view = service.create_device(session, body, Vault.from_settings(_settings()))
        return view.device.id


def _settings() -> Settings:
    return Settings(network_secret_key=KEY)


def add_samples(
    db: TransactionalDatabase, device_id: int, rows: list[tuple[str, datetime, float]]
) -> None:
    with db.session(write=True) as session:
        session.add_all(Sample(device_id=device_id, metric=m, ts=ts, value=v) for m, ts, v in rows)


def set_state(db: TransactionalDatabase, device_id: int, status: str, **fields: Any) -> None:
    with db.session(write=True) as session:
        session.merge(DeviceState(device_id=device_id, status=status, **fields))


def poll_loopback(db: TransactionalDatabase, targets: list[tuple[int, str]], polls: int) -> None:
    """Real pings of loopback addresses, stored as the ICMP collector stores them (samples
    of each poll's time, the state's last poll, RTT and loss)."""
    settings = icmp.PingSettings(count=2, interval=0.0, timeout=0.5, concurrency=2)
    for _ in range(polls):
        results = icmp.poll(targets, settings)
        assert all(r.ok for r in results), results
        with db.session(write=True) as session:
            for r in results:
                session.add_all(
                    Sample(device_id=r.key, metric=m, ts=r.at, value=v)
                    for m, v in r.samples().items()
                )
                session.merge(
                    DeviceState(
                        device_id=r.key,
                        status="up",
                        last_poll_at=r.at,
                        last_ok_at=r.at,
                        last_rtt_ms=r.rtt_avg_ms,
                        last_loss_pct=r.loss_pct,
                        successes=polls,
                    )
                )


def form_post(
    client: TestClient, page: str, action: str, fields: dict[str, str], **kwargs: Any
) -> Any:
    token = csrf_of(client.get(page, headers=BROWSER).text)
    return client.post(
        action,
        data={**fields, "csrf_token": token},
        headers=BROWSER,
        follow_redirects=False,
        **kwargs,
    )


def chart_spec(html: str, chart_id: str) -> dict[str, Any]:
    found = re.search(rf'<script type="application/json" id="{chart_id}-data">(.*?)</script>', html)
    assert found, f"no chart {chart_id}"
    spec: dict[str, Any] = json.loads(found.group(1))
    return spec


def audit_actions(db: TransactionalDatabase) -> list[str]:
    with db.session() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.entity == "network_device").order_by(AuditEntry.id)
        ).all()
        return [r.action for r in rows]


# --- the devices table ----------------------------------------------------------------------


def test_devices_table_shows_real_polls_with_a_sparkline_and_refreshes_itself(
    db: TransactionalDatabase,
) -> None:
    client = browser(db, Role.VIEWER)
    up = add_device(db, name="loop-v4", address="127.0.0.1", site="waw", tags=["lab"])
    six = add_device(db, name="loop-v6", address="::1", site="krk")
    never = add_device(db, name="never-polled", address="10.9.9.9", enabled=False)
    poll_loopback(db, [(up, "127.0.0.1"), (six, "::1")], polls=3)

    page = client.get("/network", headers=BROWSER)
    assert page.status_code == 200, page.text
    html = page.text
    assert 'href="/network"' in html
    assert 'aria-current="page"' in html
    row = re.search(rf'<tr data-device="{up}">(.*?)</tr>', html, re.S)
    assert row, html
    assert 'data-status="up">up</span>' in row.group(1)  # the status as text, not colour only
    assert re.search(r"\d+\.\d\d ms", row.group(1))  # the last RTT
    assert "0 %" in row.group(1)  # loss
    assert '<svg class="sparkline"' in row.group(1)  # three polls: an RTT sparkline
    assert "<time datetime=" in row.group(1)  # last poll
    unknown = re.search(rf'<tr data-device="{never}">(.*?)</tr>', html, re.S)
    assert unknown
    assert 'data-status="unknown">unknown</span>' in unknown.group(1)
    assert "(disabled)" in unknown.group(1)
    # The panel asks for itself again every ui_refresh_seconds, with the filters it shows.
    assert 'hx-get="/network" hx-trigger="every 30s"' in html
    filtered = client.get("/network?site=waw&status=up", headers=BROWSER).text
    assert 'hx-get="/network?site=waw&amp;status=up" hx-trigger="every 30s"' in filtered
    assert f'data-device="{up}"' in filtered
    assert f'data-device="{six}"' not in filtered
    # Viewers get no edit buttons.
    assert "Add a device" not in html
    assert "Import devices from CSV" not in html


def test_each_sparkline_draws_its_own_devices_last_hour_in_time_order(
    db: TransactionalDatabase,
) -> None:
    """The sparklines of a page are read in one query: each row gets its own device's
    RTTs of the last hour, oldest first (inserted out of order here), scaled into the
    box: the lowest value at the bottom (y 31), the highest at the top (y 1)."""
    client = browser(db, Role.VIEWER)
    rising = add_device(db, name="a-rising", address="10.0.2.1")
    falling = add_device(db, name="b-falling", address="10.0.2.2")
    single = add_device(db, name="c-single", address="10.0.2.3")
    now = datetime.now(UTC)
    minutes = [50, 10, 40, 20, 30, 0]  # not in time order
    add_samples(
        db, rising, [("icmp.rtt_avg_ms", now - timedelta(minutes=m), 60.0 - m) for m in minutes]
    )
    add_samples(
        db, falling, [("icmp.rtt_avg_ms", now - timedelta(minutes=m), 1.0 + m) for m in minutes]
    )
    add_samples(
        db,
        single,
        [
            ("icmp.rtt_avg_ms", now - timedelta(minutes=5), 3.0),
            ("icmp.rtt_avg_ms", now - timedelta(minutes=90), 99.0),  # older than the hour
            ("icmp.rtt_min_ms", now - timedelta(minutes=4), 1.0),  # another metric
        ],
    )
    html = client.get("/network", headers=HTMX).text

    def sparkline(device: int) -> tuple[str, list[tuple[float, float]]]:
        row = re.search(rf'<tr data-device="{device}">(.*?)</tr>', html, re.S)
        assert row, html
        svg = re.search(
            r'<svg class="sparkline"[^>]*aria-label="([^"]*)".*?points="([^"]*)"', row.group(1)
        )
        assert svg, row.group(1)
        points = [tuple(map(float, p.split(","))) for p in svg.group(2).split()]
        return svg.group(1), points  # type: ignore[return-value]

    label, points = sparkline(rising)
    assert label == "a-rising: RTT over the last hour, 10.0 to 60.0 ms"
    assert [x for x, _ in points] == [1.0, 24.6, 48.2, 71.8, 95.4, 119.0]
    assert [y for _, y in points] == [31.0, 25.0, 19.0, 13.0, 7.0, 1.0]  # rising: upwards
    label, points = sparkline(falling)
    assert label == "b-falling: RTT over the last hour, 1.0 to 51.0 ms"
    assert [y for _, y in points] == [1.0, 7.0, 13.0, 19.0, 25.0, 31.0]
    row = re.search(rf'<tr data-device="{single}">(.*?)</tr>', html, re.S)
    assert row
    assert "sparkline" not in row.group(1)  # one RTT in the hour: nothing to draw
    assert '<span class="muted">\u2013</span>' in row.group(1)


def test_a_refresh_reads_only_new_samples_and_the_window_slides(db: TransactionalDatabase) -> None:
    """The sparklines' windows are kept between requests: a refresh adds the samples polled
    since (read from a few minutes back only), drops those older than the hour, and a
    device made again under a used id does not inherit the old device's window."""
    device_id = add_device(db, name="slide", address="10.0.3.1")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    add_samples(
        db,
        device_id,
        [("icmp.rtt_avg_ms", start + timedelta(minutes=m), float(m)) for m in range(5)],
    )
    windows = device_queries.RttWindows()

    def read(now: datetime) -> list[float]:
        with db.session() as session:
            device = session.get(Device, device_id)
            assert device is not None
            found = device_queries.rtt_sparklines(
                session, [device], now - timedelta(hours=1), now, windows
            )
        return found.get(device_id, [])

    now = start + timedelta(minutes=5)
    assert read(now) == [0.0, 1.0, 2.0, 3.0, 4.0]
    # A sample polled since: the refresh reads it (and not the hour again).
    add_samples(db, device_id, [("icmp.rtt_avg_ms", now + timedelta(seconds=30), 5.0)])
    assert read(now + timedelta(minutes=1)) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    # The hour moves on: the two oldest leave the window.
    later = start + timedelta(hours=1, minutes=1, seconds=30)
    assert read(later) == [2.0, 3.0, 4.0, 5.0]
    # The same id with another creation time is another device: read from the database.
    with db.session(write=True) as session:
        device = session.get(Device, device_id)
        assert device is not None
        device.created_at = device.created_at + timedelta(seconds=1)
        session.execute(delete(Sample).where(Sample.device_id == device_id))
    assert read(later) == []


def test_filters_paging_and_the_partial(db: TransactionalDatabase) -> None:
    client = browser(db, Role.VIEWER)
    ids = {}
    for i in range(30):
        site = "waw" if i % 2 else "krk"
        tags = ["core"] if i % 3 == 0 else []
        ids[i] = add_device(
            db, name=f"dev-{i:02d}", address=f"10.0.1.{i + 1}", site=site, tags=tags
        )
    set_state(db, ids[4], "down", failures=3)
    set_state(db, ids[5], "up", last_rtt_ms=1.5, last_loss_pct=0.0)

    first = client.get("/network?size=25", headers=BROWSER).text
    assert "Devices 1\u201325 of 30, page 1 of 2" in first
    assert 'href="/network?page=2&amp;size=25"' in first  # the next page keeps the filters
    second = client.get("/network?page=2&size=25", headers=BROWSER).text
    assert "Devices 26\u201330 of 30, page 2 of 2" in second
    assert "dev-29" in second
    assert "dev-00" not in second
    past = client.get("/network?page=9&size=25", headers=BROWSER).text  # past the end: last page
    assert "page 2 of 2" in past

    assert re.findall(
        r'data-device="(\d+)"', client.get("/network?status=down", headers=BROWSER).text
    ) == [str(ids[4])]
    by_tag = client.get("/network?tag=core&site=krk", headers=BROWSER).text
    assert sorted(re.findall(r"dev-\d\d", by_tag)) == sorted(
        f"dev-{i:02d}" for i in range(30) if i % 3 == 0 and i % 2 == 0
    )
    # Export CSV takes the filters along; the session cookie lets the browser fetch it.
    export = re.search(r'href="(/api/v1/devices/export[^"]*)"', by_tag)
    assert export
    csv_text = client.get(export.group(1).replace("&amp;", "&")).text
    assert sorted(line.split(",")[0] for line in csv_text.splitlines()[1:]) == sorted(
        re.findall(r"dev-\d\d", by_tag)
    )
    by_text = client.get("/network?q=10.0.1.1", headers=BROWSER).text  # part of the address
    assert "dev-00" in by_text
    assert "dev-10" in by_text
    assert "dev-05" not in by_text
    assert (
        "No device matches these filters." in client.get("/network?q=nothing", headers=BROWSER).text
    )
    # The site and tag pickers offer what is in use.
    assert '<option value="krk"' in first
    assert '<option value="core"' in first

    partial = client.get("/network?status=up", headers=HTMX)
    assert partial.status_code == 200
    assert partial.text.lstrip().startswith('<section id="devices-panel"')
    assert "<html" not in partial.text
    assert "1.50 ms" in partial.text
    # The partial carries Export CSV with its own filters (an HTMX filter change swaps the
    # link with the table); the export's order stays by name, without the table's page.
    swapped = client.get("/network?site=waw&tag=core&sort=-site&size=25&page=2", headers=HTMX)
    links = re.findall(r'<a href="(/api/v1/devices/export[^"]*)"[^>]*id="export-csv"', swapped.text)
    assert links == ["/api/v1/devices/export?site=waw&amp;tag=core"]
    exported = client.get(links[0].replace("&amp;", "&")).text.splitlines()[1:]
    assert [line.split(",")[0] for line in exported] == [
        f"dev-{i:02d}" for i in range(30) if i % 3 == 0 and i % 2
    ]
    up = client.get("/network?status=up", headers=HTMX).text
    assert 'href="/api/v1/devices/export?status=up"' in up
    assert 'href="/api/v1/devices/export" ' in client.get("/network", headers=HTMX).text

    for bad in ("status=sideways", "size=7", "page=0", "q=%00"):
        refused = client.get(f"/network?{bad}", headers=BROWSER)
        assert refused.status_code == 422, bad
        assert "text/html" in refused.headers["content-type"]


def test_the_tables_rows_are_the_apis_devices_with_their_state(db: TransactionalDatabase) -> None:
    """``device_queries.table_rows`` (the table's own query: columns, not ORM objects) gives
    for every filter the devices and total that ``service.list_devices`` (the API's) gives,
    in name order, each with its state's columns ("unknown" without a state row)."""
    ids = {}
    for i in range(12):
        ids[i] = add_device(
            db,
            name=f"row-{11 - i:02d}",  # created out of name order
            address=f"10.0.4.{i + 1}",
            site="waw" if i % 2 else None,
            tags=["core"] if i % 3 == 0 else ["edge", "lab"],
            type="switch" if i % 4 == 0 else "router",
            enabled=i != 7,
        )
    polled = datetime(2026, 12, 4, 10, 0, 0, 250_000, tzinfo=UTC)
    set_state(db, ids[1], "down", failures=3)
    set_state(db, ids[2], "up", last_rtt_ms=1.25, last_loss_pct=50.0, last_poll_at=polled)
    set_state(db, ids[3], "unknown")
    filters = [
        service.DeviceFilter(),
        service.DeviceFilter(q="ROW-0"),
        service.DeviceFilter(q="10.0.4.1"),
        service.DeviceFilter(site="waw"),
        service.DeviceFilter(tag="core"),
        service.DeviceFilter(tag="lab", site="waw"),
        service.DeviceFilter(status="up"),
        service.DeviceFilter(status="down"),
        service.DeviceFilter(status="unknown"),
        service.DeviceFilter(q="nothing"),
    ]
    with db.session() as session:
        for flt in filters:
            for limit, offset in ((50, 0), (5, 0), (5, 5), (5, 10), (5, 50)):
                rows, total = device_queries.table_rows(session, flt, limit, offset)
                views, expected = service.list_devices(session, flt, limit, offset)
                assert total == expected, (flt, limit, offset)
                assert [r.id for r in rows] == [v.device.id for v in views], (flt, offset)
        rows, total = device_queries.table_rows(session, service.DeviceFilter(), 50, 0)
    assert total == 12
    assert [r.name for r in rows] == [f"row-{n:02d}" for n in range(12)]
    by_id = {r.id: r for r in rows}
    up = by_id[ids[2]]
    assert (up.status, up.last_rtt_ms, up.last_loss_pct) == ("up", 1.25, 50.0)
    assert up.last_poll_at == polled
    assert (up.address, up.site, up.tags, up.type) == ("10.0.4.3", None, ",edge,lab,", "router")
    assert by_id[ids[1]].status == "down"
    never = by_id[ids[0]]
    assert (never.status, never.last_rtt_ms, never.last_poll_at) == ("unknown", None, None)
    assert (never.site, never.tags, never.type) == (None, ",core,", "switch")
    assert not by_id[ids[7]].enabled
    assert by_id[ids[7]].site == "waw"
    with db.session() as session:
        device = session.get(Device, ids[2])
        assert device is not None
        assert up.created_at == device.created_at  # the sparklines' windows are keyed by it


def test_a_row_of_the_table_escapes_what_users_typed(db: TransactionalDatabase) -> None:
    """The rows are built as HTML in Python: a name, address, site, type or tag with markup
    in it is shown as text (the API refuses such addresses, types and tags; the table does
    not count on it)."""
    client = browser(db, Role.VIEWER)
    add_device(db, name='<b>"x"</b>', site="a&b")
    with db.session(write=True) as session:
        session.add(Device(name="odd", address="host<1>.example", type="<u>", tags=",<i>,t'1,"))
    html = client.get("/network", headers=HTMX).text
    assert "<b>" not in html
    assert "<i>" not in html
    assert "<u>" not in html
    assert "<td>&lt;u&gt;</td>" in html
    assert "&lt;b&gt;&#34;x&#34;&lt;/b&gt;" in html
    assert "<code>host&lt;1&gt;.example</code>" in html
    assert "<td>a&amp;b</td>" in html
    assert '<span class="tag">&lt;i&gt;</span>, <span class="tag">t&#39;1</span>' in html


# --- the device page ------------------------------------------------------------------------


def test_device_page_charts_over_a_range(db: TransactionalDatabase) -> None:
    client = browser(db, Role.VIEWER)
    parent = add_device(db, name="edge", address="10.0.0.254")
    device = add_device(
        db,
        name="sw-1",
        address="10.0.0.2",
        type="switch",
        parent_id=parent,
        tags=["core"],
        snmp_interval_seconds=60,
        credentials={"version": "2c", "community": "n0t-shown-secret"},
    )
    now = datetime.now(UTC)
    rows: list[tuple[str, datetime, float]] = []
    for minute in range(0, 2 * 24 * 60, 5):  # two days, every 5 minutes
        ts = now - timedelta(minutes=minute)
        rows += [
            ("icmp.rtt_avg_ms", ts, 2.0 + minute % 7),
            ("icmp.rtt_min_ms", ts, 1.0),
            ("icmp.rtt_max_ms", ts, 9.0),
            ("icmp.loss_pct", ts, 0.0 if minute % 60 else 33.3),
            ("snmp.cpu_pct", ts, 12.5),
            ("snmp.mem_pct", ts, 40.0),
            ("if.eth0.100.in_bps", ts, 1_000_000.0 + minute),
            ("if.eth0.100.out_bps", ts, 250_000.0),
            ("if.lo.in_bps", ts, 10.0),
            ("if.lo.out_bps", ts, 10.0),
        ]
    rows += [
        ("if.eth0.100.oper", now, 1.0),
        ("if.lo.oper", now, 2.0),
        ("if.eth0.100.in_errors", now, 7.0),
    ]
    add_samples(db, device, rows)
    set_state(db, device, "up", last_rtt_ms=2.25, last_loss_pct=0.0, last_poll_at=now)

    html = client.get(f"/network/devices/{device}?range=6h", headers=BROWSER).text
    assert "<h1>sw-1</h1>" in html
    assert 'data-status="up">up</span>' in html
    assert "SNMP v2c (stored encrypted)" in html
    assert "n0t-shown-secret" not in html
    assert f'<a href="/network/devices/{parent}">edge</a>' in html
    rtt = chart_spec(html, "rtt-chart")
    avg = rtt["panes"][0]["series"][0]["data"]
    assert len(avg) == 6 * 12  # every 5 minutes of the last 6 h (the page's now is later)
    assert avg[-1][1] == 2.0  # the newest sample (minute 0)
    loss = rtt["panes"][1]["series"][0]["data"]
    assert max(v for _, v in loss) == 33.3
    cpu = chart_spec(html, "cpu-chart")
    assert [s["name"] for s in cpu["panes"][0]["series"]] == ["cpu", "mem"]
    # Interfaces: a name with a dot, busiest first; the table has status and errors.
    first_if = chart_spec(html, "if-chart-1")
    assert first_if["panes"][0]["series"][0]["title"] == "eth0.100 in bps"
    table = re.search(r'<tr data-interface="eth0.100">(.*?)</tr>', html, re.S)
    assert table
    assert ">up<" in table.group(1)
    assert "1,000,000 bit/s" in table.group(1)
    assert ">7<" in table.group(1)
    assert ">down<" in re.search(r'<tr data-interface="lo">(.*?)</tr>', html, re.S).group(1)  # type: ignore[union-attr]

    week = client.get(f"/network/devices/{device}?range=7d", headers=BROWSER).text
    week_avg = chart_spec(week, "rtt-chart")["panes"][0]["series"][0]["data"]
    # The two stored days of 5-minute samples (no rollups yet: all raw), in hourly steps.
    steps = {int(ts.timestamp()) // 3600 for m, ts, _ in rows if m == "icmp.rtt_avg_ms"}
    assert [t for t, _ in week_avg] == [k * 3600 for k in sorted(steps)]
    assert "points, each the mean of an hour (loss: its highest)" in week
    hour = client.get(f"/network/devices/{device}?range=1h", headers=HTMX)
    assert hour.text.lstrip().startswith('<section id="device-panel"')
    assert f'hx-get="/network/devices/{device}?range=1h"' in hour.text  # keeps its range

    empty = add_device(db, name="quiet", address="10.0.0.3")
    quiet = client.get(f"/network/devices/{empty}", headers=BROWSER).text
    assert "No ICMP sample in the last 24 hours." in quiet
    assert "No interface data" in quiet
    assert 'id="cpu-chart"' not in quiet
    assert client.get("/network/devices/999999", headers=BROWSER).status_code == 404
    assert client.get(f"/network/devices/{device}?range=2y", headers=BROWSER).status_code == 422


def test_many_samples_are_averaged_into_steps_by_the_database(db: TransactionalDatabase) -> None:
    """An hour of 1 s samples is charted in ceil(3600 / 600) = 6 s steps: each step the
    mean of its RTTs, and for loss its highest value (a spike is not averaged away)."""
    client = browser(db, Role.VIEWER)
    device = add_device(db, name="busy", address="10.0.0.9")
    now = datetime.now(UTC)
    moments = [now - timedelta(seconds=i) for i in range(3500)]
    add_samples(db, device, [("icmp.rtt_avg_ms", ts, float(i % 2)) for i, ts in enumerate(moments)])
    add_samples(
        db,
        device,
        [("icmp.loss_pct", ts, 100.0 if i % 40 == 0 else 0.0) for i, ts in enumerate(moments)],
    )
    page = client.get(f"/network/devices/{device}?range=1h", headers=BROWSER).text
    spec = chart_spec(page, "rtt-chart")
    rtt = spec["panes"][0]["series"][0]["data"]
    steps = sorted({int(ts.timestamp()) // 6 for ts in moments})
    assert [t for t, _ in rtt] == [k * 6 for k in steps]  # strictly increasing, as charts need
    assert {v for _, v in rtt[1:-1]} == {0.5}  # full steps: three 0s and three 1s
    loss = spec["panes"][1]["series"][0]["data"]
    assert sum(1 for _, v in loss if v == 100.0) == len(range(0, 3500, 40))
    assert "each the mean of a 6 s step" in page


def test_a_week_reads_the_hourly_rollups_and_the_raw_tail(db: TransactionalDatabase) -> None:
    """A week reads the 1 h rollups up to their watermark and the raw samples after it, in
    hourly steps; a day reads the 5 min tier in 5 min steps. Older raw samples, deleted by
    the raw retention once rolled up, still show; a loss spike keeps its height; the newest
    minutes come from the raw tail."""
    client = browser(db, Role.VIEWER)
    device = add_device(db, name="old-timer", address="10.0.0.10")
    now = datetime.now(UTC)
    moments = [now - timedelta(minutes=5 * i) for i in range(3 * 24 * 12)]  # 3 days
    spike = moments[2 * 24 * 12]  # two days ago
    add_samples(db, device, [("icmp.rtt_avg_ms", ts, 5.0) for ts in moments])
    add_samples(db, device, [("icmp.loss_pct", ts, 50.0 if ts == spike else 0.0) for ts in moments])
    report = rollups.run(db, Settings(network_raw_retention_days=1), now)
    assert report.deleted["raw"] > 0
    with db.session() as session:
        oldest_raw = session.scalar(select(func.min(Sample.ts)).where(Sample.device_id == device))
        hourly_end = session.scalar(
            select(func.max(SampleRollup.bucket)).where(SampleRollup.period == rollups.HOUR)
        )
        # Only the 1 h tier holds the week now: a week read from the 5 min tier shows less.
        session.execute(delete(SampleRollup).where(SampleRollup.period == rollups.FIVE_MIN))
    assert oldest_raw is not None
    assert hourly_end is not None
    assert oldest_raw > now - timedelta(days=1, minutes=10)  # the rest is in the rollups only

    page = client.get(f"/network/devices/{device}?range=7d", headers=BROWSER).text
    spec = chart_spec(page, "rtt-chart")
    rtt = spec["panes"][0]["series"][0]["data"]
    times = [t for t, _ in rtt]
    assert all(t % 3600 == 0 for t in times)  # hourly steps
    assert times == list(range(times[0], times[-1] + 1, 3600))  # not one hour missing
    assert times[0] <= moments[-1].timestamp() + 3600  # three days back
    assert times[-1] > hourly_end.timestamp()  # and past the 1 h tier, from the raw tail
    assert times[-1] >= now.timestamp() - 3600
    assert {v for _, v in rtt} == {5.0}
    assert len(rtt) >= 3 * 24 - 1
    assert f"{len(rtt)} points, each the mean of an hour (loss: its highest)" in page
    loss = spec["panes"][1]["series"][0]["data"]
    assert [v for _, v in loss].count(50.0) == 1  # the hour's highest, not its mean (4.2)
    # An hour reads the raw samples only.
    hour = chart_spec(
        client.get(f"/network/devices/{device}?range=1h", headers=BROWSER).text, "rtt-chart"
    )
    assert len(hour["panes"][0]["series"][0]["data"]) == 12


def test_a_day_is_charted_in_the_five_minute_steps_of_its_rollups(
    db: TransactionalDatabase,
) -> None:
    """A day reads the 5 min tier: one point a bucket (not 144 s steps that the buckets
    fall into unevenly), the raw tail after its watermark in the same steps."""
    client = browser(db, Role.VIEWER)
    device = add_device(db, name="daily", address="10.0.0.11")
    now = datetime.now(UTC)
    moments = [now - timedelta(minutes=i) for i in range(6 * 60)]  # 6 hours a minute
    add_samples(db, device, [("icmp.rtt_avg_ms", ts, float(i % 5)) for i, ts in enumerate(moments)])
    rollups.run(db, Settings(), now)
    page = client.get(f"/network/devices/{device}?range=24h", headers=BROWSER).text
    rtt = chart_spec(page, "rtt-chart")["panes"][0]["series"][0]["data"]
    times = [t for t, _ in rtt]
    assert all(t % 300 == 0 for t in times)
    assert times == list(range(times[0], times[-1] + 1, 300))
    assert len(rtt) in (6 * 12, 6 * 12 + 1)  # a partial bucket at each end, or not
    assert {v for _, v in rtt[1:-1]} == {2.0}  # each full 5 minutes: 0, 1, 2, 3, 4
    assert "points, each the mean of a 5 min step (loss: its highest)" in page


def test_a_days_series_from_the_rollups_are_each_buckets_mean_and_highest(
    db: TransactionalDatabase,
) -> None:
    """``chart_series`` over a day with the 5 min tier (on PostgreSQL its buckets come as
    one row of arrays a metric): per metric, each 5 min bucket's mean and highest sample,
    oldest first, from the rollups up to their watermark and the raw samples after it;
    another device's samples and a metric without samples stay out."""
    device = add_device(db, name="rolled", address="10.0.0.12")
    other = add_device(db, name="neighbour", address="10.0.0.13")
    now = datetime.now(UTC).replace(microsecond=0)
    samples = [
        (metric, now - timedelta(minutes=i), float((i * k) % 11))
        for i in range(3 * 60)
        for k, metric in ((7, "icmp.rtt_avg_ms"), (3, "snmp.cpu_pct"))
    ]
    add_samples(db, device, samples)
    add_samples(db, other, [(m, ts, 1000.0) for m, ts, _ in samples])
    rollups.run(db, Settings(), now)
    with db.session() as session:
        watermark = device_queries.rollup_watermark(session, rollups.FIVE_MIN)
        found = device_queries.chart_series(
            session,
            device,
            ("icmp.rtt_avg_ms", "snmp.cpu_pct", "snmp.mem_pct"),
            now - timedelta(hours=24),
            now,
            tier=rollups.FIVE_MIN,
        )
    assert watermark is not None
    assert watermark < now  # a raw tail
    assert found["snmp.mem_pct"] == []
    for metric in ("icmp.rtt_avg_ms", "snmp.cpu_pct"):
        buckets: dict[int, list[float]] = {}
        for m, ts, value in samples:
            if m == metric:
                buckets.setdefault(int(ts.timestamp()) // 300 * 300, []).append(value)
        expected = [(t, sum(v) / len(v), max(v)) for t, v in sorted(buckets.items())]
        got = found[metric]
        assert [t for t, _, _ in got] == [t for t, _, _ in expected], metric
        assert [(round(a, 9), h) for _, a, h in got] == [
            (round(a, 9), h) for _, a, h in expected
        ], metric
        assert any(t >= watermark.timestamp() for t, _, _ in got)  # the raw tail is in


def _counter_polls(
    base: datetime, polls: int, wrap_at: int, step: int
) -> list[tuple[datetime, float]]:
    """A Counter32 of ``polls`` polls a minute apart up to ``base``, growing by 3 to 9 a
    poll, that wraps at 2**32 at poll ``wrap_at`` (its value there is 2)."""
    growth = [0] + [3 + (k * step) % 7 for k in range(1, polls)]
    total = [sum(growth[: k + 1]) for k in range(polls)]
    first = 2**32 - total[wrap_at] + 2
    return [
        (base - timedelta(minutes=polls - 1 - k), float((first + total[k]) % 2**32))
        for k in range(polls)
    ]


def _expected_rates(
    counter: list[tuple[datetime, float]], start: datetime, width: int
) -> dict[int, float]:
    """The test's own errors per second: each poll's growth since the poll before (2**32
    added when the counter went down) over the 60 s between them; per step of ``width``
    seconds the mean of its polls' rates (polls from ``start`` on)."""
    steps: dict[int, list[float]] = {}
    for (before, old), (at, value) in itertools.pairwise(counter):
        if at < start:
            continue
        growth = value - old if value >= old else value + 2**32 - old
        rate = growth / (at - before).total_seconds()
        steps.setdefault(int(at.timestamp()) // width * width, []).append(rate)
    return {t: sum(v) / len(v) for t, v in sorted(steps.items())}


ERRORS = ("if.ge-0/0/1.in_errors", "if.ge-0/0/1.out_errors")


@dataclass
class ErrorHistory:
    device: int
    now: datetime
    base: datetime  # the newest poll
    times: list[datetime]
    counters: dict[str, list[tuple[datetime, float]]]
    wraps_inside: dict[str, datetime | None]  # where a counter wraps inside a bucket


def _error_history(db: TransactionalDatabase) -> ErrorHistory:
    """Two days of SNMP polls a minute: the in errors counter wraps at 2**32 on a whole
    hour (between two buckets of both tiers), the out one at minute 7 (inside a bucket);
    the uptime, ICMP jitter and RTT alongside; rolled up as the network.rollup job does."""
    device = add_device(
        db,
        name="errs",
        address="10.0.0.20",
        snmp_interval_seconds=60,
        credentials={"version": "2c", "community": "public"},
    )
    base = datetime.now(UTC).replace(second=0, microsecond=0)
    now = base + timedelta(seconds=30)  # no poll on a range's start (else 61 in an hour)
    polls = 2 * 24 * 60
    times = [base - timedelta(minutes=polls - 1 - k) for k in range(polls)]
    ten_hours, twenty_hours = base - timedelta(hours=10), base - timedelta(hours=20)
    on_hour = max(k for k, t in enumerate(times) if t.minute == 0 and t < ten_hours)
    at_7 = max(k for k, t in enumerate(times) if t.minute == 7 and t < twenty_hours)
    inbound = _counter_polls(base, polls, on_hour, 1)
    outbound = _counter_polls(base, polls, at_7, 2)
    assert inbound[on_hour][1] < inbound[on_hour - 1][1]  # wrapped there
    assert outbound[at_7][1] < outbound[at_7 - 1][1]
    rows = [(ERRORS[0], t, v) for t, v in inbound] + [(ERRORS[1], t, v) for t, v in outbound]
    rows += [("snmp.uptime_s", t, 1e6 + 60.0 * k) for k, t in enumerate(times)]
    rows += [("icmp.jitter_ms", t, 1.0 + (t.minute % 5) * 0.1) for t in times]
    rows += [("icmp.rtt_avg_ms", t, 3.0) for t in times]
    add_samples(db, device, rows)
    rollups.run(db, Settings(), now)
    return ErrorHistory(
        device,
        now,
        base,
        times,
        {ERRORS[0]: inbound, ERRORS[1]: outbound},
        {ERRORS[0]: None, ERRORS[1]: times[at_7]},
    )


RANGE_TIERS = (
    (timedelta(hours=1), None),
    (timedelta(hours=6), None),
    (timedelta(hours=24), rollups.FIVE_MIN),
    (timedelta(days=7), rollups.HOUR),
)


@pytest.mark.parametrize(("span", "tier"), RANGE_TIERS, ids=["1h", "6h", "24h", "7d"])
def test_interface_errors_per_second_are_what_the_counters_say(
    db: TransactionalDatabase, span: timedelta, tier: int | None
) -> None:
    """Errors per second from the stored Counter32 error counters, compared with rates the
    test computes from the counters it inserted (two wraps at 2**32). An hour and 6 hours
    are read raw; 24 hours from the 5 min tier and 7 days from the 1 h tier, each with the
    raw tail after its watermark: every step as the test computes it, except that a wrap
    inside a bucket moves what the counter grew after it in that bucket into the next one
    (the two steps' sum is exact)."""
    h = _error_history(db)
    start = h.now - span
    with db.session() as session:
        width = device_queries.step_seconds(start, h.now, tier)
        watermark = device_queries.rollup_watermark(session, tier) if tier else None
        found = device_queries.error_rates(
            session, h.device, ERRORS, start, h.now, tier=tier, lookback=120
        )
    for metric in ERRORS:
        expected = _expected_rates(h.counters[metric], start, width)
        if tier:  # the tier's steps are its buckets from the range's start on
            expected = {t: v for t, v in expected.items() if t >= start.timestamp()}
            if span > timedelta(days=2):  # the data's first hour has no hour before it
                expected.pop(min(expected))
            assert watermark is not None
            assert any(t >= watermark.timestamp() for t, _, _ in found[metric])  # raw tail
        got = {t: mean for t, mean, _ in found[metric]}
        assert sorted(got) == list(got) == list(expected), metric
        wrap = h.wraps_inside[metric]
        split = set()
        if tier and wrap is not None:
            inside = int(wrap.timestamp()) // width * width
            split = {inside, inside + width}
            assert sum(got[t] for t in split) == pytest.approx(
                sum(expected[t] for t in split), rel=1e-12
            ), metric
            assert got[inside] != pytest.approx(expected[inside])  # moved on, as documented
        for t, value in expected.items():
            if t not in split:
                assert got[t] == pytest.approx(value, rel=1e-9, abs=1e-9), (metric, t)
        assert max(got.values()) < 10  # never a wrap's 2**32 counted as errors
    if tier is None and span == timedelta(hours=1):  # each poll its own 6 s step
        assert len(found[ERRORS[0]]) == 60


def test_an_agent_restart_gives_no_rate_from_the_tier(db: TransactionalDatabase) -> None:
    """Two hours of polls a minute, rolled up; the agent restarts at minute 2 of a 5 min
    bucket (its uptime and counters start again from 0): that bucket and the next (whose
    lowest uptime is below the restarted bucket's highest) have no rate, never a 2**32
    "wrap"; every other bucket is the mean of its polls' rates as the test computes them."""
    device = add_device(db, name="restarts", address="10.0.0.21")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    end = rollups.floor_time(now - timedelta(hours=1), 300)  # whole buckets, an hour ago
    times = [end - timedelta(minutes=120 - k) for k in range(120)]
    restart = next(k for k, t in enumerate(times) if k > 60 and t.minute % 5 == 2)
    counter, uptime, value = [], [], 1000.0
    for k, t in enumerate(times):
        value = 0.0 if k == restart else value + 6.0  # 0.1 a second
        counter.append((t, value))
        uptime.append(("snmp.uptime_s", t, 60.0 * (k - restart if k >= restart else k + 9000)))
    add_samples(db, device, [(ERRORS[0], t, v) for t, v in counter] + uptime)
    rollups.run(db, Settings(), now)
    with db.session() as session:
        found = device_queries.error_rates(
            session, device, ERRORS[:1], now - timedelta(hours=24), now, tier=rollups.FIVE_MIN
        )
    got = {t: mean for t, mean, _ in found[ERRORS[0]]}
    bucket = int(times[restart].timestamp()) // 300 * 300
    assert bucket in {int(t.timestamp()) // 300 * 300 for t in times}
    assert bucket not in got
    assert bucket + 300 not in got
    assert list(got.values()) == pytest.approx([0.1] * len(got))
    assert len(got) == len({int(t.timestamp()) // 300 for t in times}) - 3  # first, b, b+1


def test_the_device_page_charts_errors_per_second_and_jitter(db: TransactionalDatabase) -> None:
    """The page charts the errors per second below each interface's traffic and the jitter
    below the RTT and loss; an agent restart (its uptime went back, its counters started
    again) gives no rate for that poll."""
    client = browser(db, Role.VIEWER)
    h = _error_history(db)
    page = client.get(f"/network/devices/{h.device}?range=6h", headers=BROWSER).text
    chart = chart_spec(page, "if-chart-1")
    assert [s["name"] for s in chart["panes"][1]["series"]] == ["err_in", "err_out"]
    shown = chart["panes"][1]["series"][0]["data"]
    polled = {  # a poll a 36 s step (6 hours): each poll's own rate
        t: round(v, 3)
        for t, v in _expected_rates(h.counters[ERRORS[0]], h.now - timedelta(hours=7), 36).items()
    }
    assert len(shown) >= 6 * 60 - 1  # the page's range ends at its own now
    assert dict(shown) == {t: polled.get(t) for t, _ in shown}
    assert "errors in and out per second below" in page
    rtt = chart_spec(page, "rtt-chart")
    assert [s["name"] for s in rtt["panes"][2]["series"]] == ["jitter"]
    jitter = {int(t): v for t, v in rtt["panes"][2]["series"][0]["data"]}
    polls = {int(t.timestamp()) // 36 * 36: 1.0 + (t.minute % 5) * 0.1 for t in h.times}
    assert len(jitter) >= 6 * 60 - 1
    assert jitter == {t: polls.get(t) for t in jitter}  # a poll a 36 s step: its own value
    assert "jitter in ms at the bottom" in page
    day = chart_spec(client.get(f"/network/devices/{h.device}", headers=BROWSER).text, "rtt-chart")
    day_jitter = [v for _, v in day["panes"][2]["series"][0]["data"]]
    assert set(day_jitter[1:-1]) == {1.2}  # each full 5 min bucket's mean of 1.0 … 1.4

    with db.session(write=True) as session:  # the agent restarted 9 minutes ago
        session.execute(
            delete(Sample).where(
                Sample.device_id == h.device,
                Sample.metric == "snmp.uptime_s",
                Sample.ts > h.base - timedelta(minutes=10),
            )
        )
    add_samples(
        db,
        h.device,
        [("snmp.uptime_s", h.base - timedelta(minutes=m), 600.0 - 60 * m) for m in range(10)],
    )
    with db.session() as session:
        hour = device_queries.error_rates(
            session, h.device, ERRORS, h.now - timedelta(hours=1), h.now, lookback=120
        )
    restart = int((h.base - timedelta(minutes=9)).timestamp()) // 6 * 6
    assert restart not in {t for t, _, _ in hour[ERRORS[0]]}
    assert len(hour[ERRORS[0]]) == 59


# --- forms ----------------------------------------------------------------------------------

FIELDS = {
    "name": "r-new",
    "address": "2001:DB8::1",
    "type": "Router",
    "vendor": "Juniper",
    "site": "gdn",
    "tags": "core, edge",
    "enabled": "on",
    "icmp_interval_seconds": "30",
    "snmp_interval_seconds": "120",
    "snmp_port": "1161",
    "maintenance": "2026-12-24T22:00Z 2026-12-25T02:00Z firmware upgrade",
    "snmp_version": "3",
    "v3_user": "monitor",
    "auth_protocol": "SHA256",
    "auth_key": "auth-s3cret-key",
    "priv_protocol": "AES",
    "priv_key": "priv-s3cret-key",
}


def test_operator_adds_and_edits_a_device_with_the_apis_rules(db: TransactionalDatabase) -> None:
    client = browser(db, Role.OPERATOR)
    listing = client.get("/network", headers=BROWSER).text
    assert 'href="/network/devices/new"' in listing
    assert "Import devices from CSV" in listing

    added = form_post(client, "/network/devices/new", "/network/devices/new", FIELDS)
    assert added.status_code == 303, added.text
    location = added.headers["location"]
    page = client.get(location, headers=BROWSER).text
    assert "Device r-new added." in page  # the flash
    assert "SNMP v3 (stored encrypted)" in page
    assert "s3cret" not in page
    with db.session() as session:
        device = session.scalars(select(Device).where(Device.name == "r-new")).one()
        assert (device.address, device.type, device.tags) == (
            "2001:db8::1",
            "router",
            ",core,edge,",
        )
        assert device.snmp_port == 1161
        assert device.icmp_interval_seconds == 30
        assert device.maintenance[0]["reason"] == "firmware upgrade"
        assert device.credentials
        assert "s3cret" not in device.credentials
        secret = service.device_secret(device, Vault.from_settings(_settings()))
        assert secret
        assert secret["auth_key"] == "auth-s3cret-key"
        device_id = device.id

    form = client.get(f"/network/devices/{device_id}/edit", headers=BROWSER).text
    assert 'value="r-new"' in form
    assert "keep what is stored (snmp-v3)" in form
    assert "s3cret" not in form  # write-only
    edited = form_post(
        client,
        f"/network/devices/{device_id}/edit",
        f"/network/devices/{device_id}/edit",
        {
            **FIELDS,
            "site": "waw",
            "enabled": "",
            "snmp_version": "keep",
            "auth_key": "",
            "priv_key": "",
        },
    )
    assert edited.status_code == 303, edited.text
    assert "Device r-new saved." in client.get(edited.headers["location"], headers=BROWSER).text
    with db.session() as session:
        saved = session.get(Device, device_id)
        assert saved is not None
        assert (saved.site, saved.enabled, saved.credential_kind) == ("waw", False, "snmp-v3")
    removed = form_post(
        client,
        f"/network/devices/{device_id}/edit",
        f"/network/devices/{device_id}/edit",
        {**FIELDS, "site": "waw", "enabled": "", "snmp_version": "none"},
    )
    assert removed.status_code == 303
    with db.session() as session:
        saved = session.get(Device, device_id)
        assert saved is not None
        assert saved.credentials is None
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.entity == "network_device").order_by(AuditEntry.id)
        ).all()
    assert [e.action for e in entries] == ["create", "update", "update"]
    assert entries[0].actor.startswith("operator")
    assert (entries[1].changes or {})["site"] == {"before": "gdn", "after": "waw"}
    assert entries[2].detail == "credentials removed"
    assert "s3cret" not in json.dumps([e.changes for e in entries])

    # Delete is for Admins: no button, and a 403 when posted.
    assert "Delete…" not in client.get(f"/network/devices/{device_id}", headers=BROWSER).text
    refused = form_post(
        client, f"/network/devices/{device_id}", f"/network/devices/{device_id}/delete", {}
    )
    assert refused.status_code == 403
    assert "network.delete" in refused.text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, "Name: String should have at least 1 character"),
        ({"address": "not an address!"}, "Address: &#39;not an address!&#39; is neither"),
        (
            {"icmp_interval_seconds": "5"},
            "ICMP interval: Input should be greater than or equal to 10",
        ),
        ({"icmp_interval_seconds": "often"}, "ICMP interval: Input should be a valid integer"),
        ({"tags": "bad*tag"}, "Tags 1: String should match pattern"),
        ({"maintenance": "tomorrow"}, "Maintenance line 1: write START END"),
        ({"maintenance": "2026-12-25T02:00Z 2026-12-24T22:00Z"}, "must end after it starts"),
        ({"auth_key": "short"}, "SNMP credentials (auth_key): should have at least 8 characters"),
        ({"priv_protocol": "", "auth_protocol": ""}, "auth_protocol and auth_key go together"),
        ({"parent_id": "424242"}, "parent_id 424242: no such device."),
        ({"parent_id": "x"}, "Parent: pick a device from the list."),
        ({"snmp_version": "keep"}, "SNMP credentials: pick one of none, 2c, 3."),
        ({"name": "taken"}, "A device named &#39;taken&#39; exists already"),
    ],
)
def test_a_refused_form_shows_the_error_and_writes_nothing(
    db: TransactionalDatabase, changes: dict[str, str], message: str
) -> None:
    add_device(db, name="taken", address="10.0.0.7")
    client = browser(db, Role.OPERATOR)
    answer = form_post(
        client, "/network/devices/new", "/network/devices/new", {**FIELDS, **changes}
    )
    assert answer.status_code == 422, answer.text
    assert 'class="flash flash-error"' in answer.text
    assert message in answer.text
    assert 'id="device-form"' in answer.text  # the form again, with what was typed ...
    assert 'value="Juniper"' in answer.text
    assert "s3cret" not in answer.text  # ... but never the secrets
    with db.session() as session:
        assert session.scalars(select(Device.name)).all() == ["taken"]
    assert audit_actions(db) == ["create"]  # only the setup's


@pytest.mark.parametrize(
    "changes",
    [
        {"parent_id": "9999999999"},  # past the largest id: the model refuses it
        {"name": "x" * 5000},  # past the form's bound: refused before any work
        {"snmp_version": "4"},
        {"maintenance": "2026-12-24T22:00 2026-12-25T02:00Z no zone"},
        {"address": "10.0.0.1\x00"},
    ],
)
def test_odd_input_is_a_4xx_never_a_500(db: TransactionalDatabase, changes: dict[str, str]) -> None:
    client = browser(db, Role.OPERATOR)
    answer = form_post(
        client, "/network/devices/new", "/network/devices/new", {**FIELDS, **changes}
    )
    assert 400 <= answer.status_code < 500, answer.text
    assert "text/html" in answer.headers["content-type"]
    with db.session() as session:
        assert session.scalars(select(Device.name)).all() == []
    assert client.get("/network/devices/99999999999", headers=BROWSER).status_code == 422


def test_admin_deletes_a_device(db: TransactionalDatabase) -> None:
    device = add_device(db, name="old", address="10.0.0.8")
    add_samples(db, device, [("icmp.rtt_avg_ms", datetime.now(UTC), 1.0)])
    client = browser(db, Role.ADMIN)
    page = client.get(f"/network/devices/{device}", headers=BROWSER).text
    assert "Delete…" in page
    assert 'id="edit-device"' in page
    answer = form_post(
        client, f"/network/devices/{device}", f"/network/devices/{device}/delete", {}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/network"
    assert "Device old deleted" in client.get("/network", headers=BROWSER).text
    with db.session() as session:
        assert session.get(Device, device) is None
        assert session.scalars(select(Sample).where(Sample.device_id == device)).all() == []
    assert audit_actions(db) == ["create", "delete"]
    gone = form_post(client, "/network", f"/network/devices/{device}/delete", {})
    assert gone.status_code == 404


def test_viewers_and_visitors_cannot_change_anything(db: TransactionalDatabase) -> None:
    device = add_device(db, name="keep-me", address="10.0.0.5")
    viewer = browser(db, Role.VIEWER)
    page = viewer.get(f"/network/devices/{device}", headers=BROWSER).text
    assert 'id="edit-device"' not in page
    assert "Delete…" not in page
    assert viewer.get("/network/devices/new", headers=BROWSER).status_code == 403
    token = csrf_of(page)
    for action in (
        "/network/devices/new",
        f"/network/devices/{device}/edit",
        f"/network/devices/{device}/delete",
    ):
        answer = viewer.post(
            action, data={**FIELDS, "csrf_token": token}, headers=BROWSER, follow_redirects=False
        )
        assert answer.status_code == 403, action
    csv = ("d.csv", b"name,address\nsneaky,10.0.0.6\n", "text/csv")
    refused = viewer.post(
        "/network/devices/import", data={"csrf_token": token}, files={"file": csv}, headers=BROWSER
    )
    assert refused.status_code == 403
    with db.session() as session:
        assert session.scalars(select(Device.name)).all() == ["keep-me"]

    anonymous, _ = app(db)
    sent_away = anonymous.get("/network", headers=BROWSER, follow_redirects=False)
    assert sent_away.status_code == 303
    assert sent_away.headers["location"] == "/login?next=/network"
    assert anonymous.get(f"/network/devices/{device}", headers=HTMX).status_code == 401


def test_forms_need_the_csrf_token(db: TransactionalDatabase) -> None:
    client = browser(db, Role.ADMIN)
    device = add_device(db, name="guarded", address="10.0.0.4")
    for action, data in (
        ("/network/devices/new", FIELDS),
        (f"/network/devices/{device}/edit", FIELDS),
        (f"/network/devices/{device}/delete", {}),
    ):
        for token in (None, "0" * 64):
            sent = dict(data) if token is None else {**data, "csrf_token": token}
            answer = client.post(action, data=sent, headers=BROWSER, follow_redirects=False)
            assert answer.status_code == 403, (action, token)
            assert "security token" in answer.text
    with db.session() as session:
        assert session.scalars(select(Device.name)).all() == ["guarded"]


# --- CSV import -----------------------------------------------------------------------------


def _upload(client: TestClient, content: bytes, dry_run: bool = False, **kwargs: Any) -> Any:
    token = csrf_of(client.get("/network", headers=BROWSER).text)
    data = {"csrf_token": token, **({"dry_run": "on"} if dry_run else {})}
    return client.post(
        "/network/devices/import",
        data=data,
        files={"file": ("devices.csv", content, "text/csv")},
        headers=BROWSER,
        follow_redirects=False,
        **kwargs,
    )


def test_csv_import_all_or_nothing(db: TransactionalDatabase) -> None:
    add_device(db, name="existing", address="10.0.0.1", site="old")
    client = browser(db, Role.OPERATOR)
    good = (
        b"name,address,site,tags,parent\n"
        b"existing,10.0.0.1,new,,\n"
        b"leaf,leaf.example.org,new,a;b,existing\n"
    )

    checked = _upload(client, good, dry_run=True)
    assert checked.status_code == 303
    flash = client.get("/network", headers=BROWSER).text
    assert "CSV import: 1 devices would create, 1 would update. Nothing was written" in flash
    with db.session() as session:
        assert session.scalars(select(Device.name)).all() == ["existing"]

    done = _upload(client, good)
    assert done.status_code == 303
    assert (
        "CSV import: 1 devices created, 1 updated." in client.get("/network", headers=BROWSER).text
    )
    with db.session() as session:
        leaf = session.scalars(select(Device).where(Device.name == "leaf")).one()
        existing = session.scalars(select(Device).where(Device.name == "existing")).one()
        assert (leaf.parent_id, leaf.tags, existing.site) == (existing.id, ",a,b,", "new")
    before = audit_actions(db)

    bad = b"name,address\nok-1,10.0.0.50\nbroken,300.1.1.1\n,10.0.0.52\n"
    refused = _upload(client, bad)
    assert refused.status_code == 422
    assert "2 rows of the CSV file are wrong; nothing was imported." in refused.text
    assert "line 3: address" in refused.text
    assert "line 4: name" in refused.text
    assert 'class="flash flash-error"' in refused.text
    for content, message in (
        (b"", "Pick a CSV file to import."),
        (b"\xff\xfe\x00garbage", "not UTF-8 text"),
        (b"title,author\nx,y\n", "must name the columns name and address"),
    ):
        answer = _upload(client, content)
        assert answer.status_code == 422, content
        assert message in answer.text
    with db.session() as session:
        assert sorted(session.scalars(select(Device.name)).all()) == ["existing", "leaf"]
    assert audit_actions(db) == before
