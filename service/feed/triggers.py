"""The triggers that feed `clerk_replica_changes`, made from the registry: one set per kind's
table, rebuilt by every migration (like the views, service/operate/views.py) when CHANGE_FEED
is on, so a new kind or column needs nothing here.

A change is recorded where the database sees it, not where our code thinks it writes: the
versioned upsert, tombstones, COPY of new objects, rows ended with their parent or by a kind's
rule all pass through the same triggers. One change per row, however many rows a statement
writes (on PostgreSQL the triggers run once per statement and record its rows in one insert;
an update's old and new rows are matched by primary key: the replica never changes a key). What
is recorded, and what is not:
- an inserted row: `upsert`, or `delete` for a tombstone (a deletion of an object never seen);
- an updated row whose values changed: `delete` when it is now ended, else `upsert`;
- nothing for an update that changes nothing but `updated_at` (a duplicate, a rewrite of the
  same snapshot, a billing plan listed again at a new time), nor
  for changes to a row that was ended and stays ended (a late snapshot the tombstone absorbs,
  the erasure of its personal data): the app saw it go.

The event or run is what the writing transaction named (service/feed/sources.py): the source
given for the object itself, else for one of its parents in the kind's order (a membership
ended with its organization carries the organization's deletion event), else the
transaction's own.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.engine import Connection

from service.db.dialect import dialect_of
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
    dialect = dialect_of(conn)
    for kind in KINDS:
        for ddl in dialect.feed_triggers(kind.table, _keys(kind)):
            conn.exec_driver_sql(ddl)


def drop(conn: Connection) -> None:
    """Drop the triggers `create` made (those there)."""
    dialect = dialect_of(conn)
    for table in tables():
        for ddl in dialect.drop_feed_triggers(table):
            conn.exec_driver_sql(ddl)
