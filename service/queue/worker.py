"""The arq worker: the apply task, and the sweep that re-queues anything stored but not applied."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from arq import Retry
from arq.connections import RedisSettings
from arq.cron import CronJob, cron
from arq.worker import Worker, func
from prometheus_client import start_http_server

from service.apply.errors import TransientError
from service.apply.rows import RowOptions
from service.apply.runner import apply_stored
from service.config import Settings
from service.db import create_engine
from service.inbox import store
from service.logs import get_logger
from service.ops import run_reconcile
from service.queue.client import APPLY_JOB, Enqueuer, queue_name
from service.reconcile.lock import AlreadyRunning, LeaseLost
from service.reconcile.run import ReconcileOptions

log = get_logger(__name__)

_BACKOFF_BASE_SECONDS = 1.0
_BACKOFF_CAP_SECONDS = 120.0


# arq hands every task a plain dict: settings, engine, options, enqueuer, redis, job_try.
WorkerContext = dict[str, Any]


def backoff_seconds(job_try: int) -> float:
    """Exponential backoff with full jitter, so retrying workers do not stampede a database
    that just came back."""
    ceiling = min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2 ** max(0, job_try - 1))
    return random.uniform(ceiling / 2, ceiling)


async def apply_event(ctx: WorkerContext, svix_id: str) -> str:
    try:
        outcome = await apply_stored(ctx["engine"], svix_id, ctx["options"])
    except TransientError:
        raise Retry(defer=backoff_seconds(ctx.get("job_try", 1))) from None
    return outcome.value


async def sweep(ctx: WorkerContext) -> int:
    """Queue pending events older than the grace period: their enqueue failed, their job was
    lost with Redis, or it ran out of tries while the database was down."""
    settings = ctx["settings"]
    cutoff = store.grace_cutoff(datetime.now(UTC), settings.sweep_grace_seconds)
    async with ctx["engine"].connect() as conn:
        ids = await store.pending_ids(conn, received_before=cutoff, limit=settings.sweep_batch_size)
    queued = 0
    for svix_id in ids:
        queued += await ctx["enqueuer"].enqueue_apply(svix_id)
    if ids:
        log.info("sweep.queued", pending=len(ids), queued=queued)
    return queued


async def reconcile_job(ctx: WorkerContext) -> dict[str, Any]:
    """The nightly reconcile; the lease lock makes it unique across workers and CLI runs."""
    try:
        report = await run_reconcile(ctx["settings"], ReconcileOptions(trigger="cron"))
    except AlreadyRunning:
        log.info("reconcile.skipped", reason="another reconcile holds the lock")
        return {"skipped": True}
    except LeaseLost:
        log.error("reconcile.stopped", reason="the lock was lost to another process")
        return {"lost_lock": True}
    return {"run_id": report.run_id, "ok": report.ok}


async def _startup(ctx: WorkerContext) -> None:
    settings = ctx["settings"]
    ctx["engine"] = create_engine(settings)
    ctx["options"] = RowOptions(store_private_metadata=settings.store_private_metadata)
    ctx["enqueuer"] = Enqueuer(ctx["redis"], settings)
    if settings.worker_metrics_port is not None:
        start_http_server(settings.worker_metrics_port)


async def _shutdown(ctx: WorkerContext) -> None:
    engine = ctx.get("engine")
    if engine is not None:
        await engine.dispose()


def _sweep_cron(settings: Settings) -> CronJob:
    every = settings.sweep_interval_seconds
    if every < 60:
        schedule: dict[str, Any] = {"second": set(range(0, 60, every))}
    else:
        schedule = {"minute": set(range(0, 60, max(1, every // 60))), "second": 0}
    return cron(
        sweep,
        name=f"{settings.queue_prefix}:sweep",
        run_at_startup=True,
        unique=True,
        timeout=max(30, every),
        **schedule,
    )


def cron_jobs(settings: Settings) -> list[CronJob]:
    jobs = [_sweep_cron(settings)]
    if settings.clerk_secret_key is not None:
        jobs.append(
            cron(
                reconcile_job,
                name=f"{settings.queue_prefix}:reconcile",
                hour=settings.reconcile_hours(),
                minute=settings.reconcile_cron_minute,
                second=0,
                unique=True,
                timeout=6 * 3600,
            )
        )
    return jobs


def build_worker(settings: Settings, *, burst: bool = False, with_cron: bool = True) -> Worker:
    """A configured arq Worker; tests run it in burst mode, the CLI runs it forever."""
    return Worker(
        functions=[
            func(
                apply_event,
                name=APPLY_JOB,
                keep_result=0,
                max_tries=settings.worker_max_tries,
            )
        ],
        cron_jobs=cron_jobs(settings) if with_cron else [],
        queue_name=queue_name(settings),
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        on_startup=_startup,
        on_shutdown=_shutdown,
        ctx={"settings": settings},
        burst=burst,
        max_jobs=settings.worker_concurrency,
        poll_delay=settings.worker_poll_delay_seconds,
        keep_result=0,
        handle_signals=not burst,
        health_check_key=f"{settings.queue_prefix}:health-check",
    )
