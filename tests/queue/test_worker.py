"""End to end through a real arq worker on real Redis: ingest -> queue -> apply -> replica."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import structlog
from arq import Retry
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.clerk.rows import RowOptions
from service.config import Settings
from service.db.engine import create_engine
from service.dev.ports import free_port
from service.feed import read as feed_read
from service.inbox.store import Status, inbox
from service.operate.actions import NotDone, replay_events
from service.queue.client import Enqueuer, connect
from service.queue.worker import (
    _say_what_reconciles,
    apply_pending,
    build_worker,
    cron_jobs,
    job_context,
    reconcile_job,
    sweep,
)
from service.reconcile.checkpoints import runs
from service.web.app import create_app
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.clerk_instances import populate
from tests.support.fake_clerk import KEY, FakeClerk
from tests.support.replica_helpers import deliver, inbox_row, one, rows, store_event
from tests.support.settings import make_settings
from tests.support.signing import signed


@pytest.fixture
def fake() -> FakeClerk:
    """The Clerk instance the nightly job reconciles against."""
    fake = FakeClerk()
    populate(fake, users=30, orgs=3, members_per_org=2)
    return fake


async def run_burst_worker(settings: Settings) -> None:
    worker = build_worker(settings, burst=True, with_cron=False)
    try:
        await asyncio.wait_for(worker.main(), timeout=60)
    finally:
        await worker.close()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        yield c


@pytest.fixture
async def enqueuer(settings: Settings) -> AsyncIterator[Enqueuer]:
    enqueuer = Enqueuer(connect(settings), settings)
    yield enqueuer
    await enqueuer.close()


async def post(client: httpx.AsyncClient, envelope: dict[str, Any]) -> str:
    body, headers = signed(envelope)
    response = await client.post("/webhooks/clerk", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return headers["svix-id"]


async def test_deliveries_flow_to_the_replica_through_the_worker(
    client: httpx.AsyncClient, settings: Settings, engine: AsyncEngine
) -> None:
    ids = [
        await post(client, cp.envelope("organizationMembership.created", cp.membership())),
        await post(client, cp.envelope("user.created", cp.user())),
        await post(client, cp.envelope("organization.created", cp.organization())),
        await post(
            client, cp.envelope("user.updated", cp.user(updated_at=cp.T0 + 1, first_name="Jane"))
        ),
    ]
    await run_burst_worker(settings)
    assert (await one(engine, t.users, cp.user()["id"]))["first_name"] == "Jane"
    assert len(await rows(engine, t.organizations)) == 1
    assert len(await rows(engine, t.organization_memberships)) == 1
    for svix_id in ids:
        assert (await inbox_row(engine, svix_id))["status"] == Status.APPLIED


async def test_sweep_recovers_events_whose_jobs_were_lost(
    client: httpx.AsyncClient, settings: Settings, engine: AsyncEngine, enqueuer: Enqueuer
) -> None:
    svix_id = await post(client, cp.envelope("user.created", cp.user()))
    # Redis restarted with an empty dataset: the queued job is gone, the inbox row is not.
    redis = connect(settings)
    await redis.flushdb()
    await redis.aclose()
    await redis.connection_pool.disconnect()
    await run_burst_worker(settings)
    assert (await inbox_row(engine, svix_id))["status"] == Status.PENDING

    queued = await sweep(job_context(settings, engine, enqueuer))
    assert queued == 1
    await run_burst_worker(settings)
    assert (await inbox_row(engine, svix_id))["status"] == Status.APPLIED
    assert len(await rows(engine, t.users)) == 1


async def test_sweep_erases_tombstones_kept_from_before_erasure(
    db_url: str, redis_url: str, engine: AsyncEngine, enqueuer: Enqueuer
) -> None:
    # Written by a version (or a setting) that kept a deleted user's last known state.
    keep = RowOptions(erase_deleted_users=False)
    await deliver(engine, cp.envelope("user.created", cp.user(username="kept")), keep)
    await deliver(engine, cp.envelope("user.deleted", cp.deleted("user", cp.user()["id"])), keep)
    off = make_settings(db_url, redis_url, erase_deleted_users=False)
    await sweep(job_context(off, engine, enqueuer))
    assert (await one(engine, t.users, cp.user()["id"]))["username"] == "kept"
    await sweep(job_context(make_settings(db_url, redis_url), engine, enqueuer))
    user = await one(engine, t.users, cp.user()["id"])
    assert user["username"] is None and user["raw"] is None and user["deleted_at"] is not None


async def test_the_sweep_s_erasure_names_its_run_and_instance_in_the_feed(
    db_url: str, redis_url: str, engine: AsyncEngine, enqueuer: Enqueuer
) -> None:
    keep = RowOptions(erase_deleted_users=False)
    inviter = cp.user()["id"]
    await deliver(engine, cp.envelope("user.created", cp.user()), keep)
    await deliver(engine, cp.envelope("organizationInvitation.created", cp.invitation()), keep)
    await deliver(engine, cp.envelope("user.deleted", cp.deleted("user", inviter)), keep)
    async with engine.connect() as conn:
        last = max(c["seq"] for c in await feed_read.after(conn, 0, 100))
    await sweep(job_context(make_settings(db_url, redis_url), engine, enqueuer))
    async with engine.connect() as conn:
        found = list(await feed_read.after(conn, last, 100))
    # The live invitation lost its inviter's data: a change, named.
    assert [(c["object_id"], c["run_id"], c["instance_id"]) for c in found] == [
        (cp.invitation()["id"], "erasure:sweep", cp.INSTANCE_ID)
    ]


async def test_event_acknowledged_while_redis_was_down_is_applied_after(
    db_url: str, redis_url: str, engine: AsyncEngine
) -> None:
    down = make_settings(db_url, f"redis://127.0.0.1:{free_port()}/0", redis_timeout_seconds=0.5)
    app = create_app(down)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        svix_id = await post(c, cp.envelope("user.created", cp.user()))
    up = make_settings(db_url, redis_url)
    enqueuer = Enqueuer(connect(up), up)
    try:
        assert await sweep(job_context(up, engine, enqueuer)) == 1
    finally:
        await enqueuer.close()
    await run_burst_worker(up)
    assert (await inbox_row(engine, svix_id))["status"] == Status.APPLIED


async def test_database_unreachable_while_applying_retries_then_succeeds(
    settings: Settings, engine: AsyncEngine, enqueuer: Enqueuer
) -> None:
    svix_id = await store_event(engine, cp.envelope("user.created", cp.user()))
    dead = create_engine(
        settings,
        url=f"postgresql://postgres@127.0.0.1:{free_port()}/x",
    )
    ctx = job_context(settings, dead, enqueuer) | {"job_try": 3}
    try:
        with pytest.raises(Retry) as retry:
            await apply_pending(ctx, time.time())
    finally:
        await dead.dispose()
    assert retry.value.defer_score is not None and 2_000 <= retry.value.defer_score <= 4_000
    assert (await inbox_row(engine, svix_id))["status"] == Status.PENDING
    totals = await apply_pending(job_context(settings, engine, enqueuer), time.time())
    assert totals == {"applied": 1}
    assert (await inbox_row(engine, svix_id))["status"] == Status.APPLIED


async def test_a_job_takes_events_stored_until_its_window_closes(
    settings: Settings, engine: AsyncEngine, enqueuer: Enqueuer
) -> None:
    # A delivery whose wake-up is refused because its window's job is already running must
    # still be applied by that job: the job looks until the window has closed.
    first = await store_event(engine, cp.envelope("user.created", cp.user()))
    job = asyncio.create_task(
        apply_pending(job_context(settings, engine, enqueuer), time.time() + 0.5)
    )
    await asyncio.sleep(0.2)
    assert (await inbox_row(engine, first))["status"] == Status.APPLIED
    assert not job.done()
    late = await store_event(engine, cp.envelope("organization.created", cp.organization()))
    assert await asyncio.wait_for(job, timeout=5) == {"applied": 2}
    assert (await inbox_row(engine, late))["status"] == Status.APPLIED


async def test_replay_requeues_failed_events(settings: Settings, engine: AsyncEngine) -> None:
    good = await store_event(engine, cp.envelope("user.created", cp.user()))
    # As if a bug had failed it: an operator fixes the bug, then replays.
    async with engine.begin() as conn:
        await conn.execute(
            update(inbox).where(inbox.c.svix_id == good).values(status="failed", last_error="bug")
        )
    with pytest.raises(NotDone, match="no such failed event: msg_unknown"):
        await replay_events(settings, svix_id="msg_unknown")
    assert await replay_events(settings) == 1
    assert (await inbox_row(engine, good))["status"] == Status.PENDING
    await run_burst_worker(settings)
    assert (await inbox_row(engine, good))["status"] == Status.APPLIED
    assert len(await rows(engine, t.users)) == 1


async def test_an_abandoned_job_is_retaken_after_the_apply_timeout(settings: Settings) -> None:
    # arq sizes one in-progress timeout from the longest job: the nightly reconcile must not
    # stretch it, or a job held by a killed worker would wait hours.
    with_key = settings.updated(clerk_secret_key=SecretStr("sk_test_x"))
    worker = build_worker(with_key)
    try:
        assert worker.in_progress_timeout_s == with_key.worker.job_timeout_seconds + 10
    finally:
        await worker.close()


async def test_a_backlog_is_drained_by_several_streams(
    settings: Settings, engine: AsyncEngine, enqueuer: Enqueuer
) -> None:
    small = settings.updated(worker_batch_size=4, worker_batch_streams=3)
    ids = [
        await store_event(engine, cp.envelope("organization.created", cp.organization(f"org_{i}")))
        for i in range(30)
    ]
    totals = await apply_pending(job_context(small, engine, enqueuer), time.time())
    assert totals == {"applied": 30}
    assert {(await inbox_row(engine, i))["status"] for i in ids} == {Status.APPLIED}
    assert len(await rows(engine, t.organizations)) == 30


async def test_a_later_job_takes_over_from_an_earlier_one(
    settings: Settings, engine: AsyncEngine, enqueuer: Enqueuer
) -> None:
    # arq hands each job a shallow copy of the worker's context, as here: the shared state
    # must still reach both jobs, so that only one of them keeps polling the inbox.
    shared = job_context(settings, engine, enqueuer)
    now = time.time()
    earlier = asyncio.create_task(apply_pending(dict(shared), now + 2.0))
    await asyncio.sleep(0.1)
    later = asyncio.create_task(apply_pending(dict(shared), now + 2.5))
    # The earlier job stops long before its own window closes: the later one covers it.
    assert await asyncio.wait_for(earlier, timeout=1.0) == {}
    svix_id = await store_event(engine, cp.envelope("user.created", cp.user()))
    assert await asyncio.wait_for(later, timeout=5) == {"applied": 1}
    assert (await inbox_row(engine, svix_id))["status"] == Status.APPLIED


async def test_nightly_job_records_its_run(
    db_url: str, redis_url: str, clerk_url: str, engine: AsyncEngine
) -> None:
    settings = make_settings(
        db_url,
        redis_url,
        clerk_secret_key=KEY,
        clerk_api_url=clerk_url,
        reconcile_max_requests_per_10s=10000,
        reconcile_cron_hours="2,14",
        reconcile_cron_minute=5,
    )
    crons = {job.name: job for job in cron_jobs(settings)}
    nightly = crons[f"{settings.redis.queue_prefix}:reconcile"]
    assert (nightly.hour, nightly.minute, nightly.unique) == ({2, 14}, 5, True)

    enqueuer = Enqueuer(connect(settings), settings)
    ctx = job_context(settings, engine, enqueuer)
    # arq hands each job a shallow copy of the worker's context, as here.
    assert await reconcile_job(dict(ctx)) == {"started": True}
    assert (await reconcile_job(dict(ctx)))["started"] is False  # one at a time in a worker
    running = ctx["worker"].nightly
    assert running is not None
    result = await running
    await enqueuer.close()
    assert result["ok"] is True
    async with engine.connect() as conn:
        (run,) = (await conn.execute(select(runs))).all()
    assert (run.trigger, run.status) == ("cron", "completed")
    assert len(await rows(engine, t.users)) == 30


async def test_a_reconcile_asked_for_now_records_its_trigger(
    db_url: str, redis_url: str, clerk_url: str, engine: AsyncEngine
) -> None:
    settings = make_settings(
        db_url,
        redis_url,
        clerk_secret_key=KEY,
        clerk_api_url=clerk_url,
        reconcile_max_requests_per_10s=10000,
    )
    enqueuer = Enqueuer(connect(settings), settings)
    ctx = job_context(settings, engine, enqueuer)
    # What the console queues: the cron job's function, with the trigger as its argument.
    assert await enqueuer.reconcile_now("console") is True
    assert await reconcile_job(dict(ctx), "console") == {"started": True}
    running = ctx["worker"].nightly
    assert running is not None
    assert (await running)["ok"] is True
    await enqueuer.close()
    async with engine.connect() as conn:
        (run,) = (await conn.execute(select(runs))).all()
    assert (run.trigger, run.status) == ("console", "completed")


def test_no_nightly_job_without_a_key(db_url: str, redis_url: str) -> None:
    settings = make_settings(db_url, redis_url)
    names = [job.name for job in cron_jobs(settings)]
    assert names == [f"{settings.redis.queue_prefix}:sweep"]


def test_a_worker_without_a_key_says_at_start_that_the_nightly_reconcile_is_off(
    db_url: str, redis_url: str
) -> None:
    with structlog.testing.capture_logs() as logged:
        _say_what_reconciles(make_settings(db_url, redis_url))
    off = [e for e in logged if e["event"] == "reconcile.nightly_off"]
    assert off and "CLERK_SECRET_KEY" in off[0]["reason"]
    with structlog.testing.capture_logs() as logged:
        _say_what_reconciles(make_settings(db_url, redis_url, clerk_secret_key=KEY))
    assert not [e for e in logged if e["event"].startswith("reconcile.nightly")]
