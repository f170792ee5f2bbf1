"""/metrics reports by type and outcome, optionally behind a token, and never carries ids,
emails or names."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from service.config import Settings
from tests.support import clerk_payloads as cp
from tests.support.replica_helpers import deliver, store_event
from tests.support.settings import make_settings
from tests.support.signing import SECRET, signed

ClientFor = Callable[[Settings], Any]


async def test_metrics_count_by_outcome_without_personal_data(
    client_for: ClientFor, settings: Settings, engine: Any
) -> None:
    client = await client_for(settings)
    body, headers = signed(cp.envelope("user.created", cp.user()))
    assert (await client.post("/webhooks/clerk", content=body, headers=headers)).status_code == 200
    headers["svix-signature"] = "v1,AAAA"
    assert (await client.post("/webhooks/clerk", content=body, headers=headers)).status_code == 401
    await deliver(engine, cp.envelope("user.updated", cp.user(updated_at=cp.T0 + 1)))

    text = (await client.get("/metrics")).text
    assert (
        'clerk_replica_deliveries_total{instance="default",outcome="refused",reason="bad_signature"}'
        in text
    )
    assert (
        'clerk_replica_events_total{event_type="user.updated",instance="default",outcome="applied"}'
        in text
    )
    assert (
        "clerk_replica_apply_seconds_bucket" in text and "clerk_replica_event_lag_seconds" in text
    )
    assert 'clerk_replica_inbox_events{status="pending"} 1.0' in text
    assert "clerk_replica_inbox_oldest_pending_age_seconds" in text
    for private in ("example@example.org", "Example", cp.user()["id"], SECRET):
        assert private not in text


async def test_metrics_token(client_for: ClientFor, db_url: str, redis_url: str) -> None:
    client = await client_for(make_settings(db_url, redis_url, metrics_token="scrape-me"))
    assert (await client.get("/metrics")).status_code == 401
    wrong = await client.get("/metrics", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = await client.get("/metrics", headers={"authorization": "Bearer scrape-me"})
    assert right.status_code == 200 and "clerk_replica_inbox_events" in right.text


async def test_a_token_of_any_bytes_is_compared_not_crashed_on(
    client_for: ClientFor, db_url: str, redis_url: str
) -> None:
    client = await client_for(make_settings(db_url, redis_url, metrics_token="scrape-me"))
    for given in ("Bearer scrape-mé".encode(), b"Bearer \xff\xfe", "Bearer 🔑".encode()):
        response = await client.get("/metrics", headers={"authorization": given})
        assert response.status_code == 401, given


async def test_database_gauges_are_read_once_per_period(
    client_for: ClientFor, db_url: str, redis_url: str, engine: Any
) -> None:
    def pending(text: str) -> str:
        (line,) = [
            line
            for line in text.splitlines()
            if line.startswith("clerk_replica_inbox_events") and 'status="pending"' in line
        ]
        return line.rsplit(" ", 1)[1]

    cached = await client_for(make_settings(db_url, redis_url, metrics_cache_seconds=60))
    fresh = await client_for(make_settings(db_url, redis_url, metrics_cache_seconds=0))
    assert pending((await cached.get("/metrics")).text) == "0.0"
    await store_event(engine, cp.envelope("user.created", cp.user()))
    assert pending((await cached.get("/metrics")).text) == "0.0"  # within its period
    assert pending((await fresh.get("/metrics")).text) == "1.0"


async def test_a_locked_database_cannot_hold_a_scrape(
    client_for: ClientFor, pg_db_url: str, redis_url: str
) -> None:
    from tests.support.databases import inbox_locked

    client = await client_for(
        make_settings(pg_db_url, redis_url, db_connect_timeout_seconds=1, metrics_cache_seconds=0)
    )
    async with inbox_locked(pg_db_url):
        started = time.monotonic()
        response = await asyncio.wait_for(client.get("/metrics"), timeout=10)
        waited = time.monotonic() - started
    assert response.status_code == 200 and waited < 5
    assert "clerk_replica_deliveries_total" in response.text  # the process's own counters
    assert "clerk_replica_inbox_events" not in response.text  # never read: not made up
    # Once the database answers again, so do the gauges.
    assert "clerk_replica_inbox_events" in (await client.get("/metrics")).text


async def test_metrics_show_when_the_last_full_reconcile_completed(
    client_for: ClientFor, settings: Settings, engine: Any
) -> None:
    from service.reconcile.checkpoints import RunStatus, finish_run, open_run

    name = "clerk_replica_reconcile_last_full_run_completed_timestamp_seconds"
    assert name + "{" not in (await (await client_for(settings)).get("/metrics")).text
    async with engine.begin() as conn:
        full, _ = await open_run(conn, trigger="cli", kinds=["users"], restart=True)
        await finish_run(conn, full, status=RunStatus.COMPLETED, summary={}, error=None)
        nightly, _ = await open_run(conn, trigger="cron", kinds=["users"], restart=True)
        await finish_run(
            conn, nightly, status=RunStatus.COMPLETED, summary={}, error=None, mode="incremental"
        )
    text = (await (await client_for(settings)).get("/metrics")).text
    line = next(li for li in text.splitlines() if li.startswith(name + '{instance="default"}'))
    assert abs(float(line.split()[-1]) - time.time()) < 600


async def test_gauges_for_stalls_reconciles_and_worker_liveness(
    client_for: ClientFor, settings: Settings, engine: Any
) -> None:
    import re
    from datetime import UTC, datetime

    from service.queue import heartbeat
    from service.queue.client import connect
    from service.reconcile.checkpoints import RunStatus, finish_run, open_run

    client = await client_for(settings.updated(metrics_cache_seconds=0))
    text = (await client.get("/metrics")).text
    # Nothing yet: no delivery, no run, no worker.
    assert "clerk_replica_last_delivery_timestamp_seconds{" not in text
    assert "clerk_replica_reconcile_last_success_timestamp_seconds{" not in text
    assert "clerk_replica_workers_alive 0.0" in text

    before = time.time()
    await store_event(engine, cp.envelope("user.created", cp.user()))
    async with engine.begin() as conn:
        run_id, _ = await open_run(conn, trigger="cli", kinds=["users"], restart=False)
        await finish_run(conn, run_id, status=RunStatus.COMPLETED, summary={}, error=None)
        failed_id, _ = await open_run(conn, trigger="cron", kinds=["orgs"], restart=True)
        await finish_run(conn, failed_id, status=RunStatus.FAILED, summary={}, error="boom")
    redis = connect(settings)
    try:
        await heartbeat.beat(redis, settings, "w:1")
    finally:
        await redis.aclose()
        await redis.connection_pool.disconnect()
    text = (await client.get("/metrics")).text

    def value(name: str) -> float:
        found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        assert found, name
        return float(found.group(1))

    after = time.time()
    delivered = value('clerk_replica_last_delivery_timestamp_seconds{instance="default"}')
    assert before - 1 <= delivered <= after
    succeeded = value('clerk_replica_reconcile_last_success_timestamp_seconds{instance="default"}')
    assert before - 1 <= succeeded <= after <= datetime.now(UTC).timestamp()
    assert value('clerk_replica_reconcile_last_run_failed{instance="default"}') == 1
    assert value('clerk_replica_reconcile_last_run_ok{instance="default"}') == 0
    assert value("clerk_replica_workers_alive") == 1
    assert before - 1 <= value("clerk_replica_worker_last_heartbeat_timestamp_seconds") <= after
