"""Reconcile runs against the fake Clerk API over real HTTP, on PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.reconcile.checkpoints import progress, runs, seen, segments
from service.reconcile.clerk_api import ClerkAPI
from service.reconcile.lock import AlreadyRunning, LeaseLock, LeaseLost, locks
from service.reconcile.run import LOCK_NAME
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.clerk_instances import populate
from tests.support.fake_clerk import FakeClerk
from tests.support.reconciling import by_kind, checkpoint_reaches, live, run
from tests.support.replica_helpers import deliver, one, rows


async def test_backfills_an_empty_replica(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    report = await run(engine, api, rsettings)
    assert report.ok, report.summary()
    passes = by_kind(report)
    # Parents first; sessions have no instance-wide list (webhooks only).
    assert [p.kind for p in report.passes] == [
        "organizations",
        "users",
        "permissions",
        "roles",
        "waitlist_entries",
        "billing_plans",
        "billing_subscription_items",
        "memberships",
        "invitations",
        "domains",
    ]
    assert (passes["users"].created, passes["organizations"].created) == (120, 12)
    assert (
        passes["memberships"].created,
        passes["invitations"].created,
        passes["domains"].created,
    ) == (60, 12, 12)
    assert (
        passes["permissions"].created,
        passes["roles"].created,
        passes["waitlist_entries"].created,
    ) == (3, 2, 3)
    grants = await rows(engine, t.role_permissions)
    assert sorted((g["role_id"], g["permission_id"]) for g in grants) == [
        ("role_000", "perm_000"),
        ("role_001", "perm_000"),
        ("role_001", "perm_001"),
    ]
    assert len(await live(engine, t.users)) == 120
    assert len(await rows(engine, t.email_addresses)) == 120
    assert len(await live(engine, t.organization_memberships)) == 60
    # 120 users at 50 a page: 3 pages and one count; users page by cursor after the first.
    user_pages = fake.requests_to("users")
    assert len(user_pages) == 3 and len(fake.requests_to("users/count")) == 1
    assert [("starting_after" in r.params, r.params.get("limit")) for r in user_pages] == [
        (False, "50"),
        (True, "50"),
        (True, "50"),
    ]
    assert passes["users"].requests == 4
    async with engine.connect() as conn:
        (run_row,) = (await conn.execute(select(runs))).all()
        assert (run_row.status, run_row.trigger) == ("completed", "cli")
        assert run_row.summary["users"]["created"] == 120
        assert (await conn.execute(select(seen))).all() == []


async def test_second_run_picks_up_changes_and_deletions(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    await run(engine, api, rsettings)
    fake.users[3] = cp.user(
        "user_00003", created_at=cp.T0 + 3, updated_at=cp.T0 + 999, first_name="Renamed"
    )
    fake.delete("users", "user_00007")
    fake.users.append(cp.user("user_new", created_at=cp.T0 + 500, updated_at=cp.T0 + 500))
    fake.delete("organizations", "org_0002")

    # The full listing (user_00003's update is older than the last run: only it sees that).
    report = await run(engine, api, rsettings, full=True)
    assert report.ok, report.summary()
    users = by_kind(report)["users"]
    assert (users.created, users.updated, users.tombstoned, users.unchanged) == (1, 1, 1, 118)
    assert (await one(engine, t.users, "user_00003"))["first_name"] == "Renamed"
    assert (await one(engine, t.users, "user_00007"))["deleted_at"] is not None
    assert await rows(engine, t.email_addresses, user_id="user_00007") == []
    assert by_kind(report)["organizations"].tombstoned == 1
    # The deleted organization's memberships, invitation and domain ended with it.
    assert [
        m["deleted_at"] is not None
        for m in await rows(engine, t.organization_memberships, organization_id="org_0002")
    ] == [True] * 5
    assert (await one(engine, t.organization_domains, "orgdmn_0002"))["deleted_at"] is not None


async def test_resumes_where_a_crashed_run_stopped(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    populate(fake, users=300, orgs=2, members_per_org=1)
    reached = asyncio.Event()
    loop = asyncio.get_running_loop()
    hold = {"on": True}

    def stall_on_fourth_users_page(name: str, params: dict[str, str]) -> None:
        if hold["on"] and name == "users" and len(fake.requests_to("users")) == 3:
            loop.call_soon_threadsafe(reached.set)
            import time

            time.sleep(1.0)  # the run is killed while this page is in flight

    fake.on_list = stall_on_fourth_users_page
    task = asyncio.create_task(run(engine, api, rsettings, kinds=("users",)))
    await asyncio.wait_for(reached.wait(), 10)
    await checkpoint_reaches(engine, 150)  # page 4 is fetched while page 3 is written
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    hold["on"] = False
    await asyncio.sleep(1.5)  # let the stalled request finish and be logged
    async with engine.connect() as conn:
        saved = (await conn.execute(select(progress))).one()
        walk = (await conn.execute(select(segments))).one()  # one walk: one segment
    assert (saved.offset, saved.listed) == (150, False)
    assert (walk.offset, walk.cursor, walk.done) == (150, "user_00149", False)
    assert len(await rows(engine, t.users)) == 150

    before = len(fake.requests_to("users"))
    report = await run(engine, api, rsettings, kinds=("users",))
    assert report.ok and report.resumed
    resumed_pages = fake.requests_to("users")[before:]
    assert resumed_pages[0].params.get("starting_after") == "user_00149"
    # 150..299 in pages of 50 and an empty last page: nothing listed twice.
    assert [len(p.params) and p.params.get("starting_after") for p in resumed_pages] == [
        "user_00149",
        "user_00199",
        "user_00249",
        "user_00299",
    ]
    users = by_kind(report)["users"]
    assert (users.listed, users.created) == (300, 300)
    assert len(await rows(engine, t.users)) == 300


async def test_webhook_newer_than_the_snapshot_wins(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings
) -> None:
    newer = cp.user(
        "user_00005", created_at=cp.T0 + 5, updated_at=cp.T0 + 10_000, first_name="FromWebhook"
    )
    await deliver(engine, cp.envelope("user.updated", newer))
    report = await run(engine, api, rsettings)
    assert report.ok
    assert (await one(engine, t.users, "user_00005"))["first_name"] == "FromWebhook"
    assert by_kind(report)["users"].unchanged == 1


async def test_deleted_by_webhook_is_not_resurrected_by_a_snapshot(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings
) -> None:
    gone = cp.deleted("user", "user_00009")
    await deliver(engine, cp.envelope("user.deleted", gone, cp.T0 + 50_000))
    assert (await run(engine, api, rsettings)).ok
    user = await one(engine, t.users, "user_00009")
    assert user["deleted_at"] is not None  # the snapshot predates the deletion: still deleted
    assert await rows(engine, t.email_addresses, user_id="user_00009") == []
    assert "user_00009" not in await live(engine, t.users)


async def test_dry_run_writes_nothing(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    await deliver(engine, cp.envelope("user.created", cp.user("user_gone", created_at=cp.T0)))
    report = await run(engine, api, rsettings, dry_run=True)
    assert report.ok and report.run_id is None
    users = by_kind(report)["users"]
    assert (users.created, users.tombstoned) == (120, 1)
    assert await live(engine, t.users) == ["user_gone"]
    assert await rows(engine, t.organizations) == []
    async with engine.connect() as conn:
        assert (await conn.execute(select(runs))).all() == []


async def test_two_reconciles_never_run_at_once(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings
) -> None:
    other = LeaseLock(engine, LOCK_NAME, 60)
    assert await other.acquire()
    with pytest.raises(AlreadyRunning):
        await run(engine, api, rsettings)
    await other.release()
    assert (await run(engine, api, rsettings)).ok


async def test_dry_runs_and_resumes_do_not_inflate_the_metrics(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings
) -> None:
    from service.metrics import RECONCILE_OBJECTS

    counter = RECONCILE_OBJECTS.labels(instance="default", kind="users", change="created")
    start = counter._value.get()
    await run(engine, api, rsettings, kinds=("users",), dry_run=True)
    assert counter._value.get() == start
    await run(engine, api, rsettings, kinds=("users",))
    assert counter._value.get() == start + 120


async def test_a_lost_lease_stops_the_run(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    short = rsettings.updated(reconcile_lock_ttl_seconds=10)

    def steal_then_stall(name: str, params: dict[str, str]) -> None:
        if name == "users" and "starting_after" in params:
            time.sleep(2.5)  # the renewal (every 3.3 s) finds the lease taken meanwhile

    async def steal() -> None:
        await asyncio.sleep(0.5)
        async with engine.begin() as conn:
            await conn.execute(locks.update().values(holder="someone-else"))

    fake.on_list = steal_then_stall
    thief = asyncio.create_task(steal())
    with pytest.raises(LeaseLost):
        await run(engine, api, short, kinds=("users",))
    await thief


async def test_a_run_that_fails_at_get_instance_is_recorded_and_hides_no_resume(
    engine: AsyncEngine, rsettings: Settings
) -> None:
    from service.operate.status import last_reconcile, last_success
    from service.reconcile.checkpoints import RunStatus, finish_run, open_run
    from service.reconcile.clerk_api import ClerkAuthError

    # A run that failed mid-way first: the failed start after it must not stop its resume.
    async with engine.begin() as conn:
        earlier, _ = await open_run(conn, trigger="cron", kinds=["users"], restart=False)
        await finish_run(conn, earlier, status=RunStatus.FAILED, summary={}, error="timeout")
    wrong = rsettings.updated(clerk_secret_key=SecretStr("sk_test_not_the_key"))
    api = ClerkAPI(wrong, backoff_max_seconds=0.05)
    try:
        with pytest.raises(ClerkAuthError):
            await run(engine, api, wrong, kinds=("users",))
    finally:
        await api.close()
    recorded = (await rows(engine, runs))[-1]
    assert recorded["id"] != earlier
    assert recorded["status"] == "failed" and recorded["finished_at"] is not None
    assert recorded["error"].startswith("GET /instance: ")
    assert recorded["kinds"] == ["users"] and recorded["trigger"] == "cli"
    shown = await last_reconcile(engine)
    assert shown is not None and shown["id"] == recorded["id"] and shown["status"] == "failed"
    assert await last_success(engine, instance="default") is None

    api = ClerkAPI(rsettings, backoff_max_seconds=0.05)
    try:
        report = await run(engine, api, rsettings, kinds=("users",))
    finally:
        await api.close()
    assert report.ok and report.resumed and report.run_id == earlier
    assert await last_success(engine, instance="default") is not None
    # The resumed run, finished after the failed start, is the last one now.
    shown = await last_reconcile(engine)
    assert shown is not None and (shown["id"], shown["status"]) == (earlier, "completed")
