"""The drain loop over real stored events: counts, hand-over between jobs, a dead database,
and wake-ups for events that back off."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.drain import Drainer
from service.clerk.rows import RowOptions
from service.db.engine import create_engine
from service.db.errors import TransientError
from service.dev.ports import free_port
from service.inbox.store import Status
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import inbox_row, rows, store_event
from tests.support.settings import make_settings


class Wakes:
    """A wake callback that records what it was asked for."""

    def __init__(self, fails: bool = False) -> None:
        self.calls: list[datetime | None] = []
        self.fails = fails

    async def __call__(self, at: datetime | None) -> object:
        self.calls.append(at)
        if self.fails:
            raise ConnectionError("the queue is down")
        return True


def drainer(engine: AsyncEngine, wake: Wakes, *, budget: float = 30.0) -> Drainer:
    return Drainer(
        engine=engine,
        options=RowOptions(),
        wake=wake,
        batch_size=10,
        streams=2,
        time_budget_seconds=budget,
    )


async def store_users(engine: AsyncEngine, first: int, count: int) -> None:
    for n in range(first, first + count):
        await store_event(engine, cp.envelope("user.created", cp.user(f"user_{n:03}")))


async def test_drain_applies_everything_and_counts_outcomes(engine: AsyncEngine) -> None:
    await store_users(engine, 0, 25)  # more than a batch: helper streams join on PostgreSQL
    await store_event(engine, cp.envelope("user.created", {"id": "user_broken"}))
    await store_event(engine, cp.envelope("email.created", {"id": "ema_1"}))  # settled at once
    wakes = Wakes()
    totals = await drainer(engine, wakes).drain(time.time())
    assert totals == {"applied": 25, "failed": 1}
    assert len(await rows(engine, t.users)) == 25
    assert wakes.calls == []
    assert await drainer(engine, wakes).drain(time.time()) == {}


async def test_a_later_windows_job_takes_over_from_an_earlier_one(engine: AsyncEngine) -> None:
    shared = drainer(engine, Wakes())
    await store_users(engine, 0, 1)
    start = time.time()
    earlier = asyncio.create_task(shared.drain(start + 2))
    await asyncio.sleep(0.2)  # the earlier job has drained and is waiting out its window
    later = asyncio.create_task(shared.drain(start + 2.2))
    assert await asyncio.wait_for(earlier, timeout=1) == {"applied": 1}
    assert time.time() < start + 1.5  # it stopped early: the later job covers its window
    await store_users(engine, 1, 2)
    assert await asyncio.wait_for(later, timeout=5) == {"applied": 2}
    assert time.time() >= start + 2.2
    assert len(await rows(engine, t.users)) == 3


async def test_a_job_out_of_time_hands_over_to_a_fresh_job(engine: AsyncEngine) -> None:
    await store_users(engine, 0, 3)
    wakes = Wakes(fails=True)  # and a queue that is down does not fail the drain
    assert await drainer(engine, wakes, budget=0).drain(time.time()) == {}
    assert wakes.calls == [None]
    assert await rows(engine, t.users) == []


@pytest.fixture
async def dead_engine(redis_url: str) -> AsyncIterator[AsyncEngine]:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    engine = create_engine(make_settings(url, redis_url, db_connect_timeout_seconds=1))
    yield engine
    await engine.dispose()


async def test_a_dead_database_raises_transient_error(dead_engine: AsyncEngine) -> None:
    wakes = Wakes()
    with pytest.raises(TransientError):
        await drainer(dead_engine, wakes).drain(time.time())
    assert wakes.calls == []


async def test_an_event_backing_off_asks_for_a_wake_up_at_its_retry_time(
    engine: AsyncEngine,
) -> None:
    await store_users(engine, 0, 1)
    domain = await store_event(engine, cp.envelope("organizationDomain.created", cp.domain()))
    # A real fault: the domains table is missing (as before a migration), a transient error.
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE clerk_organization_domains RENAME TO moved_away"))
    wakes = Wakes()
    before = datetime.now(UTC)
    try:
        totals = await drainer(engine, wakes).drain(time.time())
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE moved_away RENAME TO clerk_organization_domains"))
    assert totals == {"applied": 1}
    stored = await inbox_row(engine, domain)
    assert stored["status"] == Status.PENDING and stored["attempts"] == 1
    assert stored["retry_after"] is not None and stored["retry_after"] > before
    assert wakes.calls == [stored["retry_after"]]
    assert len(await rows(engine, t.users)) == 1
