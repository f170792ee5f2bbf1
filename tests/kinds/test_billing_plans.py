"""Billing plans: no time of their own, so the newest view of a plan wins, by its carrier's
time or the listing's (PostgreSQL and SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from service.clerk.rows import RowOptions
from service.kinds import writes
from service.kinds.billing_plans import KIND, build, plan_snapshot
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import one


async def test_the_newest_view_of_a_plan_wins(engine: AsyncEngine) -> None:
    listed = datetime(2026, 12, 1, tzinfo=UTC)
    renamed = {**cp.billing_plan(), "name": "Pro (listed)"}
    older = plan_snapshot(
        {"id": "cplan_pro", "slug": "pro", "name": "Pro (old item)"},
        datetime(2024, 1, 1, tzinfo=UTC),
        RowOptions(),
    )
    async with engine.begin() as conn:
        await writes.upsert(conn, KIND, [build(renamed, RowOptions(listed_at=listed))])
        await writes.upsert(conn, KIND, [older])
    plan = await one(engine, t.billing_plans, "cplan_pro")
    assert (plan["name"], plan["amount"]) == ("Pro (listed)", 2000)
