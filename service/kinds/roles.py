"""Organization roles and the permissions each grants. Deleting a role drops its grants; a
permission's own details live in clerk_permissions (service/kinds/permissions.py)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import Boolean, Column, Table, Text

from service.clerk import payloads as p
from service.clerk import rows as r
from service.clerk.payloads import Millis
from service.clerk.rows import RowOptions, Snapshot
from service.db.types import JSONValue, metadata
from service.kinds.columns import instance_column, versioned_times
from service.kinds.declaration import Kind, Listing, Lookup, Owned

roles = Table(
    "clerk_roles",
    metadata,
    Column("id", Text, primary_key=True),
    Column("key", Text, index=True),
    Column("name", Text),
    Column("description", Text),
    Column("is_creator_eligible", Boolean),
    *versioned_times(),
    Column("raw", JSONValue),
    instance_column(),
)
role_permissions = Table(
    "clerk_role_permissions",
    metadata,
    Column("id", Text, primary_key=True),  # role_id/permission_id: one row per grant
    Column("role_id", Text, nullable=False, index=True),
    Column("permission_id", Text, nullable=False, index=True),
    Column("permission_key", Text, index=True),
    instance_column(),
)


class PermissionRef(p.Model):
    id: str
    key: str | None = None


class Role(p.Model):
    id: str
    key: str | None = None
    name: str | None = None
    description: str | None = None
    is_creator_eligible: bool | None = None
    permissions: list[PermissionRef] = Field(default_factory=list)
    created_at: Millis
    updated_at: Millis


def build(data: dict[str, Any], options: RowOptions) -> Snapshot:
    role = p.parse(Role, data)
    grants = {g.id: g for g in role.permissions}
    return Snapshot(
        {
            "id": role.id,
            "key": role.key,
            "name": role.name,
            "description": role.description,
            "is_creator_eligible": role.is_creator_eligible,
            **r.times(role.created_at, role.updated_at),
            "raw": r.raw(data, options),
        },
        {
            role_permissions: [
                {
                    "id": f"{role.id}/{g.id}",
                    "role_id": role.id,
                    "permission_id": g.id,
                    "permission_key": g.key,
                }
                for g in grants.values()
            ]
        },
    )


KIND = Kind(
    name="roles",
    order=5,
    table=roles,
    build=build,
    upserts=("role.created", "role.updated"),
    deletes=("role.deleted",),
    owns=(Owned(role_permissions, "role_id"),),
    listing=Listing("organization_roles"),
    lookup=Lookup("organization_roles/{id}"),
)
