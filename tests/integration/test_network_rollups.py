"""Downsampling and retention of the network samples on SQLite and PostgreSQL: the 5 min and
1 h rollups of known samples, idempotent re-runs, a run stopped after some batches finished
by the next one with the same result, retention per tier that never deletes what is not
rolled up yet, and the job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from tests.conftest import TransactionalDatabase
from tests.support.app import api
from vigil.network import rollups
from vigil.network.models import Device, Sample, SampleRollup
from vigil.settings import Settings

H = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # an hour boundary
NOW = H + timedelta(hours=2, minutes=5)  # both hours complete, grace (2 min) passed


def _samples(db: TransactionalDatabase) -> None:
    """Two devices; device 1's metric "m" is the minute's index (0..119), one a minute for
    two hours, plus a second sample inside each minute for device 2 (value 10 and 20)."""
    with db.session() as session:
        for minute in range(120):
            at = H + timedelta(minutes=minute)
            session.add(Sample(device_id=1, metric="m", ts=at, value=float(minute)))
            session.add(Sample(device_id=2, metric="icmp.rtt_avg_ms", ts=at, value=10.0))
            session.add(
                Sample(
                    device_id=2,
                    metric="icmp.rtt_avg_ms",
                    ts=at + timedelta(seconds=30, microseconds=250),
                    value=20.0,
                )
            )
        session.commit()


def _rows(
    db: TransactionalDatabase, period: int
) -> dict[tuple[int, str, datetime], tuple[float, float, float, int]]:
    with db.session() as session:
        return {
            (r.device_id, r.metric, r.bucket): (r.avg, r.min, r.max, r.count)
            for r in session.scalars(select(SampleRollup).where(SampleRollup.period == period))
        }


def test_rollups_of_known_samples_are_exact_and_idempotent(db: TransactionalDatabase) -> None:
    _samples(db)
    settings = Settings(network_rollup_batch_buckets=5)
    report = rollups.run(db, settings, NOW)
    five = _rows(db, 300)
    assert len(five) == 2 * 24
    for k in range(24):
        bucket = H + timedelta(minutes=5 * k)
        first = 5 * k
        assert five[(1, "m", bucket)] == (first + 2.0, float(first), first + 4.0, 5)
        assert five[(2, "icmp.rtt_avg_ms", bucket)] == (15.0, 10.0, 20.0, 10)
    hours = _rows(db, 3600)
    assert hours == {
        (1, "m", H): (29.5, 0.0, 59.0, 60),
        (1, "m", H + timedelta(hours=1)): (89.5, 60.0, 119.0, 60),
        (2, "icmp.rtt_avg_ms", H): (15.0, 10.0, 20.0, 120),
        (2, "icmp.rtt_avg_ms", H + timedelta(hours=1)): (15.0, 10.0, 20.0, 120),
    }
    assert report.batches >= 24 // 5
    # Again: the same rows, nothing added or changed.
    rollups.run(db, settings, NOW)
    assert _rows(db, 300) == five
    assert _rows(db, 3600) == hours


def test_a_run_stopped_midway_is_finished_by_the_next_and_incomplete_buckets_wait(
    db: TransactionalDatabase,
) -> None:
    _samples(db)
    # As if killed after the batches up to 10:35 committed: only those buckets are there.
    rows, batches = rollups.roll_up(db, 300, H + timedelta(minutes=35), 1)
    assert (rows, batches) == (14, 7)
    settings = Settings()
    # 10:31 + grace: the bucket 10:30-10:35 is complete, 10:35 is not yet.
    early = rollups.run(db, settings, H + timedelta(minutes=38))
    assert max(b for _, _, b in _rows(db, 300)) == H + timedelta(minutes=30)
    assert _rows(db, 3600) == {}  # the hour is not complete
    assert early.deleted.get("raw", 0) == 0
    rollups.run(db, settings, NOW)
    reference = _rows(db, 300)
    assert len(reference) == 48
    assert reference[(1, "m", H + timedelta(minutes=30))] == (32.0, 30.0, 34.0, 5)
    assert len(_rows(db, 3600)) == 4


def test_retention_per_tier_keeps_what_is_not_rolled_up(db: TransactionalDatabase) -> None:
    _samples(db)
    # Raw kept 72 minutes: at NOW (12:05) that is back to 10:53, floored to 10:50.
    settings = Settings(network_raw_retention_days=0.05, network_5m_retention_days=0.03)
    report = rollups.run(db, settings, NOW)
    with db.session() as session:
        oldest = session.scalar(select(func.min(Sample.ts)))
        raw = session.scalar(select(func.count()).select_from(Sample))
    assert oldest == H + timedelta(minutes=50)
    assert raw == 70 * 3
    assert report.deleted["raw"] == 50 * 3
    # 5 min rows kept 43 minutes (back to 11:21), but not past the last hour rolled up
    # (11:00): those before 11:00 are gone; the 1 h rows stay.
    assert min(b for _, _, b in _rows(db, 300)) == H + timedelta(hours=1)
    assert len(_rows(db, 3600)) == 4
    # 1 h rows past their retention go too.
    later = rollups.run(db, Settings(network_1h_retention_days=1), NOW + timedelta(days=1, hours=1))
    assert later.deleted["1h"] == 4
    assert _rows(db, 3600) == {}


def test_retention_waits_for_the_rollup(db: TransactionalDatabase) -> None:
    _samples(db)
    settings = Settings(network_raw_retention_days=0.001)
    # Nothing rolled up yet at 10:03: no raw sample is deleted, however old.
    rollups.run(db, settings, H + timedelta(minutes=3))
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Sample)) == 360


def test_the_rollup_job(db: TransactionalDatabase) -> None:
    _, runtime = api(db, cache_ttl=0, rate_limit="")
    _samples(db)
    run = runtime.runner.run("network.rollup", {})
    assert run.status == "ok", run
    assert "rollup rows" in (run.message or "")
    assert len(_rows(db, 300)) == 48


def test_the_samples_api_reads_raw_samples_or_a_rollup_tier(db: TransactionalDatabase) -> None:
    client, _ = api(db, as_role="viewer", cache_ttl=0, rate_limit="", network_secret_key="k")
    with db.session() as session:
        session.add(Device(id=1, name="d1", address="10.0.0.1", tags="", maintenance=[]))
        session.commit()
    _samples(db)
    rollups.run(db, Settings(), NOW)
    url = "/api/v1/network/devices/1/samples"
    raw = client.get(url, params={"metric": "m", "limit": 3}).json()
    assert raw["resolution"] == "raw"
    assert [(p["value"], p["min"]) for p in raw["points"]] == [
        (117.0, None),
        (118.0, None),
        (119.0, None),
    ]
    hourly = client.get(url, params={"metric": "m", "resolution": "1h"}).json()
    assert [(p["value"], p["min"], p["max"]) for p in hourly["points"]] == [
        (29.5, 0.0, 59.0),
        (89.5, 60.0, 119.0),
    ]
    five = client.get(
        url, params={"metric": "m", "resolution": "5m", "from": "2026-11-02T11:00:00Z", "limit": 2}
    ).json()
    assert [p["ts"][:16] for p in five["points"]] == ["2026-11-02T11:50", "2026-11-02T11:55"]
    refused = client.get(url, params={"metric": "m", "resolution": "1d"})
    assert refused.status_code == 422
