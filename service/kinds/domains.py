"""Organization domains. A deletion carries only the domain's id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Table, Text

from service.clerk import payloads as p
from service.clerk import rows as r
from service.clerk.payloads import Millis
from service.clerk.rows import RowOptions, Snapshot
from service.db.types import JSONValue, metadata
from service.kinds.columns import instance_column, versioned_times
from service.kinds.declaration import Kind, Listing, Lookup, Parent

organization_domains = Table(
    "clerk_organization_domains",
    metadata,
    Column("id", Text, primary_key=True),
    # Nullable: a domain deletion carries only the domain's id.
    Column("organization_id", Text, index=True),
    Column("name", Text, index=True),
    Column("enrollment_mode", Text),
    Column("verification_status", Text),
    *versioned_times(),
    Column("raw", JSONValue),
    instance_column(),
)


class Domain(p.Model):
    id: str
    organization_id: str | None = None
    name: str | None = None
    enrollment_mode: str | None = None
    affiliation_verification: p.Verification | None = None
    verification: p.Verification | None = None
    created_at: Millis
    updated_at: Millis


def build(data: dict[str, Any], options: RowOptions) -> Snapshot:
    d = p.parse(Domain, data)
    verification = d.affiliation_verification or d.verification
    return Snapshot(
        {
            "id": d.id,
            "organization_id": d.organization_id,
            "name": d.name,
            "enrollment_mode": d.enrollment_mode,
            "verification_status": verification.status if verification else None,
            **r.times(d.created_at, d.updated_at),
            "raw": r.raw(data, options),
        }
    )


KIND = Kind(
    name="domains",
    order=4,
    table=organization_domains,
    build=build,
    upserts=("organizationDomain.created", "organizationDomain.updated"),
    deletes=("organizationDomain.deleted",),
    parents=(Parent("organization_id", "organizations"),),
    listing=Listing("organization_domains"),
    # Clerk has no GET for one domain: list the organization's domains and look for the id.
    lookup=Lookup("organizations/{organization_id}/domains", {"limit": "500"}, in_list=True),
)
