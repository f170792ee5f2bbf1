"""Column sets that several kinds' tables share. Table names and columns are a contract that
app databases query. No foreign keys between replica tables: a membership may arrive before its
user or organization, and that must never fail; every join column is indexed instead."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, ColumnElement, Table, Text, cast, func, text

from service.db.types import JSONValue, UTCDateTime, metadata


def versioned_times() -> list[Column[Any]]:
    """Clerk's created/updated times and our tombstone."""
    return [
        Column("created_at", UTCDateTime),
        Column("updated_at", UTCDateTime),
        Column("deleted_at", UTCDateTime),
    ]


def instance_column() -> Column[str]:
    """The Clerk instance (`ins_...`) a row came from, on every replica table: several
    instances share one replica, and apps join and filter by it. NULL until known (rows from
    before the column, tombstones of objects never seen)."""
    return Column("instance_id", Text, index=True)


def identifier_table(name: str, value_column: str) -> Table:
    """A user's email addresses or phone numbers."""
    return Table(
        name,
        metadata,
        Column("id", Text, primary_key=True),
        Column("user_id", Text, nullable=False, index=True),
        Column(value_column, Text, index=True),
        Column("verification_status", Text),
        Column("verification_strategy", Text),
        Column("is_primary", Boolean, nullable=False, server_default=text("false")),
        Column("created_at", UTCDateTime),
        Column("updated_at", UTCDateTime),
        Column("raw", JSONValue),
        instance_column(),
    )


def epoch_ms(column: ColumnElement[Any]) -> ColumnElement[int]:
    """A timestamp as epoch milliseconds (bigint), as clerk_fdw gives Clerk's times."""
    return cast(func.floor(func.extract("epoch", column) * 1000), BigInteger)
