"""Jobs in Redis are JSON: a pickled job written by whoever can reach Redis runs nothing in the
worker; it is logged by id and dropped, and the worker goes on with the next job."""

from __future__ import annotations

import asyncio
import logging
import pickle
import time
from pathlib import Path
from typing import Any

import pytest
from arq.constants import job_key_prefix
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.queue import codec
from service.queue.client import APPLY_JOB, Enqueuer, connect, queue_name
from service.queue.worker import build_worker


class _Touch:
    """Unpickling this creates `path`: the stand-in for code an attacker gets run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


async def _burst(settings: Settings) -> None:
    worker = build_worker(settings, burst=True, with_cron=False)
    try:
        await asyncio.wait_for(worker.main(), timeout=60)
    finally:
        await worker.close()


async def test_a_pickled_job_runs_nothing_and_is_dropped(
    settings: Settings, engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "ran"
    job = {"f": APPLY_JOB, "a": [time.time()], "k": {}, "t": 1, "et": 0, "x": _Touch(marker)}
    redis = connect(settings)
    try:
        await redis.set(job_key_prefix + "planted", pickle.dumps(job))
        await redis.zadd(queue_name(settings), {"planted": 1})
        # A job of ours queued behind it is still taken.
        await Enqueuer(redis, settings).wake()
        with caplog.at_level(logging.INFO, logger="arq.worker"):
            await _burst(settings)
        assert not marker.exists()
        assert await redis.exists(job_key_prefix + "planted") == 0
        assert await redis.zcard(queue_name(settings)) == 0
    finally:
        await redis.aclose()
        await redis.connection_pool.disconnect()
    dropped = [r for r in caplog.records if "planted" in r.getMessage()]
    assert dropped and dropped[0].levelno >= logging.WARNING
    ran = [r for r in caplog.records if APPLY_JOB in r.getMessage() and "●" in r.getMessage()]
    assert ran  # arq's line for a finished job


async def test_jobs_are_written_as_json(settings: Settings) -> None:
    redis = connect(settings)
    try:
        await Enqueuer(redis, settings).wake()
        (key,) = await redis.keys(f"{job_key_prefix}{settings.redis.queue_prefix}:*")
        stored = codec.decode(await redis.get(key))
    finally:
        await redis.aclose()
        await redis.connection_pool.disconnect()
    assert stored["f"] == APPLY_JOB


def test_anything_but_a_json_object_is_refused() -> None:
    for data in (pickle.dumps({"f": APPLY_JOB}), b"[1]", b"\xff"):
        with pytest.raises(ValueError):
            codec.decode(data)
    assert codec.decode(codec.encode({"r": ValueError("x")})) == {"r": "x"}
