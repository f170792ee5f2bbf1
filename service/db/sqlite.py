"""SQLite's answers to service/db/dialect.py: the embedded default. One writer at a time,
which already serialises everything the PostgreSQL paths lock for, so those steps are no-ops;
no COPY, statistics, roles or notifications."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Select, Table, tuple_
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement


class SQLite:
    name = "sqlite"
    concurrent_writers = False
    roles = False
    schemas = False
    statistics = False
    bulk_copy = False
    cancellable = False

    def insert(self, table: Table) -> Any:
        return sqlite_insert(table)

    def among(self, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
        return column.in_(values)  # type: ignore[no-any-return]

    def among_pairs(
        self, columns: tuple[Any, Any], pairs: Sequence[tuple[str, str]]
    ) -> ColumnElement[bool]:
        return tuple_(*columns).in_(pairs)

    def skip_locked(self, stmt: Select[Any]) -> Select[Any]:
        return stmt  # the one writer holds every row already

    async def lock_keys(self, conn: AsyncConnection, keys: Sequence[str]) -> None:
        return None  # the one writer holds the database already

    async def inserter(
        self, conn: AsyncConnection, table: Table, columns: Sequence[str], key: str
    ) -> Callable[[Sequence[list[Any]]], Awaitable[set[str]]]:
        stmt = self.insert(table).on_conflict_do_nothing(index_elements=[table.c[key]])
        stmt = stmt.returning(table.c[key])
        names = tuple(columns)

        async def insert(values: Sequence[list[Any]]) -> set[str]:
            rows = [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]
            return set((await conn.execute(stmt, rows)).scalars()) if rows else set()

        return insert

    async def add_keys(
        self,
        conn: AsyncConnection,
        table: Table,
        fixed: Mapping[str, Any],
        column: str,
        values: Sequence[str],
    ) -> None:
        stmt = self.insert(table).on_conflict_do_nothing()
        await conn.execute(stmt, [{**fixed, column: v} for v in set(values)])

    async def copy_new(self, conn: AsyncConnection, batches: Sequence[tuple[Table, bytes]]) -> bool:
        return False

    async def analyze(
        self, conn: AsyncConnection, tables: Sequence[Table], *, sample_target: int | None
    ) -> None:
        return None

    async def row_estimate(self, conn: AsyncConnection, table: Table) -> float:
        return 0.0

    async def null_fraction(self, conn: AsyncConnection, table: Table, column: str) -> float | None:
        return None

    async def limit_statement_time(self, conn: AsyncConnection, seconds: float) -> None:
        return None  # not cancellable: lock waits are bounded instead

    async def limit_lock_wait(self, conn: AsyncConnection, seconds: float) -> None:
        await conn.exec_driver_sql(f"PRAGMA busy_timeout = {max(1, int(seconds * 1000))}")

    async def listen(self, conn: AsyncConnection, channel: str, wake: Callable[[], None]) -> bool:
        return False
