"""Enqueue side: wake-up jobs that tell a worker to drain the inbox.

Jobs carry no event: the inbox is the queue of record, and a job applies whatever is pending
in batches. Deliveries in one short window share one job (its id names the window, and arq
refuses a second job with a live id), so a busy web process talks to Redis a few dozen times a
second, not once per delivery. A job keeps draining until its window has closed, so a delivery
whose wake-up was refused because the window's job was already running is still taken.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool

from service.config import Settings
from service.queue import codec, heartbeat

APPLY_JOB = "apply_pending"
# A reconcile asked for now (the console): the nightly job's function, run by any worker that
# has it (one with a Clerk secret key), under an id of its own so one request queues one run.
RECONCILE_NOW_JOB_ID = "reconcile-now"


def job_id(settings: Settings, window: int) -> str:
    # arq's job keys are global to the Redis database, hence the prefix. Apply jobs keep no
    # result, so an id is free again as soon as its job has finished.
    return f"{settings.redis.queue_prefix}:apply:{window}"


def reconcile_job_name(settings: Settings) -> str:
    """The name the worker registers its reconcile job under (its cron job's name)."""
    return f"{settings.redis.queue_prefix}:reconcile"


def health_check_key(settings: Settings) -> str:
    """Where arq's worker writes its health check, renewed while it runs."""
    return f"{settings.redis.queue_prefix}:health-check"


def queue_name(settings: Settings) -> str:
    return f"{settings.redis.queue_prefix}:queue"


def connect(settings: Settings) -> ArqRedis:
    """A lazy pool: nothing connects until the first command, so a Redis outage at start-up
    does not stop ingest from answering (the sweep queues what it stored meanwhile)."""
    pool = ConnectionPool.from_url(
        settings.redis.url,
        socket_connect_timeout=settings.redis.timeout_seconds,
        socket_timeout=settings.redis.timeout_seconds,
    )
    return ArqRedis(
        pool,
        default_queue_name=queue_name(settings),
        job_serializer=codec.encode,
        job_deserializer=codec.decode,
    )


class Enqueuer:
    def __init__(self, redis: ArqRedis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings
        self._queue = queue_name(settings)
        self._timeout = settings.redis.timeout_seconds
        self._window_ms = settings.worker.wake_window_ms
        self._woken: int | None = None  # the last window this process queued a job for

    async def wake(self, at: datetime | None = None) -> bool:
        """Make sure a worker drains the inbox after the events stored so far (or at `at`).

        Call it after the event is committed. True when a job was queued now; False when this
        process (or arq, by job id) already holds one for the current window.
        """
        moment = time.time() if at is None else at.timestamp()
        window = int(moment * 1000) // self._window_ms
        if at is None and window == self._woken:
            return False
        until = (window + 1) * self._window_ms / 1000
        self._woken = window if at is None else self._woken
        try:
            job = await asyncio.wait_for(
                self._redis.enqueue_job(
                    APPLY_JOB,
                    until,
                    _job_id=job_id(self._settings, window),
                    _queue_name=self._queue,
                    _defer_until=None if at is None else at.astimezone(UTC),
                ),
                timeout=self._timeout,
            )
        except BaseException:
            if self._woken == window and at is None:
                self._woken = None  # not queued: the next delivery tries again
            raise
        return job is not None

    async def workers(self) -> dict[str, Any]:
        """The workers' liveness (service/queue/heartbeat.py)."""
        return await heartbeat.liveness(self._redis, self._settings)

    async def ping(self) -> None:
        await self._redis.ping()

    async def reconcile_now(self, trigger: str) -> bool:
        """Queue a reconcile of every instance with a key; False when one asked for this way is
        still queued or running (arq refuses a second job with a live id)."""
        job = await asyncio.wait_for(
            self._redis.enqueue_job(
                reconcile_job_name(self._settings),
                trigger,
                _job_id=f"{self._settings.redis.queue_prefix}:{RECONCILE_NOW_JOB_ID}",
                _queue_name=self._queue,
            ),
            timeout=self._timeout,
        )
        return job is not None

    async def close(self) -> None:
        await self._redis.aclose()
        await self._redis.connection_pool.disconnect()
