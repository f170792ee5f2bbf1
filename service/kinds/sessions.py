"""Sessions, from webhooks only: Clerk lists sessions per user or client, not instance-wide,
and purges old ones, so reconcile cannot walk them. A session event embeds its user; that copy
is not a user snapshot (users come from user events), so it is not kept."""

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
from service.kinds.declaration import Kind, Parent, Personal

sessions = Table(
    "clerk_sessions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("user_id", Text, index=True),
    Column("client_id", Text, index=True),
    Column("status", Text),
    Column("last_active_at", UTCDateTime),
    Column("last_active_organization_id", Text, index=True),
    Column("expire_at", UTCDateTime),
    Column("abandon_at", UTCDateTime),
    *versioned_times(),
    Column("raw", JSONValue),
    instance_column(),
)


class Session(p.Model):
    id: str
    user_id: str | None = None
    client_id: str | None = None
    status: str | None = None
    last_active_at: Millis | None = None
    last_active_organization_id: str | None = None
    expire_at: Millis | None = None
    abandon_at: Millis | None = None
    created_at: Millis
    updated_at: Millis


def build(data: dict[str, Any], options: RowOptions) -> Snapshot:
    session = p.parse(Session, data)
    kept = {k: v for k, v in data.items() if k != "user"}
    return Snapshot(
        {
            "id": session.id,
            "user_id": session.user_id,
            "client_id": session.client_id,
            "status": session.status,
            "last_active_at": from_ms(session.last_active_at),
            "last_active_organization_id": session.last_active_organization_id,
            "expire_at": from_ms(session.expire_at),
            "abandon_at": from_ms(session.abandon_at),
            **r.times(session.created_at, session.updated_at),
            "raw": r.raw(kept, options),
        }
    )


KIND = Kind(
    name="sessions",
    order=7,
    table=sessions,
    build=build,
    upserts=(
        "session.created",
        "session.pending",
        "session.ended",
        "session.removed",
        "session.revoked",
    ),
    parents=(Parent("user_id", "users"),),
    # `raw.latest_activity` holds the device, IP address and city.
    personal=Personal("user_id", "users", (sessions.c.raw,)),
)
