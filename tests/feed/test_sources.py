"""Sources: a change names the source given for its object, else for a parent, else the
transaction's own, row by row within one statement; the sources end with the block; the
changes a reconcile run makes name it; a second run over an unchanged instance appends nothing;
writers of the feed queue on its lock (PostgreSQL)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_one
from service.clerk.rows import RowOptions
from service.config import Settings
from service.feed import read, sources
from service.reconcile.clerk_api import ClerkAPI
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.clerk_instances import populate
from tests.support.fake_clerk import FakeClerk
from tests.support.reconciling import run
from tests.support.replica_helpers import feed_notifications, store_event
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


async def test_each_row_of_a_statement_names_its_best_source(engine: AsyncEngine) -> None:
    org, m = "org_src", t.organization_memberships
    members = [
        {"id": "orgmem_own", "organization_id": org, "user_id": "user_src_0"},
        {"id": "orgmem_by_org", "organization_id": org, "user_id": "user_src_1"},
        {"id": "orgmem_by_user", "organization_id": org, "user_id": "user_src_2"},
        {"id": "orgmem_by_run", "organization_id": "org_other", "user_id": "user_src_3"},
    ]
    events = [
        ("orgmem_own", "msg_own", "ins_own"),
        (org, "msg_org", "ins_org"),
        ("user_src_2", "msg_user", "ins_user"),  # a membership's user ranks before its org
    ]
    async with engine.begin() as conn:
        async with sources.attributed(conn, enabled=True, events=events, run_id="run_src"):
            await conn.execute(insert(m).values(members))
        # After the block the sources are gone: an unnamed change.
        await conn.execute(insert(t.users), [{"id": "user_after"}])
    async with engine.connect() as conn:
        found = list(await read.after(conn, 0, 100))
    named = {c["object_id"]: (c["svix_id"], c["instance_id"], c["run_id"]) for c in found}
    assert named == {
        "orgmem_own": ("msg_own", "ins_own", None),
        "orgmem_by_org": ("msg_org", "ins_org", None),
        "orgmem_by_user": ("msg_user", "ins_user", None),
        "orgmem_by_run": (None, None, "run_src"),
        "user_after": (None, None, None),
    }


async def test_a_rolled_back_savepoint_notifies_nothing(pg_engine: AsyncEngine) -> None:
    """The last seq the triggers keep for NOTIFY is undone with the savepoint that took it."""
    async with feed_notifications(pg_engine) as woken:
        async with pg_engine.begin() as conn, sources.attributed(conn, enabled=True, run_id="r"):
            savepoint = await conn.begin_nested()
            await conn.execute(insert(t.users), [{"id": "user_undone"}])
            await savepoint.rollback()
            assert await conn.scalar(text("SELECT count(*) FROM clerk_replica_changes")) == 0
        await asyncio.sleep(0.3)
        assert woken.empty()
        async with pg_engine.connect() as conn:
            assert list(await read.after(conn, 0, 10)) == []


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
        assert {c["instance_id"] for c in found} == {cp.INSTANCE_ID}  # the key's instance
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


async def test_every_change_an_event_makes_names_it(engine: AsyncEngine) -> None:
    """Embedded snapshots (a subscription's items and their plans), ends cascaded to children,
    and erasure of a deleted user's data in rows of other kinds all name the event and its
    instance."""
    user_id = "user_payer"
    sub = cp.subscription("csub_src", user_id=user_id, organization_id="")
    svix = {"sub": await store_event(engine, cp.envelope("subscription.created", sub))}
    member = cp.membership("orgmem_src", org_id="org_src", user_id="user_other")
    svix["member"] = await store_event(
        engine, cp.envelope("organizationMembership.created", member)
    )
    for svix_id in svix.values():
        await apply_one(engine, svix_id, RowOptions())
    async with engine.connect() as conn:
        last = max(c["seq"] for c in await read.after(conn, 0, 100))
    org_gone = cp.envelope("organization.deleted", cp.deleted("organization", "org_src"), cp.T0 + 5)
    svix["org_gone"] = await store_event(engine, org_gone)
    user_gone = cp.envelope("user.deleted", cp.deleted("user", user_id), cp.T0 + 9)
    svix["user_gone"] = await store_event(engine, user_gone)
    for name in ("org_gone", "user_gone"):
        await apply_one(engine, svix[name], RowOptions())
    async with engine.connect() as conn:
        found = list(await read.after(conn, 0, 100))
    named = {
        (c["table_name"], c["object_id"], c["seq"] > last): (c["svix_id"], c["instance_id"])
        for c in found
    }
    mine = (svix["sub"], cp.INSTANCE_ID)
    assert named[("clerk_billing_subscriptions", "csub_src", False)] == mine
    assert named[("clerk_billing_subscription_items", "csub_item_1", False)] == mine
    assert named[("clerk_billing_plans", "cplan_pro", False)] == mine
    # Cascaded: the membership ended with its organization.
    assert named[("clerk_organization_memberships", "orgmem_src", True)] == (
        svix["org_gone"],
        cp.INSTANCE_ID,
    )
    # Erased: the deleted payer's data in the live subscription and its item.
    erased = (svix["user_gone"], cp.INSTANCE_ID)
    assert named[("clerk_billing_subscriptions", "csub_src", True)] == erased
    assert named[("clerk_billing_subscription_items", "csub_item_1", True)] == erased
    assert all(c["svix_id"] and c["instance_id"] for c in found), found


async def test_an_apps_own_writes_are_ordered_by_the_feed_lock(pg_engine: AsyncEngine) -> None:
    """Writes naming no source (an app's own, by hand) take the feed's lock in the trigger
    itself: a second such write waits for the first's commit, so seq follows commit order and
    a reader past a seq never misses a change committed later with a smaller one."""
    async with pg_engine.begin() as first:
        await first.execute(insert(t.users), [{"id": "user_app_first"}])

        async def second() -> None:
            async with pg_engine.begin() as conn:
                await conn.execute(insert(t.users), [{"id": "user_app_second"}])

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.5)
        assert not waiting.done()  # queued on the feed's lock, taken by the trigger
    await asyncio.wait_for(waiting, timeout=10)
    async with pg_engine.connect() as conn:
        found = list(await read.after(conn, 0, 10))
    assert [(c["object_id"], c["run_id"], c["svix_id"]) for c in found] == [
        ("user_app_first", None, None),
        ("user_app_second", None, None),
    ]
