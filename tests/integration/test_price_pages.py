"""The Dashboard and Gold pages through the real app (both backends): the chart data they
embed (points per series, BUY/SELL markers, weekly candles), the pickers, the range
presets, the HTMX partial and the empty state."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from tests.conftest import TransactionalDatabase
from tests.support.app import api
from vigil.core.web.charts import day_seconds
from vigil.markets import service
from vigil.markets.analytics.macd import MacdParams, macd
from vigil.markets.analytics.signals import Signal, classify
from vigil.markets.dashboards import HistoryCache
from vigil.markets.sources.base import Quote, SeriesKind

BROWSER = {"Accept": "text/html"}
HTMX = {**BROWSER, "HX-Request": "true"}
START = date(2024, 1, 1)
DAYS = [d for d in (START + timedelta(days=i) for i in range(400)) if d.weekday() < 5]


def usd_rate(i: int) -> Decimal:
    # A wave: MACD crosses its signal line several times, so there are BUYs and SELLs.
    return Decimal(f"{4 + 0.2 * math.sin(i / 9) + i / 2000:.4f}")


@pytest.fixture
def client(db: TransactionalDatabase) -> Iterator[TestClient]:
    with db.session() as session:
        service.store_quotes(
            session,
            [Quote("USD", "dolar amerykański", d, usd_rate(i)) for i, d in enumerate(DAYS)]
            + [Quote("EUR", "euro", d, Decimal("4.3")) for d in DAYS[:60]],
            SeriesKind.CURRENCY,
            "nbp",
        )
        service.store_quotes(
            session,
            [Quote("XAU", "złoto", d, Decimal(250 + i)) for i, d in enumerate(DAYS[:100])],
            SeriesKind.GOLD,
            "nbp",
        )
    test_client, _ = api(db)
    with test_client:
        yield test_client


def chart(html: str, chart_id: str) -> dict[str, Any]:
    found = re.search(rf'<script type="application/json" id="{chart_id}-data">(.*?)</script>', html)
    assert found, f"no data for {chart_id}"
    spec: dict[str, Any] = orjson.loads(found.group(1))
    return spec


def series(spec: dict[str, Any], name: str) -> dict[str, Any]:
    """The named series, with its points as ``data`` [[t, v], …] also when it was sent
    compactly (the spec's shared ``times``, the series' ``values`` from ``start``)."""
    for pane in spec["panes"]:
        for s in pane["series"]:
            if s["name"] == name:
                if "values" not in s:
                    return s  # type: ignore[no-any-return]
                times = spec["times"][s["start"] :]
                data = [[t, v] for t, v in zip(times, s["values"], strict=False)]
                assert len(data) == len(s["values"]), "more values than times"
                return {**s, "data": data}
    raise AssertionError(f"no series {name}")


def test_all_range_draws_every_day_with_band_macd_and_markers(client: TestClient) -> None:
    page = client.get("/markets/dashboard?code=usd&range=all", headers=BROWSER)
    assert page.status_code == 200, page.text
    spec = chart(page.text, "price-chart")
    price = series(spec, "price")
    assert len(price["data"]) == len(DAYS)
    assert price["data"][0] == [day_seconds(DAYS[0]), float(usd_rate(0))]
    assert price["data"][-1] == [day_seconds(DAYS[-1]), float(usd_rate(len(DAYS) - 1))]
    # The band needs 20 days, the MACD 33 (12/26/9): their warm-up is left out, not zero.
    assert len(series(spec, "upper")["data"]) == len(DAYS) - 19
    assert len(series(spec, "macd")["data"]) == len(DAYS) - 33
    assert len(series(spec, "histogram")["data"]) == len(DAYS) - 33
    values = np.array([float(usd_rate(i)) for i in range(len(DAYS))])
    signals = classify(macd(values).histogram)
    expected = [
        [day_seconds(d), s.value]
        for d, s in zip(DAYS, signals, strict=True)
        if s is not Signal.HOLD
    ]
    assert len(expected) >= 4
    assert price["markers"] == expected
    weeks = {d.isocalendar()[:2] for d in DAYS}
    assert len(series(chart(page.text, "candle-chart"), "weekly")["data"]) == len(weeks)
    table = page.text.split('id="signals-table"')[1]
    assert table.count("<tr>") - 1 == min(len(expected), 50)


def test_a_short_range_starts_with_warmed_up_indicators(client: TestClient) -> None:
    start, end = DAYS[100], DAYS[139]
    page = client.get(f"/markets/dashboard?code=USD&from={start}&to={end}", headers=BROWSER)
    spec = chart(page.text, "price-chart")
    assert len(series(spec, "price")["data"]) == 40
    # 100 days of history came before: the band and the MACD are defined from the first day.
    assert len(series(spec, "upper")["data"]) == 40
    assert len(series(spec, "macd")["data"]) == 40
    assert series(spec, "macd")["data"][0][0] == day_seconds(start)
    assert f'value="{start}"' in page.text  # the picker keeps the user's dates


def test_presets_count_back_from_the_last_stored_day(client: TestClient) -> None:
    page = client.get("/markets/dashboard?code=USD&range=3m", headers=BROWSER)
    data = series(chart(page.text, "price-chart"), "price")["data"]
    cutoff = DAYS[-1] - timedelta(days=92)
    assert data == [[day_seconds(d), float(usd_rate(i))] for i, d in enumerate(DAYS) if d >= cutoff]
    assert '<option value="3m" selected>' in page.text


def test_default_is_usd_over_one_year_and_the_picker_lists_currencies(client: TestClient) -> None:
    page = client.get("/markets/dashboard", headers=BROWSER)
    assert '<option value="USD" selected>USD · dolar amerykański</option>' in page.text
    assert '<option value="EUR">EUR · euro</option>' in page.text
    assert "XAU" not in page.text.split('id="picker"')[1].split("</form>")[0]
    data = series(chart(page.text, "price-chart"), "price")["data"]
    assert data[-1][0] == day_seconds(DAYS[-1])
    assert data[0][0] >= day_seconds(DAYS[-1] - timedelta(days=366))


def test_another_currency_changes_the_chart(client: TestClient) -> None:
    usd = chart(
        client.get("/markets/dashboard?code=USD&range=all", headers=BROWSER).text, "price-chart"
    )
    eur = chart(
        client.get("/markets/dashboard?code=EUR&range=all", headers=BROWSER).text, "price-chart"
    )
    assert series(eur, "price")["title"] == "EUR"
    assert len(series(eur, "price")["data"]) == 60 != len(series(usd, "price")["data"])


def test_htmx_gets_the_panel_only(client: TestClient) -> None:
    panel = client.get("/markets/dashboard?code=EUR", headers=HTMX)
    assert panel.status_code == 200
    assert panel.text.lstrip().startswith('<section id="panel"')
    assert "<html" not in panel.text
    assert 'id="picker"' not in panel.text
    assert 'hx-trigger="every 60s"' in panel.text
    assert 'hx-include="#picker"' in panel.text  # the refresh keeps the user's picks


def test_refresh_can_be_switched_off(db: TransactionalDatabase) -> None:
    test_client, _ = api(db, ui_refresh_seconds=0)
    with test_client:
        page = test_client.get("/markets/gold", headers=BROWSER).text
    assert 'hx-trigger="every' not in page


def test_gold_page_shows_gold(client: TestClient) -> None:
    page = client.get("/markets/gold?range=all", headers=BROWSER)
    assert page.status_code == 200
    price = series(chart(page.text, "price-chart"), "price")
    assert price["title"] == "XAU"
    assert len(price["data"]) == 100
    assert 'name="code"' not in page.text  # one series: no currency picker


def test_unknown_currency_is_a_404_page_naming_the_known_ones(client: TestClient) -> None:
    page = client.get("/markets/dashboard?code=ABC", headers=BROWSER)
    assert page.status_code == 404
    assert "Unknown currency code &#39;ABC&#39;" in page.text
    assert "USD" in page.text


def test_reversed_dates_are_a_422_page(client: TestClient) -> None:
    page = client.get(f"/markets/dashboard?code=USD&from={DAYS[50]}&to={DAYS[10]}", headers=BROWSER)
    assert page.status_code == 422
    assert "after" in page.text or "before" in page.text


def test_before_the_first_backfill_the_page_says_where_to_look(db: TransactionalDatabase) -> None:
    test_client, _ = api(db)
    with test_client:
        page = test_client.get("/markets/gold", headers=BROWSER)
    assert page.status_code == 200
    assert "No gold prices stored yet" in page.text
    assert 'href="/markets/miner"' in page.text


def test_a_large_page_is_sent_gzipped_to_browsers_that_accept_it(client: TestClient) -> None:
    url = "/markets/dashboard?code=USD&range=all"
    zipped = client.get(url, headers={**BROWSER, "Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["vary"]
    assert int(zipped.headers["content-length"]) < len(zipped.content) / 2  # httpx unzipped it
    plain = client.get(url, headers={**BROWSER, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.text == zipped.text.replace(
        re.search(r"Updated [^<]*", zipped.text).group(0),  # type: ignore[union-attr]
        re.search(r"Updated [^<]*", plain.text).group(0),  # type: ignore[union-attr]
    )


def test_a_price_stored_or_corrected_after_a_page_is_on_the_next_one(
    client: TestClient, db: TransactionalDatabase
) -> None:
    # The full history and its indicators are kept between requests (HistoryCache); any
    # change of the stored series must show at once, whoever wrote it.
    url = "/markets/dashboard?code=USD&range=3m"
    before = series(chart(client.get(url, headers=BROWSER).text, "price-chart"), "price")
    new_day = DAYS[-1] + timedelta(days=3)
    with db.session() as session:
        service.store_quotes(
            session, [Quote("USD", "dolar amerykański", new_day, Decimal("4.5"))],
            SeriesKind.CURRENCY, "nbp",
        )  # fmt: skip
    added = series(chart(client.get(url, headers=BROWSER).text, "price-chart"), "price")
    assert added["data"][-1] == [day_seconds(new_day), 4.5]
    assert added["data"][-2] == before["data"][-1]
    with db.session() as session:
        service.store_quotes(
            session, [Quote("USD", "dolar amerykański", new_day, Decimal("4.25"))],
            SeriesKind.CURRENCY, "nbp",
        )  # fmt: skip
    corrected = series(chart(client.get(url, headers=BROWSER).text, "price-chart"), "price")
    assert corrected["data"][-1] == [day_seconds(new_day), 4.25]


def test_the_history_is_computed_once_while_the_series_is_unchanged(
    client: TestClient, db: TransactionalDatabase
) -> None:
    histories = HistoryCache(size=1)
    with db.session() as session:
        usd, eur = service.get_asset(session, "USD"), service.get_asset(session, "EUR")
        first = histories.get(session, usd.id, MacdParams())
        assert first is not None
        assert len(first.days) == len(DAYS)
        assert histories.get(session, usd.id, MacdParams()) is first
        assert histories.get(session, usd.id, MacdParams(5, 10, 3)) is not first  # other params
        histories.get(session, eur.id, MacdParams())  # size 1: USD's entry goes
        assert histories.get(session, usd.id, MacdParams()) is not first
