"""PostgreSQL's answers to service/db/dialect.py: the first-class database. Several writers
at once, row locks that skip each other, advisory locks, COPY, ANALYZE, roles, NOTIFY."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import cache
from typing import Any

from asyncpg.exceptions import UniqueViolationError
from sqlalchemy import Column, Select, Table, Text, any_, cast, func, literal, select, text, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

_TEXT_ARRAY = ARRAY(Text)
_PG = postgresql.dialect()  # type: ignore[no-untyped-call]
# The words PostgreSQL reserves as identifiers.
RESERVED_WORDS: frozenset[str] = frozenset(_PG.identifier_preparer.reserved_words)


class PostgreSQL:
    name = "postgresql"
    concurrent_writers = True
    roles = True
    schemas = True
    statistics = True
    bulk_copy = True
    cancellable = True

    def insert(self, table: Table) -> Any:
        return pg_insert(table)

    def among(self, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
        # One array parameter and one cached statement, where an IN list renders (and the
        # driver encodes) a parameter per value on every call.
        return column == any_(cast(literal(list(values), _TEXT_ARRAY), _TEXT_ARRAY))  # type: ignore[no-any-return]

    def among_pairs(
        self, columns: tuple[Any, Any], pairs: Sequence[tuple[str, str]]
    ) -> ColumnElement[bool]:
        # Two array parameters, joined as rows: a list of row values plans as one OR branch,
        # and one index probe, per pair.
        firsts = cast(literal([a for a, _ in pairs]), _TEXT_ARRAY)
        seconds = cast(literal([b for _, b in pairs]), _TEXT_ARRAY)
        given = func.unnest(firsts, seconds).table_valued("a", "b").render_derived()
        return tuple_(*columns).in_(select(given.c.a, given.c.b))

    def skip_locked(self, stmt: Select[Any]) -> Select[Any]:
        return stmt.with_for_update(skip_locked=True)

    async def lock_keys(self, conn: AsyncConnection, keys: Sequence[str]) -> None:
        await conn.execute(_ADVISORY_LOCKS, {"keys": list(keys)})

    async def inserter(
        self, conn: AsyncConnection, table: Table, columns: Sequence[str], key: str
    ) -> Callable[[Sequence[list[Any]]], Awaitable[set[str]]]:
        # Straight to asyncpg, one array per column: SQLAlchemy's per-execute work costs more
        # than the insert on this path. asyncpg prepares the statement once per connection.
        driver = await _driver(conn)
        sql = _unnest_insert(table, tuple(columns), key)

        async def insert(values: Sequence[list[Any]]) -> set[str]:
            return {r[0] for r in await driver.fetch(sql, *values)}

        return insert

    async def add_keys(
        self,
        conn: AsyncConnection,
        table: Table,
        fixed: Mapping[str, Any],
        column: str,
        values: Sequence[str],
    ) -> None:
        stmt = _unnest_add(table, tuple(fixed), column)
        await conn.execute(stmt, {**fixed, "values": list(values)})

    async def copy_new(self, conn: AsyncConnection, batches: Sequence[tuple[Table, bytes]]) -> bool:
        driver = await _driver(conn)
        try:
            async with conn.begin_nested():
                for table, data in batches:
                    if data:
                        await driver.copy_to_table(
                            table.name,
                            # A view, not bytes: asyncpg reads bytes as a file's path.
                            source=memoryview(data),
                            columns=[c.name for c in table.columns],
                            format="text",
                        )
        except UniqueViolationError:
            return False
        return True

    async def analyze(
        self, conn: AsyncConnection, tables: Sequence[Table], *, sample_target: int | None
    ) -> None:
        quote = conn.dialect.identifier_preparer.quote
        if sample_target is not None:
            await conn.exec_driver_sql(f"SET LOCAL default_statistics_target = {sample_target}")
        await conn.exec_driver_sql("ANALYZE " + ", ".join(quote(t.name) for t in tables))

    async def row_estimate(self, conn: AsyncConnection, table: Table) -> float:
        estimate = await conn.scalar(_RELTUPLES, {"t": table.name})
        return max(float(estimate or 0), 0.0)

    async def null_fraction(self, conn: AsyncConnection, table: Table, column: str) -> float | None:
        found = await conn.scalar(_NULL_FRAC, {"t": table.name, "c": column})
        return None if found is None else float(found)

    async def limit_statement_time(self, conn: AsyncConnection, seconds: float) -> None:
        await conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}")

    async def limit_lock_wait(self, conn: AsyncConnection, seconds: float) -> None:
        await conn.exec_driver_sql(f"SET lock_timeout = {max(1, int(seconds * 1000))}")

    async def listen(self, conn: AsyncConnection, channel: str, wake: Callable[[], None]) -> bool:
        driver = await _driver(conn)

        def woken(*_args: Any) -> None:
            wake()

        await driver.add_listener(channel, woken)
        return True


_ADVISORY_LOCKS = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('clerk-replica:' || k, 0)) "
    "FROM (SELECT k FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k) AS ordered"
)
_RELTUPLES = text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)")
_NULL_FRAC = text(
    "SELECT null_frac FROM pg_stats WHERE schemaname = current_schema() "
    "AND tablename = :t AND attname = :c"
)


async def _driver(conn: AsyncConnection) -> Any:
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None  # asyncpg's connection, checked out with `conn`
    return driver


def _pg_type(column: Column[Any]) -> str:
    return str(column.type.compile(dialect=_PG))


@cache
def _unnest_insert(table: Table, columns: tuple[str, ...], key: str) -> str:
    arrays = ", ".join(
        f"${n}::{_pg_type(table.c[name])}[]" for n, name in enumerate(columns, start=1)
    )
    return (
        f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "
        f"ON CONFLICT ({key}) DO NOTHING RETURNING {key}"
    )


@cache
def _unnest_add(table: Table, fixed: tuple[str, ...], column: str) -> Any:
    names = ", ".join((*fixed, column))
    binds = ", ".join(f":{name}" for name in fixed)
    return text(
        f"INSERT INTO {table.name} ({names}) "
        f"SELECT {binds}, unnest(CAST(:values AS text[])) ON CONFLICT DO NOTHING"
    )
