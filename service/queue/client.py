"""Enqueue side: jobs carry only the inbox id, under a job id that deduplicates them."""

from __future__ import annotations

import asyncio

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool

from service.config import Settings

APPLY_JOB = "apply_event"


def job_id(settings: Settings, svix_id: str) -> str:
    # While a job with this id is queued or retrying, arq refuses a second one; apply jobs keep
    # no result, so once it finished the sweep can queue the id again. arq's job keys are global
    # to the Redis database, hence the prefix.
    return f"{settings.queue_prefix}:apply:{svix_id}"


def queue_name(settings: Settings) -> str:
    return f"{settings.queue_prefix}:queue"


def connect(settings: Settings) -> ArqRedis:
    """A lazy pool: nothing connects until the first command, so a Redis outage at start-up
    does not stop ingest from answering (the sweep queues what it stored meanwhile)."""
    pool = ConnectionPool.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.redis_timeout_seconds,
        socket_timeout=settings.redis_timeout_seconds,
    )
    return ArqRedis(pool, default_queue_name=queue_name(settings))


class Enqueuer:
    def __init__(self, redis: ArqRedis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings
        self._queue = queue_name(settings)
        self._timeout = settings.redis_timeout_seconds

    async def enqueue_apply(self, svix_id: str) -> bool:
        """True when queued now, False when a job for this id is already queued or running."""
        job = await asyncio.wait_for(
            self._redis.enqueue_job(
                APPLY_JOB, svix_id, _job_id=job_id(self._settings, svix_id), _queue_name=self._queue
            ),
            timeout=self._timeout,
        )
        return job is not None

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()
        await self._redis.connection_pool.disconnect()
