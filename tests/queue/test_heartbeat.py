"""Worker liveness: a running worker beats into Redis, a stopped one leaves, and the beats say
how many are alive and when the newest was."""

from __future__ import annotations

import asyncio
import time

from service.config import Settings
from service.queue import heartbeat
from service.queue.client import connect
from service.queue.worker import _shutdown, _startup


async def test_beats_tell_alive_workers_from_gone_ones(settings: Settings) -> None:
    redis = connect(settings)
    try:
        now = time.time()
        assert await heartbeat.liveness(redis, settings, now) == {
            "alive": 0,
            "last_heartbeat": None,
            "last_heartbeat_age_seconds": None,
        }
        period = settings.worker.heartbeat_seconds
        await heartbeat.beat(redis, settings, "host:1", now - 10 * period)  # stopped beating
        found = await heartbeat.liveness(redis, settings, now)
        assert found["alive"] == 0 and found["last_heartbeat"] == now - 10 * period
        await heartbeat.beat(redis, settings, "host:2", now - period)
        await heartbeat.beat(redis, settings, "host:3", now)
        found = await heartbeat.liveness(redis, settings, now)
        assert found["alive"] == 2 and found["last_heartbeat"] == now
        # A beat older than a day is forgotten by the next beat.
        await heartbeat.beat(redis, settings, "host:4", now - 2 * 86_400)
        await heartbeat.beat(redis, settings, "host:3", now)
        members = await redis.zrange(heartbeat.heartbeat_key(settings), 0, -1)
        assert b"host:4" not in members
    finally:
        await redis.aclose()
        await redis.connection_pool.disconnect()


async def test_a_running_worker_beats_and_leaves_when_it_stops(settings: Settings) -> None:
    redis = connect(settings)
    ctx = {"settings": settings, "redis": redis}
    try:
        await _startup(ctx)
        deadline = time.monotonic() + 10
        while (await heartbeat.liveness(redis, settings))["alive"] != 1:
            assert time.monotonic() < deadline, "the worker never beat"
            await asyncio.sleep(0.05)
        await _shutdown(ctx)
        assert (await heartbeat.liveness(redis, settings))["alive"] == 0
    finally:
        await redis.aclose()
        await redis.connection_pool.disconnect()
