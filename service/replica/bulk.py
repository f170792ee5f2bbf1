"""COPY for objects the replica has never held (reconcile's first backfill).

For a row with no predecessor the versioned upsert's only branch is "insert", so the database
can take the rows as a bulk copy instead: no statement to parse and plan per page, no conflict
arbitration per row.

The caller decides what is new inside the same transaction. A webhook may still insert one
of those ids before we copy (or a child row may belong to an object the replica holds under an
older snapshot): the copy then fails on the primary key, its savepoint is rolled back, and the
caller writes those rows through the upserts, which settle exactly that case.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from service import jsoncodec
from service.clerk.rows import Row, Snapshot
from service.db.dialect import dialect_of


async def copy_new(
    conn: AsyncConnection, table: Table, owned: Sequence[Table], snapshots: Sequence[Snapshot]
) -> bool:
    """COPY objects the replica has no row for, with their owned child rows; False when
    nothing was written (the database cannot copy, or an id already exists) and the upserts
    must do it."""
    dialect = dialect_of(conn)
    if not dialect.bulk_copy:
        return False
    batches: list[tuple[Table, list[Row]]] = [(table, [s.row for s in snapshots])]
    for child in owned:
        batches.append((child, [row for s in snapshots for row in s.children.get(child, ())]))
    for _table, rows in batches:
        if len({row["id"] for row in rows}) != len(rows):
            return False  # one id twice: which snapshot wins is the upsert's business
    return await dialect.copy_new(conn, [(t, _records(t, rows)) for t, rows in batches])


@cache
def _layout(table: Table) -> tuple[Callable[[Row], tuple[Any, ...]], list[int]]:
    """A getter of a row's values in column order, and which of them are JSON."""
    names = [c.name for c in table.columns]
    json_at = [n for n, c in enumerate(table.columns) if isinstance(c.type, JSON)]
    return itemgetter(*names), json_at


def _records(table: Table, rows: Sequence[Row]) -> list[Sequence[Any]]:
    """Rows as COPY takes them: JSON columns encoded as the upsert's bind step would (None is
    JSON null there, not SQL NULL, so it is here too)."""
    values, json_at = _layout(table)
    records: list[Sequence[Any]] = []
    for row in rows:
        record = list(values(row))
        for n in json_at:
            record[n] = jsoncodec.dumps(record[n])
        records.append(record)
    return records
