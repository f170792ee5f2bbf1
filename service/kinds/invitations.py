"""Organization invitations. Clerk never deletes one: it is accepted or revoked (snapshots)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Table, Text

from service.clerk import payloads as p
from service.clerk import rows as r
from service.clerk.payloads import Millis
from service.clerk.rows import RowOptions, Snapshot
from service.clerk.timestamps import from_ms
from service.db.types import JSONValue, UTCDateTime, metadata
from service.kinds.columns import instance_column, versioned_times
from service.kinds.declaration import Kind, Listing, Lookup, Parent, Personal

organization_invitations = Table(
    "clerk_organization_invitations",
    metadata,
    Column("id", Text, primary_key=True),
    Column("organization_id", Text, index=True),
    Column("email_address", Text, index=True),
    Column("role", Text),
    Column("status", Text),
    Column("user_id", Text, index=True),
    Column("inviter_id", Text, index=True),
    Column("public_metadata", JSONValue),
    Column("private_metadata", JSONValue),
    Column("expires_at", UTCDateTime),
    *versioned_times(),
    Column("raw", JSONValue),
    instance_column(),
)


class OrganizationRef(p.Model):
    id: str


class InviterRef(p.Model):
    user_id: str | None = None


class Invitation(p.Model):
    id: str
    organization_id: str | None = None
    public_organization_data: OrganizationRef | None = None
    email_address: str | None = None
    role: str | None = None
    status: str | None = None
    user_id: str | None = None
    inviter_id: str | None = None
    public_inviter_data: InviterRef | None = None
    public_metadata: dict[str, Any] | None = None
    private_metadata: dict[str, Any] | None = None
    expires_at: Millis | None = None
    created_at: Millis
    updated_at: Millis


def build(data: dict[str, Any], options: RowOptions) -> Snapshot:
    inv = p.parse(Invitation, data)
    org_id = inv.organization_id or (
        inv.public_organization_data.id if inv.public_organization_data else None
    )
    return Snapshot(
        {
            "id": inv.id,
            "organization_id": org_id,  # NULL where the payload names none (optional)
            "email_address": inv.email_address,
            "role": inv.role,
            "status": inv.status,
            "user_id": inv.user_id,
            # Erasure finds the inviter by it (the payload's data names them too).
            "inviter_id": inv.inviter_id
            or (inv.public_inviter_data.user_id if inv.public_inviter_data else None),
            "public_metadata": inv.public_metadata,
            "private_metadata": r.private(inv.private_metadata, options),
            "expires_at": from_ms(inv.expires_at),
            **r.times(inv.created_at, inv.updated_at),
            "raw": r.raw(data, options),
        }
    )


KIND = Kind(
    name="invitations",
    order=3,
    table=organization_invitations,
    build=build,
    upserts=(
        "organizationInvitation.created",
        "organizationInvitation.accepted",
        "organizationInvitation.revoked",
    ),
    parents=(Parent("organization_id", "organizations"),),
    listing=Listing("organization_invitations"),
    lookup=Lookup("organizations/{organization_id}/invitations/{id}"),
    personal=(
        # An accepted invitation names its user: the user's email address is the invitee's.
        Personal(
            "user_id",
            "users",
            (
                organization_invitations.c.email_address,
                organization_invitations.c.public_metadata,
                organization_invitations.c.private_metadata,
                organization_invitations.c.raw,
            ),
        ),
        # Every invitation names its inviter: names, email (`identifier`) and image.
        Personal(
            "inviter_id", "users", (organization_invitations.c.raw,), keys=("public_inviter_data",)
        ),
    ),
)
