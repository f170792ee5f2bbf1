"""One kind's pass against the fake Clerk API, on PostgreSQL and SQLite: paging by cursor or by
offset, resuming by offset, and the statistics a backfill leaves behind."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.clerk.rows import RowOptions
from service.clerk.timestamps import from_ms
from service.config import Settings
from service.kinds import writes
from service.kinds.registry import kind
from service.reconcile.clerk_api import ClerkAPI
from service.reconcile.kind_pass import classify
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.clerk_instances import populate
from tests.support.fake_clerk import FakeClerk, error
from tests.support.reconciling import by_kind, checkpoint_reaches, live, run
from tests.support.replica_helpers import rows


async def test_users_fall_back_to_offsets_when_the_cursor_is_ignored(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    fake.supports_cursor = False
    report = await run(engine, api, rsettings, kinds=("users",))
    assert report.ok and by_kind(report)["users"].created == 120
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
    task = asyncio.create_task(run(engine, api, rsettings, kinds=("users",)))
    await asyncio.wait_for(reached.wait(), 10)
    await checkpoint_reaches(engine, 150)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(1.2)
    fake.on_list = None
    before = len(fake.requests_to("users"))
    report = await run(engine, api, rsettings, kinds=("users",), confirm_deletions=False)
    assert report.ok and report.resumed
    resumed = [
        (r.params.get("starting_after"), r.params.get("offset"))
        for r in fake.requests_to("users")[before:]
    ]
    assert resumed[0] == (None, "150")  # no cursor sent again: it was known to be ignored
    assert by_kind(report)["users"].listed == 300
    assert len(await live(engine, t.users)) == 300


async def test_a_vanished_cursor_user_falls_back_to_offsets(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    def cursor_gone(name: str, params: dict[str, str]) -> Any:
        if name == "users" and "starting_after" in params:
            return error(404, "resource_not_found", "No user was found")
        return None

    fake.on_list = cursor_gone
    report = await run(engine, api, rsettings, kinds=("users",))
    assert report.ok and by_kind(report)["users"].created == 120


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # ANALYZE is PostgreSQL's
async def test_a_backfill_leaves_full_statistics_behind(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    # Enough users for the quick ANALYZEs while the tables grow (3,000-row samples, at most
    # 11 histogram bounds); the pass must end with a full one, which app queries rely on.
    populate(fake, users=2500, orgs=1, members_per_org=1)
    settings = rsettings.updated(reconcile_page_size=500)
    report = await run(engine, api, settings, kinds=("users",))
    assert report.ok and by_kind(report)["users"].created == 2500
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


ORGS = kind("organizations")


async def test_a_page_splits_into_created_updated_and_unchanged(engine: AsyncEngine) -> None:
    stored = [
        ORGS.build(cp.organization(f"org_{n}", updated_at=cp.T0 + 10), RowOptions())
        for n in range(3)
    ]
    async with engine.begin() as conn:
        await writes.upsert(conn, ORGS, stored)
    page = [
        ORGS.build(cp.organization("org_0", updated_at=cp.T0 + 20), RowOptions()),  # newer
        ORGS.build(cp.organization("org_1", updated_at=cp.T0 + 10), RowOptions()),  # a tie
        ORGS.build(cp.organization("org_2", updated_at=cp.T0 + 5), RowOptions()),  # older
        ORGS.build(cp.organization("org_new"), RowOptions()),
    ]
    async with engine.connect() as conn:
        created, updated, counts = await classify(conn, t.organizations, page)
    assert [s.id for s in created] == ["org_new"]
    assert [s.id for s in updated] == ["org_0"]
    assert counts == {"created": 1, "updated": 1, "unchanged": 2}


async def test_a_tombstoned_row_takes_only_what_the_guard_would(engine: AsyncEngine) -> None:
    at = cp.T0 + 100
    async with engine.begin() as conn:
        await writes.upsert(conn, ORGS, [ORGS.build(cp.organization("org_x"), RowOptions())])
        ended = from_ms(at)
        assert ended is not None
        await writes.end(conn, ORGS, [("org_x", ended)])
    before_deletion = ORGS.build(cp.organization("org_x", updated_at=at - 1), RowOptions())
    after_deletion = ORGS.build(cp.organization("org_x", updated_at=at + 1), RowOptions())
    recreated = ORGS.build(
        cp.organization("org_x", created_at=at + 1, updated_at=at + 2), RowOptions()
    )
    async with engine.connect() as conn:
        _, updated, _ = await classify(conn, t.organizations, [before_deletion])
        assert [s.id for s in updated] == ["org_x"]  # a newer snapshot taken before the end
        _, updated, counts = await classify(conn, t.organizations, [after_deletion])
        assert updated == [] and counts["unchanged"] == 1  # taken after the end: ignored
        _, updated, _ = await classify(conn, t.organizations, [recreated])
        assert [s.id for s in updated] == ["org_x"]  # created after the end: lifts it
