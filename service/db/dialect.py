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
from sqlalchemy import Column, Select, Table, Text, any_, cast, func, literal, select, text, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from service import jsoncodec

# Inserts column arrays (one list per column, in the order given), skipping rows whose key is
# already stored; returns the keys it inserted.
Inserter = Callable[[Sequence[list[Any]]], Awaitable[set[str]]]

_TEXT_ARRAY = ARRAY(Text)

# The source of a change: (instance id, svix id, run id).
FeedSource = tuple[str | None, str | None, str | None]


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

    def among_pairs(
        self, columns: tuple[Any, Any], pairs: Sequence[tuple[str, str]]
    ) -> ColumnElement[bool]:
        """`(a, b) IN pairs`."""
        return tuple_(*columns).in_(pairs)

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

    async def copy_new(self, conn: AsyncConnection, batches: Sequence[tuple[Table, bytes]]) -> bool:
        """COPY rows (COPY's text format, every column in table order) into tables in one
        savepoint; False when the database cannot, or when a key already exists (nothing is
        written then)."""
        return False

    async def analyze(
        self, conn: AsyncConnection, tables: Sequence[Table], *, sample_target: int | None
    ) -> None:
        """Refresh planner statistics (`sample_target` caps the sample for a quick pass)."""

    async def row_estimate(self, conn: AsyncConnection, table: Table) -> float:
        """The planner's idea of the table's size."""
        return 0.0

    async def null_fraction(self, conn: AsyncConnection, table: Table, column: str) -> float | None:
        """The planner's idea of the share of `column` that is NULL (None: no statistics)."""
        return None

    async def limit_statement_time(self, conn: AsyncConnection, seconds: float) -> None:
        """Cancel any statement of the current transaction that runs longer than `seconds`."""

    async def limit_lock_wait(self, conn: AsyncConnection, seconds: float) -> None:
        """For the rest of this connection's life, give up on a lock after `seconds`."""

    # The writing transaction hands the feed's triggers its sources in a setting of its own
    # (nothing written, gone with the transaction) rather than in clerk_replica_change_sources.
    feed_sources_in_setting: bool = False

    def feed_triggers(self, table: Table, keys: Sequence[str]) -> list[str]:
        """DDL for the triggers that append a change of `table`'s rows to the feed (what counts
        as one: service/feed/triggers.py). A change names the source of the first of `keys`
        (the row's columns holding object ids: its own, then its parents') the transaction
        gave one for, else the transaction's own ('*'), else none. An update counts when a
        column other than `updated_at` changed: a version alone is no change (Clerk's billing
        plans carry no time of their own and take the listing's at each reconcile)."""
        raise NotImplementedError

    def drop_feed_triggers(self, table: Table) -> list[str]:
        """DDL dropping what `feed_triggers` made, and what earlier versions of it made (none
        there: nothing happens)."""
        raise NotImplementedError

    async def begin_feed(self, conn: AsyncConnection, sources: Mapping[str, FeedSource]) -> None:
        """Take the feed's lock and, with `feed_sources_in_setting`, hand the triggers
        `sources` (object id, or '*' -> its source) until `end_feed`."""

    async def end_feed(self, conn: AsyncConnection) -> None:
        """Forget the sources `begin_feed` handed over, and tell listeners the feed grew in
        this transaction (at its commit), if it did."""

    async def listen_changes(self, conn: AsyncConnection, wake: Callable[[], None]) -> bool:
        """Call `wake` whenever the feed grows (while `conn` stays open); False where the
        database cannot tell (readers poll)."""
        return False


class PostgreSQL(Dialect):
    name = "postgresql"
    feed_sources_in_setting = True
    concurrent_writers = True
    roles = True
    schemas = True
    statistics = True
    bulk_copy = True
    cancellable = True

    def insert(self, table: Table) -> Any:
        return pg_insert(table)

    def feed_triggers(self, table: Table, keys: Sequence[str]) -> list[str]:
        # Statement triggers: one INSERT ... SELECT over the statement's rows (its transition
        # tables) and one lock per statement. A table's triggers with transition tables must
        # each fire on one event, hence two. INSERT ... ON CONFLICT DO UPDATE fires both, each
        # seeing only the rows it inserted or updated; COPY fires the insert one.
        name = table.name
        key = [c.name for c in table.primary_key.columns]
        compared = [c.name for c in table.columns if c.name != "updated_at"]
        inserted = _pg_feed_function(f"{name}_feed_insert", name, keys, "new_rows n", "TRUE")
        updated = _pg_feed_function(
            f"{name}_feed_update",
            name,
            keys,
            "new_rows n JOIN old_rows o ON " + " AND ".join(f"o.{c} = n.{c}" for c in key),
            f"({', '.join(f'o.{c}' for c in compared)}) "
            f"IS DISTINCT FROM ({', '.join(f'n.{c}' for c in compared)}) "
            "AND NOT (o.deleted_at IS NOT NULL AND n.deleted_at IS NOT NULL)",
        )
        return [
            inserted,
            updated,
            f"CREATE TRIGGER {name}_feed_insert AFTER INSERT ON {name} "
            f"REFERENCING NEW TABLE AS new_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}_feed_insert()",
            f"CREATE TRIGGER {name}_feed_update AFTER UPDATE ON {name} "
            f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}_feed_update()",
        ]

    def drop_feed_triggers(self, table: Table) -> list[str]:
        # Dropping a function drops its triggers; {name}_feed() is the row trigger's of before.
        return [
            f"DROP FUNCTION IF EXISTS {table.name}{suffix}() CASCADE"
            for suffix in ("_feed_insert", "_feed_update", "_feed")
        ]

    async def begin_feed(self, conn: AsyncConnection, sources: Mapping[str, FeedSource]) -> None:
        named = {
            k: {"instance_id": i, "svix_id": s, "run_id": r} for k, (i, s, r) in sources.items()
        }
        await conn.execute(_BEGIN_FEED, {"sources": jsoncodec.dumps(named)})

    async def end_feed(self, conn: AsyncConnection) -> None:
        await conn.execute(_END_FEED)

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


