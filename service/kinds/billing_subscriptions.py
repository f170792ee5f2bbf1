"""Billing subscriptions, from `subscription.*` events only (Clerk lists them per payer, not
instance-wide). Each carries its items, stored as subscription items of this subscription."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Table, Text

from service.clerk import payloads as p
from service.clerk import rows as r
from service.clerk.payloads import Millis
from service.clerk.rows import RowOptions, Snapshot
from service.clerk.timestamps import from_ms
from service.db.types import JSONValue, UTCDateTime, metadata
from service.kinds.billing import Payer, payer_columns
from service.kinds.billing_subscription_items import item_snapshot
from service.kinds.columns import instance_column, versioned_times
from service.kinds.declaration import Kind, Personal

billing_subscriptions = Table(
    "clerk_billing_subscriptions",
    metadata,
    Column("id", Text, primary_key=True),
    Column("status", Text),
    Column("payer_id", Text, index=True),
    Column("user_id", Text, index=True),
    Column("organization_id", Text, index=True),
    Column("active_at", UTCDateTime),
    Column("past_due_at", UTCDateTime),
    Column("canceled_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    *versioned_times(),
    Column("raw", JSONValue),
    instance_column(),
)


class Subscription(p.Model):
    id: str
    status: str | None = None
    payer_id: str | None = None
    payer: Payer | None = None
    active_at: Millis | None = None
    past_due_at: Millis | None = None
    canceled_at: Millis | None = None
    ended_at: Millis | None = None
    created_at: Millis
    updated_at: Millis


def build(data: dict[str, Any], options: RowOptions) -> Snapshot:
    sub = p.parse(Subscription, data)
    items = data.get("items")
    carried = [
        item_snapshot(item, options, subscription_id=sub.id)
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict)
    ]
    return Snapshot(
        {
            "id": sub.id,
            "status": sub.status,
            **payer_columns(sub.payer, sub.payer_id),
            "active_at": from_ms(sub.active_at),
            "past_due_at": from_ms(sub.past_due_at),
            "canceled_at": from_ms(sub.canceled_at),
            "ended_at": from_ms(sub.ended_at),
            **r.times(sub.created_at, sub.updated_at),
            "raw": r.raw(data, options),
        },
        embedded={"billing_subscription_items": carried},
    )


KIND = Kind(
    name="billing_subscriptions",
    order=10,
    table=billing_subscriptions,
    build=build,
    upserts=(
        "subscription.created",
        "subscription.updated",
        "subscription.active",
        "subscription.pastDue",
    ),
    embeds=("billing_subscription_items",),
    personal=Personal("user_id", "users", (billing_subscriptions.c.raw,)),
)
