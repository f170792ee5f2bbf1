"""Writers of the same parent object (a user, an organization) take turns.

Without it, under READ COMMITTED, a child checked against a live parent can commit after the
parent's deletion ended its siblings, and stay live. Transaction-scoped locks, taken in one
statement in a fixed order; a database with a single writer needs none.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.dialect import dialect_of

_HELD_KEY = "clerk_replica_parent_locks"


async def lock_parents(conn: AsyncConnection, ids: Iterable[str]) -> None:
    """Lock `ids` for the rest of the transaction. Locks this transaction already holds are
    not asked for again (a batch takes all of its events' locks up front; the writes it then
    calls ask for theirs)."""
    dialect = dialect_of(conn)
    if not dialect.concurrent_writers:
        return
    transaction = conn.sync_connection.get_transaction() if conn.sync_connection else None
    held_by, held = conn.info.get(_HELD_KEY, (None, set()))
    if held_by is not transaction:
        held = set()
        conn.info[_HELD_KEY] = (transaction, held)
    keys = sorted(set(ids) - held)
    if not keys:
        return
    held.update(keys)
    await dialect.lock_keys(conn, keys)
