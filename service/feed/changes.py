"""The change feed's tables: the changes apps read, and the sources the writing transaction
names (which event or reconcile run is changing which object) for the triggers to copy."""

from __future__ import annotations

from sqlalchemy import Column, Table, Text

from service.db.types import INCREASING_KEY_TABLE, UTCDateTime, increasing_key, metadata

changes = Table(
    "clerk_replica_changes",
    metadata,
    # Increasing in commit order: writers take the feed's lock before their first change.
    increasing_key("seq"),
    Column("instance_id", Text),
    Column("table_name", Text, nullable=False),
    Column("object_id", Text, nullable=False),
    Column("op", Text, nullable=False),  # upsert | delete
    Column("changed_at", UTCDateTime, nullable=False, index=True),
    Column("svix_id", Text),
    Column("run_id", Text),
    **INCREASING_KEY_TABLE,
)

# Rows live only inside the transaction that writes them, where the database cannot hold the
# sources in a setting of the transaction (SQLite; service/feed/sources.py).
change_sources = Table(
    "clerk_replica_change_sources",
    metadata,
    Column("object_id", Text, primary_key=True),  # '*': every object the transaction changes
    Column("instance_id", Text),
    Column("svix_id", Text),
    Column("run_id", Text),
)
