"""Reconcile against the fake Clerk API over real HTTP, on PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.reconcile.clerk_api import ClerkAPI, ClerkAuthError
from service.reconcile.lock import AlreadyRunning, LeaseLock, LeaseLost
from service.reconcile.options import ReconcileOptions
from service.reconcile.report import RunReport
from service.reconcile.run import LOCK_NAME, reconcile
from service.reconcile.tables import locks, progress, runs, seen
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.clerk_instances import populate
from tests.support.fake_clerk import FakeClerk, Fault, error
from tests.support.replica_helpers import deliver, one, rows
from tests.support.settings import make_settings


@pytest.fixture
def fake() -> FakeClerk:
    fake = FakeClerk()
    populate(fake, users=120, orgs=12, members_per_org=5)
    return fake


@pytest.fixture
def rsettings(db_url: str, redis_url: str, clerk_url: str) -> Settings:
    return make_settings(
        db_url,
        redis_url,
        clerk_secret_key="sk_test_fake_replica_key",
        clerk_api_url=clerk_url,
        reconcile_page_size=50,
        reconcile_max_requests_per_10s=100_000,
        reconcile_max_attempts=4,
        reconcile_timeout_seconds=2,
    )


@pytest.fixture
async def api(rsettings: Settings) -> AsyncIterator[ClerkAPI]:
    api = ClerkAPI(rsettings, backoff_max_seconds=0.05)
    yield api
    await api.close()


async def run(engine: AsyncEngine, api: ClerkAPI, settings: Settings, **options: Any) -> RunReport:
    return await reconcile(engine, api, settings, ReconcileOptions(**options))


def by_type(report: RunReport) -> dict[str, Any]:
    return {p.resource: p for p in report.passes}


async def checkpoint_reaches(engine: AsyncEngine, offset: int) -> None:
    """Wait until the run's checkpoint stands at `offset`: the next page is fetched while
    the current one is written, so a page in flight does not mean the one before is saved."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        async with engine.connect() as conn:
            saved = (await conn.execute(select(progress.c.offset))).scalar()
        if saved is not None and saved >= offset:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the checkpoint never reached {offset}")


async def live(engine: AsyncEngine, table: Any) -> list[str]:
    return [r["id"] for r in await rows(engine, table) if r["deleted_at"] is None]


