"""Tests of the fake NBP API server (tests/fakes/nbp_server.py), over real loopback HTTP."""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.nbp_server import (
    BAD_PARAM_BODY,
    CURRENCIES,
    INVALID_RANGE_BODY,
    NOT_FOUND_BODY,
    RANGE_LIMIT_BODY,
    FakeNBP,
    is_publication_day,
    polish_holidays,
    publication_days,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "nbp" / "tables_A_2022-11-02_2023-01-31.json"
TODAY = date(2024, 6, 28)  # a Friday
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def get(url: str) -> Reply:
    try:
        with _OPENER.open(url, timeout=10) as resp:
            return Reply(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return Reply(err.code, err.headers, err.read())


@pytest.fixture(scope="module")
def nbp() -> Iterator[FakeNBP]:
    with FakeNBP(today=TODAY) as fake:
        yield fake


@pytest.fixture
def fresh() -> Iterator[FakeNBP]:
    """A server of its own, for tests that inject faults or count requests."""
    with FakeNBP(today=date(2024, 1, 31)) as fake:
        yield fake


def assert_nbp_error(reply: Reply, status: int, body: str) -> None:
    assert reply.status == status
    assert reply.body == body.encode("utf-8")
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert reply.headers["cache-control"] == "no-cache"
    assert reply.headers["pragma"] == "no-cache"
    assert reply.headers["expires"] == "-1"
    assert reply.headers["content-length"] == str(len(reply.body))


# ----------------------------------------------------------------------------- calendar


def test_calendar_holidays() -> None:
    assert date(2024, 4, 1) in polish_holidays(2024)  # Easter Monday
    assert date(2024, 5, 30) in polish_holidays(2024)  # Corpus Christi
    assert date(2025, 4, 21) in polish_holidays(2025)
    assert date(2025, 6, 19) in polish_holidays(2025)
    assert is_publication_day(date(2010, 1, 6))  # Epiphany: a holiday from 2011 only
    assert not is_publication_day(date(2011, 1, 6))
    assert is_publication_day(date(2024, 12, 24))  # Christmas Eve: a holiday from 2025 only
    assert not is_publication_day(date(2025, 12, 24))
    assert not is_publication_day(date(2024, 6, 29))  # Saturday
    assert publication_days(date(2023, 12, 23), date(2023, 12, 26)) == []


def test_calendar_and_numbers_match_real_nbp_fixture(nbp: FakeNBP) -> None:
    real = json.loads(FIXTURE.read_text(encoding="utf-8"))
    served = get(f"{nbp.base_url}/exchangerates/tables/A/2022-11-02/2023-01-31/").json()
    assert [(t["effectiveDate"], t["no"]) for t in served] == [
        (t["effectiveDate"], t["no"]) for t in real
    ]
    for ours, theirs in zip(served, real, strict=True):
        assert [(r["code"], r["currency"]) for r in ours["rates"]] == [
            (r["code"], r["currency"]) for r in theirs["rates"]
        ]


def test_currency_list_is_the_fixture_one() -> None:
    real = json.loads(FIXTURE.read_text(encoding="utf-8"))
    last_with_hrk = next(t for t in real if t["effectiveDate"] == "2022-12-30")
    assert [(r["code"], r["currency"]) for r in last_with_hrk["rates"]] == [
        (code, name) for code, name, _ in CURRENCIES
    ]


# ----------------------------------------------------------------------------- shapes


def test_table_range_shape(nbp: FakeNBP) -> None:
    reply = get(f"{nbp.base_url}/exchangerates/tables/A/2024-01-01/2024-01-07/")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json; charset=utf-8"
    assert reply.headers["content-length"] == str(len(reply.body))
    tables = reply.json()
    assert [t["effectiveDate"] for t in tables] == [
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
        "2024-01-05",
    ]
    assert [t["no"] for t in tables] == [f"00{i}/A/NBP/2024" for i in range(1, 5)]
    for table in tables:
        assert set(table) == {"table", "no", "effectiveDate", "rates"}
        assert table["table"] == "A"
        assert len(table["rates"]) == 33
        for rate in table["rates"]:
            assert set(rate) == {"currency", "code", "mid"}
    usd = tables[0]["rates"][1]
    assert usd["code"] == "USD"
    assert usd["currency"] == "dolar amerykański"


def test_mid_text_has_nbp_scale(nbp: FakeNBP) -> None:
    body = get(f"{nbp.base_url}/exchangerates/tables/A/2023-03-01/2023-05-31/").text
    mids = re.findall(r'"mid":([0-9.]+)', body)
    assert len(mids) > 60 * 33
    for mid in mids:
        decimals = len(mid.split(".")[1])
        assert decimals == (6 if Decimal(mid) < Decimal("0.1") else 4), mid
    assert any(mid.endswith("0") for mid in mids)  # trailing zeros kept


def test_first_table_of_history(nbp: FakeNBP) -> None:
    tables = get(f"{nbp.base_url}/exchangerates/tables/A/2001-12-20/2002-01-03").json()
    assert [(t["no"], t["effectiveDate"]) for t in tables] == [
        ("001/A/NBP/2002", "2002-01-02"),
        ("002/A/NBP/2002", "2002-01-03"),
    ]
    assert len(tables[0]["rates"]) == 34


@pytest.mark.parametrize(
    "path",
    [
        "/exchangerates/tables/A/2024-01-03/",
        "/exchangerates/tables/a/2024-01-03",
        "/exchangerates/tables/a/2024-01-03/?format=json",
        "/exchangerates/tables/A/2024-01-03/2024-01-03/",
    ],
)
def test_single_table_variants(nbp: FakeNBP, path: str) -> None:
    reply = get(nbp.base_url + path)
    assert reply.status == 200
    tables = reply.json()
    assert len(tables) == 1
    assert tables[0]["effectiveDate"] == "2024-01-03"
    assert tables[0]["no"] == "002/A/NBP/2024"


def test_rates_shape(nbp: FakeNBP) -> None:
    for code in ("USD", "usd"):
        reply = get(f"{nbp.base_url}/exchangerates/rates/a/{code}/2023-01-05/2023-01-10/")
        assert reply.status == 200
        assert reply.headers["content-type"] == "application/json; charset=utf-8"
        data = reply.json()
        assert set(data) == {"table", "currency", "code", "rates"}
        assert (data["table"], data["currency"], data["code"]) == ("A", "dolar amerykański", "USD")
        assert [r["effectiveDate"] for r in data["rates"]] == [
            "2023-01-05",
            "2023-01-09",
            "2023-01-10",
        ]
        assert [r["no"] for r in data["rates"]] == [
            "004/A/NBP/2023",
            "005/A/NBP/2023",
            "006/A/NBP/2023",
        ]
        assert all(set(r) == {"no", "effectiveDate", "mid"} for r in data["rates"])


def test_rates_agree_with_tables(nbp: FakeNBP) -> None:
    rates = get(f"{nbp.base_url}/exchangerates/rates/A/EUR/2024-02-01/2024-03-15/").json()
    tables = get(f"{nbp.base_url}/exchangerates/tables/A/2024-02-01/2024-03-15/").json()
    from_tables = [
        (t["no"], t["effectiveDate"], next(r["mid"] for r in t["rates"] if r["code"] == "EUR"))
        for t in tables
    ]
    assert [(r["no"], r["effectiveDate"], r["mid"]) for r in rates["rates"]] == from_tables


def test_unknown_code_is_404(nbp: FakeNBP) -> None:
    reply = get(f"{nbp.base_url}/exchangerates/rates/A/XYZ/2024-01-02/2024-01-05/")
    assert_nbp_error(reply, 404, NOT_FOUND_BODY)


def test_gold(nbp: FakeNBP) -> None:
    reply = get(f"{nbp.base_url}/cenyzlota/2012-12-28/2013-01-04/")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json; charset=utf-8"
    assert re.fullmatch(rb'\[(\{"data":"[0-9-]{10}","cena":\d+\.\d\d\},?)+\]', reply.body)
    prices = reply.json()
    assert [p["data"] for p in prices] == ["2013-01-02", "2013-01-03", "2013-01-04"]
    assert prices[0]["cena"] == 165.83
    single = get(f"{nbp.base_url}/cenyzlota/2013-01-03").json()
    assert single == [prices[1]]
    assert_nbp_error(get(f"{nbp.base_url}/cenyzlota/2012-12-28/"), 404, NOT_FOUND_BODY)


def test_today_endpoints(nbp: FakeNBP) -> None:
    tables = get(f"{nbp.base_url}/exchangerates/tables/A/today/").json()
    assert [t["effectiveDate"] for t in tables] == [TODAY.isoformat()]
    gold = get(f"{nbp.base_url}/cenyzlota/today").json()
    assert [p["data"] for p in gold] == [TODAY.isoformat()]
    rates = get(f"{nbp.base_url}/exchangerates/rates/a/chf/today/").json()
    assert [r["effectiveDate"] for r in rates["rates"]] == [TODAY.isoformat()]


def test_today_without_table_is_404() -> None:
    with FakeNBP(today=date(2024, 4, 1)) as fake:  # Easter Monday
        reply = get(f"{fake.base_url}/exchangerates/tables/A/today/")
        assert_nbp_error(reply, 404, NOT_FOUND_BODY)
        assert_nbp_error(get(f"{fake.base_url}/cenyzlota/today/"), 404, NOT_FOUND_BODY)


def test_last_n_and_current(nbp: FakeNBP) -> None:
    tables = get(f"{nbp.base_url}/exchangerates/tables/A/last/3/").json()
    assert [t["effectiveDate"] for t in tables] == ["2024-06-26", "2024-06-27", "2024-06-28"]
    current = get(f"{nbp.base_url}/exchangerates/tables/A/").json()
    assert current == tables[-1:]
    reply = get(f"{nbp.base_url}/exchangerates/tables/A/last/68/")
    assert reply.status == 400


def test_hrk_leaves_on_2023_01_02(nbp: FakeNBP) -> None:
    tables = get(f"{nbp.base_url}/exchangerates/tables/A/2022-12-30/2023-01-02/").json()
    assert [t["effectiveDate"] for t in tables] == ["2022-12-30", "2023-01-02"]
    assert "HRK" in {r["code"] for r in tables[0]["rates"]}
    assert "HRK" not in {r["code"] for r in tables[1]["rates"]}
    assert (len(tables[0]["rates"]), len(tables[1]["rates"])) == (34, 33)
    rates = get(f"{nbp.base_url}/exchangerates/rates/A/HRK/2022-12-20/2023-01-10/").json()
    assert rates["rates"][-1]["effectiveDate"] == "2022-12-30"
    reply = get(f"{nbp.base_url}/exchangerates/rates/A/HRK/2023-01-02/")
    assert_nbp_error(reply, 404, NOT_FOUND_BODY)
    expected = nbp.expected_rates()
    assert ("HRK", date(2022, 12, 30)) in expected
    assert ("HRK", date(2023, 1, 2)) not in expected


def test_easter_monday_2024_has_no_table(nbp: FakeNBP) -> None:
    assert_nbp_error(get(f"{nbp.base_url}/exchangerates/tables/A/2024-04-01/"), 404, NOT_FOUND_BODY)
    tables = get(f"{nbp.base_url}/exchangerates/tables/A/2024-03-29/2024-04-02/").json()
    assert [t["effectiveDate"] for t in tables] == ["2024-03-29", "2024-04-02"]
    assert date(2024, 4, 1) not in nbp.table_dates()


# ----------------------------------------------------------------------------- errors


def test_range_limit(nbp: FakeNBP) -> None:
    start = date(2024, 1, 1)
    ok = get(f"{nbp.base_url}/exchangerates/tables/A/{start}/{start + timedelta(days=92)}/")
    assert ok.status == 200
    too_long = f"{start}/{start + timedelta(days=93)}"  # 94 days
    for path in (
        f"/exchangerates/tables/A/{too_long}/",
        f"/exchangerates/rates/A/USD/{too_long}/",
        f"/cenyzlota/{too_long}",
    ):
        assert_nbp_error(get(nbp.base_url + path), 400, RANGE_LIMIT_BODY)
    assert RANGE_LIMIT_BODY == (
        "400 BadRequest - Przekroczony limit 93 dni / Limit of 93 days has been exceeded"
    )


def test_weekend_range_is_404(nbp: FakeNBP) -> None:
    for path in (
        "/exchangerates/tables/A/2024-06-22/2024-06-23/",
        "/exchangerates/rates/A/EUR/2024-06-22/2024-06-23/",
        "/cenyzlota/2024-06-22/2024-06-23/",
        "/exchangerates/tables/A/2023-12-23/2023-12-26/",
        "/exchangerates/tables/A/2024-06-22/",
    ):
        assert_nbp_error(get(nbp.base_url + path), 404, NOT_FOUND_BODY)
    assert NOT_FOUND_BODY == "404 NotFound - Not Found - Brak danych"


def test_invalid_date_range(nbp: FakeNBP) -> None:
    for path in (
        "/exchangerates/tables/A/2024-06-20/2024-07-01/",  # ends after today
        "/exchangerates/tables/A/2024-06-10/2024-06-01/",  # start after end
        "/exchangerates/rates/A/USD/2024-06-20/2024-06-29/",
        "/cenyzlota/2024-06-28/2024-06-29/",
    ):
        assert_nbp_error(get(nbp.base_url + path), 400, INVALID_RANGE_BODY)
    assert INVALID_RANGE_BODY.encode() == (
        b"400 BadRequest - B\xc5\x82\xc4\x99dny zakres dat / Invalid date range"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/exchangerates/tables/A/2024-13-01/",
        "/exchangerates/tables/A/2024-02-30/",
        "/exchangerates/tables/A/2024-1-05/",
        "/exchangerates/tables/A/yesterday/",
        "/exchangerates/tables/Z/2024-01-05/",
        "/exchangerates/tables/A/2024-01-02/2024-01-05/2024-01-06/",
        "/exchangerates/somethingelse/",
        "/cenyzlota/last/x/",
        "/",
    ],
)
def test_malformed_is_400(nbp: FakeNBP, path: str) -> None:
    assert_nbp_error(get(nbp.base_url + path), 400, BAD_PARAM_BODY)


# ----------------------------------------------------------------------------- data


def test_expected_rates_agree_with_tables(nbp: FakeNBP) -> None:
    tables = get(f"{nbp.base_url}/exchangerates/tables/A/2022-11-15/2023-01-20/").json()
    served = {
        (r["code"], date.fromisoformat(t["effectiveDate"])): r["mid"]
        for t in tables
        for r in t["rates"]
    }
    expected = nbp.expected_rates()
    in_range = {
        key: value
        for key, value in expected.items()
        if date(2022, 11, 15) <= key[1] <= date(2023, 1, 20)
    }
    assert set(served) == set(in_range)
    assert all(Decimal(str(served[key])) == in_range[key] for key in served)
    # exact text: parse the raw body as decimals
    raw = json.loads(
        get(f"{nbp.base_url}/exchangerates/tables/A/2023-01-20/").body, parse_float=Decimal
    )
    assert all(r["mid"] == expected[(r["code"], date(2023, 1, 20))] for r in raw[0]["rates"])


def test_expected_covers_full_history(nbp: FakeNBP) -> None:
    days = nbp.table_dates()
    assert days[0] == date(2002, 1, 2)
    assert days[-1] == TODAY
    rates = nbp.expected_rates()
    hrk_days = sum(1 for d in days if d <= date(2022, 12, 30))
    assert len(rates) == 33 * len(days) + hrk_days
    assert all(value > 0 for value in rates.values())
    gold = nbp.expected_gold()
    assert min(gold) == date(2013, 1, 2)
    assert max(gold) == TODAY
    assert gold[date(2013, 1, 2)] == Decimal("165.83")
    raw = json.loads(
        get(f"{nbp.base_url}/cenyzlota/2024-06-03/2024-06-07").body, parse_float=Decimal
    )
    assert all(p["cena"] == gold[date.fromisoformat(p["data"])] for p in raw)


def test_deterministic_and_independent_of_today() -> None:
    a, b = FakeNBP(today=date(2024, 6, 28)), FakeNBP(today=date(2023, 3, 31))
    other_seed = FakeNBP(today=date(2023, 3, 31), seed=7)
    path = "/api/exchangerates/tables/A/2023-01-02/2023-03-31/"
    assert a.render(path).body == b.render(path).body
    assert a.render(path).body != other_seed.render(path).body
    assert a.render("/api/cenyzlota/2023-03-01/2023-03-31").body == (
        b.render("/api/cenyzlota/2023-03-01/2023-03-31").body
    )


def test_construction_is_fast() -> None:
    started = time.perf_counter()
    FakeNBP(today=date(2026, 12, 31))
    assert time.perf_counter() - started < 2.0


# ----------------------------------------------------------------------------- faults


def test_faults_queue(fresh: FakeNBP) -> None:
    fresh.faults = [429, 503, 500]
    url = f"{fresh.base_url}/exchangerates/tables/A/2024-01-02/"
    too_many = get(url)
    assert too_many.status == 429
    assert too_many.body == b"429 Too Many Requests"
    assert too_many.headers["retry-after"] == "1"
    unavailable, error = get(url), get(url)
    assert (unavailable.status, error.status) == (503, 500)
    assert unavailable.body
    assert get(url).status == 200
    assert fresh.requests == [
        ("/api/exchangerates/tables/A/2024-01-02/", 429),
        ("/api/exchangerates/tables/A/2024-01-02/", 503),
        ("/api/exchangerates/tables/A/2024-01-02/", 500),
        ("/api/exchangerates/tables/A/2024-01-02/", 200),
    ]
    fresh.faults.append(503)  # mutating the live list works as well
    assert get(url).status == 503


def test_fault_every(fresh: FakeNBP) -> None:
    fresh.fault_every = 3
    url = f"{fresh.base_url}/cenyzlota/2024-01-02/2024-01-10?format=json"
    statuses = [get(url).status for _ in range(7)]
    assert statuses == [200, 200, 500, 200, 200, 500, 200]
    fresh.fault_status = 503
    assert [get(url).status for _ in range(2)] == [200, 503]
    assert fresh.requests[0] == ("/api/cenyzlota/2024-01-02/2024-01-10?format=json", 200)
    fresh.reset()
    assert fresh.requests == []
    assert [get(url).status for _ in range(3)] == [200, 200, 200]


def test_delay(fresh: FakeNBP) -> None:
    fresh.delay = 0.2
    started = time.perf_counter()
    assert get(f"{fresh.base_url}/cenyzlota/today/").status == 200
    assert time.perf_counter() - started >= 0.2


def test_constructor_fault_params() -> None:
    with FakeNBP(today=date(2024, 1, 31), faults=[503], fault_every=2) as fake:
        url = f"{fake.base_url}/cenyzlota/2024-01-02/"
        assert [get(url).status for _ in range(4)] == [503, 500, 200, 500]


# ----------------------------------------------------------------------------- transport


def test_keep_alive_and_speed(nbp: FakeNBP) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", nbp.port, timeout=10)
    try:
        path = "/api/exchangerates/tables/A/2023-06-01/2023-09-01/"
        timings = []
        for _ in range(20):
            started = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            timings.append(time.perf_counter() - started)
            assert response.status == 200
            assert response.version == 11
            assert int(response.headers["content-length"]) == len(body)
            assert not response.will_close
        timings.sort()
        assert timings[len(timings) // 2] < 0.05  # generous; typically well under 5 ms
    finally:
        conn.close()


def test_stop_and_restart() -> None:
    fake = FakeNBP(today=date(2024, 1, 31))
    with pytest.raises(RuntimeError):
        _ = fake.base_url
    url = fake.start()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api", url)
    assert fake.start() == url
    assert get(f"{url}/cenyzlota/today").status == 200
    fake.stop()
    fake.stop()
    with pytest.raises(urllib.error.URLError):
        get(f"{url}/cenyzlota/today")


def test_runs_as_a_process() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.nbp_server", "--port", "0", "--today", "2024-01-31"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"READY (http://127\.0\.0\.1:\d+/api)\n", line)
        assert match, line
        tables = get(f"{match.group(1)}/exchangerates/tables/A/today/").json()
        assert tables[0]["effectiveDate"] == "2024-01-31"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stdout.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
