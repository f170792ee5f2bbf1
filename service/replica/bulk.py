"""COPY for objects the replica has never held: reconcile's first backfill on PostgreSQL.

A first run lists every user the replica lacks. For a row with no predecessor the versioned
upsert's only branch is "insert", so PostgreSQL can take the rows as COPY instead: no
15,000-parameter statement to parse and plan, no conflict arbitration per row, and no
SQLAlchemy execute machinery on our side. A first run's CPU per user, ours and PostgreSQL's
together, fell by about a quarter (200 to 150 µs at 30k users).

The caller decides what is new inside the same transaction. A webhook may still insert one
of those ids before we copy (or an identifier may belong to a user the replica holds under an
older snapshot): the copy then fails on the primary key, its savepoint is rolled back, and the
caller writes those rows through the upserts, which settle exactly that case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from operator import itemgetter
from typing import Any

from asyncpg.exceptions import UniqueViolationError
from sqlalchemy import JSON, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from service import jsoncodec
from service.apply.rows import Row, UserRows
from service.replica import tables as t
from service.replica.writes import IDENTIFIERS


async def insert_new_users(conn: AsyncConnection, snapshots: Sequence[UserRows]) -> bool:
    """COPY users the replica has no row for, with their identifiers; False when nothing was
    written (not PostgreSQL, or an id already exists) and the upserts must do it."""
    batches: list[tuple[Table, list[Row]]] = [(t.users, [s.user for s in snapshots])]
    for table, attr in IDENTIFIERS:
        batches.append((table, [row for s in snapshots for row in getattr(s, attr)]))
    return await _copy(conn, batches)


async def insert_new(conn: AsyncConnection, table: Table, rows: Sequence[Row]) -> bool:
    """COPY rows of a table without parents (organizations); False as for users."""
    return await _copy(conn, [(table, list(rows))])


async def _copy(conn: AsyncConnection, batches: Sequence[tuple[Table, list[Row]]]) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    for _table, rows in batches:
        if len({row["id"] for row in rows}) != len(rows):
            return False  # one id twice: which snapshot wins is the upsert's business
    driver: Any = (await conn.get_raw_connection()).driver_connection
    try:
        async with conn.begin_nested():
            for table, rows in batches:
                if rows:
                    await driver.copy_records_to_table(
                        table.name, records=_records(table, rows), columns=_layout(table)[0]
                    )
    except UniqueViolationError:
        return False
    return True


@cache
def _layout(table: Table) -> tuple[list[str], Callable[[Row], tuple[Any, ...]], list[int]]:
    """The table's column names, a getter of a row's values in that order, and which of
    them are JSON."""
    names = [c.name for c in table.columns]
    json_at = [n for n, c in enumerate(table.columns) if isinstance(c.type, JSON)]
    return names, itemgetter(*names), json_at


def _records(table: Table, rows: Sequence[Row]) -> list[Sequence[Any]]:
    """Rows as COPY takes them: JSON columns encoded as the upsert's bind step would (None is
    JSON null there, not SQL NULL, so it is here too)."""
    _names, values, json_at = _layout(table)
    records: list[Sequence[Any]] = []
    for row in rows:
        record = list(values(row))
        for n in json_at:
            record[n] = jsoncodec.dumps(record[n])
        records.append(record)
    return records
