"""Billing plans: listed by reconcile, and carried by subscription items (their `plan`). A plan
payload has no time of its own: its version is its carrier's `updated_at`, or when reconcile
listed it, so the newest view of a plan wins."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Column, Table, Text

from service.clerk import payloads as p
from service.clerk import rows as r
from service.clerk.rows import RowOptions, Snapshot
from service.db.types import JSONValue, metadata
from service.kinds.billing import version
from service.kinds.columns import instance_column, versioned_times
from service.kinds.declaration import Kind, Listing

billing_plans = Table(
    "clerk_billing_plans",
    metadata,
    Column("id", Text, primary_key=True),
    Column("slug", Text, index=True),
    Column("name", Text),
    Column("amount", BigInteger),
    Column("currency", Text),
    Column("is_recurring", Boolean),
    *versioned_times(),
    Column("raw", JSONValue),
    instance_column(),
)


class Fee(p.Model):
    amount: int | None = None
    currency: str | None = None


class Plan(p.Model):
    id: str
    slug: str | None = None
    name: str | None = None
    is_recurring: bool | None = None
    amount: int | None = None  # webhooks
    currency: str | None = None
    fee: Fee | None = None  # the Backend API's shape of the same
    updated_at: p.Millis | None = None


def plan_snapshot(data: dict[str, Any], at: datetime | None, options: RowOptions) -> Snapshot:
    """The plan as `data` shows it, at `at` (its carrier's time), else at its own or listing's."""
    plan = p.parse(Plan, data)
    fee = plan.fee or Fee()
    at = at or version(plan.updated_at, options)
    return Snapshot(
        {
            "id": plan.id,
            "slug": plan.slug,
            "name": plan.name,
            "amount": plan.amount if plan.amount is not None else fee.amount,
            "currency": plan.currency or fee.currency,
            "is_recurring": plan.is_recurring,
            "created_at": None,
            "updated_at": at,
            "deleted_at": None,
            "raw": r.raw(data, options),
        }
    )


def build(data: dict[str, Any], options: RowOptions) -> Snapshot:
    return plan_snapshot(data, None, options)


KIND = Kind(
    name="billing_plans",
    order=8,
    table=billing_plans,
    build=build,
    upserts=(),
    listing=Listing("billing/plans", params={"paginated": "true"}, ordered=False),
)
