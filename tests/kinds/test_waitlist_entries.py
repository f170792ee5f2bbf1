"""Waitlist entries: payload -> row; the entry is its own person, so its tombstone (reconcile
only: Clerk sends no deletion) forgets the address (PostgreSQL and SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from service.clerk.rows import RowOptions
from service.kinds import writes
from service.kinds.waitlist_entries import KIND, build
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import deliver, one

W = "wle_2g7np7Hrk0SN6kj5EDMLDaKNL0S"


def test_build_fills_the_row() -> None:
    data = {**cp.waitlist_entry(status="invited"), "invitation": {"id": "inv_1"}}
    row = build(data, RowOptions()).row
    assert (row["email_address"], row["status"], row["invitation_id"]) == (
        "john.doe@example.com",
        "invited",
        "inv_1",
    )
    assert row["is_locked"] is False and set(row) == {c.name for c in t.waitlist_entries.columns}


async def test_a_tombstoned_entry_keeps_no_address(engine: AsyncEngine) -> None:
    await deliver(engine, cp.envelope("waitlistEntry.created", cp.waitlist_entry()))
    async with engine.begin() as conn:
        await writes.end(conn, KIND, [(W, datetime.now(UTC))], instance_id=cp.INSTANCE_ID)
    entry = await one(engine, t.waitlist_entries, W)
    assert entry["deleted_at"] is not None
    assert (entry["email_address"], entry["raw"], entry["status"]) == (None, None, "pending")
