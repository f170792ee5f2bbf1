"""UTC timestamps read back aware on both databases; the partial unique index holds on both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.types import metadata
from tests.support import tables as t
from tests.support.replica_helpers import one, rows

PARIS = timezone(timedelta(hours=2))


async def test_utc_datetime_round_trips_as_aware_utc(engine: AsyncEngine) -> None:
    given = datetime(2024, 5, 28, 10, 30, 15, 123000, tzinfo=PARIS)
    async with engine.begin() as conn:
        await conn.execute(insert(t.users).values(id="u_1", created_at=given, updated_at=None))
    user = await one(engine, t.users, "u_1")
    assert user["created_at"] == given
    assert user["created_at"].utcoffset() == timedelta(0)
    assert user["created_at"].hour == 8
    assert user["updated_at"] is None


async def test_a_naive_datetime_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        async with engine.begin() as conn:
            await conn.execute(insert(t.users).values(id="u_1", created_at=datetime(2024, 1, 1)))
    assert await rows(engine, t.users) == []


def membership(id: str, org: str, user: str, ended: datetime | None = None) -> dict[str, object]:
    return {"id": id, "organization_id": org, "user_id": user, "deleted_at": ended}


async def test_partial_unique_index_allows_one_live_row_per_pair(engine: AsyncEngine) -> None:
    m = t.organization_memberships
    ended = datetime(2024, 1, 1, tzinfo=UTC)
    async with engine.begin() as conn:
        await conn.execute(
            insert(m),
            [
                membership("m_1", "org_a", "u_1", ended),
                membership("m_2", "org_a", "u_1", ended),  # ended rows do not count
                membership("m_3", "org_a", "u_1"),
                membership("m_4", "org_b", "u_1"),  # another pair
            ],
        )
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(insert(m).values(membership("m_5", "org_a", "u_1")))
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:  # lifting an ended one counts too
            await conn.execute(update(m).where(m.c.id == "m_1").values(deleted_at=None))
    live = [r["id"] for r in await rows(engine, m) if r["deleted_at"] is None]
    assert live == ["m_3", "m_4"]


def test_the_live_pair_index_is_partial_on_both_databases() -> None:
    index = next(
        i
        for i in metadata.tables["clerk_organization_memberships"].indexes
        if i.name == "uq_clerk_organization_memberships_live_pair"
    )
    assert index.unique
    assert index.dialect_options["postgresql"]["where"] is not None
    assert index.dialect_options["sqlite"]["where"] is not None
