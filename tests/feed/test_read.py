"""Reading the feed by seq, and pruning it after CHANGES_RETENTION_DAYS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.feed import read
from service.feed.changes import changes
from tests.support import tables as t


async def test_after_reads_in_order_from_a_seq_and_prune_keeps_the_recent(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(t.users), [{"id": f"user_read_{n}"} for n in range(5)])
    async with engine.connect() as conn:
        everything = list(await read.after(conn, 0, 100))
        assert [c["object_id"] for c in everything] == [f"user_read_{n}" for n in range(5)]
        assert await read.last_seq(conn) == everything[-1]["seq"]
        assert list(await read.after(conn, everything[1]["seq"], 2)) == everything[2:4]
    old = datetime.now(UTC) - timedelta(days=8)
    async with engine.begin() as conn:
        await conn.execute(
            update(changes).where(changes.c.seq <= everything[2]["seq"]).values(changed_at=old)
        )
    cutoff = datetime.now(UTC) - timedelta(days=7)
    assert await read.prune(engine, cutoff, batch=2, batches=5) == 3
    async with engine.connect() as conn:
        assert list(await read.after(conn, 0, 100)) == everything[3:]
    assert await read.prune(engine, cutoff, batch=2, batches=5) == 0
