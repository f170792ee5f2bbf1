"""Sources: the changes a reconcile run makes name it; a second run over an unchanged instance
appends nothing; writers of the feed queue on its lock (PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.feed import read, sources
from service.reconcile.clerk_api import ClerkAPI
from tests.support import tables as t
from tests.support.clerk_instances import populate
from tests.support.fake_clerk import FakeClerk
from tests.support.reconciling import run
from tests.support.settings import make_settings


@pytest.fixture
def fake() -> FakeClerk:
    fake = FakeClerk()
    populate(fake, users=30, orgs=3, members_per_org=2)
    return fake


@pytest.fixture
async def api(db_url: str, redis_url: str, clerk_url: str) -> ClerkAPI:
    return ClerkAPI(reconcile_settings(db_url, redis_url, clerk_url), backoff_max_seconds=0.05)


def reconcile_settings(db_url: str, redis_url: str, clerk_url: str) -> Settings:
    return make_settings(
        db_url,
        redis_url,
        clerk_secret_key="sk_test_fake_replica_key",
        clerk_api_url=clerk_url,
        reconcile_page_size=10,
        reconcile_max_requests_per_10s=100_000,
        reconcile_concurrency=2,
    )


async def test_a_reconcile_run_names_itself_and_a_second_appends_nothing(
    engine: AsyncEngine, api: ClerkAPI, db_url: str, redis_url: str, clerk_url: str
) -> None:
    settings = reconcile_settings(db_url, redis_url, clerk_url)
    try:
        first = await run(engine, api, settings)
        assert first.ok, first.summary()
        async with engine.connect() as conn:
            found = list(await read.after(conn, 0, 100_000))
        users = [c for c in found if c["table_name"] == "clerk_users"]
        assert len(users) == len({c["object_id"] for c in users}) == 30
        assert {c["run_id"] for c in found} == {f"reconcile:{first.run_id}"}
        assert {c["op"] for c in found} == {"upsert"}
        assert [c["seq"] for c in found] == sorted(c["seq"] for c in found)
        second = await run(engine, api, settings)
        assert second.ok, second.summary()
        async with engine.connect() as conn:
            assert list(await read.after(conn, found[-1]["seq"], 100)) == []
    finally:
        await api.close()


async def test_writers_of_the_feed_commit_one_at_a_time(pg_engine: AsyncEngine) -> None:
    """While one transaction holds the feed, another's change waits for its commit: seq
    follows commit order."""
    async with pg_engine.begin() as first:
        async with sources.attributed(first, enabled=True, run_id="first"):
            await first.execute(insert(t.users), [{"id": "user_first"}])

        async def second() -> None:
            async with (
                pg_engine.begin() as conn,
                sources.attributed(conn, enabled=True, run_id="second"),
            ):
                await conn.execute(insert(t.users), [{"id": "user_second"}])

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.5)
        assert not waiting.done()  # queued on the feed's lock
    await asyncio.wait_for(waiting, timeout=10)
    async with pg_engine.connect() as conn:
        found = list(await read.after(conn, 0, 10))
    assert [(c["object_id"], c["run_id"]) for c in found] == [
        ("user_first", "first"),
        ("user_second", "second"),
    ]
