"""GET /api/v1/reading/prediction on SQLite and PostgreSQL: the model follows the data
(simple from the log, speed x habit from the first timed session, the weekday habit with a
range over a long history), the dates are the user's own, and `vigil reading backtest`
reports the errors per model for a stored history."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import TransactionalDatabase
from tests.support.app import api
from tests.support.auth import bearer, login, make_user
from tests.support.reading_history import generate, seed
from vigil.core.auth import service as auth_service
from vigil.core.auth.passwords import Passwords
from vigil.core.auth.permissions import Role
from vigil.core.db import Database
from vigil.core.migrate import upgrade_to_head
from vigil.reading.models import Book, ListEntry, ReadingSession
from vigil.reading.predictions import SESSION_WINDOW_DAYS, load_history
from vigil.reading.service import add_to_list

R = "/api/v1/reading"


def _client(db: TransactionalDatabase) -> TestClient:
    client, _ = api(db, cache_ttl=0, rate_limit="")
    return client


def _user(db: TransactionalDatabase, client: TestClient) -> tuple[int, dict[str, str]]:
    account = make_user(db, client.app.state.auth, Role.USER)  # type: ignore[attr-defined]
    return account.id, bearer(login(client, account.email)["access_token"])


def _book(db: TransactionalDatabase, user_id: int, pages: int, key: str) -> int:
    now = datetime.now(UTC)
    with db.session(write=True) as s:
        book = Book(google_book_id=key, title=key, author="x", page_count=pages,
                    source="google_books", created_at=now, updated_at=now)  # fmt: skip
        s.add(book)
        s.flush()
        return add_to_list(s, user_id, book).id


def get(client: TestClient, headers: dict[str, str], **params: str) -> dict[str, Any]:
    response = client.get(f"{R}/prediction", params={"tz": "UTC", **params}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_model_follows_the_data(db: TransactionalDatabase) -> None:
    client = _client(db)
    uid, me = _user(db, client)
    _, other = _user(db, client)
    first = _book(db, uid, 300, "p-a")
    second = _book(db, uid, 200, "p-b")
    nothing = get(client, me)
    assert nothing["model"] is None
    assert "log a finished book" in nothing["reason"]
    assert nothing["pages_left"] == 500

    # Simple mode: 300 pages read in 10 days (30 a day).
    today = datetime.now(UTC).date()
    done = _book(db, uid, 300, "p-done")
    log = {"entry_id": done, "started_on": str(today - timedelta(days=10)),
           "finished_on": str(today - timedelta(days=1))}  # fmt: skip
    assert client.post(f"{R}/log", json=log, headers=me).status_code == 201
    simple = get(client, me)
    assert simple["model"] == "simple"
    assert [b["entry_id"] for b in simple["books"]] == [first, second]
    # 300 pages at 30/day: day 9; 500: day 16 (ceil(500/30) - 1).
    assert simple["books"][0]["finish"] == str(today + timedelta(days=9))
    assert simple["list_finish"] == str(today + timedelta(days=16))

    # One timed session switches to speed x habit, and the answer says why.
    start = datetime.now(UTC) - timedelta(days=2)
    session = {"entry_id": first, "start_time": start.isoformat(),
               "end_time": (start + timedelta(hours=1)).isoformat(), "pages_read": 49}  # fmt: skip
    assert client.post(f"{R}/sessions", json=session, headers=me).status_code == 201
    speed = get(client, me)
    assert speed["model"] == "speed"
    assert "timed sessions" in speed["reason"]
    assert {m["name"]: m["available"] for m in speed["models"]} == {
        "simple": True, "speed": True, "contextual": True
    }  # fmt: skip
    # 49 pages/hour x 1 hour/week = 7 pages a day; 500 pages: day 71.
    assert speed["list_finish"] == str(today + timedelta(days=71))
    forced = get(client, me, model="simple")
    assert forced["model"] == "simple"
    assert forced["list_finish"] == simple["list_finish"]

    # Someone else's prediction knows nothing of this list.
    assert get(client, other)["books"] == []
    for zone in ("Mars/Olympus", "Europe", "../etc"):
        bad = client.get(f"{R}/prediction", params={"tz": zone}, headers=me)
        assert bad.status_code == 422, zone


def test_a_long_history_uses_the_weekday_habit_with_a_range(db: TransactionalDatabase) -> None:
    client = _client(db)
    uid, me = _user(db, client)
    g = generate(years=1, sessions=2_000, tbr=20, today=datetime.now(UTC).date())
    with db.session(write=True) as s:
        seed(s, uid, g)
    found = get(client, me)
    assert found["model"] == "contextual"
    assert len(found["books"]) == 20
    last = found["books"][-1]
    assert last["low"] <= last["finish"] <= last["high"]
    assert found["list_low"] == last["low"]
    weekdays = next(m for m in found["models"] if m["name"] == "contextual")["detail"]
    assert weekdays["weekday_pages"][6] > weekdays["weekday_pages"][2]  # Sundays read more


def test_vigil_reading_backtest(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'vigil.db'}"
    database = Database.from_url(url)
    upgrade_to_head(database.engine)
    g = generate(years=1, sessions=1_500, tbr=5, today=date.today())
    hasher = Passwords(time_cost=1, memory_kib=8, parallelism=1)
    with database.session(write=True) as s:
        reader = auth_service.create_user(s, hasher, "reader@example.org", "x" * 12)
        seed(s, reader.id, g)
    database.dispose()
    env = {**os.environ, "VIGIL_DATABASE_URL": url, "VIGIL_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "vigil", "reading", "backtest", "--user", "Reader@example.org"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = dict(
        line.split(" mean absolute error ") for line in done.stdout.splitlines() if "error" in line
    )
    errors = {k.strip(): float(v.split()[0]) for k, v in lines.items()}
    assert set(errors) == {"simple", "speed", "contextual", "baseline"}
    assert errors["contextual"] < errors["baseline"]
    unknown = subprocess.run(
        [sys.executable, "-m", "vigil", "reading", "backtest", "--user", "nobody@example.org"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert unknown.returncode == 1


def test_the_history_read_for_a_prediction(db: TransactionalDatabase) -> None:
    """load_history reads instants as epoch seconds computed by the database and puts each
    session on its day in the reader's zone: the same figures as Python's datetimes give,
    only the sessions of the window (200 days up to the latest start), finished ones only."""
    client = _client(db)
    user_id, _ = _user(db, client)
    entry = _book(db, user_id, 900, "window")
    latest = datetime(2026, 3, 29, 0, 30, 15, 250_000, tzinfo=UTC)  # 01:30 in Warsaw, before DST
    starts = [
        latest,
        latest - timedelta(days=1, hours=1),  # 23:30 UTC: the next day in Warsaw
        latest - timedelta(days=SESSION_WINDOW_DAYS - 1),
        latest - timedelta(days=SESSION_WINDOW_DAYS + 1),  # before the window
    ]
    with db.session(write=True) as s:
        book_id = s.scalar(select(ListEntry.book_id).where(ListEntry.id == entry))
        for i, start in enumerate(starts):
            s.add(ReadingSession(user_id=user_id, book_id=book_id, start_time=start,
                                 end_time=start + timedelta(minutes=30 + i), start_page=0,
                                 pages_read=10 + i, created_at=start))  # fmt: skip
        # A running session (no end): not read, but it is the latest start.
        s.add(
            ReadingSession(
                user_id=user_id,
                book_id=book_id,
                start_time=latest + timedelta(hours=3),
                created_at=latest,
            )
        )
    warsaw = ZoneInfo("Europe/Warsaw")
    with db.session() as s:
        history = load_history(s, user_id, warsaw)
        everything = load_history(s, user_id, warsaw, window_days=None)
    order = np.argsort(history.start)
    kept = sorted(starts[:3])
    assert history.start[order] == pytest.approx([t.timestamp() for t in kept], abs=1e-3)
    assert history.duration[order] == pytest.approx(
        [(30 + starts.index(t)) * 60 for t in kept], abs=1e-3
    )
    assert history.pages[order].tolist() == [10 + starts.index(t) for t in kept]
    assert history.day[order].tolist() == [t.astimezone(warsaw).date().toordinal() for t in kept]
    assert len(everything.start) == 4
