"""A Prisma schema for the replica: a model per table in PascalCase singular (`ClerkUser`) with
`@@map`/`@map` to the real names and camelCase fields, relations on both sides for each declared
link under `relationMode = "prisma"` (the replica has no foreign keys), the replica's indexes
on single columns, and a `view` block per `_live` view (the `views` preview feature).

A relation to a parent is optional whatever its column says: a membership may name a user that
has not arrived yet, and Prisma must read it as missing rather than fail.
"""

from __future__ import annotations

from service.schema.model import ColumnSpec, Replica, Storage, TableSpec
from service.schema.target import Target

_TYPES: dict[Storage, str] = {
    Storage.TEXT: "String",
    Storage.BOOLEAN: "Boolean",
    Storage.INTEGER: "Int",
    Storage.BIGINT: "BigInt",
    Storage.TIME: "DateTime",
    Storage.JSON: "Json",
}


def _field(column: ColumnSpec, target: Target, *, in_view: bool = False) -> list[str]:
    type_ = _TYPES[column.storage] + ("" if column.primary_key or not column.nullable else "?")
    attributes = []
    if column.primary_key:
        attributes.append("@unique" if in_view else "@id")  # a view may not have an @id
    if column.prop != column.name:
        attributes.append(f'@map("{column.name}")')
    if column.storage is Storage.TIME and target is Target.POSTGRESQL:
        attributes.append("@db.Timestamptz(6)")
    return [column.prop, type_, " ".join(attributes)]


def _aligned(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    return [
        f"  {row[0].ljust(widths[0])} {row[1].ljust(widths[1])} {row[2]}".rstrip() for row in rows
    ]


def _model(replica: Replica, table: TableSpec, target: Target) -> list[str]:
    rows = [_field(c, target) for c in table.columns]
    for link in replica.parents_of(table):
        prop = table.column(link.column).prop
        relation = f"@relation(fields: [{prop}], references: [id])"
        rows.append([link.to_parent, f"{link.parent.model}?", relation])
    for link in replica.children_of(table):
        rows.append([link.to_children, f"{link.child.model}[]", ""])
    lines = [f"model {table.model} {{", *_aligned(rows), ""]
    lines += [f"  @@index([{c.prop}])" for c in table.columns if c.indexed]
    return [*lines, f'  @@map("{table.name}")', "}", ""]


def prisma_schema(replica: Replica, target: Target) -> str:
    """The whole schema.prisma for `target`."""
    lines = [f"// {line}" for line in replica.header("prisma", target)]
    lines += [
        "// Read-only for the app: never run `prisma migrate` or `db push` against the replica.",
        "",
        "generator client {",
        '  provider        = "prisma-client"',
        '  output          = "../generated/clerk-replica"',
        '  previewFeatures = ["views"]',
        "}",
        "",
        "datasource db {",
        f'  provider     = "{target}"',
        '  relationMode = "prisma"',
        "}",
        "",
    ]
    for table in replica.tables:
        lines += _model(replica, table, target)
    for view in replica.views:
        rows = [_field(c, target, in_view=True) for c in view.table.columns]
        lines += [
            f"/// Rows of {view.table.name} not ended (deleted_at is null).",
            f"view {view.model} {{",
        ]
        lines += [*_aligned(rows), "", f'  @@map("{view.name}")', "}", ""]
    return "\n".join(lines).rstrip() + "\n"
