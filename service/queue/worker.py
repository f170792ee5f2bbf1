"""The arq worker: the apply task, and the sweep that re-queues anything stored but not applied."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from arq import Retry
from arq.connections import RedisSettings
from arq.cron import CronJob, cron
from arq.worker import Worker, func
from prometheus_client import start_http_server
from redis.exceptions import RedisError

from service import process
from service.apply.batch import apply_batch
from service.apply.errors import TransientError, describe
from service.apply.rows import RowOptions
from service.apply.runner import retry_delay_seconds
from service.config import Settings
from service.db import create_engine
from service.inbox import store
from service.logs import get_logger
from service.ops import run_reconcile
from service.queue.client import APPLY_JOB, Enqueuer, queue_name
from service.reconcile.lock import AlreadyRunning, LeaseLost
from service.reconcile.run import ReconcileOptions

log = get_logger(__name__)

# A job keeps looking this long past its window's end: a web process whose clock runs a little
# ahead of this worker's may still commit an event it counts in that window.
_CLOCK_MARGIN_SECONDS = 0.02
# While its window is open, an idle job looks again this often.
_IDLE_POLL_SECONDS = 0.01


# arq hands every task a plain dict: settings, engine, options, enqueuer, redis, job_try.
WorkerContext = dict[str, Any]


@dataclass
class DrainState:
    """Shared by the apply jobs of one worker process."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    latest_until: float = 0.0  # the latest window end of any job started


async def apply_pending(ctx: WorkerContext, until: float) -> dict[str, int]:
    """Drain the inbox in batches until it is empty and the job's window has closed.

    One job per worker process drains at a time: a job for a later window waits for the
    current one, which then stops at its next empty claim (the later job covers its window
    too). When a batch comes back full there is a backlog: helper streams join (PostgreSQL
    only; claims skip each other's rows), so the database works on one batch while Python
    prepares the next; they stop at their first empty claim. A long backlog is handed to a
    fresh job rather than run into arq's timeout.
    """
    settings: Settings = ctx["settings"]
    # arq gives each job a shallow copy of the worker's context: state shared between jobs
    # must be an object made at start-up (tests calling this directly get one here).
    drain: DrainState = ctx.setdefault("drain", DrainState())
    drain.latest_until = max(drain.latest_until, until)
    stop_by = time.monotonic() + settings.worker_job_timeout_seconds / 2
    totals: Counter[str] = Counter()
    helpers = settings.worker_batch_streams - 1 if ctx["engine"].dialect.name == "postgresql" else 0
    running: list[asyncio.Task[None]] = []
    down: list[TransientError] = []  # set by the first stream that finds the database down

    async def batch() -> int | None:
        """Apply one batch; how many events it claimed, or None when the database is down."""
        try:
            result = await apply_batch(ctx["engine"], ctx["options"], settings.worker_batch_size)
        except TransientError as exc:
            down.append(exc)
            return None
        totals.update({o.value: n for o, n in result.outcomes.items() if n})
        if result.retry_at is not None:
            await _wake_quietly(ctx, result.retry_at)
        return result.claimed

    async def helper() -> None:
        while time.monotonic() < stop_by and not down and await batch():
            pass

    async with drain.lock:
        while drain.latest_until <= until:  # else a later job covers this window
            if time.monotonic() >= stop_by:
                await _wake_quietly(ctx, None)  # time is up, maybe with work left: hand over
                break
            claimed = await batch()
            if claimed is None:
                break
            if claimed >= settings.worker_batch_size and not running:
                running = [asyncio.create_task(helper()) for _ in range(helpers)]
            if claimed:
                continue
            remaining = until + _CLOCK_MARGIN_SECONDS - time.time()
            if remaining <= 0:
                break
            await asyncio.sleep(min(_IDLE_POLL_SECONDS, remaining))
        await asyncio.gather(*running)
    if down:
        log.warning("apply.retry", error=str(down[0]))
        raise Retry(defer=retry_delay_seconds(ctx.get("job_try", 1)))
    return dict(totals)


async def _wake_quietly(ctx: WorkerContext, at: datetime | None) -> None:
    try:
        await ctx["enqueuer"].wake(at)
    except Exception as exc:  # Redis is down: the sweep wakes a worker later
        log.warning("apply.wake_failed", error=describe(exc))


