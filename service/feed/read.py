"""Reading and pruning the change feed. Apps read by `seq` (their own cursor) and may LISTEN
on `clerk_replica_changes` (PostgreSQL) to know when to read again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.feed.changes import changes


async def after(conn: AsyncConnection, seq: int, limit: int) -> Sequence[dict[str, Any]]:
    """Up to `limit` changes with a `seq` above `seq`, in order."""
    result = await conn.execute(
        select(changes).where(changes.c.seq > seq).order_by(changes.c.seq).limit(limit)
    )
    return [dict(row) for row in result.mappings()]


async def last_seq(conn: AsyncConnection) -> int:
    """The highest `seq` (0 for an empty feed)."""
    return int(await conn.scalar(select(func.coalesce(func.max(changes.c.seq), 0))) or 0)


async def prune(engine: AsyncEngine, before: datetime, *, batch: int, batches: int) -> int:
    """Delete changes made before `before`, in at most `batches` short transactions of `batch`
    (the oldest first); how many."""
    deleted = 0
    for _ in range(batches):
        chosen = (
            select(changes.c.seq)
            .where(changes.c.changed_at < before)
            .order_by(changes.c.seq)
            .limit(batch)
            .scalar_subquery()
        )
        async with engine.begin() as conn:
            done = int(
                (await conn.execute(delete(changes).where(changes.c.seq.in_(chosen)))).rowcount or 0
            )
        deleted += done
        if done < batch:
            break
    return deleted
