"""Several workers at once on PostgreSQL: an event applies once, one live membership per pair."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_one
from service.clerk.rows import RowOptions
from service.db.errors import TransientError
from service.inbox.store import Status
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import inbox_row, rows, store_event


async def apply_with_retries(engine: AsyncEngine, svix_id: str) -> Status | None:
    for _ in range(5):
        try:
            return await apply_one(engine, svix_id, RowOptions())
        except TransientError:
            await asyncio.sleep(0.05)
    raise AssertionError("never applied")


async def test_same_event_applied_by_several_workers_at_once(pg_engine: AsyncEngine) -> None:
    svix_id = await store_event(pg_engine, cp.envelope("user.created", cp.user()))
    outcomes = await asyncio.gather(
        *(apply_one(pg_engine, svix_id, RowOptions()) for _ in range(8))
    )
    assert sorted(outcomes, key=str) == sorted([Status.APPLIED] + [None] * 7, key=str)
    assert (await inbox_row(pg_engine, svix_id))["attempts"] == 1


async def test_competing_memberships_for_one_pair_converge(pg_engine: AsyncEngine) -> None:
    ids = [
        await store_event(
            pg_engine,
            cp.envelope(
                "organizationMembership.created",
                cp.membership(f"orgmem_{i}", created_at=cp.T0 + i, updated_at=cp.T0 + i),
            ),
        )
        for i in range(6)
    ]
    outcomes = await asyncio.gather(*(apply_with_retries(pg_engine, i) for i in ids))
    assert set(outcomes) == {Status.APPLIED}
    members = await rows(pg_engine, t.organization_memberships)
    assert [m["id"] for m in members if m["deleted_at"] is None] == ["orgmem_5"]
    assert len(members) == 6


async def test_user_updates_race_to_the_newest(pg_engine: AsyncEngine) -> None:
    ids = [
        await store_event(
            pg_engine,
            cp.envelope(
                "user.updated",
                cp.user(updated_at=cp.T0 + i, emails=[cp.email(f"idn_{i}", f"{i}@x.org")]),
            ),
        )
        for i in range(10)
    ]
    await asyncio.gather(*(apply_with_retries(pg_engine, i) for i in reversed(ids)))
    (user,) = await rows(pg_engine, t.users)
    assert user["primary_email_address"] == "9@x.org"
    assert [e["id"] for e in await rows(pg_engine, t.email_addresses)] == ["idn_9"]


async def test_a_child_committed_after_its_parents_deletion_still_ends(
    pg_engine: AsyncEngine,
) -> None:
    """Under READ COMMITTED a membership checked against a live user could commit after the
    user's deletion ended its siblings. The parent lock makes the deletion wait for it."""
    from service.kinds import writes
    from service.kinds.registry import kind

    memberships = kind("memberships")
    snapshot = memberships.build(cp.membership("orgmem_racing"), RowOptions())
    async with pg_engine.connect() as first:
        transaction = await first.begin()
        await writes.upsert(first, memberships, [snapshot])  # checked: the user is live
        deletion = asyncio.create_task(
            apply_with_retries(
                pg_engine,
                await store_event(
                    pg_engine,
                    cp.envelope("user.deleted", cp.deleted("user", cp.user()["id"]), cp.T0 + 50),
                ),
            )
        )
        await asyncio.sleep(0.5)
        assert not deletion.done()  # it waits for the membership's transaction
        await transaction.commit()
    assert await deletion == Status.APPLIED
    (membership,) = await rows(pg_engine, t.organization_memberships)
    assert membership["deleted_at"] is not None
