"""The console under test: settings with a token, a failed event made the way apply makes one,
a signed-in HTTP client, and `serve`'s app on a real loopback port for the browser tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import DEFAULT_INSTANCE, Settings
from service.dev.ports import free_port
from service.inbox import store
from service.inbox.store import Status, inbox
from service.reconcile.checkpoints import RunStatus, progress, runs
from service.web.app import create_app
from tests.support import clerk_payloads as cp
from tests.support.replica_helpers import deliver, store_event
from tests.support.settings import make_settings

TOKEN = "console-token-for-tests-0123456789"
# What a failed event's error may hold when a driver quotes a value: the console masks it.
LEAKY_ERROR = "IntegrityError: duplicate key value (email)=(jane@example.com) for 'Jane Doe'"


def console_settings(db_url: str, redis_url: str, **overrides: object) -> Settings:
    return make_settings(db_url, redis_url, console_token=TOKEN, **overrides)


async def failed_event(engine: AsyncEngine, error: str = LEAKY_ERROR) -> tuple[str, str]:
    """A user.created event stored as ingest stores it, then settled failed as apply settles
    one it cannot apply; returns (svix id, user id)."""
    user = cp.user()
    svix_id = await store_event(engine, cp.envelope("user.created", user))
    async with engine.begin() as conn:
        await store.settle(conn, svix_id, Status.FAILED, object_id=user["id"], error=error)
    return svix_id, str(user["id"])


async def sign_in(client: httpx.AsyncClient, token: str = TOKEN) -> httpx.Response:
    return await client.post(
        "/console/login",
        data={"token": token},
        headers={"origin": str(client.base_url).rstrip("/")},
    )


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[tuple[str, Any]]:
    """`serve`'s web app (its lifespan running) on a free loopback port, in this event loop;
    yields (base URL, the app)."""
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        await task


async def busy(engine: AsyncEngine, events: int = 3000) -> None:
    """A day of traffic in the inbox (every status, lags of a few seconds, a backlog), users in
    the replica, a completed reconcile run and one still running with its progress."""
    now = datetime.now(UTC)
    statuses = [Status.APPLIED] * 8 + [Status.IGNORED, Status.PENDING]
    rows = []
    for i in range(events):
        received = now - timedelta(seconds=86400 * (i / events) ** 2)
        status = statuses[i % len(statuses)]
        rows.append(
            {
                "svix_id": f"msg_busy{i:06d}",
                "event_type": "session.created" if status is Status.IGNORED else "user.updated",
                "status": status.value,
                "body": None,
                "object_id": f"user_busy{i % 500:04d}",
                "received_at": received,
                "applied_at": received + timedelta(seconds=0.05 + (i % 40) / 10)
                if status in (Status.APPLIED, Status.IGNORED)
                else None,
                "attempts": 1,
                "instance": DEFAULT_INSTANCE,
            }
        )
    async with engine.begin() as conn:
        await conn.execute(insert(inbox), rows)
        finished = await conn.execute(
            insert(runs).returning(runs.c.id),
            [
                {
                    "trigger": "cron",
                    "status": RunStatus.COMPLETED.value,
                    "kinds": ["users"],
                    "started_at": now - timedelta(hours=5),
                    "finished_at": now - timedelta(hours=4, minutes=50),
                    "summary": {"users": {"status": "completed", "listed": 40, "created": 40}},
                    "instance": DEFAULT_INSTANCE,
                }
            ],
        )
        assert finished.scalar_one()
        running = (
            await conn.execute(
                insert(runs).returning(runs.c.id),
                {
                    "trigger": "console",
                    "status": RunStatus.RUNNING.value,
                    "kinds": ["users", "organizations"],
                    "started_at": now - timedelta(minutes=3),
                    "instance": DEFAULT_INSTANCE,
                },
            )
        ).scalar_one()
        await conn.execute(
            insert(progress),
            [
                {
                    "run_id": running,
                    "kind": "users",
                    "pass_started_at": now,
                    "offset": 1500,
                    "listed": True,
                    "done": True,
                    "counts": {"listed": 1500, "created": 12, "updated": 3},
                },
                {
                    "run_id": running,
                    "kind": "organizations",
                    "pass_started_at": now,
                    "offset": 200,
                    "listed": False,
                    "done": False,
                    "counts": {},
                },
            ],
        )
    for n in range(40):
        await deliver(engine, cp.envelope("user.created", cp.user(id=f"user_busy{n:04d}")))
