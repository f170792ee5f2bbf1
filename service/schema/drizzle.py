"""Drizzle ORM source for the replica (`pg-core` or `sqlite-core`): a table per replica table
exported in camelCase with camelCase properties, an `.existing()` view per `_live` view, and
`relations()` for each declared link, for relational queries (`with:`).

Types read what the replica stores: on PostgreSQL `jsonb` and `timestamp with time zone` as
`Date`; on SQLite JSON text as `text({ mode: "json" })`, booleans as 0/1 integers, and times
(naive UTC text written by SQLAlchemy) through a custom type that reads them as UTC `Date`s.
"""

from __future__ import annotations

from service.schema.model import ColumnSpec, Replica, Storage, TableSpec
from service.schema.target import Target

_PG_TYPES: dict[Storage, tuple[str, str]] = {
    Storage.TEXT: ("text", ""),
    Storage.BOOLEAN: ("boolean", ""),
    Storage.INTEGER: ("integer", ""),
    Storage.BIGINT: ("bigint", ', { mode: "number" }'),
    Storage.TIME: ("timestamp", ', { withTimezone: true, mode: "date" }'),
    Storage.JSON: ("jsonb", ""),
}
_SQLITE_TYPES: dict[Storage, tuple[str, str]] = {
    Storage.TEXT: ("text", ""),
    Storage.BOOLEAN: ("integer", ', { mode: "boolean" }'),
    Storage.INTEGER: ("integer", ', { mode: "number" }'),
    Storage.BIGINT: ("integer", ', { mode: "number" }'),
    Storage.TIME: ("utcDateTime", ""),
    Storage.JSON: ("text", ', { mode: "json" }'),
}

# SQLAlchemy writes SQLite times as "YYYY-MM-DD HH:MM:SS[.ffffff]" in UTC, without a zone.
_SQLITE_TIME_TYPE = """\
/** A replica time on SQLite: naive UTC text, read as a Date. */
const utcDateTime = customType<{ data: Date; driverData: string }>({
  dataType() {
    return "DATETIME";
  },
  fromDriver(value: string): Date {
    return new Date(value.replace(" ", "T") + "Z");
  },
  toDriver(value: Date): string {
    return value.toISOString().replace("T", " ").replace("Z", "");
  },
});
"""


def _column(column: ColumnSpec, target: Target, in_view: bool) -> str:
    types = _PG_TYPES if target is Target.POSTGRESQL else _SQLITE_TYPES
    function, options = types[column.storage]
    source = f'{function}("{column.name}"{options})'
    if column.primary_key and not in_view:
        source += ".primaryKey()"
    elif not column.nullable:
        source += ".notNull()"
    return f"  {column.prop}: {source},"


def _functions(replica: Replica, target: Target) -> list[str]:
    types = _PG_TYPES if target is Target.POSTGRESQL else _SQLITE_TYPES
    used = {types[c.storage][0] for t in replica.tables for c in t.columns}
    used.discard("utcDateTime")
    if target is Target.POSTGRESQL:
        return sorted(used | {"pgTable", "pgView"})
    return sorted(used | {"sqliteTable", "sqliteView", "customType"})


def _table(table: TableSpec, target: Target) -> list[str]:
    maker = "pgTable" if target is Target.POSTGRESQL else "sqliteTable"
    lines = [f'export const {table.export} = {maker}("{table.name}", {{']
    lines += [_column(c, target, in_view=False) for c in table.columns]
    return [*lines, "});", ""]


def _relations(replica: Replica, table: TableSpec) -> list[str]:
    parents, children = replica.parents_of(table), replica.children_of(table)
    if not parents and not children:
        return []
    helpers = ", ".join(h for h, used in (("one", parents), ("many", children)) if used)
    lines = [
        f"export const {table.export}Relations = relations({table.export}, ({{ {helpers} }}) => ({{"
    ]
    for link in parents:
        fields = f"{table.export}.{table.column(link.column).prop}"
        lines.append(
            f"  {link.to_parent}: one({link.parent.export}, {{ fields: [{fields}], "
            f"references: [{link.parent.export}.id] }}),"
        )
    for link in children:
        lines.append(f"  {link.to_children}: many({link.child.export}),")
    return [*lines, "}));", ""]


def drizzle_schema(replica: Replica, target: Target) -> str:
    """The whole schema module (TypeScript) for `target`."""
    core = "pg-core" if target is Target.POSTGRESQL else "sqlite-core"
    lines = [f"// {line}" for line in replica.header("drizzle", target)]
    lines += [
        'import { relations } from "drizzle-orm";',
        f'import {{ {", ".join(_functions(replica, target))} }} from "drizzle-orm/{core}";',
        "",
    ]
    if target is Target.SQLITE:
        lines += [*_SQLITE_TIME_TYPE.splitlines(), ""]
    for table in replica.tables:
        lines += _table(table, target)
    maker = "pgView" if target is Target.POSTGRESQL else "sqliteView"
    for view in replica.views:
        lines.append(f"/** Rows of {view.table.name} not ended (deleted_at is null). */")
        lines.append(f'export const {view.export} = {maker}("{view.name}", {{')
        lines += [_column(c, target, in_view=True) for c in view.table.columns]
        lines += ["}).existing();", ""]
    for table in replica.tables:
        lines += _relations(replica, table)
    return "\n".join(lines).rstrip() + "\n"
