"""The console's first page, read from the database: per-instance health, the day's activity,
reconcile runs with a running one's progress, replica counts exact or from statistics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.db.dialect import dialect_of
from service.inbox.store import Status, inbox
from service.kinds.users import users
from service.operate import overview
from service.reconcile.checkpoints import RunStatus, runs
from tests.support import clerk_payloads as cp
from tests.support.console import busy
from tests.support.replica_helpers import deliver

T = TypeVar("T")


async def read(engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    async with engine.connect() as conn:
        return await work(conn)


def event(n: int, status: Status, received: datetime, **values: Any) -> dict[str, Any]:
    return {
        "svix_id": f"msg_{n:04d}",
        "event_type": "user.updated",
        "status": status.value,
        "received_at": received,
        "attempts": 1,
        "applied_at": None,
        "instance": None,
        **values,
    }


async def test_an_empty_database(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    buckets = await read(engine, lambda c: overview.activity(c, now))
    assert len(buckets) == 144 and not any(b.deliveries for b in buckets)
    assert buckets[0].start == now - timedelta(days=1)
    found = await read(engine, lambda c: overview.health(c, ["default"], now, buckets))
    assert found == {"default": overview.InstanceHealth("default")}
    assert await read(engine, lambda c: overview.reconcile_runs(c, 5)) == []
    counts = await read(engine, overview.replica_counts)
    assert {c.live for c in counts} == {0}


async def test_health_per_instance(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    minute = timedelta(minutes=1)
    rows = [
        # default (NULL is default too): lags 1..10 s within the hour
        *(
            event(
                n,
                Status.APPLIED,
                now - n * minute,
                applied_at=now - n * minute + timedelta(seconds=n),
                instance=None if n % 2 else "default",
            )
            for n in range(1, 11)
        ),
        event(20, Status.PENDING, now - 30 * minute, instance="default"),
        event(21, Status.PENDING, now - 90 * minute, instance="default"),
        event(22, Status.FAILED, now - 5 * timedelta(hours=5), instance="default"),
        # staging: quiet for two days
        event(30, Status.IGNORED, now - timedelta(days=2), applied_at=now, instance="staging"),
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(inbox), rows)
        await conn.execute(
            insert(runs),
            [
                {
                    "trigger": "cron",
                    "status": RunStatus.COMPLETED.value,
                    "kinds": [],
                    "started_at": now - timedelta(hours=30),
                    "finished_at": now - timedelta(hours=29),
                    "instance": None,
                },
                {
                    "trigger": "cron",
                    "status": RunStatus.FAILED.value,
                    "kinds": [],
                    "started_at": now - timedelta(hours=2),
                    "finished_at": now - timedelta(hours=1),
                    "instance": "default",
                },
            ],
        )
    day = await read(engine, lambda c: overview.activity(c, now))
    found = await read(engine, lambda c: overview.health(c, ["default", "staging"], now, day))
    default, staging = found["default"], found["staging"]
    assert (default.deliveries_hour, default.deliveries_day) == (11, 12)
    assert default.pending == 2 and default.failed == 1
    assert default.oldest_pending is not None
    assert abs((default.oldest_pending - (now - 90 * minute)).total_seconds()) < 1
    assert default.lag_p50 == pytest.approx(5, abs=0.01)
    assert default.lag_p95 == pytest.approx(10, abs=0.01)
    assert default.last_delivery is not None
    assert abs((default.last_delivery - (now - minute)).total_seconds()) < 1
    assert default.last_complete_reconcile is not None  # the failed one does not count
    assert (now - default.last_complete_reconcile) > timedelta(hours=28)
    assert staging.deliveries_day == 0 and staging.lag_p50 is None
    assert staging.last_delivery is not None  # found beyond the day's window
    assert (now - staging.last_delivery) > timedelta(days=1)
    assert staging.last_complete_reconcile is None
    # With one instance configured, every row is its own, and the day's counts are activity's.
    (alone,) = (await read(engine, lambda c: overview.health(c, ["default"], now, day))).values()
    assert (alone.deliveries_hour, alone.deliveries_day) == (11, 12)
    assert alone.last_delivery == default.last_delivery


def test_percentile() -> None:
    assert overview.percentile([], 50) is None
    values = [float(v) for v in range(1, 101)]
    assert overview.percentile(values, 50) == 50 and overview.percentile(values, 95) == 95
    assert overview.percentile([7.0], 95) == 7


async def test_activity_buckets_deliveries_and_lag(engine: AsyncEngine) -> None:
    now = datetime.now(UTC)
    at = now - timedelta(hours=3)
    rows = [
        event(1, Status.APPLIED, at, applied_at=at + timedelta(seconds=2)),
        event(2, Status.APPLIED, at, applied_at=at + timedelta(seconds=4)),
        event(3, Status.PENDING, at),
        event(4, Status.APPLIED, now - timedelta(days=2), applied_at=now),  # outside
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(inbox), rows)
    buckets = await read(engine, lambda c: overview.activity(c, now))
    busy_ones = [b for b in buckets if b.deliveries]
    assert len(busy_ones) == 1
    (one,) = busy_ones
    assert one.deliveries == 3 and one.start <= at < one.start + timedelta(minutes=10)
    assert buckets[-1].start == now - timedelta(minutes=10)
    assert one.lag_avg == pytest.approx(3, abs=0.01) and one.lag_max == pytest.approx(4, abs=0.01)
    assert sum(b.deliveries for b in buckets) == 3


async def test_reconcile_runs_with_a_running_runs_progress(engine: AsyncEngine) -> None:
    await busy(engine, events=10)
    found = await read(engine, lambda c: overview.reconcile_runs(c, 5))
    assert [r.status for r in found] == ["running", "completed"]
    running, done = found
    assert running.seconds is None and done.seconds == 600
    assert running.kinds["users"]["status"] == "done" and running.kinds["users"]["created"] == 12
    assert running.kinds["organizations"] == {"listed": 200, "status": "listing"}
    assert done.kinds == {"users": {"status": "completed", "listed": 40, "created": 40}}


async def test_replica_counts_exact_and_from_statistics(engine: AsyncEngine) -> None:
    for n in range(6):
        await deliver(engine, cp.envelope("user.created", cp.user(id=f"user_c{n}")))
    for n in range(2):
        await deliver(engine, cp.envelope("user.deleted", {"id": f"user_c{n}", "deleted": True}))
    exact = {c.name: c for c in await read(engine, overview.replica_counts)}
    assert (exact["clerk_users"].live, exact["clerk_users"].ended) == (4, 2)
    assert not exact["clerk_users"].estimated
    dialect = dialect_of(engine)
    if not dialect.statistics:
        return  # SQLite keeps no estimates: always counted
    async with engine.begin() as conn:
        await dialect.analyze(conn, [users], sample_target=None)
    limit = overview.EXACT_COUNT_LIMIT
    overview.EXACT_COUNT_LIMIT = 1
    try:
        estimated = {c.name: c for c in await read(engine, overview.replica_counts)}
    finally:
        overview.EXACT_COUNT_LIMIT = limit
    assert estimated["clerk_users"].estimated
    assert (estimated["clerk_users"].live, estimated["clerk_users"].ended) == (4, 2)
