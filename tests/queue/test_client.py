"""Wake-ups against the real Redis: one job per window, `at` defers, a Redis that does not
answer fails the wake-up within the timeout and the next one tries again."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from arq.jobs import JobDef
from redis.exceptions import RedisError

from service.config import Settings
from service.dev.ports import free_port
from service.queue.client import (
    APPLY_JOB,
    Enqueuer,
    connect,
    job_id,
    queue_name,
    reconcile_job_name,
)
from tests.support.settings import make_settings


async def test_deliveries_in_one_window_share_one_job(settings: Settings) -> None:
    # An hour-long window (beyond what config allows) so that it cannot turn during the test.
    wide = settings.updated(worker_wake_window_ms=3_600_000)
    redis = connect(wide)
    enqueuer = Enqueuer(redis, wide)
    try:
        woke = [await enqueuer.wake() for _ in range(5)]
        # Another web process in the same window: arq refuses the job id it already holds.
        other = Enqueuer(connect(wide), wide)
        try:
            assert await other.wake() is False
        finally:
            await other.close()
        queued = await redis.queued_jobs(queue_name=queue_name(wide))
    finally:
        await enqueuer.close()
    assert woke == [True, False, False, False, False]
    assert len(queued) == 1


async def test_a_failed_wake_up_is_tried_again_by_the_next_delivery(settings: Settings) -> None:
    down = settings.updated(
        redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_timeout_seconds=0.3
    )
    enqueuer = Enqueuer(connect(down), down)
    try:
        for _ in range(2):  # not remembered as done: each delivery tries Redis again
            with pytest.raises((OSError, RedisError, asyncio.TimeoutError)):
                await enqueuer.wake()
    finally:
        await enqueuer.close()


@pytest.fixture
async def enqueuer(settings: Settings) -> AsyncIterator[Enqueuer]:
    enqueuer = Enqueuer(connect(settings), settings)
    yield enqueuer
    await enqueuer.close()


async def queued(settings: Settings) -> list[JobDef]:
    redis = connect(settings)
    try:
        return await redis.queued_jobs(queue_name=queue_name(settings))
    finally:
        await redis.aclose()
        await redis.connection_pool.disconnect()


def test_job_ids_and_the_queue_carry_the_prefix(db_url: str, redis_url: str) -> None:
    one = make_settings(db_url, redis_url, queue_prefix="replica-a")
    other = make_settings(db_url, redis_url, queue_prefix="replica-b")
    assert (job_id(one, 42), queue_name(one)) == ("replica-a:apply:42", "replica-a:queue")
    assert job_id(other, 42) != job_id(one, 42) and queue_name(other) != queue_name(one)


async def test_a_wake_queues_one_drain_job_named_for_its_window(settings: Settings) -> None:
    wide = settings.updated(worker_wake_window_ms=3_600_000)
    enqueuer = Enqueuer(connect(wide), wide)
    try:
        before = time.time()
        assert await enqueuer.wake() is True
        (job,) = await queued(wide)
    finally:
        await enqueuer.close()
    window = int(before * 1000) // 3_600_000
    assert (job.function, job.job_id) == (APPLY_JOB, job_id(wide, window))
    # The job drains until its window has closed.
    assert job.args == ((window + 1) * 3_600.0,)


async def test_the_next_window_queues_a_job_of_its_own(settings: Settings) -> None:
    narrow = settings.updated(worker_wake_window_ms=50)
    enqueuer = Enqueuer(connect(narrow), narrow)
    try:
        assert await enqueuer.wake() is True
        await asyncio.sleep(0.12)
        assert await enqueuer.wake() is True
    finally:
        await enqueuer.close()
    assert len({job.job_id for job in await queued(narrow)}) == 2


async def test_at_defers_the_job_and_leaves_the_current_window_free(
    settings: Settings, enqueuer: Enqueuer
) -> None:
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    assert await enqueuer.wake(at=later) is True
    assert await enqueuer.wake(at=later) is False  # arq still holds that window's job id
    assert [job.score for job in await queued(settings)] == [int(later.timestamp() * 1000)]
    # A deferred wake-up is not this window's: the next delivery still queues one now.
    assert await enqueuer.wake() is True
    assert len(await queued(settings)) == 2


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """A listener that completes the TCP handshake (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


async def test_a_redis_that_does_not_answer_fails_within_the_timeout_every_time(
    settings: Settings, silent_redis: str
) -> None:
    mute = settings.updated(redis_url=silent_redis, redis_timeout_seconds=0.3)
    enqueuer = Enqueuer(connect(mute), mute)
    try:
        for _ in range(2):  # the failed window is not remembered: the next wake tries again
            started = time.monotonic()
            with pytest.raises((OSError, RedisError, asyncio.TimeoutError)):
                await enqueuer.wake()
            assert time.monotonic() - started < 2
    finally:
        await enqueuer.close()


async def test_reconcile_now_queues_the_workers_reconcile_job_once(settings: Settings) -> None:
    redis = connect(settings)
    enqueuer = Enqueuer(redis, settings)
    try:
        assert await enqueuer.reconcile_now("console") is True
        assert await enqueuer.reconcile_now("console") is False  # still queued
        (job,) = await redis.queued_jobs(queue_name=queue_name(settings))
    finally:
        await enqueuer.close()
    assert isinstance(job, JobDef)
    assert job.function == reconcile_job_name(settings) and job.args == ("console",)
