"""Owned child rows (a user's email addresses, phone numbers, ...): exactly those of the owner's
newest applied snapshot, and none once the owner is deleted."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Table, delete
from sqlalchemy.ext.asyncio import AsyncConnection

from service.clerk.rows import Row
from service.db.chunks import chunks
from service.db.dialect import Dialect, dialect_of


async def replace_children(
    conn: AsyncConnection,
    table: Table,
    owner_column: str,
    owners: Sequence[str],
    rows: Sequence[Row],
) -> None:
    """Make `rows` the whole set of `table` rows of the `owners`."""
    await drop_children(conn, table, owner_column, owners)
    # One row per id, in id order: a statement may not touch a row twice.
    by_id = {row["id"]: row for row in rows}
    ordered = [by_id[key] for key in sorted(by_id)]
    stmt = _replacing_upsert(dialect_of(conn), table)
    for chunk in chunks(ordered):
        await conn.execute(stmt, list(chunk))


async def drop_children(
    conn: AsyncConnection, table: Table, owner_column: str, owners: Sequence[str]
) -> None:
    among = dialect_of(conn).among
    for chunk in chunks(owners):
        await conn.execute(delete(table).where(among(table.c[owner_column], chunk)))


@cache
def _replacing_upsert(dialect: Dialect, table: Table) -> Any:
    stmt = dialect.insert(table)
    # RETURNING makes SQLAlchemy send the rows as multi-row VALUES on asyncpg too; without
    # it that dialect falls back to one statement per row.
    return stmt.on_conflict_do_update(
        index_elements=[table.c.id],
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name != "id"},
    ).returning(table.c.id)
