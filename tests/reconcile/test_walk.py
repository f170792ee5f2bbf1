"""Segments walked side by side against the fake Clerk API over real HTTP: nobody is lost at
an edge however Clerk reads its bounds, the requests really are in flight at once, a resumed
run redoes only the unfinished segments, and deletion detection waits for all of them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.reconcile.checkpoints import segments
from service.reconcile.clerk_api import ClerkAPI
from service.reconcile.walk import MAX_WALKERS, walkers
from tests.support import tables as t
from tests.support.clerk_instances import populate
from tests.support.fake_clerk import FakeClerk, error
from tests.support.reconciling import by_kind, live, run
from tests.support.settings import make_settings


@pytest.fixture
def fake() -> FakeClerk:
    fake = FakeClerk()
    populate(fake, users=600, orgs=240, members_per_org=1)
    return fake


@pytest.fixture
def side_by_side(rsettings: Settings) -> Settings:
    return rsettings.updated(reconcile_concurrency=4)


def test_walkers_spend_the_budget_at_the_measured_latency() -> None:
    settings = make_settings(
        "sqlite://", "redis://", reconcile_max_requests_per_10s=500, reconcile_concurrency=0
    )
    assert walkers(settings, latency=0.002) == 1  # answered at once: nothing to overlap
    assert walkers(settings, latency=0.150) == 12  # 50/s x 0.15 s x 1.5 headroom
    assert walkers(settings, latency=30.0) == MAX_WALKERS
    unlimited = settings.updated(reconcile_max_requests_per_10s=1_000_000)
    assert walkers(unlimited, latency=0.002) == 1  # a local server: Clerk's limit still holds
    assert walkers(unlimited, latency=0.150) == 23  # 100/s at most x 0.15 s x 1.5
    pinned = settings.updated(reconcile_concurrency=3)
    assert walkers(pinned, latency=30.0) == 3


@pytest.mark.parametrize("inclusive", [False, True])
async def test_side_by_side_lists_everyone_however_bounds_are_read(
    engine: AsyncEngine, side_by_side: Settings, fake: FakeClerk, inclusive: bool
) -> None:
    fake.inclusive_created_bounds = inclusive
    fake.latency_seconds = 0.02  # so that requests overlap
    api = ClerkAPI(side_by_side, backoff_max_seconds=0.05)
    try:
        report = await run(engine, api, side_by_side, kinds=("users", "organizations"))
        peak = api.stats.peak_in_flight
    finally:
        await api.close()
    assert report.ok, report.summary()
    assert sorted(await live(engine, t.users)) == sorted(u["id"] for u in fake.users)
    organizations = sorted(o["id"] for o in fake.organizations)
    assert sorted(await live(engine, t.organizations)) == organizations
    assert peak == 4
    bounded = [r for r in fake.requests_to("users") if "created_at_after" in r.params]
    assert bounded, "users were listed in created_at ranges"
    windows = {r.params.get("offset") for r in fake.requests_to("organizations")}
    assert len(windows) > 2, "organizations were listed in offset windows"


async def test_a_resumed_run_redoes_only_unfinished_segments_and_deletes_after_all(
    engine: AsyncEngine, side_by_side: Settings, fake: FakeClerk
) -> None:
    api = ClerkAPI(side_by_side, backoff_max_seconds=0.01)
    try:
        assert (await run(engine, api, side_by_side, kinds=("users",))).ok
        fake.delete("users", "user_00002")  # in the first range, which will finish
        last_range: dict[str, str] = {}

        def newest_range_fails(name: str, params: dict[str, str]) -> Any:
            newest = "created_at_after" in params and "created_at_before" not in params
            if name == "users" and newest:
                last_range.update(params)
                return error(503, "internal_clerk_error", "Something went wrong")
            return None

        fake.on_list = newest_range_fails
        failed = await run(engine, api, side_by_side, kinds=("users",), full=True)
        assert not failed.ok and by_kind(failed)["users"].status == "failed"
        assert by_kind(failed)["users"].tombstoned == 0  # not every segment finished
        async with engine.connect() as conn:
            saved = (await conn.execute(select(segments))).all()
        unfinished = {str(s.created_after_ms) for s in saved if not s.done}
        # The failing range, and whatever was in flight beside it when the pass stopped.
        assert last_range["created_at_after"] in unfinished
        assert len(unfinished) < len(saved)

        fake.on_list = None
        before = len(fake.requests_to("users"))
        resumed = await run(engine, api, side_by_side, kinds=("users",))
    finally:
        await api.close()
    assert resumed.ok and resumed.resumed, resumed.summary()
    listed = [r.params for r in fake.requests_to("users")[before:] if "limit" in r.params]
    walked = [p for p in listed if p.get("limit") != "1"]
    # Only the unfinished ranges are walked again (those in flight from where they stood).
    assert walked
    assert {p.get("created_at_after") for p in walked} <= unfinished
    assert by_kind(resumed)["users"].tombstoned == 1
    assert "user_00002" not in await live(engine, t.users)


async def test_a_slow_writer_holds_walkers_back_instead_of_piling_up_pages(
    pg_engine: AsyncEngine, pg_db_url: str, redis_url: str, clerk_url: str, fake: FakeClerk
) -> None:
    """While nothing can be written (the users table locked against writes), the walkers
    fetch no more pages than their slots and the two the writer holds: memory stays flat
    however fast Clerk answers. Once the lock goes, every user arrives."""
    settings = make_settings(
        pg_db_url,
        redis_url,
        clerk_secret_key="sk_test_fake_replica_key",
        clerk_api_url=clerk_url,
        reconcile_page_size=50,
        reconcile_max_requests_per_10s=100_000,
        reconcile_concurrency=3,
    )
    api = ClerkAPI(settings, backoff_max_seconds=0.05)

    def pages_fetched() -> int:
        return len([r for r in fake.requests_to("users") if r.params.get("limit") == "50"])

    try:
        async with pg_engine.connect() as blocker:
            await blocker.exec_driver_sql("LOCK TABLE clerk_users IN SHARE MODE")
            reconciling = asyncio.create_task(run(pg_engine, api, settings, kinds=("users",)))
            fetched, still = -1, 0
            while still < 10:  # until nothing more is fetched for half a second
                await asyncio.sleep(0.05)
                fetched, still = pages_fetched(), still + 1 if pages_fetched() == fetched else 0
            assert not reconciling.done()
            await blocker.rollback()  # the lock goes
        report = await asyncio.wait_for(reconciling, 30)
    finally:
        await api.close()
    assert report.ok, report.summary()
    assert 3 <= fetched <= 3 + 2, f"{fetched} pages fetched while none could be written"
    assert pages_fetched() >= 600 // 50  # and the walk went on to the end
    assert sorted(await live(pg_engine, t.users)) == sorted(u["id"] for u in fake.users)
