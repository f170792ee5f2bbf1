"""Subscriptions carry their items, which carry their plans: one event stores all three, each
under its own ordering rules (PostgreSQL and SQLite)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from service.clerk.rows import RowOptions
from service.inbox.store import Status
from service.kinds.billing_subscriptions import build
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import deliver, one, rows

ORG = "org_29w9IfBrPmcpi0IeBVaKtA7R94W"


def test_build_fills_the_row_and_carries_the_items() -> None:
    snap = build(cp.subscription(), RowOptions())
    row = snap.row
    assert (row["status"], row["payer_id"], row["user_id"], row["organization_id"]) == (
        "active",
        "cpayer_1",
        None,  # Clerk sends "" for the absent one
        ORG,
    )
    assert set(row) == {c.name for c in t.billing_subscriptions.columns}
    (item,) = snap.embedded["billing_subscription_items"]
    assert item.row["subscription_id"] == "csub_1"  # its own was null, as in Clerk's example


async def test_one_event_stores_subscription_items_and_plans(engine: AsyncEngine) -> None:
    event = cp.envelope("subscription.created", cp.subscription())
    assert await deliver(engine, event) is Status.APPLIED
    assert (await one(engine, t.billing_subscriptions, "csub_1"))["organization_id"] == ORG
    item = await one(engine, t.billing_subscription_items, "csub_item_1")
    assert (item["subscription_id"], item["plan_id"], item["plan_slug"]) == (
        "csub_1",
        "cplan_pro",
        "pro",
    )
    plan = await one(engine, t.billing_plans, "cplan_pro")
    assert (plan["slug"], plan["amount"], plan["currency"]) == ("pro", 2000, "USD")
    # A newer item event moves the item forward; the older subscription snapshot again does not
    # move it back.
    newer = cp.subscription_item(subscription_id="csub_1", status="canceled", updated_at=cp.T0 + 9)
    await deliver(engine, cp.envelope("subscriptionItem.canceled", newer))
    await deliver(engine, event)
    assert [i["status"] for i in await rows(engine, t.billing_subscription_items)] == ["canceled"]
