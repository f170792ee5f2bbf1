"""Waitlist entries. Clerk sends no deletion event: an entry Clerk no longer lists is
tombstoned by reconcile, and its email address erased then (the entry is its own person)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Column, Table, Text, and_

from service.clerk import payloads as p
from service.clerk import rows as r
from service.clerk.payloads import Millis
from service.clerk.rows import RowOptions, Snapshot
from service.db.types import JSONValue, metadata, partial_index
from service.kinds.columns import instance_column, versioned_times
from service.kinds.declaration import Kind, Listing, Lookup, Personal

waitlist_entries = Table(
    "clerk_waitlist_entries",
    metadata,
    Column("id", Text, primary_key=True),
    Column("email_address", Text, index=True),
    Column("status", Text),
    Column("is_locked", Boolean),
    Column("invitation_id", Text, index=True),
    *versioned_times(),
    Column("raw", JSONValue),
    instance_column(),
)

# Tombstoned entries still holding their address: what the sweep erases (empty once it has run).
partial_index(
    "ix_clerk_waitlist_entries_unerased",
    waitlist_entries.c.id,
    where=and_(waitlist_entries.c.deleted_at.is_not(None), waitlist_entries.c.raw.is_not(None)),
)


class InvitationRef(p.Model):
    id: str | None = None


class WaitlistEntry(p.Model):
    id: str
    email_address: str | None = None
    status: str | None = None
    is_locked: bool | None = None
    invitation: InvitationRef | None = None
    created_at: Millis
    updated_at: Millis


def build(data: dict[str, Any], options: RowOptions) -> Snapshot:
    entry = p.parse(WaitlistEntry, data)
    return Snapshot(
        {
            "id": entry.id,
            "email_address": entry.email_address,
            "status": entry.status,
            "is_locked": entry.is_locked,
            "invitation_id": entry.invitation.id if entry.invitation else None,
            **r.times(entry.created_at, entry.updated_at),
            "raw": r.raw(data, options),
        }
    )


KIND = Kind(
    name="waitlist_entries",
    order=6,
    table=waitlist_entries,
    build=build,
    upserts=("waitlistEntry.created", "waitlistEntry.updated"),
    listing=Listing("waitlist_entries"),
    # No GET by id: the list, searched by the entry's address, must hold the entry's id.
    lookup=Lookup("waitlist_entries", {"query": "{email_address}", "limit": "10"}, in_list=True),
    personal=Personal(
        "id", "waitlist_entries", (waitlist_entries.c.email_address, waitlist_entries.c.raw)
    ),
)
