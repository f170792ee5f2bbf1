"""A typed SQLAlchemy 2.x declarative module for the replica: one class per table named as the
Prisma models (`ClerkUser`), attributes named as the columns, view-only relationships named as
Drizzle's (`organizationMemberships`, `user`), and a class per `_live` view on a base of its own
(so `Base.metadata.create_all` never makes a table of a view).

One module serves both databases: JSON is `jsonb` on PostgreSQL and JSON text elsewhere, and
times come back timezone-aware UTC from either (SQLite stores them as naive UTC text).
"""

from __future__ import annotations

from service.schema.model import ColumnSpec, Link, Replica, Storage, TableSpec

_TYPES: dict[Storage, tuple[str, str]] = {
    Storage.TEXT: ("Text", "str"),
    Storage.BOOLEAN: ("Boolean", "bool"),
    Storage.INTEGER: ("Integer", "int"),
    Storage.BIGINT: ("BigInteger", "int"),
    Storage.TIME: ("UTCDateTime", "datetime"),
    Storage.JSON: ("JSONValue", "Any"),
}

_PRELUDE = '''\
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Integer, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

__all__ = ["Base", "LiveViews", "UTCDateTime", "JSONValue"]

# jsonb on PostgreSQL, JSON text on SQLite.
JSONValue = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC times from either database (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


class Base(DeclarativeBase):
    """The replica's tables (read them; clerk-replica writes them)."""


class LiveViews(DeclarativeBase):
    """The `_live` views: each table's rows not ended (deleted_at is null)."""
'''


def _column(column: ColumnSpec) -> str:
    sql_type, py_type = _TYPES[column.storage]
    annotation = (
        py_type if not column.nullable or column.storage is Storage.JSON else f"{py_type} | None"
    )
    options = ", primary_key=True" if column.primary_key else ""
    return f"    {column.name}: Mapped[{annotation}] = mapped_column({sql_type}{options})"


def _to_parent(link: Link) -> str:
    child, parent = link.child, link.parent
    join = f"foreign({child.model}.{link.column}) == {parent.model}.id"
    return (
        f"    {link.to_parent}: Mapped[{parent.model} | None] = relationship(\n"
        f'        primaryjoin="{join}", viewonly=True\n'
        "    )"
    )


def _to_children(link: Link) -> str:
    child, parent = link.child, link.parent
    join = f"{parent.model}.id == foreign({child.model}.{link.column})"
    return (
        f"    {link.to_children}: Mapped[list[{child.model}]] = relationship(\n"
        f'        primaryjoin="{join}", viewonly=True\n'
        "    )"
    )


def _class(replica: Replica, table: TableSpec) -> list[str]:
    lines = [
        f"class {table.model}(Base):",
        f'    __tablename__ = "{table.name}"',
        "",
        *(_column(c) for c in table.columns),
    ]
    relations = [_to_parent(link) for link in replica.parents_of(table)]
    relations += [_to_children(link) for link in replica.children_of(table)]
    if relations:
        lines += ["", *relations]
    return [*lines, "", ""]


def sqlalchemy_module(replica: Replica) -> str:
    """The whole module (Python source)."""
    doc = "\n".join(replica.header("sqlalchemy", None))
    lines = [f'"""{doc}\n"""', "", *_PRELUDE.splitlines(), "", ""]
    for table in replica.tables:
        lines += _class(replica, table)
    for view in replica.views:
        lines += [
            f"class {view.model}(LiveViews):",
            f'    """Rows of {view.table.name} not ended."""',
            "",
            f'    __tablename__ = "{view.name}"',
            "",
            *(_column(c) for c in view.table.columns),
            "",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"
