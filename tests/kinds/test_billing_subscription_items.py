"""Subscription items from events and from reconcile's list; each carries its plan."""

from __future__ import annotations

from datetime import UTC, datetime

from service.clerk.rows import RowOptions
from service.kinds.billing_subscription_items import build
from tests.support import clerk_payloads as cp
from tests.support import tables as t


def test_an_event_item_fills_the_row_and_carries_its_plan() -> None:
    snap = build(cp.subscription_item(user_id="user_1", organization_id=""), RowOptions())
    row = snap.row
    assert (row["user_id"], row["organization_id"], row["interval"]) == ("user_1", None, "month")
    assert row["subscription_id"] is None and row["period_end"] is not None
    assert set(row) == {c.name for c in t.billing_subscription_items.columns}
    (plan,) = snap.embedded["billing_plans"]
    assert plan.row["updated_at"] == row["updated_at"]  # a plan is as new as its carrier


def test_a_listed_item_reads_the_apis_shape() -> None:
    listed = cp.listed_subscription_item()
    del listed["updated_at"]  # optional in the backend spec
    at = datetime(2026, 12, 1, tzinfo=UTC)
    snap = build(listed, RowOptions(listed_at=at))
    assert (snap.row["interval"], snap.row["updated_at"]) == ("month", at)
    (plan,) = snap.embedded["billing_plans"]
    assert (plan.row["amount"], plan.row["currency"]) == (2000, "USD")  # from its `fee`
