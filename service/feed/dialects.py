"""The change feed's SQL for each database: the triggers that record a change, and how a
writing transaction hands them its sources and tells listeners the feed grew.

Invariant: table names come from service/feed/changes.py, never spelled here; what counts as a
change is in service/feed/triggers.py. A new database gets a class here beside its module in
service/db/.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from sqlalchemy import Table, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from service import jsoncodec
from service.db.dialect import dialect_of
from service.feed.changes import change_sources, changes

# The source of a change: (instance id, svix id, run id).
FeedSource = tuple[str | None, str | None, str | None]

# The advisory lock writers of the feed take (as `lock_keys` would take key ":changes").
FEED_LOCK_KEY = "clerk-replica::changes"
# Listeners hear of new changes on the channel named for the table.
CHANNEL = changes.name
_CHANGE_COLUMNS = (
    f"{changes.name} (instance_id, table_name, object_id, op, changed_at, svix_id, run_id)"
)


class FeedDialect(Protocol):
    """How one database records the feed."""

    # The writing transaction hands the triggers its sources in a setting of its own (nothing
    # written, gone with the transaction) rather than in the change_sources table.
    sources_in_setting: bool

    def triggers(self, table: Table, keys: Sequence[str]) -> list[str]:
        """DDL for the triggers that append a change of `table`'s rows to the feed (what
        counts as one: service/feed/triggers.py). A change names the source of the first of
        `keys` (the row's columns holding object ids: its own, then its parents') the
        transaction gave one for, else the transaction's own ('*'), else none. An update
        counts when a column other than `updated_at` changed: a version alone is no change."""

    def drop_triggers(self, table: Table) -> list[str]:
        """DDL dropping what `triggers` made, and what earlier versions of it made (none
        there: nothing happens)."""

    async def begin(self, conn: AsyncConnection, sources: Mapping[str, FeedSource]) -> None:
        """Take the feed's lock and, with `sources_in_setting`, hand the triggers `sources`
        (object id, or '*' -> its source) until `end`."""

    async def end(self, conn: AsyncConnection) -> None:
        """Forget the sources `begin` handed over, and tell listeners the feed grew in this
        transaction (at its commit), if it did."""


def _op(row: str) -> str:
    return f"CASE WHEN {row}.deleted_at IS NULL THEN 'upsert' ELSE 'delete' END"


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
    f"SELECT pg_notify('{CHANNEL}', last) FROM ("
    f"SELECT nullif(current_setting('{_FEED_LAST}', true), '') AS last, "
    f"set_config('{_FEED_SOURCES}', '', true) AS forgotten) AS feed "
    "WHERE last IS NOT NULL"
)


def _pg_feed_function(
    function: str, table: str, keys: Sequence[str], rows: str, changed: str
) -> str:
    """A statement trigger's function: when the statement wrote rows, take the feed's lock (seq
    follows commit order), then record the rows of `rows` (a FROM clause over the transition
    tables, new rows as n) where `changed` holds, each naming its best source, in one
    INSERT ... SELECT; keep the last seq in the transaction's setting for `end`."""
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


class PostgreSQLFeed:
    sources_in_setting = True

    def triggers(self, table: Table, keys: Sequence[str]) -> list[str]:
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

    def drop_triggers(self, table: Table) -> list[str]:
        # Dropping a function drops its triggers; {name}_feed() is the row trigger's of before.
        return [
            f"DROP FUNCTION IF EXISTS {table.name}{suffix}() CASCADE"
            for suffix in ("_feed_insert", "_feed_update", "_feed")
        ]

    async def begin(self, conn: AsyncConnection, sources: Mapping[str, FeedSource]) -> None:
        named = {
            k: {"instance_id": i, "svix_id": s, "run_id": r} for k, (i, s, r) in sources.items()
        }
        await conn.execute(_BEGIN_FEED, {"sources": jsoncodec.dumps(named)})

    async def end(self, conn: AsyncConnection) -> None:
        await conn.execute(_END_FEED)


# As SQLAlchemy stores a UTC time there.
_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"


class SQLiteFeed:
    sources_in_setting = False

    def triggers(self, table: Table, keys: Sequence[str]) -> list[str]:
        # Row triggers: one source lookup per change, in change_sources (written by the
        # transaction; the one writer never sees another's).
        name = table.name
        ids = [f"NEW.{k}" for k in keys]
        rank = " ".join(f"WHEN object_id = {k} THEN {n}" for n, k in enumerate(ids))
        insert = (
            f"INSERT INTO {_CHANGE_COLUMNS} SELECT s.instance_id, '{name}', NEW.id, "
            f"{_op('NEW')}, {_SQLITE_NOW}, s.svix_id, s.run_id "
            "FROM (SELECT 1) AS one LEFT JOIN (SELECT instance_id, svix_id, run_id "
            f"FROM {change_sources.name} WHERE object_id IN ({', '.join(ids)}, '*') "
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

    def drop_triggers(self, table: Table) -> list[str]:
        return [
            f"DROP TRIGGER IF EXISTS {table.name}_feed_insert",
            f"DROP TRIGGER IF EXISTS {table.name}_feed_update",
        ]

    async def begin(self, conn: AsyncConnection, sources: Mapping[str, FeedSource]) -> None:
        return None  # the one writer serialises the feed already; sources go in the table

    async def end(self, conn: AsyncConnection) -> None:
        return None  # no listeners to tell


# By the database's name in service/db/dialect.py.
_FEEDS: dict[str, FeedDialect] = {"postgresql": PostgreSQLFeed(), "sqlite": SQLiteFeed()}


def feed_dialect_of(bind: AsyncConnection | Connection) -> FeedDialect:
    """The feed's SQL for the database of `bind`."""
    return _FEEDS[dialect_of(bind).name]


async def listen_changes(conn: AsyncConnection, wake: Callable[[], None]) -> bool:
    """Call `wake` whenever the feed grows (while `conn` stays open); False where the database
    cannot tell (readers poll)."""
    return await dialect_of(conn).listen(conn, CHANNEL, wake)
