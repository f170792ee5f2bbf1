"""A kind's writes, made from its declaration: the one place webhooks and reconcile change the
replica through.

- `upsert`: lock the parents, store rows of ended parents already ended, run the kind's own
  rule, move rows forward, and replace the owned child rows of the live ones.
- `end`: end objects by id (a bare tombstone where the table can hold one), drop their owned
  rows, and end the objects of dependent kinds.
- With `erase` (ERASE_DELETED_USERS), a deleted person's personal data goes wherever a kind
  holds it, and stays gone whatever arrives later (service/kinds/erasure.py).

Each call is equivalent to applying its items one by one (the newest snapshot per id wins, the
earliest end holds), so a batch may group any events of a kind into one call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from service.clerk.rows import Row, Snapshot
from service.kinds import erasure, registry
from service.kinds.declaration import Kind
from service.replica import bulk, versioned
from service.replica.bulk import Encoded
from service.replica.children import drop_children, replace_children
from service.replica.locks import lock_parents


async def upsert(
    conn: AsyncConnection,
    kind: Kind,
    snapshots: Sequence[Snapshot],
    *,
    erase: bool = True,
    new: bool = False,
    encoded: Encoded | None = None,
) -> set[str]:
    """Store the snapshots that move their rows forward; returns the ids applied.

    `new`: the caller found none of these objects stored, in this transaction (reconcile's
    first backfill). Their rows, once the parents and the kind's rule have had their say, then
    go in by COPY (`encoded`: those of them already encoded), unless the database cannot or a
    webhook stored one meanwhile: then by the upsert, as any other.
    """
    latest = list(versioned.newest_by_id(snapshots, _row_of).values())
    rows = [s.row for s in latest]
    if kind.parents or kind.before_upsert is not None:
        rows = [dict(r) for r in rows]  # ended below without touching the caller's rows
    ended: list[tuple[str, dict[str, datetime]]] = []
    if kind.parents:
        await lock_parents(
            conn, (r[p.column] for p in kind.parents for r in rows if r.get(p.column))
        )
        ended = [
            (
                p.column,
                await versioned.ended(
                    conn, registry.parent_table(p), (r[p.column] for r in rows if r.get(p.column))
                ),
            )
            for p in kind.parents
        ]
        versioned.end_with_parents(rows, ended)
    if kind.before_upsert is not None:
        await kind.before_upsert(conn, rows)
    copied = new and await _copy(conn, kind, latest, rows, encoded)
    if copied:
        applied = {r["id"]: r["deleted_at"] for r in rows}
    else:
        applied = await versioned.upsert_versioned(conn, kind.table, rows)
    if kind.owns and not copied:
        # A deleted object keeps no owned rows, whatever snapshot arrives later.
        live = sorted(i for i, deleted_at in applied.items() if deleted_at is None)
        if live:
            by_id = {s.id: s for s in latest}
            for owned in kind.owns:
                children = [row for i in live for row in by_id[i].children.get(owned.table, ())]
                await replace_children(conn, owned.table, owned.owner_column, live, children)
    if erase:
        await erasure.erase_ended(conn, kind, rows, applied, dict(ended))
    for name in kind.embeds:
        # Each carried object is as new as its own version says, whatever its carrier's fate.
        carried = [e for s in snapshots for e in s.embedded.get(name, ())]
        if carried:
            await upsert(conn, registry.kind(name), carried, erase=erase)
    return set(applied)


async def _copy(
    conn: AsyncConnection,
    kind: Kind,
    latest: Sequence[Snapshot],
    rows: Sequence[Row],
    encoded: Encoded | None,
) -> bool:
    """COPY new objects with their owned rows (none for those the rules ended: a deleted
    object keeps none). A row the rules left as it was keeps its snapshot, so its encoding
    can be reused; the others are encoded anew."""
    copies = [
        s if row == s.row else Snapshot(row, s.children if row["deleted_at"] is None else {})
        for s, row in zip(latest, rows, strict=True)
    ]
    owned = [o.table for o in kind.owns]
    return await bulk.copy_new(conn, kind.table, owned, copies, encoded)


def _row_of(snapshot: Snapshot) -> Row:
    return snapshot.row


async def end(
    conn: AsyncConnection,
    kind: Kind,
    items: Sequence[tuple[str, datetime]],
    *,
    erase: bool = True,
    instance_id: str | None = None,
) -> None:
    """End objects by id at the given times, with what depends on them (and, for persons,
    their personal data with `erase`), as instance `instance_id`: objects recorded for another
    instance are left alone, whatever depends on them too. A bare tombstone names it."""
    dependents = registry.dependents(kind)
    if dependents:
        await lock_parents(conn, (i for i, _ in items))
    foreign = await versioned.of_other_instances(
        conn, kind.table, [i for i, _ in items], instance_id
    )
    items = [item for item in items if item[0] not in foreign]
    if not items:
        return
    if versioned.takes_bare_rows(kind.table):
        await versioned.tombstone(conn, kind.table, items, instance_id)
    else:
        await versioned.end_live(conn, kind.table, "id", items, instance_id)
    if kind.owns:
        ids = [i for i, _ in items]
        for owned in kind.owns:
            await drop_children(conn, owned.table, owned.owner_column, ids)
    for child, parent in dependents:
        await versioned.end_live(conn, child.table, parent.column, items, instance_id)
    if erase and registry.erased_with(kind):
        await erasure.erase(conn, kind, (i for i, _ in items), scope=(instance_id,))


async def end_snapshots(
    conn: AsyncConnection, kind: Kind, snapshots: Sequence[Snapshot], *, erase: bool = True
) -> None:
    """A deletion that carries the whole object: store it, then end it at its `deleted_at`."""
    await upsert(conn, kind, snapshots, erase=erase)
    ends = [(s.row["instance_id"], (s.id, s.row["deleted_at"])) for s in snapshots]
    await end_by_instance(conn, kind, ends, erase=erase)


async def end_by_instance(
    conn: AsyncConnection,
    kind: Kind,
    items: Iterable[tuple[str | None, tuple[str, datetime]]],
    *,
    erase: bool = True,
) -> None:
    """`end` for items of several instances ((instance id, (id, time))): one call per instance,
    in a fixed order, so each bare tombstone names its own."""
    by_instance: dict[str | None, list[tuple[str, datetime]]] = defaultdict(list)
    for instance_id, item in items:
        by_instance[instance_id].append(item)
    for instance_id, ending in sorted(by_instance.items(), key=lambda i: i[0] or ""):
        await end(conn, kind, ending, erase=erase, instance_id=instance_id)
