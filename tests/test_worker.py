"""End to end through a real arq worker on real Redis: ingest -> queue -> apply -> replica."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from arq import Retry
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import create_app
from service.apply.rows import RowOptions
from service.config import Settings
from service.db import create_engine
from service.inbox.table import Status, inbox
from service.ops import replay_events
from service.queue.client import Enqueuer, connect
from service.queue.worker import apply_event, build_worker, sweep
from service.replica import tables as t
from tests import clerk_payloads as cp
from tests.conftest import make_settings
from tests.replica_helpers import inbox_row, one, rows, store_event
from tests.servers import free_port
from tests.signing import signed


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

    queued = await sweep({"settings": settings, "engine": engine, "enqueuer": enqueuer})
    assert queued == 1
    await run_burst_worker(settings)
    assert (await inbox_row(engine, svix_id))["status"] == Status.APPLIED
    assert len(await rows(engine, t.users)) == 1


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
        assert await sweep({"settings": up, "engine": engine, "enqueuer": enqueuer}) == 1
    finally:
        await enqueuer.close()
    await run_burst_worker(up)
    assert (await inbox_row(engine, svix_id))["status"] == Status.APPLIED


async def test_database_unreachable_while_applying_retries_then_succeeds(
    settings: Settings, engine: AsyncEngine
) -> None:
    svix_id = await store_event(engine, cp.envelope("user.created", cp.user()))
    dead = create_engine(
        settings,
        url=f"postgresql://postgres@127.0.0.1:{free_port()}/x",
    )
    ctx = {"engine": dead, "options": RowOptions(), "job_try": 3}
    try:
        with pytest.raises(Retry) as retry:
            await apply_event(ctx, svix_id)
    finally:
        await dead.dispose()
    assert retry.value.defer_score is not None and 2_000 <= retry.value.defer_score <= 4_000
    assert (await inbox_row(engine, svix_id))["status"] == Status.PENDING
    assert (
        await apply_event({"engine": engine, "options": RowOptions(), "job_try": 4}, svix_id)
        == "applied"
    )


async def test_replay_requeues_failed_events(settings: Settings, engine: AsyncEngine) -> None:
    good = await store_event(engine, cp.envelope("user.created", cp.user()))
    # As if a bug had failed it: an operator fixes the bug, then replays.
    async with engine.begin() as conn:
        await conn.execute(
            update(inbox).where(inbox.c.svix_id == good).values(status="failed", last_error="bug")
        )
    assert await replay_events(settings, svix_id="msg_unknown") == 0
    assert await replay_events(settings) == 1
    assert (await inbox_row(engine, good))["status"] == Status.PENDING
    await run_burst_worker(settings)
    assert (await inbox_row(engine, good))["status"] == Status.APPLIED
    assert len(await rows(engine, t.users)) == 1


async def test_an_abandoned_job_is_retaken_after_the_apply_timeout(settings: Settings) -> None:
    # arq sizes one in-progress timeout from the longest job: the nightly reconcile must not
    # stretch it, or a job held by a killed worker would wait hours.
    with_key = settings.model_copy(update={"clerk_secret_key": SecretStr("sk_test_x")})
    worker = build_worker(with_key)
    try:
        assert worker.in_progress_timeout_s == with_key.worker_job_timeout_seconds + 10
    finally:
        await worker.close()
