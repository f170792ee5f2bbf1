"""The arq worker: thin jobs (apply, sweep, nightly reconcile) over plain functions, and the
loop that keeps the worker running through Redis outages."""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from arq import Retry
from arq.connections import RedisSettings
from arq.cron import CronJob, cron
from arq.worker import Worker, func
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from service import process
from service.apply.batch import retry_delay_seconds
from service.apply.drain import Drainer
from service.clerk.rows import RowOptions
from service.config import Settings, instance_variable, masked_url
from service.db.engine import create_engine
from service.db.errors import TransientError, describe
from service.feed import read, sources
from service.inbox import retention, store
from service.kinds import erasure
from service.logs import get_logger
from service.queue import codec, heartbeat
from service.queue.client import (
    APPLY_JOB,
    Enqueuer,
    health_check_key,
    queue_name,
    reconcile_job_name,
)
from service.queue.metrics_server import serve_metrics
from service.reconcile.lock import AlreadyRunning, LeaseLost
from service.reconcile.modes import ReconcileOptions
from service.reconcile.run import run_reconcile

log = get_logger(__name__)

# Batches of SWEEP_BATCH_SIZE each kind of pruning may take per sweep.
_RETENTION_BATCHES = 10
# What the change feed names as the run of the sweep's erasure.
_ERASURE_RUN = "erasure:sweep"


# arq hands every task a plain dict: `settings` (ours), `redis` and `job_try` (arq's), and
# `worker`, made at start-up. arq gives each job a shallow copy of the dict, so what jobs share
# lives in that object.
WorkerContext = dict[str, Any]


@dataclass
class WorkerState:
    settings: Settings
    engine: AsyncEngine
    enqueuer: Enqueuer
    drainer: Drainer
    nightly: asyncio.Task[dict[str, Any]] | None = None  # the background reconcile
    beating: asyncio.Task[None] | None = None  # the liveness heartbeat (service/queue/heartbeat)


def job_context(settings: Settings, engine: AsyncEngine, enqueuer: Enqueuer) -> WorkerContext:
    """The context the jobs of one worker process share (tests call jobs with it directly)."""
    drainer = Drainer(
        engine=engine,
        options=RowOptions.of(settings),
        wake=enqueuer.wake,
        batch_size=settings.worker.batch_size,
        streams=settings.worker.batch_streams,
        time_budget_seconds=settings.worker.job_timeout_seconds / 2,
        max_attempts=settings.worker.max_event_attempts,
    )
    state = WorkerState(settings, engine, enqueuer, drainer)
    return {"settings": settings, "worker": state, "job_try": 1}


def _state(ctx: WorkerContext) -> WorkerState:
    state: WorkerState = ctx["worker"]
    return state


async def apply_pending(ctx: WorkerContext, until: float) -> dict[str, int]:
    """The apply job: drain the inbox until the window ending at `until` has closed; while the
    database is down, arq retries the job with backoff."""
    try:
        return await _state(ctx).drainer.drain(until)
    except TransientError as exc:
        log.warning("apply.retry", error=str(exc))
        raise Retry(defer=retry_delay_seconds(ctx.get("job_try", 1))) from None


async def sweep(ctx: WorkerContext) -> int:
    """Wake a worker for due pending events older than the grace period: their wake-up was
    lost with Redis, or ran out of tries while the database was down. Returns how many."""
    state = _state(ctx)
    settings = state.settings
    now = datetime.now(UTC)
    cutoff = store.grace_cutoff(now, settings.inbox.sweep_grace_seconds)
    async with state.engine.connect() as conn:
        ids = await store.pending_ids(
            conn, received_before=cutoff, now=now, limit=settings.inbox.sweep_batch_size
        )
    if ids:
        await state.enqueuer.wake()
        log.info("sweep.woke", pending=len(ids))
    await _forget(state, now)
    return len(ids)


async def _forget(state: WorkerState, now: datetime) -> None:
    """Inbox and change feed retention, a few bounded batches per sweep (each sweep takes its
    share), and the erasure of deleted users still holding personal data (tombstones from
    before erasure)."""
    settings = state.settings
    try:
        cleared, deleted = await retention.prune(
            state.engine,
            retention.Retention.of(settings),
            now,
            batch=settings.inbox.sweep_batch_size,
            batches=_RETENTION_BATCHES,
        )
        pruned = await read.prune(
            state.engine,
            now - timedelta(days=settings.database.changes_retention_days),
            batch=settings.inbox.sweep_batch_size,
            batches=_RETENTION_BATCHES,
        )
        erased = 0
        if settings.database.erase_deleted_users:
            async with state.engine.begin() as conn:
                found = await erasure.unerased(conn, settings.inbox.sweep_batch_size)
                # Each change names the run and the instance of the person it erases.
                runs = [(i, _ERASURE_RUN, instance_id) for _, i, instance_id in found]
                async with sources.attributed(
                    conn, enabled=settings.database.change_feed, runs=runs
                ):
                    erased = await erasure.erase_remaining(conn, len(found), found)
    except Exception as exc:  # the next sweep tries again
        log.warning("sweep.retention_failed", error=describe(exc))
        return
    if cleared or deleted or erased or pruned:
        log.info("sweep.forgot", bodies=cleared, rows=deleted, erased_users=erased, changes=pruned)


async def reconcile_job(ctx: WorkerContext, trigger: str = "cron") -> dict[str, Any]:
    """Start the nightly reconcile (or one asked for now, with its `trigger`) in the
    background and return at once.

    arq sizes one in-progress timeout for all of a worker's jobs from the longest function
    timeout; a job that may run for hours would make an apply job abandoned by a killed worker
    wait that long before another worker takes it. The lease lock keeps the run unique.
    """
    state = _state(ctx)
    if state.nightly is not None and not state.nightly.done():
        return {"started": False, "reason": "a reconcile is already running in this worker"}
    state.nightly = asyncio.create_task(_reconcile_nightly(state.settings, trigger))
    return {"started": True}


