"""Versioned rows: the upsert that only moves a row forward, tombstones, and ending rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, Table, and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from service.clerk.rows import Row
from service.db.chunks import chunks
from service.db.dialect import Dialect, dialect_of

T = TypeVar("T")


def newest_by_id(items: Iterable[T], row_of: Callable[[T], Row]) -> dict[str, T]:
    """The newest of each id by its row's `updated_at` (the later of equals)."""
    newest: dict[str, T] = {}
    for item in items:
        row = row_of(item)
        held = newest.get(row["id"])
        if held is None or row["updated_at"] >= row_of(held)["updated_at"]:
            newest[row["id"]] = item
    return newest


def newest_per_id(rows: Iterable[Row]) -> list[Row]:
    """The newest snapshot of each id (the later of equals), in id order.

    One statement cannot touch a row twice (PostgreSQL refuses); in id order, concurrent
    batches lock shared rows in the same order.
    """
    newest = newest_by_id(rows, _itself)
    return [newest[key] for key in sorted(newest)]


def _itself(row: Row) -> Row:
    return row


def earliest_per_id(items: Iterable[tuple[str, datetime]]) -> list[tuple[str, datetime]]:
    """A row ended twice keeps the earlier end, whichever arrived first."""
    earliest: dict[str, datetime] = {}
    for key, at in items:
        if key not in earliest or at < earliest[key]:
            earliest[key] = at
    return sorted(earliest.items())


async def upsert_versioned(
    conn: AsyncConnection, table: Table, rows: Sequence[Row]
) -> dict[str, datetime | None]:
    """Insert or move rows forward; returns {id: deleted_at} for the snapshots applied.

    A tombstoned row still takes a newer snapshot taken before its deletion (so the last
    known state does not depend on delivery order) but stays deleted. Only a snapshot of an
    object created after the deletion lifts the tombstone.
    """
    applied: dict[str, datetime | None] = {}
    stmt = _versioned_upsert(dialect_of(conn), table)
    for chunk in chunks(newest_per_id(rows)):
        applied.update({r.id: r.deleted_at for r in await conn.execute(stmt, list(chunk))})
    return applied


class Stored(Protocol):
    updated_at: datetime | None
    deleted_at: datetime | None


def moves_forward(stored: Stored, row: Row) -> bool:
    """Whether `upsert_versioned` would change the stored row: its guard, in Python.

    Ties are left alone here (no write needed); the SQL guard takes them, so that a redelivery
    of the same snapshot rewrites what it wrote.
    """
    if stored.updated_at is not None and row["updated_at"] <= stored.updated_at:
        return False
    deleted = stored.deleted_at
    created = row["created_at"]
    return (
        deleted is None
        or (created is not None and created > deleted)
        or row["updated_at"] <= deleted
    )


@cache
def _versioned_upsert(dialect: Dialect, table: Table) -> Any:
    # Rows go as executemany parameters, not .values(rows): SQLAlchemy then compiles the
    # statement once and caches it, and batches the rows into multi-row VALUES itself
    # ("insertmanyvalues"). Built once per table: constructing it costs more than running it
    # for small batches.
    stmt = dialect.insert(table)
    new, old = stmt.excluded, table.c
    lifts = new.created_at > old.deleted_at
    guard = and_(
        or_(old.updated_at.is_(None), new.updated_at >= old.updated_at),
        or_(old.deleted_at.is_(None), lifts, new.updated_at <= old.deleted_at),
        # A row recorded for one instance is never changed by another's write.
        or_(old.instance_id.is_(None), old.instance_id == new.instance_id),
    )
    columns: dict[str, Any] = {c.name: new[c.name] for c in table.columns if c.name != "id"}
    # A write that does not know the instance (a test, an app's own) does not forget it.
    columns["instance_id"] = func.coalesce(new.instance_id, old.instance_id)
    columns["deleted_at"] = case(
        (old.deleted_at.is_(None), new.deleted_at),
        (lifts, new.deleted_at),
        (and_(new.deleted_at.is_not(None), new.deleted_at < old.deleted_at), new.deleted_at),
        else_=old.deleted_at,
    )
    return stmt.on_conflict_do_update(
        index_elements=[table.c.id], set_=columns, where=guard
    ).returning(table.c.id, table.c.deleted_at)


