"""Worker liveness: each running worker writes its beat (a Unix time) into one Redis sorted set
per queue prefix, every WORKER_HEARTBEAT_SECONDS; `status` and the web's /metrics read it.
Members are `host:pid` of the worker process (no personal data); beats older than a day are
trimmed, so the set stays the size of the recent fleet."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from contextlib import suppress
from typing import Any

from redis.asyncio import Redis

from service.config import Settings, masked_url
from service.db.errors import describe
from service.logs import get_logger

log = get_logger(__name__)

_KEEP_SECONDS = 86_400


def heartbeat_key(settings: Settings) -> str:
    return f"{settings.redis.queue_prefix}:workers"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def beat(redis: Redis, settings: Settings, name: str, now: float | None = None) -> None:
    """Record that worker `name` is alive now, and forget beats older than a day."""
    at = time.time() if now is None else now
    key = heartbeat_key(settings)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zadd(key, {name: at})
        pipe.zremrangebyscore(key, "-inf", at - _KEEP_SECONDS)
        pipe.expire(key, _KEEP_SECONDS)
        await pipe.execute()


async def stop(redis: Redis, settings: Settings, name: str) -> None:
    """A worker that stops cleanly leaves the set at once."""
    await redis.zrem(heartbeat_key(settings), name)


async def beat_forever(redis: Redis, settings: Settings, name: str) -> None:
    """Beat every WORKER_HEARTBEAT_SECONDS until cancelled; a Redis error skips one beat."""
    while True:
        try:
            await asyncio.wait_for(
                beat(redis, settings, name), timeout=settings.redis.timeout_seconds
            )
        except Exception as exc:
            log.warning("worker.heartbeat_failed", error=describe(exc))
        await asyncio.sleep(settings.worker.heartbeat_seconds)


async def liveness(redis: Redis, settings: Settings, now: float | None = None) -> dict[str, Any]:
    """Workers whose last beat is within three periods, and the newest beat's time (None:
    no worker has beaten for a day)."""
    at = time.time() if now is None else now
    beats: list[tuple[bytes, float]] = await asyncio.wait_for(
        redis.zrange(heartbeat_key(settings), 0, -1, withscores=True),
        timeout=settings.redis.timeout_seconds,
    )
    alive_after = at - 3 * settings.worker.heartbeat_seconds
    latest = max((score for _, score in beats), default=None)
    return {
        "alive": sum(1 for _, score in beats if score >= alive_after),
        "last_heartbeat": latest,
        "last_heartbeat_age_seconds": None if latest is None else round(at - latest, 1),
    }


def start(redis: Redis, settings: Settings) -> asyncio.Task[None]:
    """This worker process's heartbeat, beating in the background; logs what it works on."""
    log.info(
        "worker.started",
        database=masked_url(settings.database.url),
        redis=masked_url(settings.redis.url),
    )
    return asyncio.create_task(beat_forever(redis, settings, worker_name()))


async def end(task: asyncio.Task[None], redis: Redis, settings: Settings) -> None:
    """Stop beating and leave the set (best effort: Redis may be gone)."""
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    with suppress(Exception):
        await stop(redis, settings, worker_name())
