"""Organization memberships: the child of a user and an organization. At most one is live per
(organization, user), as Clerk addresses a membership by that pair."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Column, ColumnElement, Table, Text, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from service.clerk import payloads as p
from service.clerk import rows as r
from service.clerk.payloads import Millis
from service.clerk.rows import Row, RowOptions, Snapshot
from service.db.chunks import chunks
from service.db.dialect import dialect_of
from service.db.types import JSONValue, metadata, partial_unique_index
from service.kinds.columns import instance_column, versioned_times
from service.kinds.declaration import ByParent, FdwView, Kind, Listing, Lookup, Parent, Personal

organization_memberships = Table(
    "clerk_organization_memberships",
    metadata,
    Column("id", Text, primary_key=True),
    Column("organization_id", Text, nullable=False, index=True),
    # NULL until a snapshot names the member: the spec does not require public_user_data.
    Column("user_id", Text, index=True),
    Column("role", Text),
    Column("role_name", Text),
    Column("permissions", JSONValue),
    Column("public_metadata", JSONValue),
    Column("private_metadata", JSONValue),
    *versioned_times(),
    Column("raw", JSONValue),
    instance_column(),
)
partial_unique_index(
    "uq_clerk_organization_memberships_live_pair",
    organization_memberships.c.organization_id,
    organization_memberships.c.user_id,
    where=organization_memberships.c.deleted_at.is_(None),
)


class OrganizationRef(p.Model):
    id: str


class PublicUserData(p.Model):
    user_id: str


class Membership(p.Model):
    id: str
    role: str | None = None
    role_name: str | None = None
    permissions: list[str] | None = None
    public_metadata: dict[str, Any] | None = None
    private_metadata: dict[str, Any] | None = None
    organization: OrganizationRef
    public_user_data: PublicUserData | None = None
    created_at: Millis
    updated_at: Millis


def build(data: dict[str, Any], options: RowOptions) -> Snapshot:
    m = p.parse(Membership, data)
    return Snapshot(
        {
            "id": m.id,
            "organization_id": m.organization.id,
            "user_id": m.public_user_data.user_id if m.public_user_data else None,
            "role": m.role,
            "role_name": m.role_name,
            "permissions": m.permissions,
            "public_metadata": m.public_metadata,
            "private_metadata": r.private(m.private_metadata, options),
            **r.times(m.created_at, m.updated_at),
            "raw": r.raw(data, options),
        }
    )


async def settle_live_pairs(conn: AsyncConnection, rows: list[Row]) -> None:
    """Keep one live membership per (organization, user): the newest by (created_at, id).

    The newest is chosen among every membership of the pair, ended ones included: a newer
    membership's existence proves the older one ended in Clerk, by its creation at the latest.
    Older live rows in the table are ended then; older incoming rows are stored already ended.
    """
    m = organization_memberships
    rows = [row for row in rows if row["user_id"] is not None]  # no pair until a user is named
    if not rows:
        return
    pairs = sorted({(row["organization_id"], row["user_id"]) for row in rows})
    writers: dict[tuple[str, str], set[str | None]] = defaultdict(set)
    for row in rows:
        writers[(row["organization_id"], row["user_id"])].add(row.get("instance_id"))
    stored: list[tuple[str, str, str, datetime, datetime | None]] = []
    among_pairs = dialect_of(conn).among_pairs
    for chunk in chunks(pairs):
        result = await conn.execute(
            select(
                m.c.id,
                m.c.organization_id,
                m.c.user_id,
                m.c.created_at,
                m.c.deleted_at,
                m.c.instance_id,
            ).where(among_pairs((m.c.organization_id, m.c.user_id), list(chunk)))
        )
        stored.extend(
            (s.id, s.organization_id, s.user_id, s.created_at, s.deleted_at)
            for s in result
            # Another instance's memberships are none of these rows' business.
            if s.instance_id is None or s.instance_id in writers[(s.organization_id, s.user_id)]
        )

    candidates: dict[tuple[str, str], list[tuple[datetime, str]]] = defaultdict(list)
    for mid, org_id, user_id, created, _deleted in stored:
        candidates[(org_id, user_id)].append((created, mid))
    for row in rows:
        candidates[(row["organization_id"], row["user_id"])].append((row["created_at"], row["id"]))

    winners = {pair: max(c) for pair, c in candidates.items()}
    losers = []
    for mid, org_id, user_id, _created, deleted in stored:
        win_created, win_id = winners[(org_id, user_id)]
        if win_id != mid and (deleted is None or deleted > win_created):
            losers.append({"b_id": mid, "b_ended": win_created})
    if losers:
        await conn.execute(
            update(m).where(m.c.id == bindparam("b_id")).values(deleted_at=bindparam("b_ended")),
            losers,
        )
    for row in rows:
        win_created, win_id = winners[(row["organization_id"], row["user_id"])]
        if win_id != row["id"] and (row["deleted_at"] is None or row["deleted_at"] > win_created):
            row["deleted_at"] = win_created


def _fdw_columns(t: Table) -> list[ColumnElement[Any]]:
    """clerk_fdw's `clerk_organization_memberships`."""
    return [t.c.user_id, t.c.organization_id, t.c.role]


KIND = Kind(
    name="memberships",
    order=2,
    table=organization_memberships,
    build=build,
    upserts=("organizationMembership.created", "organizationMembership.updated"),
    deletes=("organizationMembership.deleted",),
    deletion_carries_snapshot=True,
    parents=(Parent("user_id", "users"), Parent("organization_id", "organizations")),
    before_upsert=settle_live_pairs,
    listing=Listing(
        "organization_memberships",
        by_parent=ByParent(
            "organizations/{id}/memberships", "organizations", "organization_id", "members_count"
        ),
    ),
    fdw=FdwView("clerk_organization_memberships", _fdw_columns),
    # No endpoint reads a membership by id: list the organization's memberships of that user.
    lookup=Lookup(
        "organizations/{organization_id}/memberships",
        {"user_id": "{user_id}", "limit": "10"},
        in_list=True,
    ),
    # The raw payload's public_user_data holds the member's names, identifier and image.
    personal=Personal(
        "user_id",
        "users",
        (
            organization_memberships.c.public_metadata,
            organization_memberships.c.private_metadata,
            organization_memberships.c.raw,
        ),
    ),
)
