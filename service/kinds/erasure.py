"""Erasure: when Clerk deletes a person (a user; a waitlist entry, which names nobody else), the
replica forgets what identifies them.

Every kind that declares `Personal` data of the person has those columns set to NULL in the
rows that name the person, in its own table and in the tables it owns; the person's own row
keeps its tombstone (id, external_id, flags and times). The inbox forgets the bodies of the
settled events about any of those objects. Pending events keep theirs until they apply, and
applying one about an erased person erases again (`erase_ended`), so a late snapshot, older
than the deletion, never brings the data back. Everything happens in the caller's transaction:
once it commits, the data is gone everywhere at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, ColumnElement, Table, and_, func, null, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from service.clerk.rows import Row
from service.db.chunks import chunks
from service.db.dialect import dialect_of
from service.inbox.retention import clear_bodies_about
from service.kinds import registry
from service.kinds.declaration import Kind, Personal
from service.replica import versioned


async def erase(
    conn: AsyncConnection,
    person: Kind,
    ids: Iterable[str],
    *,
    scope: tuple[str | None] | None = None,
) -> None:
    """Erase the personal data of these deleted persons (objects of kind `person`). `scope`
    (an instance id): only in rows of that instance or of none, as a deletion of that
    instance may (None: wherever the person is named, for a person already ended)."""
    wanted = sorted(set(ids))
    if not wanted:
        return
    among = dialect_of(conn).among
    about: set[str] = set(wanted)
    for kind in registry.erased_with(person):
        for personal in _naming(kind, person):
            link = kind.table.c[personal.column]
            for chunk in chunks(wanted):
                query = select(kind.table.c.id).where(among(link, chunk))
                if scope is not None:
                    query = query.where(versioned.of_instance(kind.table, scope[0]))
                found = [r.id for r in await conn.execute(query)]
                about.update(found)
                await _forget(conn, personal, kind.table, "id", found)
                for owned in kind.owns:
                    await _forget(conn, personal, owned.table, owned.owner_column, found)
    await clear_bodies_about(conn, sorted(about))


def _naming(kind: Kind, person: Kind) -> list[Personal]:
    return [p for p in kind.personals if p.person == person.name]


async def _forget(
    conn: AsyncConnection, personal: Personal, table: Table, key: str, values: Sequence[str]
) -> None:
    """Forget the personal data `personal` declares in the rows of `table` whose `key` is in
    `values` (only rows still holding some, so erasing twice writes nothing)."""
    columns = [c for c in personal.columns if c.table is table]
    if not columns or not values:
        return
    if personal.keys:
        await _strip_keys(conn, table, key, values, columns, personal.keys)
        return
    among = dialect_of(conn).among
    for chunk in chunks(values):
        await conn.execute(
            update(table)
            .where(among(table.c[key], chunk), or_(*(c.is_not(None) for c in columns)))
            .values({c.name: null() for c in columns})  # SQL NULL, not JSON null
        )


async def _strip_keys(
    conn: AsyncConnection,
    table: Table,
    key: str,
    values: Sequence[str],
    columns: Sequence[Column[Any]],
    keys: tuple[str, ...],
) -> None:
    """Take `keys` out of the JSON objects the columns hold, in the rows whose `key` is in
    `values` (read, edited here and written back by primary key: the same on both dialects)."""
    among = dialect_of(conn).among
    primary = table.primary_key.columns.values()[0]
    for chunk in chunks(values):
        stored = await conn.execute(select(primary, *columns).where(among(table.c[key], chunk)))
        changed = []
        for row in stored:
            edits = {
                c.name: {k: v for k, v in held.items() if k not in keys}
                for c, held in zip(columns, row[1:], strict=True)
                if isinstance(held, dict) and any(k in held for k in keys)
            }
            if edits:
                changed.append((row[0], edits))
        for row_key, edits in changed:
            await conn.execute(update(table).where(primary == row_key).values(edits))


async def erase_ended(
    conn: AsyncConnection,
    kind: Kind,
    rows: Sequence[Row],
    applied: Mapping[str, datetime | None],
    parents_ended: Mapping[str, Mapping[str, datetime]],
) -> None:
    """Erase again the persons these rows (just written, or refused as older) name that are
    deleted: a late snapshot, or the membership of a deleted user, keeps nothing of them.

    What the upsert already knows is not asked again: a person's own rows that applied came
    back with their `deleted_at`, and a person who is a parent was looked up as one. Only the
    rest (rows the guard refused; a person that is no parent) costs a query.
    """
    for personal in kind.personals:
        column, person = personal.column, registry.kind(personal.person)
        gone: set[str] = set()
        if person is kind and column == "id":
            gone = {i for i, deleted_at in applied.items() if deleted_at is not None}
            unknown = [row["id"] for row in rows if row["id"] not in applied]
        elif column in parents_ended and _is_parent(kind, column, person):
            gone = {row[column] for row in rows if row.get(column) in parents_ended[column]}
            unknown = []
        else:
            unknown = [row[column] for row in rows if row.get(column)]
        if unknown:
            gone.update(await versioned.ended(conn, person.table, unknown))
        if gone:
            await erase(conn, person, gone)


def _is_parent(kind: Kind, column: str, person: Kind) -> bool:
    return any(p.column == column and p.kind == person.name for p in kind.parents)


def _unerased(person: Kind) -> ColumnElement[bool]:
    table = person.table
    return and_(table.c.deleted_at.is_not(None), table.c.raw.is_not(None))


async def remaining(conn: AsyncConnection) -> int:
    """Deleted persons still holding personal data (what the sweep has yet to erase)."""
    total = 0
    for person in registry.persons():
        stmt = select(func.count()).select_from(person.table).where(_unerased(person))
        total += int((await conn.execute(stmt)).scalar() or 0)
    return total


async def unerased(conn: AsyncConnection, limit: int) -> list[tuple[Kind, str, str | None]]:
    """Up to `limit` deleted persons still holding personal data (tombstones written before
    erasure was on, or by a version without it): (kind, id, instance id)."""
    found: list[tuple[Kind, str, str | None]] = []
    for person in registry.persons():
        table = person.table
        stmt = (
            select(table.c.id, table.c.instance_id)
            .where(_unerased(person))
            .order_by(table.c.id)
            .limit(limit - len(found))
        )
        found.extend((person, r.id, r.instance_id) for r in await conn.execute(stmt))
        if len(found) >= limit:
            break
    return found


async def erase_remaining(
    conn: AsyncConnection, limit: int, found: Sequence[tuple[Kind, str, str | None]] | None = None
) -> int:
    """Erase up to `limit` deleted persons still holding personal data (`found`: those
    `unerased` listed); how many."""
    if found is None:
        found = await unerased(conn, limit)
    for person in registry.persons():
        await erase(conn, person, [i for kind, i, _ in found if kind is person])
    return len(found)
