"""A writing transaction names what it applies (each event's object, or a reconcile run) for
the feed's triggers to copy into the changes it causes, and takes the feed's lock first.

The lock is why `seq` increases in commit order: a reader that has seen seq N never later
finds a smaller one committed (rows of a transaction still running hold larger numbers than
any committed before it). Taken before any other lock of the transaction, it cannot deadlock;
on SQLite the one writer already serialises everything. The cost: on PostgreSQL, transactions
that change the replica commit one at a time (the apply benchmark shows it).

The sources live only inside the transaction (inserted here, deleted on the way out), so a
transaction that names none (an app's own write) records none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.dialect import dialect_of
from service.feed.table import change_sources, changes

FEED_LOCK = ":changes"  # lock_keys key; the triggers take the same lock (dialect.FEED_LOCK_KEY)


@asynccontextmanager
async def attributed(
    conn: AsyncConnection,
    *,
    enabled: bool,
    events: Iterable[tuple[str, str, str | None]] = (),
    run_id: str | None = None,
) -> AsyncIterator[None]:
    """Within the block, changes name their event (`events`: (object id, svix id, instance
    id); the last of an object wins) or `run_id`. At its end (the transaction still open),
    listeners are told the feed grew. `enabled` False (CHANGE_FEED off): nothing at all."""
    if not enabled:
        yield
        return
    dialect = dialect_of(conn)
    await dialect.lock_keys(conn, [FEED_LOCK])
    last = int(await conn.scalar(select(func.coalesce(func.max(changes.c.seq), 0))) or 0)
    rows = {
        object_id: {
            "object_id": object_id,
            "svix_id": svix,
            "instance_id": instance,
            "run_id": None,
        }
        for object_id, svix, instance in events
    }
    if run_id is not None:
        rows["*"] = {"object_id": "*", "svix_id": None, "instance_id": None, "run_id": run_id}
    await conn.execute(delete(change_sources))
    if rows:
        await conn.execute(insert(change_sources), list(rows.values()))
    yield
    await conn.execute(delete(change_sources))
    await dialect.notify_changes(conn, last)