async def test_backfills_an_empty_replica(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    report = await run(engine, api, rsettings)
    assert report.ok, report.summary()
    passes = by_type(report)
    assert [p.resource for p in report.passes] == [
        "organizations",
        "users",
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

    report = await run(engine, api, rsettings)
    assert report.ok, report.summary()
    users = by_type(report)["users"]
    assert (users.created, users.updated, users.tombstoned, users.unchanged) == (1, 1, 1, 118)
    assert (await one(engine, t.users, "user_00003"))["first_name"] == "Renamed"
    assert (await one(engine, t.users, "user_00007"))["deleted_at"] is not None
    assert await rows(engine, t.email_addresses, user_id="user_00007") == []
    assert by_type(report)["organizations"].tombstoned == 1
    # The deleted organization's memberships, invitation and domain ended with it.
    assert [
        m["deleted_at"] is not None
        for m in await rows(engine, t.organization_memberships, organization_id="org_0002")
    ] == [True] * 5
    assert (await one(engine, t.organization_domains, "orgdmn_0002"))["deleted_at"] is not None


async def test_a_failing_pass_deletes_nothing(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    await run(engine, api, rsettings)
    fake.delete("users", "user_00001")

    def users_fail_after_first_page(name: str, params: dict[str, str]) -> Any:
        if name == "users" and "starting_after" in params:
            return error(503, "internal_clerk_error", "Something went wrong")
        return None

    fake.on_list = users_fail_after_first_page
    report = await run(engine, api, rsettings)
    users = by_type(report)["users"]
    assert not report.ok and users.status == "failed"
    assert "after 4 attempts" in (users.error or "")
    assert users.tombstoned == 0
    assert (await one(engine, t.users, "user_00001"))["deleted_at"] is None
    assert by_type(report)["memberships"].status == "completed"  # the others still ran
    async with engine.connect() as conn:
        assert (
            await conn.execute(select(runs.c.status).order_by(runs.c.id.desc()))
        ).scalar() == "failed"


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
    task = asyncio.create_task(run(engine, api, rsettings, resources=("users",)))
    await asyncio.wait_for(reached.wait(), 10)
    await checkpoint_reaches(engine, 150)  # page 4 is fetched while page 3 is written
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    hold["on"] = False
    await asyncio.sleep(1.5)  # let the stalled request finish and be logged
    async with engine.connect() as conn:
        saved = (await conn.execute(select(progress))).one()
    assert (saved.offset, saved.cursor, saved.listed) == (150, "user_00149", False)
    assert len(await rows(engine, t.users)) == 150

    before = len(fake.requests_to("users"))
    report = await run(engine, api, rsettings, resources=("users",))
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
    users = by_type(report)["users"]
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
    assert by_type(report)["users"].unchanged == 1


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
    users = by_type(report)["users"]
    assert (users.created, users.tombstoned) == (120, 1)
    assert await live(engine, t.users) == ["user_gone"]
    assert await rows(engine, t.organizations) == []
    async with engine.connect() as conn:
        assert (await conn.execute(select(runs))).all() == []


async def test_safety_limit_refuses_mass_deletion_unless_forced(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    await run(engine, api, rsettings)
    fake.users = fake.users[:60]  # half the users vanish: an API bug, a wrong key...
    report = await run(engine, api, rsettings)
    users = by_type(report)["users"]
    assert not report.ok and users.status == "refused" and "60 of 120" in (users.error or "")
    assert len(await live(engine, t.users)) == 120
    forced = await run(engine, api, rsettings, force=True, restart=True)
    assert forced.ok and by_type(forced)["users"].tombstoned == 60
    assert len(await live(engine, t.users)) == 60


async def test_candidates_are_confirmed_before_tombstoning(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    both = ("organizations", "memberships")
    await run(engine, api, rsettings, resources=both)

    # The first membership is deleted while the walk is on page 2: offsets shift by one and
    # the membership that was 51st is never listed. Its lookup must save it.
    def delete_during_walk(name: str, params: dict[str, str]) -> None:
        if name == "memberships" and params.get("offset") == "50":
            fake.delete("memberships", "orgmem_0000_000")

    fake.on_list = delete_during_walk
    report = await run(engine, api, rsettings, resources=both)
    assert report.ok and by_type(report)["memberships"].tombstoned == 0
    assert len(await live(engine, t.organization_memberships)) == 60
    lookups = fake.requests_to("organizations/org_0010/memberships")
    assert [r.params.get("user_id") for r in lookups] == ["user_00050"]

    # Without the lookup the skipped membership would have been tombstoned.
    fake.on_list = None
    fake.memberships.append(cp.membership("orgmem_fresh", org_id="org_0011", user_id="user_00001"))
    unconfirmed = await run(engine, api, rsettings, resources=both, confirm_deletions=False)
    assert by_type(unconfirmed)["memberships"].tombstoned == 1  # the really deleted one
    assert (await one(engine, t.organization_memberships, "orgmem_0000_000"))[
        "deleted_at"
    ] is not None


async def test_two_reconciles_never_run_at_once(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings
) -> None:
    other = LeaseLock(engine, LOCK_NAME, 60)
    assert await other.acquire()
    with pytest.raises(AlreadyRunning):
        await run(engine, api, rsettings)
    await other.release()
    assert (await run(engine, api, rsettings)).ok


async def test_rejected_key_stops_at_once(
    engine: AsyncEngine, rsettings: Settings, fake: FakeClerk
) -> None:
    bad = rsettings.model_copy(update={"clerk_secret_key": SecretStr("sk_test_wrong")})
    api = ClerkAPI(bad, backoff_max_seconds=0.05)
    try:
        with pytest.raises(ClerkAuthError, match="CLERK_SECRET_KEY"):
            await run(engine, api, bad)
    finally:
        await api.close()
    assert len(fake.log) == 1


async def test_retries_5xx_429_timeouts_and_bad_json(
    engine: AsyncEngine, rsettings: Settings, fake: FakeClerk
) -> None:
    patient = rsettings.model_copy(update={"reconcile_max_attempts": 5})
    api = ClerkAPI(patient, backoff_max_seconds=0.05)
    fake.faults.extend(
        [
            Fault("status", status=502),
            Fault("rate_limited", retry_after=1),
            Fault("slow", seconds=3),  # past the client's 2 s timeout
            Fault("bad_json"),
        ]
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        report = await run(engine, api, patient, resources=("organizations",))
    finally:
        await api.close()
    assert report.ok
    organizations = by_type(report)["organizations"]
    assert organizations.throttled == 1 and api.stats.retries == 4
    assert loop.time() - started >= 1.0  # Retry-After was honoured
    assert len(await rows(engine, t.organizations)) == 12


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


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # a client test: one database
async def test_client_side_throttle_stays_under_the_limit(
    engine: AsyncEngine, rsettings: Settings, fake: FakeClerk
) -> None:
    # The fake enforces 30 requests per sliding 10 s; the client is configured for 30 too.
    fake.rate_limit_per_10s = 30
    populate(fake, users=1, orgs=31, members_per_org=0)
    throttled = rsettings.model_copy(
        update={"reconcile_page_size": 1, "reconcile_max_requests_per_10s": 30}
    )
    api = ClerkAPI(throttled, backoff_max_seconds=0.05)
    try:
        report = await run(engine, api, throttled, resources=("organizations",))
    finally:
        await api.close()
    assert report.ok and by_type(report)["organizations"].created == 31
    times = [entry.at for entry in fake.log]
    assert len(times) == 33  # the total, 31 one-item pages and the empty last one
    assert all(entry.status == 200 for entry in fake.log)  # never rate limited
    busiest = max(sum(1 for u in times if s <= u < s + 10) for s in times)
    assert busiest <= 30
    assert times[-1] - times[0] >= 10  # 33 requests at 30 per 10 s cannot finish sooner


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


async def test_a_refused_pass_lists_again_next_time(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    await run(engine, api, rsettings, resources=("users",))
    kept = fake.users[:60]
    fake.users = kept
    refused = await run(engine, api, rsettings, resources=("users",))
    assert by_type(refused)["users"].status == "refused"
    async with engine.connect() as conn:
        assert (await conn.execute(select(seen))).all() == []  # no stale listing kept
    fake.users = kept + [
        cp.user(f"user_{i:05d}", created_at=cp.T0 + i, updated_at=cp.T0 + i) for i in range(60, 120)
    ]
    before = len(fake.requests_to("users"))
    again = await run(engine, api, rsettings, resources=("users",))  # resumes the failed run
    assert again.resumed and again.ok
    assert len(fake.requests_to("users")) - before == 3  # it listed again
    assert by_type(again)["users"].tombstoned == 0
    assert len(await live(engine, t.users)) == 120


async def test_a_deleted_domain_is_confirmed_through_its_organization(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    both = ("organizations", "domains")
    await run(engine, api, rsettings, resources=both)
    fake.delete("domains", "orgdmn_0003")
    report = await run(engine, api, rsettings, resources=both)
    assert report.ok and by_type(report)["domains"].tombstoned == 1
    assert [r.params.get("limit") for r in fake.requests_to("organizations/org_0003/domains")] == [
        "500"
    ]
    assert (await one(engine, t.organization_domains, "orgdmn_0003"))["deleted_at"] is not None


async def test_dry_runs_and_resumes_do_not_inflate_the_metrics(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings
) -> None:
    from service.metrics import RECONCILE_OBJECTS

    counter = RECONCILE_OBJECTS.labels("users", "created")
    start = counter._value.get()
    await run(engine, api, rsettings, resources=("users",), dry_run=True)
    assert counter._value.get() == start
    await run(engine, api, rsettings, resources=("users",))
    assert counter._value.get() == start + 120


async def test_a_lost_lease_stops_the_run(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    short = rsettings.model_copy(update={"reconcile_lock_ttl_seconds": 10})

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
        await run(engine, api, short, resources=("users",))
    await thief


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # ANALYZE is PostgreSQL's
async def test_a_backfill_leaves_full_statistics_behind(
    engine: AsyncEngine, api: ClerkAPI, rsettings: Settings, fake: FakeClerk
) -> None:
    # Enough users for the quick ANALYZEs while the tables grow (3,000-row samples, at most
    # 11 histogram bounds); the pass must end with a full one, which app queries rely on.
    populate(fake, users=2500, orgs=1, members_per_org=1)
    settings = rsettings.model_copy(update={"reconcile_page_size": 500})
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