class SQLite(Dialect):
    name = "sqlite"

    def insert(self, table: Table) -> Any:
        return sqlite_insert(table)

    def feed_triggers(self, table: Table, keys: Sequence[str]) -> list[str]:
        # Row triggers: one source lookup per change, in clerk_replica_change_sources (written
        # by the transaction; the one writer never sees another's).
        name = table.name
        ids = [f"NEW.{k}" for k in keys]
        rank = " ".join(f"WHEN object_id = {k} THEN {n}" for n, k in enumerate(ids))
        insert = (
            f"INSERT INTO {_CHANGE_COLUMNS} SELECT s.instance_id, '{name}', NEW.id, "
            f"{_op('NEW')}, {_SQLITE_NOW}, s.svix_id, s.run_id "
            "FROM (SELECT 1) AS one LEFT JOIN (SELECT instance_id, svix_id, run_id "
            f"FROM clerk_replica_change_sources WHERE object_id IN ({', '.join(ids)}, '*') "
            f"ORDER BY CASE {rank} ELSE {len(ids)} END LIMIT 1) AS s ON 1;"
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
_NULL_FRAC = text(
    "SELECT null_frac FROM pg_stats WHERE schemaname = current_schema() "
    "AND tablename = :t AND attname = :c"
)
# The advisory lock writers of the feed take (as `lock_keys` would take key ":changes").
FEED_LOCK_KEY = "clerk-replica::changes"
_FEED_LOCK = f"pg_advisory_xact_lock(hashtextextended('{FEED_LOCK_KEY}', 0))"
# Settings local to the writing transaction (gone at its end, undone with a savepoint): the
# sources it names (JSON: object id or '*' -> instance_id, svix_id, run_id), and the last seq
# its changes took (set by the triggers).
_FEED_SOURCES = "clerk_replica.feed_sources"
_FEED_LAST = "clerk_replica.feed_last"
_BEGIN_FEED = text(f"SELECT {_FEED_LOCK}, set_config('{_FEED_SOURCES}', :sources, true)")
# The subquery is not flattened (it calls a volatile function): the sources are forgotten once,
# whether or not there is anything to tell.
_END_FEED = text(
    "SELECT pg_notify('clerk_replica_changes', last) FROM ("
    f"SELECT nullif(current_setting('{_FEED_LAST}', true), '') AS last, "
    f"set_config('{_FEED_SOURCES}', '', true) AS forgotten) AS feed "
    "WHERE last IS NOT NULL"
)
_CHANGE_COLUMNS = (
    "clerk_replica_changes (instance_id, table_name, object_id, op, changed_at, svix_id, run_id)"
)
# As SQLAlchemy stores a UTC time there.
_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"


def _op(row: str) -> str:
    return f"CASE WHEN {row}.deleted_at IS NULL THEN 'upsert' ELSE 'delete' END"


def _pg_feed_function(
    function: str, table: str, keys: Sequence[str], rows: str, changed: str
) -> str:
    """A statement trigger's function: when the statement wrote rows, take the feed's lock (seq
    follows commit order), then record the rows of `rows` (a FROM clause over the transition
    tables, new rows as n) where `changed` holds, each naming its best source, in one
    INSERT ... SELECT; keep the last seq in the transaction's setting for `end_feed`."""
    best = ", ".join([*(f"feed_sources -> n.{k}" for k in keys), "feed_sources -> '*'"])
    return (
        f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $feed$ "
        "DECLARE "
        f"feed_sources jsonb := nullif(current_setting('{_FEED_SOURCES}', true), '')::jsonb; "
        "feed_last bigint; "
        "BEGIN "
        "IF NOT EXISTS (SELECT FROM new_rows) THEN RETURN NULL; END IF; "
        f"PERFORM {_FEED_LOCK}; "
        f"WITH added AS (INSERT INTO {_CHANGE_COLUMNS} "
        f"SELECT s.source ->> 'instance_id', '{table}', n.id, {_op('n')}, now(), "
        "s.source ->> 'svix_id', s.source ->> 'run_id' "
        f"FROM {rows} CROSS JOIN LATERAL (SELECT coalesce({best}) AS source) AS s "
        f"WHERE {changed} RETURNING seq) "
        "SELECT max(seq) INTO feed_last FROM added; "
        "IF feed_last IS NOT NULL THEN "
        f"PERFORM set_config('{_FEED_LAST}', feed_last::text, true); END IF; "
        "RETURN NULL; "
        "END $feed$"
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
