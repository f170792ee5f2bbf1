"""Organization permissions: what a role may grant (clerk_role_permissions links the two)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Table, Text

from service.clerk import payloads as p
from service.clerk import rows as r
from service.clerk.payloads import Millis
from service.clerk.rows import RowOptions, Snapshot
from service.db.types import JSONValue, metadata
from service.kinds.columns import instance_column, versioned_times
from service.kinds.declaration import Kind, Listing, Lookup

permissions = Table(
    "clerk_permissions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("key", Text, index=True),
    Column("name", Text),
    Column("description", Text),
    Column("type", Text),
    *versioned_times(),
    Column("raw", JSONValue),
    instance_column(),
)


class Permission(p.Model):
    id: str
    key: str | None = None
    name: str | None = None
    description: str | None = None
    type: str | None = None
    created_at: Millis
    updated_at: Millis


def build(data: dict[str, Any], options: RowOptions) -> Snapshot:
    perm = p.parse(Permission, data)
    return Snapshot(
        {
            "id": perm.id,
            "key": perm.key,
            "name": perm.name,
            "description": perm.description,
            "type": perm.type,
            **r.times(perm.created_at, perm.updated_at),
            "raw": r.raw(data, options),
        }
    )


KIND = Kind(
    name="permissions",
    order=5,
    table=permissions,
    build=build,
    upserts=("permission.created", "permission.updated"),
    deletes=("permission.deleted",),
    listing=Listing("organization_permissions"),
    lookup=Lookup("organization_permissions/{id}"),
)
