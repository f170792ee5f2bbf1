"""The lease lock on PostgreSQL and SQLite: one holder at a time, renewed while held, taken over
once expired, and a holder that loses its lease is stopped."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.reconcile.lock import AlreadyRunning, LeaseLock, LeaseLost, locks

NAME = "test-lock"


async def lease(engine: AsyncEngine) -> tuple[str, datetime] | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(locks).where(locks.c.name == NAME))).first()
    return None if row is None else (row.holder, row.expires_at)


async def expire(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(locks).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


async def test_one_holder_at_a_time_until_it_releases(engine: AsyncEngine) -> None:
    first, second = LeaseLock(engine, NAME, 60), LeaseLock(engine, NAME, 60)
    assert first.holder != second.holder
    before = datetime.now(UTC)
    assert await first.acquire() is True
    assert await second.acquire() is False
    held = await lease(engine)
    assert held is not None and held[0] == first.holder
    assert before + timedelta(seconds=59) <= held[1] <= datetime.now(UTC) + timedelta(seconds=60)
    await second.release()  # not its lease: nothing changes
    assert await lease(engine) == held
    await first.release()
    assert await lease(engine) is None
    assert await second.acquire() is True
    assert await LeaseLock(engine, "another-lock", 60).acquire() is True  # names are apart


async def test_renew_extends_only_the_holders_lease(engine: AsyncEngine) -> None:
    holder, other = LeaseLock(engine, NAME, 60), LeaseLock(engine, NAME, 60)
    assert await holder.renew() is False  # nothing held yet
    assert await holder.acquire()
    await expire(engine)
    assert await other.renew() is False
    assert await holder.renew() is True
    held = await lease(engine)
    assert held is not None and held[1] > datetime.now(UTC) + timedelta(seconds=59)


async def test_an_expired_lease_is_taken_over_and_its_old_holder_cannot_renew(
    engine: AsyncEngine,
) -> None:
    dead, alive = LeaseLock(engine, NAME, 60), LeaseLock(engine, NAME, 60)
    assert await dead.acquire()
    await expire(engine)  # the holder crashed; its lease ran out
    assert await alive.acquire() is True
    held = await lease(engine)
    assert held is not None and held[0] == alive.holder
    assert await dead.renew() is False
    await dead.release()
    assert await lease(engine) is not None


async def test_a_lease_expires_after_its_ttl(engine: AsyncEngine) -> None:
    assert await LeaseLock(engine, NAME, 1).acquire()
    waiting = LeaseLock(engine, NAME, 60)
    assert await waiting.acquire() is False
    await asyncio.sleep(1.2)
    assert await waiting.acquire() is True


async def test_held_refuses_a_second_holder_and_releases_at_the_end(engine: AsyncEngine) -> None:
    first, second = LeaseLock(engine, NAME, 60), LeaseLock(engine, NAME, 60)
    async with first.held():
        with pytest.raises(AlreadyRunning, match=NAME):
            async with second.held():
                raise AssertionError("the block must not run")
    assert await lease(engine) is None
    async with second.held():
        held = await lease(engine)
        assert held is not None and held[0] == second.holder


async def test_held_renews_in_the_background(engine: AsyncEngine) -> None:
    short = LeaseLock(engine, NAME, 1)  # renewed every third of a second
    async with short.held():
        await asyncio.sleep(1.5)  # past the TTL: only renewals keep the lease
        assert await LeaseLock(engine, NAME, 60).acquire() is False


async def test_a_holder_that_loses_its_lease_gets_lease_lost(engine: AsyncEngine) -> None:
    short, thief = LeaseLock(engine, NAME, 1), LeaseLock(engine, NAME, 60)
    finished = False
    with pytest.raises(LeaseLost, match=NAME):
        async with short.held():
            await expire(engine)
            assert await thief.acquire()
            await asyncio.sleep(5)  # the next renewal finds the lease taken and stops this
            finished = True
    assert finished is False
    held = await lease(engine)
    assert held is not None and held[0] == thief.holder  # the thief's lease is left alone
