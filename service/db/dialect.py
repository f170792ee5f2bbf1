"""What the service asks of a database, and the factory that picks the database's answer.

The rest of the service asks its dialect for what it needs (an upsert statement, a set test,
advisory locks, a bulk copy, planner statistics, a fast insert) and never asks which database
it runs on. Each database answers in a module of its own (service/db/postgresql.py,
service/db/sqlite.py): a new database is a new module and one entry in `_IMPLEMENTATIONS`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Select, Table
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from service.db.postgresql import PostgreSQL
from service.db.sqlite import SQLite

# Inserts column arrays (one list per column, in the order given), skipping rows whose key is
# already stored; returns the keys it inserted.
Inserter = Callable[[Sequence[list[Any]]], Awaitable[set[str]]]


class Dialect(Protocol):
    """What differs between the databases. Implementations are singletons (see `dialect_of`)
    and need not inherit this: the factory's table is checked against it."""

    # SQLAlchemy's name of the database ("postgresql", "sqlite").
    name: str
    # Several transactions may write at once: batches may run side by side, writers of one
    # object must take advisory locks, and claims skip rows another worker holds.
    concurrent_writers: bool
    # Roles and grants exist (readonly-sql).
    roles: bool
    # Schemas and comments on objects (the clerk_fdw views, finding our own views).
    schemas: bool
    # ANALYZE and row estimates are worth keeping fresh while a backfill grows a table.
    statistics: bool
    # Bulk COPY of new rows.
    bulk_copy: bool
    # A statement in flight can be abandoned from the client (cancelled) safely. SQLite's
    # driver runs it in a thread that goes on regardless: bound its lock waits instead.
    cancellable: bool

    def __hash__(self) -> int:
        """Hashable: statements built for a dialect are cached by it."""
        ...

    def insert(self, table: Table) -> Any:
        """INSERT with this database's ON CONFLICT clause builder."""

    def among(self, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
        """`column IN values`."""

    def among_pairs(
        self, columns: tuple[Any, Any], pairs: Sequence[tuple[str, str]]
    ) -> ColumnElement[bool]:
        """`(a, b) IN pairs`."""

    def skip_locked(self, stmt: Select[Any]) -> Select[Any]:
        """Lock the selected rows, skipping rows another transaction holds."""

    async def lock_keys(self, conn: AsyncConnection, keys: Sequence[str]) -> None:
        """Take transaction-scoped locks on `keys`, in the order given."""

    async def inserter(
        self, conn: AsyncConnection, table: Table, columns: Sequence[str], key: str
    ) -> Inserter:
        """A fast insert-if-new of many rows, bound to `conn` (keep it while `conn` lives)."""

    async def add_keys(
        self,
        conn: AsyncConnection,
        table: Table,
        fixed: Mapping[str, Any],
        column: str,
        values: Sequence[str],
    ) -> None:
        """Insert one row per value of `column` (with the `fixed` columns), ignoring those
        already there."""

    async def copy_new(self, conn: AsyncConnection, batches: Sequence[tuple[Table, bytes]]) -> bool:
        """COPY rows (COPY's text format, every column in table order) into tables in one
        savepoint; False when the database cannot, or when a key already exists (nothing is
        written then)."""

    async def analyze(
        self, conn: AsyncConnection, tables: Sequence[Table], *, sample_target: int | None
    ) -> None:
        """Refresh planner statistics (`sample_target` caps the sample for a quick pass)."""

    async def row_estimate(self, conn: AsyncConnection, table: Table) -> float:
        """The planner's idea of the table's size."""

    async def null_fraction(self, conn: AsyncConnection, table: Table, column: str) -> float | None:
        """The planner's idea of the share of `column` that is NULL (None: no statistics)."""

    async def limit_statement_time(self, conn: AsyncConnection, seconds: float) -> None:
        """Cancel any statement of the current transaction that runs longer than `seconds`."""

    async def limit_lock_wait(self, conn: AsyncConnection, seconds: float) -> None:
        """For the rest of this connection's life, give up on a lock after `seconds`."""

    async def listen(self, conn: AsyncConnection, channel: str, wake: Callable[[], None]) -> bool:
        """Call `wake` on every notification on `channel` (while `conn` stays open); False
        where the database has no notifications (readers poll)."""


_IMPLEMENTATIONS: tuple[Dialect, ...] = (PostgreSQL(), SQLite())
_DIALECTS: dict[str, Dialect] = {d.name: d for d in _IMPLEMENTATIONS}


def dialect_of(bind: AsyncConnection | AsyncEngine | Connection) -> Dialect:
    """The dialect of an engine or connection (only the databases of `_DIALECTS`)."""
    return _DIALECTS[bind.dialect.name]