async def tombstone(
    conn: AsyncConnection,
    table: Table,
    items: Sequence[tuple[str, datetime]],
    instance_id: str | None = None,
) -> None:
    """Mark ids deleted at the given times, keeping a bare tombstone row (of `instance_id`)
    for unknown ids.

    Only for tables whose columns other than id are nullable (see `takes_bare_rows`).
    """
    stmt = _tombstone_upsert(dialect_of(conn), table)
    for chunk in chunks(earliest_per_id(items)):
        await conn.execute(
            stmt, [{"id": i, "deleted_at": at, "instance_id": instance_id} for i, at in chunk]
        )


def takes_bare_rows(table: Table) -> bool:
    """Whether a row of only an id and a time can be stored (a tombstone for an unknown id)."""
    return all(c.primary_key or c.nullable or c.server_default is not None for c in table.columns)


@cache
def _tombstone_upsert(dialect: Dialect, table: Table) -> Any:
    stmt = dialect.insert(table)
    # RETURNING makes SQLAlchemy send the rows as multi-row VALUES on asyncpg too; without
    # it that dialect falls back to one statement per row.
    return stmt.on_conflict_do_update(
        index_elements=[table.c.id],
        set_={
            "deleted_at": stmt.excluded.deleted_at,
            "instance_id": func.coalesce(table.c.instance_id, stmt.excluded.instance_id),
        },
        where=and_(
            or_(table.c.deleted_at.is_(None), stmt.excluded.deleted_at < table.c.deleted_at),
            or_(table.c.instance_id.is_(None), table.c.instance_id == stmt.excluded.instance_id),
        ),
    ).returning(table.c.id)


async def end_live(
    conn: AsyncConnection,
    table: Table,
    column: str,
    items: Sequence[tuple[str, datetime]],
    instance_id: str | None,
) -> None:
    """End the rows of `table` whose `column` has one of the values, at its time (a row
    already ended earlier keeps its end), among the rows of `instance_id` or of none."""
    key = table.c[column]
    by_time: dict[datetime, list[str]] = defaultdict(list)
    for value, at in items:
        by_time[at].append(value)
    for at, values in by_time.items():
        for chunk in chunks(values):
            await conn.execute(
                update(table)
                .where(
                    key.in_(chunk),
                    or_(table.c.deleted_at.is_(None), table.c.deleted_at > at),
                    of_instance(table, instance_id),
                )
                .values(deleted_at=at)
            )


def of_instance(table: Table, instance_id: str | None) -> ColumnElement[bool]:
    """Rows an instance's writes may change: its own and those naming no instance (claimed)."""
    column = table.c.instance_id
    if instance_id is None:
        return column.is_(None)
    return or_(column.is_(None), column == instance_id)


async def of_other_instances(
    conn: AsyncConnection, table: Table, ids: Iterable[str], instance_id: str | None
) -> set[str]:
    """The ids among `ids` whose rows are recorded for an instance other than `instance_id`."""
    found: set[str] = set()
    among = dialect_of(conn).among
    for chunk in chunks(sorted(set(ids))):
        result = await conn.execute(
            select(table.c.id).where(
                among(table.c.id, chunk),
                table.c.instance_id.is_not(None),
                ~of_instance(table, instance_id),
            )
        )
        found.update(r.id for r in result)
    return found


async def ended(conn: AsyncConnection, table: Table, ids: Iterable[str]) -> dict[str, datetime]:
    """{id: deleted_at} of the given ids that are tombstoned."""
    wanted = sorted(set(ids))
    found: dict[str, datetime] = {}
    among = dialect_of(conn).among
    for chunk in chunks(wanted):
        result = await conn.execute(
            select(table.c.id, table.c.deleted_at).where(
                among(table.c.id, chunk), table.c.deleted_at.is_not(None)
            )
        )
        found.update({row.id: row.deleted_at for row in result})
    return found


def end_with_parents(
    rows: Sequence[Row], parents: Sequence[tuple[str, dict[str, datetime]]]
) -> None:
    """Store rows already ended whose parent (by column) is ended: at the earliest such end."""
    for row in rows:
        if row["deleted_at"] is not None:
            continue
        times = [at[row[col]] for col, at in parents if row.get(col) in at]
        if times:
            row["deleted_at"] = min(times)
