"""One kind's pass against the fake Clerk API, on PostgreSQL and SQLite: paging by cursor or by
offset, resuming by offset, and the statistics a backfill leaves behind."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.reconcile.clerk_api import ClerkAPI
from tests.support import tables as t
from tests.support.clerk_instances import populate
from tests.support.fake_clerk import FakeClerk, error
from tests.support.reconciling import by_type, checkpoint_reaches, live, run
from tests.support.replica_helpers import rows


async def test_users_fall_back_to_offsets_when_the_cursor_is_ignored(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    fake.supports_cursor = False
    report = await run(engine, api, rsettings, resources=("users",))
    assert report.ok and by_type(report)["users"].created == 120
    # Page 2 sent the cursor, got page 1 again, and the walk went on by offset.
    pages = [
        (r.params.get("starting_after"), r.params.get("offset")) for r in fake.requests_to("users")
    ]
    assert pages == [(None, "0"), ("user_00049", None), (None, "50"), (None, "100")]
    assert len(await rows(engine, t.users)) == 120


async def test_resume_keeps_paging_by_offset_when_the_cursor_is_ignored(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    populate(fake, users=300, orgs=1, members_per_org=1)
    fake.supports_cursor = False
    reached = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stall(name: str, params: dict[str, str]) -> None:
        if name == "users" and params.get("offset") == "150" and not reached.is_set():
            loop.call_soon_threadsafe(reached.set)
            time.sleep(1.0)

    fake.on_list = stall
    task = asyncio.create_task(run(engine, api, rsettings, resources=("users",)))
    await asyncio.wait_for(reached.wait(), 10)
    await checkpoint_reaches(engine, 150)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(1.2)
    fake.on_list = None
    before = len(fake.requests_to("users"))
    report = await run(engine, api, rsettings, resources=("users",), confirm_deletions=False)
    assert report.ok and report.resumed
    resumed = [
        (r.params.get("starting_after"), r.params.get("offset"))
        for r in fake.requests_to("users")[before:]
    ]
    assert resumed[0] == (None, "150")  # no cursor sent again: it was known to be ignored
    assert by_type(report)["users"].listed == 300
    assert len(await live(engine, t.users)) == 300


async def test_a_vanished_cursor_user_falls_back_to_offsets(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    def cursor_gone(name: str, params: dict[str, str]) -> Any:
        if name == "users" and "starting_after" in params:
            return error(404, "resource_not_found", "No user was found")
        return None

    fake.on_list = cursor_gone
    report = await run(engine, api, rsettings, resources=("users",))
    assert report.ok and by_type(report)["users"].created == 120


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # ANALYZE is PostgreSQL's
async def test_a_backfill_leaves_full_statistics_behind(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    # Enough users for the quick ANALYZEs while the tables grow (3,000-row samples, at most
    # 11 histogram bounds); the pass must end with a full one, which app queries rely on.
    populate(fake, users=2500, orgs=1, members_per_org=1)
    settings = rsettings.updated(reconcile_page_size=500)
    report = await run(engine, api, settings, resources=("users",))
    assert report.ok and by_type(report)["users"].created == 2500
    async with engine.connect() as conn:
        bounds: dict[str, int] = dict(
            (
                await conn.execute(
                    text(
                        "SELECT tablename, array_length(histogram_bounds::text::text[], 1) "
                        "FROM pg_stats WHERE attname IN ('id', 'user_id') AND tablename IN "
                        "('clerk_users', 'clerk_email_addresses') AND (tablename, attname) IN "
                        "(('clerk_users', 'id'), ('clerk_email_addresses', 'user_id'))"
                    )
                )
            ).all()
        )
    assert bounds == {"clerk_users": 101, "clerk_email_addresses": 101}
