"""Planner statistics while a backfill grows a table: ANALYZE on PostgreSQL, nothing on SQLite."""

from __future__ import annotations

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.engine import create_engine
from service.reconcile.statistics import Statistics
from tests.support import tables as t
from tests.support.settings import make_settings

# By regclass, not by name: the clerk_fdw schema holds a view of the same name (reltuples -1).
_RELTUPLES = text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)")


async def add_users(engine: AsyncEngine, first: int, count: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(t.users), [{"id": f"user_{n:05}"} for n in range(first, first + count)]
        )


async def reltuples(engine: AsyncEngine) -> float:
    async with engine.connect() as conn:
        return float(await conn.scalar(_RELTUPLES, {"t": "clerk_users"}) or 0)


async def test_growth_past_the_known_rows_analyzes(pg_engine: AsyncEngine) -> None:
    stats = Statistics(pg_engine, [t.users])
    assert stats.enabled
    await add_users(pg_engine, 0, 600)
    await stats.grew(600)  # under the floor of a first ANALYZE: nothing yet
    assert await reltuples(pg_engine) <= 0
    await add_users(pg_engine, 600, 600)
    await stats.grew(600)
    assert await reltuples(pg_engine) == 1200
    assert (stats.known, stats.created) == (1200, 0)
    await stats.grew(0)
    assert stats.created == 0


async def test_a_full_analyze_refreshes_every_table(pg_engine: AsyncEngine) -> None:
    await add_users(pg_engine, 0, 30)
    stats = Statistics(pg_engine, [t.users, t.email_addresses])
    await stats.analyze(stats.tables)
    assert await reltuples(pg_engine) == 30


async def test_sqlite_keeps_no_statistics(sqlite_db_url: str, redis_url: str) -> None:
    engine = create_engine(make_settings(sqlite_db_url, redis_url))
    try:
        stats = Statistics(engine, [t.users])
        assert not stats.enabled
        await add_users(engine, 0, 1500)
        await stats.grew(1500)
        await stats.analyze([t.users])
        assert (stats.known, stats.created) == (None, 0)
        async with engine.connect() as conn:
            found = await conn.execute(
                text("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'")
            )
            assert found.first() is None  # no ANALYZE ever ran
    finally:
        await engine.dispose()