def _keyed(settings: Settings) -> list[Settings]:
    """The instances the nightly job reconciles: those with a secret key."""
    return [each for each in settings.instances() if each.clerk.secret_key is not None]


async def _reconcile_nightly(settings: Settings, trigger: str = "cron") -> dict[str, Any]:
    """Each instance in turn, each on its own: one that fails or is busy skips only itself."""
    results = {each.instance_name: await _reconcile_one(each, trigger) for each in _keyed(settings)}
    return {"ok": all(r.get("ok") for r in results.values()), "instances": results}


async def _reconcile_one(settings: Settings, trigger: str = "cron") -> dict[str, Any]:
    bound = log.bind(instance=settings.instance_name)
    try:
        report = await run_reconcile(settings, ReconcileOptions(trigger=trigger))
    except AlreadyRunning:
        bound.info("reconcile.skipped", reason="another reconcile holds the lock")
        return {"skipped": True}
    except LeaseLost:
        bound.error("reconcile.stopped", reason="the lock was lost to another process")
        return {"lost_lock": True}
    except Exception as exc:
        bound.error("reconcile.failed", error=describe(exc))
        return {"error": describe(exc)}
    return {"run_id": report.run_id, "ok": report.ok}


async def _startup(ctx: WorkerContext) -> None:
    settings = ctx["settings"]
    # No ping per checkout: a batch on a connection that died fails as transient and retries.
    engine = create_engine(settings, pre_ping=False)
    ctx.update(job_context(settings, engine, Enqueuer(ctx["redis"], settings)))
    _state(ctx).beating = heartbeat.start(ctx["redis"], settings)
    _say_what_reconciles(settings)
    if settings.worker.metrics_port is not None:
        serve_metrics(settings)


def _say_what_reconciles(settings: Settings) -> None:
    """At start, name the instances the nightly reconcile skips for want of a key."""
    unkeyed = [s.instance_name for s in settings.instances() if s.clerk.secret_key is None]
    if not unkeyed:
        return
    variables = ", ".join(instance_variable(name, "SECRET_KEY") for name in unkeyed)
    if len(unkeyed) == len(settings.instances()):
        log.warning("reconcile.nightly_off", reason=f"no Clerk secret key: set {variables}")
    else:
        log.warning("reconcile.nightly_partial", without_key=unkeyed, set=variables)


async def _shutdown(ctx: WorkerContext) -> None:
    state: WorkerState | None = ctx.get("worker")
    if state is None:
        return
    if state.beating is not None:
        await heartbeat.end(state.beating, ctx["redis"], state.settings)
    running = state.nightly
    if running is not None and not running.done():
        running.cancel()  # the run is checkpointed: the next one resumes it
        with suppress(asyncio.CancelledError):
            await running
    await state.engine.dispose()


def _sweep_cron(settings: Settings) -> CronJob:
    every = settings.inbox.sweep_interval_seconds
    if every < 60:
        schedule: dict[str, Any] = {"second": set(range(0, 60, every))}
    else:
        schedule = {"minute": set(range(0, 60, max(1, every // 60))), "second": 0}
    return cron(
        sweep,
        name=f"{settings.redis.queue_prefix}:sweep",
        run_at_startup=True,
        unique=True,
        # arq's in-progress window follows the longest job timeout: keep every job's short.
        timeout=settings.worker.job_timeout_seconds,
        **schedule,
    )


def cron_jobs(settings: Settings) -> list[CronJob]:
    jobs = [_sweep_cron(settings)]
    if _keyed(settings):
        jobs.append(
            cron(
                reconcile_job,
                name=reconcile_job_name(settings),
                hour=settings.reconcile.hours(),
                minute=settings.reconcile.cron_minute,
                second=0,
                unique=True,
                timeout=settings.worker.job_timeout_seconds,  # it only starts the run
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
                max_tries=settings.worker.max_tries,
                timeout=settings.worker.job_timeout_seconds,
            )
        ],
        cron_jobs=cron_jobs(settings) if with_cron else [],
        queue_name=queue_name(settings),
        redis_settings=RedisSettings.from_dsn(settings.redis.url),
        on_startup=_startup,
        on_shutdown=_shutdown,
        ctx={"settings": settings},
        burst=burst,
        max_jobs=settings.worker.concurrency,
        poll_delay=settings.worker.poll_delay_seconds,
        keep_result=0,
        job_timeout=settings.worker.job_timeout_seconds,
        handle_signals=not burst,
        health_check_key=health_check_key(settings),
        job_serializer=codec.encode,
        job_deserializer=codec.decode,
    )


def run_forever(settings: Settings, *, burst: bool = False) -> None:
    """Run the worker, and keep running it through Redis outages.

    arq's worker exits when Redis goes away; events stay safe in the inbox meanwhile, so the
    right reaction is to wait and start again (the sweep then queues what arrived), not to
    die and need an operator. A signal or a drained burst run ends it (without Redis, an error).
    """
    delay = 1.0
    while True:
        asyncio.set_event_loop(process.new_loop())  # arq's Worker runs on the current loop
        worker = build_worker(settings, burst=burst)
        try:
            worker.run()
            return
        except (RedisError, OSError) as exc:
            if burst:  # asked to drain now: without Redis it cannot, and says so
                raise RuntimeError(
                    f"Redis at {masked_url(settings.redis.url)} did not answer "
                    f"({describe(exc)}): nothing was applied"
                ) from None
            log.warning("worker.redis_unavailable", error=describe(exc), retry_in_seconds=delay)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
