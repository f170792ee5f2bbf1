"""The triggers that feed `clerk_replica_changes`, made from the registry: one set per kind's
table, rebuilt by every migration when CHANGE_FEED is on, so a new kind or column needs nothing
here.

Invariant: one change per changed row, whatever the write path (upsert, tombstone, COPY, a
parent's end); nothing for a row whose values did not change beyond `updated_at`, nor for a
row that was ended and stays ended. Each change names the event or run its transaction gave
(service/feed/sources.py). Why: docs/explanation/change-feed.md.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.engine import Connection

from service.feed.dialects import feed_dialect_of
from service.kinds.declaration import Kind
from service.kinds.registry import KINDS


def _keys(kind: Kind) -> list[str]:
    """The row's columns naming its change's source, best first: its own id, then its
    parents', then the persons' whose erasure changes it."""
    keys = ["id", *(p.column for p in kind.parents)]
    for personal in kind.personals:
        if personal.column not in keys:
            keys.append(personal.column)
    return keys


def tables() -> list[Table]:
    """The tables whose changes the feed records: each kind's own (its owned rows change with
    it, and its row says so)."""
    return [kind.table for kind in KINDS]


def create(conn: Connection) -> None:
    """Create the triggers (the database is at head)."""
    dialect = feed_dialect_of(conn)
    for kind in KINDS:
        for ddl in dialect.triggers(kind.table, _keys(kind)):
            conn.exec_driver_sql(ddl)


def drop(conn: Connection) -> None:
    """Drop the triggers `create` made (those there)."""
    dialect = feed_dialect_of(conn)
    for table in tables():
        for ddl in dialect.drop_triggers(table):
            conn.exec_driver_sql(ddl)
