"""Operator actions shared by the CLI and tests."""

from __future__ import annotations

from datetime import UTC, datetime

from service.config import Settings
from service.db import create_engine
from service.inbox import store
from service.queue.client import Enqueuer, connect
from service.reconcile.clerk_api import ClerkAPI
from service.reconcile.run import ProgressCallback, ReconcileOptions, RunReport, reconcile


async def replay_failed(
    settings: Settings, *, svix_id: str | None = None, since: datetime | None = None
) -> int:
    """Move failed events back to pending and queue them; returns how many."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    engine = create_engine(settings)
    enqueuer = Enqueuer(connect(settings), settings)
    try:
        async with engine.begin() as conn:
            ids = await store.requeue_failed(conn, svix_id=svix_id, since=since)
        for event_id in ids:
            # If Redis is down the events stay pending and the worker's sweep queues them.
            await enqueuer.enqueue_apply(event_id)
        return len(ids)
    finally:
        await enqueuer.close()
        await engine.dispose()


async def run_reconcile(
    settings: Settings,
    options: ReconcileOptions,
    on_progress: ProgressCallback | None = None,
) -> RunReport:
    """Reconcile with this process's own engine and API client (CLI and cron)."""
    engine = create_engine(settings)
    api = ClerkAPI(settings)
    try:
        if on_progress is None:
            return await reconcile(engine, api, settings, options)
        return await reconcile(engine, api, settings, options, on_progress)
    finally:
        await api.close()
        await engine.dispose()
