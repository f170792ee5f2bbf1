"""Organizations. Deleting one ends its memberships, invitations and domains (their `parents`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, ColumnElement, Integer, Table, Text

from service.clerk import payloads as p
from service.clerk import rows as r
from service.clerk.payloads import Millis
from service.clerk.rows import RowOptions, Snapshot
from service.db.types import JSONValue, metadata
from service.kinds.columns import epoch_ms, instance_column, versioned_times
from service.kinds.declaration import FdwView, Kind, Listing, Lookup

organizations = Table(
    "clerk_organizations",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text),
    Column("slug", Text, index=True),
    Column("image_url", Text),
    Column("members_count", Integer),
    Column("max_allowed_memberships", Integer),
    Column("created_by", Text, index=True),
    Column("public_metadata", JSONValue),
    Column("private_metadata", JSONValue),
    *versioned_times(),
    Column("raw", JSONValue),
    instance_column(),
)


class Organization(p.Model):
    id: str
    name: str | None = None
    slug: str | None = None
    image_url: str | None = None
    members_count: int | None = None
    max_allowed_memberships: int | None = None
    created_by: str | None = None
    public_metadata: dict[str, Any] | None = None
    private_metadata: dict[str, Any] | None = None
    created_at: Millis
    updated_at: Millis


def build(data: dict[str, Any], options: RowOptions) -> Snapshot:
    org = p.parse(Organization, data)
    return Snapshot(
        {
            "id": org.id,
            "name": org.name,
            "slug": org.slug,
            "image_url": org.image_url,
            "members_count": org.members_count,
            "max_allowed_memberships": org.max_allowed_memberships,
            "created_by": org.created_by,
            "public_metadata": org.public_metadata,
            "private_metadata": r.private(org.private_metadata, options),
            **r.times(org.created_at, org.updated_at),
            "raw": r.raw(data, options),
        }
    )


def _fdw_columns(t: Table) -> list[ColumnElement[Any]]:
    """clerk_fdw's `clerk_organizations`."""
    return [
        t.c.id.label("organization_id"),
        t.c.name,
        t.c.slug,
        epoch_ms(t.c.created_at).label("created_at"),
        epoch_ms(t.c.updated_at).label("updated_at"),
        t.c.created_by,
        t.c.raw.label("attrs"),
    ]


KIND = Kind(
    name="organizations",
    order=0,
    table=organizations,
    build=build,
    upserts=("organization.created", "organization.updated"),
    deletes=("organization.deleted",),
    listing=Listing("organizations", params={"include_members_count": "true"}),
    fdw=FdwView("clerk_organizations", _fdw_columns),
    lookup=Lookup("organizations/{id}"),
)
