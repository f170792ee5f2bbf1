"""The feed's per-database SQL: each database gets its own, the triggers it makes record into
the feed's declared tables, and a listener is woken by a committed change on PostgreSQL while
SQLite says it cannot tell."""

from __future__ import annotations

import asyncio

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from service.feed import sources
from service.feed.changes import change_sources, changes
from service.feed.dialects import (
    PostgreSQLFeed,
    SQLiteFeed,
    feed_dialect_of,
    listen_changes,
)
from tests.support import tables as t


async def test_each_database_gets_its_own_feed_sql(engine: AsyncEngine, db_url: str) -> None:
    pg = db_url.startswith("postgresql")
    async with engine.connect() as conn:
        found = feed_dialect_of(conn)
    assert isinstance(found, PostgreSQLFeed if pg else SQLiteFeed)
    # PostgreSQL hands the sources over in a transaction setting; SQLite writes them.
    assert found.sources_in_setting is pg


def test_the_triggers_write_into_the_declared_feed_tables() -> None:
    for feed in (PostgreSQLFeed(), SQLiteFeed()):
        ddl = " ".join(feed.triggers(t.users, ["id"]))
        assert f"INSERT INTO {changes.name} (" in ddl
        drops = feed.drop_triggers(t.users)
        assert drops and all(t.users.name in statement for statement in drops)
    assert change_sources.name in " ".join(SQLiteFeed().triggers(t.users, ["id"]))


async def test_a_listener_is_woken_by_a_committed_change(engine: AsyncEngine, db_url: str) -> None:
    woken = asyncio.Event()
    async with engine.connect() as listener:
        listening = await listen_changes(listener, woken.set)
        assert listening is db_url.startswith("postgresql")
        async with engine.begin() as conn, sources.attributed(conn, enabled=True, run_id="r"):
            await conn.execute(insert(t.users), [{"id": "user_heard"}])
        if listening:
            await asyncio.wait_for(woken.wait(), timeout=5)
        else:
            await asyncio.sleep(0.2)
            assert not woken.is_set()