async def sweep(ctx: WorkerContext) -> int:
    """Wake a worker for due pending events older than the grace period: their wake-up was
    lost with Redis, or ran out of tries while the database was down. Returns how many."""
    settings = ctx["settings"]
    now = datetime.now(UTC)
    cutoff = store.grace_cutoff(now, settings.sweep_grace_seconds)
    async with ctx["engine"].connect() as conn:
        ids = await store.pending_ids(
            conn, received_before=cutoff, now=now, limit=settings.sweep_batch_size
        )
    if ids:
        await ctx["enqueuer"].wake()
        log.info("sweep.woke", pending=len(ids))
    return len(ids)


async def reconcile_job(ctx: WorkerContext) -> dict[str, Any]:
    """Start the nightly reconcile in the background and return at once.

    arq sizes one in-progress timeout for all of a worker's jobs from the longest function
    timeout; a job that may run for hours would make an apply job abandoned by a killed worker
    wait that long before another worker takes it. The lease lock keeps the run unique.
    """
    running = ctx.get("reconcile_task")
    if running is not None and not running.done():
        return {"started": False, "reason": "a reconcile is already running in this worker"}
    ctx["reconcile_task"] = asyncio.create_task(_reconcile_nightly(ctx["settings"]))
    return {"started": True}


async def _reconcile_nightly(settings: Settings) -> dict[str, Any]:
    try:
        report = await run_reconcile(settings, ReconcileOptions(trigger="cron"))
    except AlreadyRunning:
        log.info("reconcile.skipped", reason="another reconcile holds the lock")
        return {"skipped": True}
    except LeaseLost:
        log.error("reconcile.stopped", reason="the lock was lost to another process")
        return {"lost_lock": True}
    except Exception as exc:
        log.error("reconcile.failed", error=describe(exc))
        return {"error": describe(exc)}
    return {"run_id": report.run_id, "ok": report.ok}


async def _startup(ctx: WorkerContext) -> None:
    settings = ctx["settings"]
    # No ping per checkout: a batch on a connection that died fails as transient and retries.
    ctx["engine"] = create_engine(settings, pre_ping=False)
    ctx["options"] = RowOptions(store_private_metadata=settings.store_private_metadata)
    ctx["enqueuer"] = Enqueuer(ctx["redis"], settings)
    ctx["drain"] = DrainState()
    if settings.worker_metrics_port is not None:
        start_http_server(settings.worker_metrics_port)


async def _shutdown(ctx: WorkerContext) -> None:
    running = ctx.get("reconcile_task")
    if running is not None and not running.done():
        running.cancel()  # the run is checkpointed: the next one resumes it
        with suppress(asyncio.CancelledError):
            await running
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
        # arq's in-progress window follows the longest job timeout: keep every job's short.
        timeout=settings.worker_job_timeout_seconds,
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
                timeout=settings.worker_job_timeout_seconds,  # it only starts the run
            )
        )
    return jobs


def build_worker(settings: Settings, *, burst: bool = False, with_cron: bool = True) -> Worker:
    """A configured arq Worker; tests run it in burst mode, the CLI runs it forever."""
    return Worker(
        functions=[
            func(
                apply_pending,
                name=APPLY_JOB,
                keep_result=0,
                max_tries=settings.worker_max_tries,
                timeout=settings.worker_job_timeout_seconds,
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
        job_timeout=settings.worker_job_timeout_seconds,
        handle_signals=not burst,
        health_check_key=f"{settings.queue_prefix}:health-check",
    )


def run_forever(settings: Settings, *, burst: bool = False) -> None:
    """Run the worker, and keep running it through Redis outages.

    arq's worker exits when Redis goes away; events stay safe in the inbox meanwhile, so the
    right reaction is to wait and start again (the sweep then queues what arrived), not to
    die and need an operator. A signal or a drained burst run ends it.
    """
    delay = 1.0
    while True:
        asyncio.set_event_loop(process.new_loop())  # arq's Worker runs on the current loop
        worker = build_worker(settings, burst=burst)
        try:
            worker.run()
            return
        except (RedisError, OSError) as exc:
            log.warning("worker.redis_unavailable", error=describe(exc), retry_in_seconds=delay)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
