"""What a listed page changes: created, updated and unchanged, as the upsert's guard decides
(ties are unchanged: nothing to write)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from service.clerk.rows import RowOptions
from service.clerk.timestamps import from_ms
from service.kinds import writes
from service.kinds.registry import kind
from service.reconcile.classify import classify
from tests.support import clerk_payloads as cp
from tests.support import tables as t

ORGS = kind("organizations")


async def test_a_page_splits_into_created_updated_and_unchanged(engine: AsyncEngine) -> None:
    stored = [
        ORGS.build(cp.organization(f"org_{n}", updated_at=cp.T0 + 10), RowOptions())
        for n in range(3)
    ]
    async with engine.begin() as conn:
        await writes.upsert(conn, ORGS, stored)
    page = [
        ORGS.build(cp.organization("org_0", updated_at=cp.T0 + 20), RowOptions()),  # newer
        ORGS.build(cp.organization("org_1", updated_at=cp.T0 + 10), RowOptions()),  # a tie
        ORGS.build(cp.organization("org_2", updated_at=cp.T0 + 5), RowOptions()),  # older
        ORGS.build(cp.organization("org_new"), RowOptions()),
    ]
    async with engine.connect() as conn:
        created, updated, counts = await classify(conn, t.organizations, page)
    assert [s.id for s in created] == ["org_new"]
    assert [s.id for s in updated] == ["org_0"]
    assert counts == {"created": 1, "updated": 1, "unchanged": 2}


async def test_a_tombstoned_row_takes_only_what_the_guard_would(engine: AsyncEngine) -> None:
    at = cp.T0 + 100
    async with engine.begin() as conn:
        await writes.upsert(conn, ORGS, [ORGS.build(cp.organization("org_x"), RowOptions())])
        ended = from_ms(at)
        assert ended is not None
        await writes.end(conn, ORGS, [("org_x", ended)])
    before_deletion = ORGS.build(cp.organization("org_x", updated_at=at - 1), RowOptions())
    after_deletion = ORGS.build(cp.organization("org_x", updated_at=at + 1), RowOptions())
    recreated = ORGS.build(
        cp.organization("org_x", created_at=at + 1, updated_at=at + 2), RowOptions()
    )
    async with engine.connect() as conn:
        _, updated, _ = await classify(conn, t.organizations, [before_deletion])
        assert [s.id for s in updated] == ["org_x"]  # a newer snapshot taken before the end
        _, updated, counts = await classify(conn, t.organizations, [after_deletion])
        assert updated == [] and counts["unchanged"] == 1  # taken after the end: ignored
        _, updated, _ = await classify(conn, t.organizations, [recreated])
        assert [s.id for s in updated] == ["org_x"]  # created after the end: lifts it
