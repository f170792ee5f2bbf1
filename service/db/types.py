"""The shared SQLAlchemy metadata and the two column types every table uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ColumnElement, DateTime, Index, Integer, MetaData
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so migrations can refer to them on every database.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# jsonb on PostgreSQL (indexable, queryable by apps), JSON text elsewhere.
JSONValue = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend.

    SQLite has no time zone type: values are stored as UTC and read back as aware datetimes,
    so comparisons and the replica's readers see the same thing on both databases.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def partial_index(
    name: str, *columns: Any, where: ColumnElement[bool], unique: bool = False
) -> Index:
    """An index over the rows matching `where` only, on both databases."""
    return Index(name, *columns, unique=unique, postgresql_where=where, sqlite_where=where)


def partial_unique_index(name: str, *columns: Any, where: ColumnElement[bool]) -> Index:
    """A unique index over the rows matching `where`, on both databases."""
    return partial_index(name, *columns, where=where, unique=True)


def increasing_key(name: str) -> Column[int]:
    """A bigint key the database numbers upwards, never reusing a number (on SQLite an INTEGER
    PRIMARY KEY, with `INCREASING_KEY_TABLE` on its table: AUTOINCREMENT)."""
    return Column(name, BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)


# Table keyword arguments for a table keyed by `increasing_key`.
INCREASING_KEY_TABLE: dict[str, Any] = {"sqlite_autoincrement": True}
