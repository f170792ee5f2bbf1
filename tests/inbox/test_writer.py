"""Group commit: concurrent deliveries share commits, and each still learns its own outcome;
no delivery is left hanging when the database stalls (a table locked by another session):
each gets a StalledError in bounded time, a cap refuses new ones at once, and a dead flusher
is started again. SQLite locked by another process: tests/system/test_stalls.py."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.db.engine import create_engine
from service.dev.ports import free_port
from service.inbox.store import Delivery, Status, inbox
from service.inbox.writer import InboxWriter, StalledError
from tests.support.databases import inbox_locked


def delivery(svix_id: str) -> Delivery:
    return Delivery(svix_id, "user.created", "{}", 1, "user_1", Status.PENDING)


async def stored(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(inbox))).scalar() or 0)


async def test_concurrent_deliveries_are_each_stored_once(engine: AsyncEngine) -> None:
    writer = InboxWriter(engine, max_batch=16)
    ids = [f"msg_{i}" for i in range(60)] + [f"msg_{i}" for i in range(0, 60, 6)]
    try:
        outcomes = await asyncio.gather(*(writer.record(delivery(i)) for i in ids))
        # A redelivery arriving later is still known as one.
        assert await writer.record(delivery("msg_3")) is False
    finally:
        await writer.close()
    assert await stored(engine) == 60
    new_per_id: dict[str, int] = {}
    for svix_id, is_new in zip(ids, outcomes, strict=True):
        new_per_id[svix_id] = new_per_id.get(svix_id, 0) + is_new
    assert set(new_per_id.values()) == {1}


async def test_a_failed_commit_fails_every_delivery_in_it(settings: Settings) -> None:
    dead = create_engine(settings, url=f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    writer = InboxWriter(dead)
    try:
        results = await asyncio.gather(
            *(writer.record(delivery(f"msg_{i}")) for i in range(5)), return_exceptions=True
        )
    finally:
        await writer.close()
        await dead.dispose()
    # Each caller gets the database's error (ingest answers 503 and Svix retries).
    assert [type(r) for r in results if not isinstance(r, Exception)] == []


async def test_a_kept_connection_lost_to_a_restart_is_replaced(pg_engine: AsyncEngine) -> None:
    writer = InboxWriter(pg_engine)
    try:
        assert await writer.record(delivery("msg_before")) is True
        # As a database restart would: every other session of this database is ended.
        async with pg_engine.connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        assert await writer.record(delivery("msg_after")) is True
    finally:
        await writer.close()
    assert await stored(pg_engine) == 2


async def test_a_cancelled_request_does_not_cancel_the_write_it_shares(
    engine: AsyncEngine,
) -> None:
    writer = InboxWriter(engine)
    try:
        tasks = [asyncio.create_task(writer.record(delivery(f"msg_{i}"))) for i in range(5)]
        await asyncio.sleep(0)  # all five are waiting for the same batch
        tasks[2].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[2], asyncio.CancelledError)
        assert [r for n, r in enumerate(results) if n != 2] == [True] * 4
        # A later delivery is written as usual: the flusher survived the cancelled waiter.
        assert await writer.record(delivery("msg_later")) is True
    finally:
        await writer.close()
    assert await stored(engine) == 6  # the cancelled request's row too: it was in the batch


async def test_a_locked_inbox_answers_in_bounded_time(
    pg_engine: AsyncEngine, pg_db_url: str
) -> None:
    writer = InboxWriter(pg_engine, timeout_seconds=0.5)
    try:
        assert await writer.record(delivery("msg_warm")) is True  # a kept connection
        async with inbox_locked(pg_db_url):
            started = time.monotonic()
            results = await asyncio.gather(
                *(writer.record(delivery(f"msg_{i}")) for i in range(5)), return_exceptions=True
            )
            waited = time.monotonic() - started
        assert all(isinstance(r, StalledError) for r in results), results
        assert waited < 2.0
        # The database answers again: so does the writer (the stuck connection was replaced).
        assert await asyncio.wait_for(writer.record(delivery("msg_after")), 5) is True
    finally:
        await writer.close()


async def test_past_the_cap_a_delivery_is_refused_at_once(
    pg_engine: AsyncEngine, pg_db_url: str
) -> None:
    writer = InboxWriter(pg_engine, timeout_seconds=2, max_waiting=3)
    try:
        async with inbox_locked(pg_db_url):
            first = asyncio.create_task(writer.record(delivery("msg_in_flight")))
            await asyncio.sleep(0.1)  # taken by the flusher, which now waits on the lock
            waiting = [asyncio.create_task(writer.record(delivery(f"msg_{i}"))) for i in range(3)]
            await asyncio.sleep(0)
            started = time.monotonic()
            with pytest.raises(StalledError, match="already wait"):
                await writer.record(delivery("msg_one_too_many"))
            assert time.monotonic() - started < 0.1
            for task in (first, *waiting):
                with pytest.raises(StalledError):
                    await task
    finally:
        await writer.close()


async def test_a_dead_flusher_is_reported_and_started_again(engine: AsyncEngine) -> None:
    writer = InboxWriter(engine)
    try:
        assert writer.alive()
        assert await writer.record(delivery("msg_1")) is True
        flusher = writer._flusher  # as a crash would: the task ends
        assert flusher is not None
        flusher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flusher
        assert not writer.alive()
        assert await writer.record(delivery("msg_2")) is True
        assert writer.alive()
    finally:
        await writer.close()
