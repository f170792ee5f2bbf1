"""What a listed page changes: which objects the replica has no row for, which it holds older
(or without naming their instance), and which are unchanged (a nightly run over an unchanged
instance then writes nothing but its checkpoints, and a first run can copy what is new)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.clerk.rows import Snapshot
from service.db.chunks import chunks
from service.db.dialect import dialect_of
from service.replica.versioned import moves_forward


async def classify(
    conn: AsyncConnection, table: Table, built: Sequence[Snapshot], instance_id: str | None = None
) -> tuple[list[Snapshot], list[Snapshot], dict[str, int]]:
    """(created, updated, counts of created, updated and unchanged). A row stored without
    its instance counts as updated: the write names it (`instance_id`)."""
    stored: dict[str, Any] = {}
    ids = [b.id for b in built]
    columns = (table.c.id, table.c.updated_at, table.c.deleted_at, table.c.instance_id)
    among = dialect_of(conn).among
    for chunk in chunks(ids):
        result = await conn.execute(select(*columns).where(among(table.c.id, chunk)))
        stored.update({r.id: r for r in result})
    created: list[Snapshot] = []
    updated: list[Snapshot] = []
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for b in built:
        held = stored.get(b.id)
        if held is None:
            counts["created"] += 1
            created.append(b)
        elif moves_forward(held, b.row) or (held.instance_id is None and instance_id is not None):
            counts["updated"] += 1
            updated.append(b)
        else:
            counts["unchanged"] += 1
    return created, updated, counts
