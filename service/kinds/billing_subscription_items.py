"""Billing subscription items: what a payer is subscribed to, plan by plan. From
`subscriptionItem.*` events, from the `items` of a subscription (an item there belongs to that
subscription even where its own `subscription_id` is null, as in Clerk's example), and from
reconcile's list. Each carries its plan, stored as a billing plan."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Column, Table, Text

from service.clerk import payloads as p
from service.clerk import rows as r
from service.clerk.payloads import Millis
from service.clerk.rows import RowOptions, Snapshot
from service.clerk.timestamps import from_ms
from service.db.types import JSONValue, UTCDateTime, metadata
from service.kinds.billing import Payer, payer_columns, version
from service.kinds.billing_plans import plan_snapshot
from service.kinds.columns import instance_column, versioned_times
from service.kinds.declaration import Kind, Listing, Personal

billing_subscription_items = Table(
    "clerk_billing_subscription_items",
    metadata,
    Column("id", Text, primary_key=True),
    Column("subscription_id", Text, index=True),
    Column("status", Text),
    Column("plan_id", Text, index=True),
    Column("plan_slug", Text),
    Column("payer_id", Text, index=True),
    Column("user_id", Text, index=True),
    Column("organization_id", Text, index=True),
    Column("is_free_trial", Boolean),
    Column("interval", Text),
    Column("period_start", UTCDateTime),
    Column("period_end", UTCDateTime),
    Column("canceled_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    *versioned_times(),
    Column("raw", JSONValue),
    instance_column(),
)


class PlanRef(p.Model):
    id: str | None = None
    slug: str | None = None


class Item(p.Model):
    id: str
    subscription_id: str | None = None
    status: str | None = None
    plan_id: str | None = None
    plan: PlanRef | None = None
    payer_id: str | None = None
    payer: Payer | None = None
    is_free_trial: bool | None = None
    interval: str | None = None  # webhooks
    plan_period: str | None = None  # the Backend API's name for it
    period_start: Millis | None = None
    period_end: Millis | None = None
    canceled_at: Millis | None = None
    ended_at: Millis | None = None
    created_at: Millis | None = None
    updated_at: Millis | None = None


def item_snapshot(
    data: dict[str, Any], options: RowOptions, subscription_id: str | None = None
) -> Snapshot:
    """The item; `subscription_id`: the subscription carrying it (wins over the item's own)."""
    item = p.parse(Item, data)
    at = version(item.updated_at, options)
    plan = data.get("plan")
    carried = (
        [plan_snapshot(plan, at, options)] if isinstance(plan, dict) and plan.get("id") else []
    )
    return Snapshot(
        {
            "id": item.id,
            "subscription_id": subscription_id or item.subscription_id,
            "status": item.status,
            "plan_id": item.plan_id or (item.plan.id if item.plan else None),
            "plan_slug": item.plan.slug if item.plan else None,
            **payer_columns(item.payer, item.payer_id),
            "is_free_trial": item.is_free_trial,
            "interval": item.interval or item.plan_period,
            "period_start": from_ms(item.period_start),
            "period_end": from_ms(item.period_end),
            "canceled_at": from_ms(item.canceled_at),
            "ended_at": from_ms(item.ended_at),
            "created_at": from_ms(item.created_at),
            "updated_at": at,
            "deleted_at": None,
            "raw": r.raw(data, options),
        },
        embedded={"billing_plans": carried},
    )


def build(data: dict[str, Any], options: RowOptions) -> Snapshot:
    return item_snapshot(data, options)


KIND = Kind(
    name="billing_subscription_items",
    order=9,
    table=billing_subscription_items,
    build=build,
    upserts=(
        "subscriptionItem.updated",
        "subscriptionItem.active",
        "subscriptionItem.canceled",
        "subscriptionItem.upcoming",
        "subscriptionItem.ended",
        "subscriptionItem.abandoned",
        "subscriptionItem.incomplete",
        "subscriptionItem.pastDue",
        "subscriptionItem.freeTrialEnding",
    ),
    listing=Listing(
        "billing/subscription_items",
        params={"paginated": "true", "include_free": "true"},
        ordered=False,
    ),
    embeds=("billing_plans",),
    # `raw.payer` holds the payer's names and email address.
    personal=Personal("user_id", "users", (billing_subscription_items.c.raw,)),
)
