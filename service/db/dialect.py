"""Every PostgreSQL/SQLite difference, behind one object chosen by the connection's dialect.
One concept (hence its length): what the two databases do differently, in one place.

The rest of the service asks its dialect for what it needs (an upsert statement, a set test,
advisory locks, a bulk copy, planner statistics, a fast insert) and never asks which database
it runs on. PostgreSQL is first-class: several writers at once, row locks that skip each
other, COPY, ANALYZE, roles. SQLite is the embedded default: one writer at a time, which
already serialises everything the PostgreSQL paths lock for, so those steps are no-ops there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import cache
from typing import Any

from asyncpg.exceptions import UniqueViolationError
from sqlalchemy import Column, Select, Table, Text, any_, cast, literal, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

# Inserts column arrays (one list per column, in the order given), skipping rows whose key is
# already stored; returns the keys it inserted.
Inserter = Callable[[Sequence[list[Any]]], Awaitable[set[str]]]

_TEXT_ARRAY = ARRAY(Text)


class Dialect:
    """What differs between the databases. Subclasses are singletons (see `dialect_of`)."""

    name: str
    # Several transactions may write at once: batches may run side by side, writers of one
    # object must take advisory locks, and claims skip rows another worker holds.
    concurrent_writers: bool = False
    # Roles and grants exist (readonly-sql).
    roles: bool = False
    # Schemas and comments on objects (the clerk_fdw views, finding our own views).
    schemas: bool = False
    # ANALYZE and row estimates are worth keeping fresh while a backfill grows a table.
    statistics: bool = False
    # Bulk COPY of new rows.
    bulk_copy: bool = False
    # A statement in flight can be abandoned from the client (cancelled) safely. SQLite's
    # driver runs it in a thread that goes on regardless: bound its lock waits instead.
    cancellable: bool = False

    def insert(self, table: Table) -> Any:
        """INSERT with this database's ON CONFLICT clause builder."""
        raise NotImplementedError

    def among(self, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
        """`column IN values`."""
        return column.in_(values)  # type: ignore[no-any-return]

    def skip_locked(self, stmt: Select[Any]) -> Select[Any]:
        """Lock the selected rows, skipping rows another transaction holds."""
        return stmt

    async def lock_keys(self, conn: AsyncConnection, keys: Sequence[str]) -> None:
        """Take transaction-scoped locks on `keys`, in the order given."""

    async def inserter(
        self, conn: AsyncConnection, table: Table, columns: Sequence[str], key: str
    ) -> Inserter:
        """A fast insert-if-new of many rows, bound to `conn` (keep it while `conn` lives)."""
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
        """Insert one row per value of `column` (with the `fixed` columns), ignoring those
        already there."""
        stmt = self.insert(table).on_conflict_do_nothing()
        await conn.execute(stmt, [{**fixed, column: v} for v in set(values)])

    async def copy_new(
        self, conn: AsyncConnection, batches: Sequence[tuple[Table, list[Sequence[Any]]]]
    ) -> bool:
        """COPY rows (full records, in column order) into tables in one savepoint; False when
        the database cannot, or when a key already exists (nothing is written then)."""
        return False

    async def analyze(
        self, conn: AsyncConnection, tables: Sequence[Table], *, sample_target: int | None
    ) -> None:
        """Refresh planner statistics (`sample_target` caps the sample for a quick pass)."""

    async def row_estimate(self, conn: AsyncConnection, table: Table) -> float:
        """The planner's idea of the table's size."""
        return 0.0

    async def limit_statement_time(self, conn: AsyncConnection, seconds: float) -> None:
        """Cancel any statement of the current transaction that runs longer than `seconds`."""

    async def limit_lock_wait(self, conn: AsyncConnection, seconds: float) -> None:
        """For the rest of this connection's life, give up on a lock after `seconds`."""

    # The time of a change, in SQL a trigger can use.
    now_sql: str = "CURRENT_TIMESTAMP"

    def feed_triggers(self, table: Table, record: str) -> list[str]:
        """DDL for the triggers that append a change of `table`'s rows to the feed: `record`
        is the SELECT of the change row's values, `{now}` standing for `now_sql`
        (service/feed/triggers.py). An update counts when a column other than `updated_at`
        changed: a version alone is no change (Clerk's billing plans carry no time of their
        own and take the listing's at each reconcile)."""
        raise NotImplementedError

    def drop_feed_triggers(self, table: Table) -> list[str]:
        """DDL dropping what `feed_triggers` made (none there: nothing happens)."""
        raise NotImplementedError

    async def notify_changes(self, conn: AsyncConnection, after: int) -> None:
        """Tell listeners the feed grew past `after` in this transaction (at its commit)."""

    async def listen_changes(self, conn: AsyncConnection, wake: Callable[[], None]) -> bool:
        """Call `wake` whenever the feed grows (while `conn` stays open); False where the
        database cannot tell (readers poll)."""
        return False


class PostgreSQL(Dialect):
    name = "postgresql"
    now_sql = "now()"
    concurrent_writers = True
    roles = True
    schemas = True
    statistics = True
    bulk_copy = True
    cancellable = True

    def insert(self, table: Table) -> Any:
        return pg_insert(table)

    def feed_triggers(self, table: Table, record: str) -> list[str]:
        name, record = table.name, record.format(now=self.now_sql)
        # Writers take the feed's lock before their first change (service/feed/sources.py);
        # taking it here again costs nothing and keeps seq in commit order for any other writer.
        body = (
            f"PERFORM pg_advisory_xact_lock(hashtextextended('{FEED_LOCK_KEY}', 0)); "
            f"INSERT INTO clerk_replica_changes "
            f"(instance_id, table_name, object_id, op, changed_at, svix_id, run_id) {record}; "
            "RETURN NULL;"
        )
        compared = [c.name for c in table.columns if c.name != "updated_at"]
        olds = ", ".join(f"OLD.{c}" for c in compared)
        news = ", ".join(f"NEW.{c}" for c in compared)
        changed = (
            f"({olds}) IS DISTINCT FROM ({news}) "
            "AND NOT (OLD.deleted_at IS NOT NULL AND NEW.deleted_at IS NOT NULL)"
        )
        return [
            f"CREATE FUNCTION {name}_feed() RETURNS trigger LANGUAGE plpgsql AS "
            f"$feed$ BEGIN {body} END $feed$",
            f"CREATE TRIGGER {name}_feed_insert AFTER INSERT ON {name} "
            f"FOR EACH ROW EXECUTE FUNCTION {name}_feed()",
            f"CREATE TRIGGER {name}_feed_update AFTER UPDATE ON {name} "
            f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION {name}_feed()",
        ]

    def drop_feed_triggers(self, table: Table) -> list[str]:
        # Dropping the function drops its triggers.
        return [f"DROP FUNCTION IF EXISTS {table.name}_feed() CASCADE"]

    async def notify_changes(self, conn: AsyncConnection, after: int) -> None:
        await conn.execute(_NOTIFY_CHANGES, {"after": after})

    async def listen_changes(self, conn: AsyncConnection, wake: Callable[[], None]) -> bool:
        driver = await _driver(conn)

        def woken(*_args: Any) -> None:
            wake()

        await driver.add_listener("clerk_replica_changes", woken)
        return True

    def among(self, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
        # One array parameter and one cached statement, where an IN list renders (and the
        # driver encodes) a parameter per value on every call.
        return column == any_(cast(literal(list(values), _TEXT_ARRAY), _TEXT_ARRAY))  # type: ignore[no-any-return]

    def skip_locked(self, stmt: Select[Any]) -> Select[Any]:
        return stmt.with_for_update(skip_locked=True)

    async def lock_keys(self, conn: AsyncConnection, keys: Sequence[str]) -> None:
        await conn.execute(_ADVISORY_LOCKS, {"keys": list(keys)})

    async def inserter(
        self, conn: AsyncConnection, table: Table, columns: Sequence[str], key: str
    ) -> Inserter:
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

    async def copy_new(
        self, conn: AsyncConnection, batches: Sequence[tuple[Table, list[Sequence[Any]]]]
    ) -> bool:
        driver = await _driver(conn)
        try:
            async with conn.begin_nested():
                for table, records in batches:
                    if records:
                        await driver.copy_records_to_table(
                            table.name, records=records, columns=[c.name for c in table.columns]
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

    async def limit_statement_time(self, conn: AsyncConnection, seconds: float) -> None:
        await conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}")

    async def limit_lock_wait(self, conn: AsyncConnection, seconds: float) -> None:
        await conn.exec_driver_sql(f"SET lock_timeout = {max(1, int(seconds * 1000))}")


class SQLite(Dialect):
    name = "sqlite"
    # As SQLAlchemy stores a UTC time there.
    now_sql = "strftime('%Y-%m-%d %H:%M:%f', 'now')"

    def insert(self, table: Table) -> Any:
        return sqlite_insert(table)

    def feed_triggers(self, table: Table, record: str) -> list[str]:
        name, record = table.name, record.format(now=self.now_sql)
        insert = (
            "INSERT INTO clerk_replica_changes "
            f"(instance_id, table_name, object_id, op, changed_at, svix_id, run_id) {record};"
        )
        changed = " OR ".join(
            f"OLD.{c.name} IS NOT NEW.{c.name}" for c in table.columns if c.name != "updated_at"
        )
        return [
            f"CREATE TRIGGER {name}_feed_insert AFTER INSERT ON {name} BEGIN {insert} END",
            f"CREATE TRIGGER {name}_feed_update AFTER UPDATE ON {name} WHEN ({changed}) "
            "AND NOT (OLD.deleted_at IS NOT NULL AND NEW.deleted_at IS NOT NULL) "
            f"BEGIN {insert} END",
        ]

    def drop_feed_triggers(self, table: Table) -> list[str]:
        return [
            f"DROP TRIGGER IF EXISTS {table.name}_feed_insert",
            f"DROP TRIGGER IF EXISTS {table.name}_feed_update",
        ]

    async def limit_lock_wait(self, conn: AsyncConnection, seconds: float) -> None:
        await conn.exec_driver_sql(f"PRAGMA busy_timeout = {max(1, int(seconds * 1000))}")


_ADVISORY_LOCKS = text(
    "SELECT pg_advisory_xact_lock(hashtextextended('clerk-replica:' || k, 0)) "
    "FROM (SELECT k FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k) AS ordered"
)
_RELTUPLES = text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)")
# The advisory lock writers of the feed take (as `lock_keys` would take key ":changes").
FEED_LOCK_KEY = "clerk-replica::changes"
_NOTIFY_CHANGES = text(
    "SELECT pg_notify('clerk_replica_changes', CAST(last AS text)) "
    "FROM (SELECT max(seq) AS last FROM clerk_replica_changes WHERE seq > :after) AS grown "
    "WHERE last IS NOT NULL"
)


async def _driver(conn: AsyncConnection) -> Any:
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None  # asyncpg's connection, checked out with `conn`
    return driver


_PG = postgresql.dialect()  # type: ignore[no-untyped-call]
# Role names PostgreSQL gives a meaning of its own (GRANT ... TO public grants every role).
_RESERVED_ROLES = {"public", "none", "current_user", "current_role", "session_user", "user"}


def reserved_role_name(name: str) -> bool:
    """A role name PostgreSQL reserves: a special role, a system role (`pg_*`) or a keyword."""
    lowered = name.lower()
    return (
        lowered in _RESERVED_ROLES
        or lowered.startswith("pg_")
        or lowered in _PG.identifier_preparer.reserved_words
    )


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


_DIALECTS: dict[str, Dialect] = {d.name: d for d in (PostgreSQL(), SQLite())}


def dialect_of(bind: AsyncConnection | AsyncEngine | Connection) -> Dialect:
    """The dialect of an engine or connection (only these two databases are supported)."""
    return _DIALECTS[bind.dialect.name]
