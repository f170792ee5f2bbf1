"""Parent locks: asked for once per transaction, again in the next; a second writer of the same
parent waits on PostgreSQL; nothing at all on SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.replica.locks import lock_parents

_HELD = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")


@pytest.fixture
def lock_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The advisory-lock statements the engine sends (real SQL, observed on its way out)."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "pg_advisory_xact_lock" in statement:
            sent.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    yield sent
    event.remove(engine.sync_engine, "before_cursor_execute", record)


async def held(conn: AsyncConnection) -> int:
    return int(await conn.scalar(_HELD) or 0)


async def test_locks_are_asked_for_once_per_transaction(
    engine: AsyncEngine, db_url: str, lock_statements: list[str]
) -> None:
    pg = db_url.startswith("postgresql")
    async with engine.connect() as conn:
        async with conn.begin():
            await lock_parents(conn, ["u_b", "u_a", "u_a"])
            await lock_parents(conn, ["u_a", "u_b"])
            assert len(lock_statements) == (1 if pg else 0)
            await lock_parents(conn, ["u_a", "u_c"])
            assert len(lock_statements) == (2 if pg else 0)
            if pg:
                assert await held(conn) == 3
        async with conn.begin():
            if pg:
                assert await held(conn) == 0  # released with the transaction
            await lock_parents(conn, ["u_a"])
            assert len(lock_statements) == (3 if pg else 0)
            if pg:
                assert await held(conn) == 1
        async with conn.begin():
            await lock_parents(conn, [])
            assert len(lock_statements) == (3 if pg else 0)


async def test_a_concurrent_writer_of_the_same_parent_waits(pg_engine: AsyncEngine) -> None:
    async with pg_engine.connect() as first, pg_engine.connect() as second:
        await first.begin()
        await lock_parents(first, ["user_1", "org_1"])
        await second.begin()
        await asyncio.wait_for(lock_parents(second, ["user_2"]), timeout=5)
        waiting = asyncio.create_task(lock_parents(second, ["org_1"]))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await first.commit()
        await asyncio.wait_for(waiting, timeout=5)
        assert await held(second) == 2
        await second.commit()


async def test_sqlite_takes_no_locks(sqlite_db_url: str, redis_url: str) -> None:
    from service.db.engine import create_engine
    from tests.support.settings import make_settings

    engine = create_engine(make_settings(sqlite_db_url, redis_url))
    try:
        async with engine.connect() as first, engine.connect() as second:
            await first.begin()
            await lock_parents(first, ["user_1"])
            # A second connection is not held up (SQLite serialises writers itself).
            await asyncio.wait_for(lock_parents(second, ["user_1"]), timeout=1)
            await first.rollback()
    finally:
        await engine.dispose()
