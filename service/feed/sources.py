"""A writing transaction names what it applies (each event's object, or a reconcile run) for
the feed's triggers to copy into the changes it causes, and takes the feed's lock first.

The lock is why `seq` increases in commit order: a reader that has seen seq N never later
finds a smaller one committed (rows of a transaction still running hold larger numbers than
any committed before it). Taken before any other lock of the transaction, it cannot deadlock;
on SQLite the one writer already serialises everything. The cost: on PostgreSQL, transactions
that change the replica commit one at a time (the apply benchmark shows it).

The sources live only inside the block: on PostgreSQL in a setting local to the transaction
(nothing is written for them), on SQLite in `clerk_replica_change_sources` (inserted here,
deleted on the way out). A transaction that names none (an app's own write) records none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from service.feed.changes import change_sources
from service.feed.dialects import FeedSource, feed_dialect_of


@asynccontextmanager
async def attributed(
    conn: AsyncConnection,
    *,
    enabled: bool,
    events: Iterable[tuple[str, str, str | None]] = (),
    run_id: str | None = None,
    instance_id: str | None = None,
    runs: Iterable[tuple[str, str, str | None]] = (),
) -> AsyncIterator[None]:
    """Within the block, changes name their event (`events`: (object id, svix id, instance
    id); the last of an object wins), a run by object (`runs`: (object id, run id, instance
    id)), or `run_id` (of the instance `instance_id`). At its end (the transaction still
    open), listeners are told the feed grew. `enabled` False (CHANGE_FEED off): nothing."""
    if not enabled:
        yield
        return
    dialect = feed_dialect_of(conn)
    named: dict[str, FeedSource] = {
        object_id: (instance, None, run) for object_id, run, instance in runs
    }
    named.update({object_id: (instance, svix, None) for object_id, svix, instance in events})
    if run_id is not None:
        named["*"] = (instance_id, None, run_id)
    await dialect.begin(conn, named)
    in_table = not dialect.sources_in_setting
    if in_table:
        await conn.execute(delete(change_sources))
        if named:
            rows = [
                {"object_id": o, "instance_id": i, "svix_id": s, "run_id": r}
                for o, (i, s, r) in named.items()
            ]
            await conn.execute(insert(change_sources), rows)
    yield
    if in_table:
        await conn.execute(delete(change_sources))
    await dialect.end(conn)
