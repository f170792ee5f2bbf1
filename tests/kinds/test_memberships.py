"""Memberships: payload -> row, and one live membership per (organization, user) whatever
order the events arrive in (PostgreSQL and SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from service.clerk.payloads import PayloadError
from service.clerk.rows import Row, RowOptions
from service.inbox.store import Status
from service.kinds import writes
from service.kinds.memberships import KIND, build, settle_live_pairs
from service.kinds.registry import kind
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import deliver, one, rows

T = datetime(2024, 5, 28, 8, 0, tzinfo=UTC)
M = t.organization_memberships


def at(seconds: int) -> datetime:
    return T + timedelta(seconds=seconds)


def test_build_fills_the_row() -> None:
    data = cp.membership(role="org:admin", org_id="org_1", user_id="user_1")
    row = build(data, RowOptions()).row
    assert (row["organization_id"], row["user_id"], row["role"]) == ("org_1", "user_1", "org:admin")
    assert (row["role_name"], row["permissions"]) == ("Admin", ["org:posts:read"])
    assert row["created_at"] == T and row["deleted_at"] is None and row["raw"] is data
    assert set(row) == {c.name for c in M.columns}


def test_absent_optional_fields_are_null() -> None:
    data = {
        "id": "orgmem_1",
        "organization": {"id": "org_1"},
        "public_user_data": {"user_id": "user_1"},
        "created_at": 1,
        "updated_at": 1,
    }
    nulls = {k for k, v in build(data, RowOptions()).row.items() if v is None}
    kept = {"id", "organization_id", "user_id", "created_at", "updated_at", "raw"}
    assert nulls == {c.name for c in M.columns} - kept


def test_a_membership_without_its_organization_cannot_apply() -> None:
    data = cp.membership()
    del data["organization"]  # required by the spec
    with pytest.raises(PayloadError, match="organization") as caught:
        build(data, RowOptions())
    assert "jane.doe@acme.example" not in str(caught.value)


async def test_a_membership_without_its_user_applies_and_a_later_one_names_it(
    engine: AsyncEngine,
) -> None:
    # The spec does not require public_user_data: the member is NULL until a snapshot says.
    bare = cp.membership()
    del bare["public_user_data"]
    assert await deliver(engine, cp.envelope("organizationMembership.created", bare)) is (
        Status.APPLIED
    )
    assert (await one(engine, M, bare["id"]))["user_id"] is None
    named = cp.membership(updated_at=cp.T0 + 1)
    assert await deliver(engine, cp.envelope("organizationMembership.updated", named)) is (
        Status.APPLIED
    )
    stored = await one(engine, M, bare["id"])
    assert stored["user_id"] == named["public_user_data"]["user_id"]
    assert stored["deleted_at"] is None


def test_private_metadata_kept_or_dropped() -> None:
    data = {**cp.membership(), "private_metadata": {"seat": 4}}
    assert build(data, RowOptions()).row["private_metadata"] == {"seat": 4}
    dropped = build(data, RowOptions(store_private_metadata=False)).row
    assert dropped["private_metadata"] is None and "private_metadata" not in dropped["raw"]


def member(id: str, created: int, deleted: int | None = None, user: str = "u_1") -> Row:
    return {
        "id": id,
        "organization_id": "o_1",
        "user_id": user,
        "created_at": at(created),
        "updated_at": at(created),
        "deleted_at": None if deleted is None else at(deleted),
    }


async def settle(engine: AsyncEngine, stored: list[Row], incoming: list[Row]) -> dict[str, Any]:
    async with engine.begin() as conn:
        if stored:
            await conn.execute(insert(M), stored)
        await settle_live_pairs(conn, incoming)
    return {r["id"]: r["deleted_at"] for r in await rows(engine, M)}


async def test_a_newer_membership_ends_the_stored_one_at_its_creation(
    engine: AsyncEngine,
) -> None:
    incoming = [member("m_new", 5)]
    stored = await settle(engine, [member("m_old", 1), member("m_other", 1, user="u_2")], incoming)
    assert stored == {"m_old": at(5), "m_other": None}
    assert incoming[0]["deleted_at"] is None


async def test_an_older_incoming_membership_is_stored_ended(engine: AsyncEngine) -> None:
    incoming = [member("m_older", 0)]
    assert await settle(engine, [member("m_live", 3)], incoming) == {"m_live": None}
    assert incoming[0]["deleted_at"] == at(3)


async def test_the_newest_wins_even_when_it_has_ended(engine: AsyncEngine) -> None:
    incoming = [member("m_old", 1)]
    assert await settle(engine, [member("m_new", 5, deleted=6)], incoming) == {"m_new": at(6)}
    assert incoming[0]["deleted_at"] == at(5)


async def test_an_earlier_end_is_kept(engine: AsyncEngine) -> None:
    stored = await settle(engine, [member("m_old", 1, deleted=2)], [member("m_new", 5)])
    assert stored == {"m_old": at(2)}
    early = [member("m_a", 0, deleted=1)]
    await settle(engine, [], [*early, member("m_b", 4)])
    assert early[0]["deleted_at"] == at(1)


async def test_in_one_batch_the_newest_of_a_pair_stays_live(engine: AsyncEngine) -> None:
    batch = [member("m_2", 2), member("m_9", 9), member("m_5", 5), member("m_x", 5, user="u_2")]
    async with engine.begin() as conn:
        await settle_live_pairs(conn, batch)
        await settle_live_pairs(conn, [])
    assert {r["id"]: r["deleted_at"] for r in batch} == {
        "m_2": at(9),
        "m_9": None,
        "m_5": at(9),
        "m_x": None,
    }


async def test_a_created_at_tie_goes_to_the_greater_id(engine: AsyncEngine) -> None:
    incoming = [member("m_a", 5)]
    assert await settle(engine, [member("m_b", 5)], incoming) == {"m_b": None}
    assert incoming[0]["deleted_at"] == at(5)


async def test_memberships_stored_through_the_kind_keep_one_live_per_pair(
    engine: AsyncEngine,
) -> None:
    def snap(id: str, created: int) -> Any:
        ms = cp.T0 + created * 1000
        data = cp.membership(id, org_id="o_1", user_id="u_1", created_at=ms, updated_at=ms)
        return build(data, RowOptions())

    for snapshots in ([snap("m_1", 1)], [snap("m_3", 3), snap("m_2", 2)]):
        async with engine.begin() as conn:
            await writes.upsert(conn, KIND, snapshots)
    ends = {r["id"]: r["deleted_at"] for r in await rows(engine, M)}
    assert ends == {"m_1": at(3), "m_2": at(3), "m_3": None}


async def test_new_memberships_copied_keep_the_same_rules_as_upserted_ones(
    engine: AsyncEngine,
) -> None:
    """Reconcile's first backfill writes new memberships with new=True (COPY on PostgreSQL):
    the pair rule, ended parents and a membership a webhook stored meanwhile come out as the
    upsert has them."""

    def snap(id: str, created: int, user: str = "u_1") -> Any:
        ms = cp.T0 + created * 1000
        data = cp.membership(id, org_id="o_1", user_id=user, created_at=ms, updated_at=ms)
        return build(data, RowOptions())

    async def stored_after(new: bool, first: list[Any]) -> list[dict[str, Any]]:
        async with engine.begin() as conn:
            await conn.execute(M.delete())
            await conn.execute(t.users.delete())
            await writes.end(conn, kind("users"), [("u_gone", at(0))])  # a deleted member
            if first:
                await writes.upsert(conn, KIND, first)  # a webhook got there first
        batch = [snap("m_1", 1), snap("m_2", 2), snap("m_3", 3, user="u_gone"), snap("m_4", 4)]
        async with engine.begin() as conn:
            await writes.upsert(conn, KIND, batch, new=new)
        return await rows(engine, M)

    for first in ([], [snap("m_4", 4)]):
        copied, upserted = await stored_after(True, first), await stored_after(False, first)
        assert copied == upserted
        ends = {r["id"]: r["deleted_at"] for r in copied}
        assert ends == {"m_1": at(4), "m_2": at(4), "m_3": at(0), "m_4": None}


U = "user_29w83sxmDNGwOuEthce5gg56FcC"
ORG = "org_29w9IfBrPmcpi0IeBVaKtA7R94W"


def ms(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp() * 1000)


async def test_membership_before_its_user_and_organization(engine: AsyncEngine) -> None:
    assert (
        await deliver(engine, cp.envelope("organizationMembership.created", cp.membership()))
        is Status.APPLIED
    )
    (m,) = await rows(engine, t.organization_memberships)
    assert (m["organization_id"], m["user_id"], m["deleted_at"]) == (ORG, U, None)
    await deliver(engine, cp.envelope("user.created", cp.user()))
    await deliver(engine, cp.envelope("organization.created", cp.organization()))
    assert (await one(engine, t.organization_memberships, m["id"]))["deleted_at"] is None


async def test_one_live_membership_per_pair_newer_replaces_older(engine: AsyncEngine) -> None:
    old = cp.membership("orgmem_old", created_at=cp.T0, updated_at=cp.T0)
    new = cp.membership(
        "orgmem_new", role="org:admin", created_at=cp.T0 + 100, updated_at=cp.T0 + 100
    )
    await deliver(engine, cp.envelope("organizationMembership.created", old))
    await deliver(engine, cp.envelope("organizationMembership.created", new))
    assert (
        ms((await one(engine, t.organization_memberships, "orgmem_old"))["deleted_at"])
        == cp.T0 + 100
    )
    assert (await one(engine, t.organization_memberships, "orgmem_new"))["deleted_at"] is None
    # The old one's late update must not bring it back or end the new one.
    old_update = cp.membership("orgmem_old", created_at=cp.T0, updated_at=cp.T0 + 50)
    await deliver(engine, cp.envelope("organizationMembership.updated", old_update))
    live = [
        r["id"] for r in await rows(engine, t.organization_memberships) if r["deleted_at"] is None
    ]
    assert live == ["orgmem_new"]


async def test_older_membership_arriving_after_newer_is_stored_ended(engine: AsyncEngine) -> None:
    new = cp.membership("orgmem_new", created_at=cp.T0 + 100, updated_at=cp.T0 + 100)
    old = cp.membership("orgmem_old", created_at=cp.T0, updated_at=cp.T0)
    await deliver(engine, cp.envelope("organizationMembership.created", new))
    await deliver(engine, cp.envelope("organizationMembership.created", old))
    assert (
        ms((await one(engine, t.organization_memberships, "orgmem_old"))["deleted_at"])
        == cp.T0 + 100
    )
    assert (await one(engine, t.organization_memberships, "orgmem_new"))["deleted_at"] is None


async def test_membership_deleted_carries_the_whole_membership(engine: AsyncEngine) -> None:
    gone = cp.membership("orgmem_gone", role="org:admin")
    await deliver(engine, cp.envelope("organizationMembership.deleted", gone, cp.T0 + 77))
    row = await one(engine, t.organization_memberships, "orgmem_gone")
    assert (row["role"], ms(row["deleted_at"])) == ("org:admin", cp.T0 + 77)
    await deliver(
        engine, cp.envelope("organizationMembership.created", cp.membership("orgmem_gone"))
    )
    assert (
        ms((await one(engine, t.organization_memberships, "orgmem_gone"))["deleted_at"])
        == cp.T0 + 77
    )


async def test_a_newer_ended_membership_still_ends_an_older_one(engine: AsyncEngine) -> None:
    new = cp.membership("orgmem_new", created_at=cp.T0 + 100, updated_at=cp.T0 + 100)
    old = cp.membership("orgmem_old", created_at=cp.T0, updated_at=cp.T0)
    await deliver(engine, cp.envelope("organizationMembership.created", new))
    await deliver(engine, cp.envelope("organizationMembership.deleted", new, cp.T0 + 200))
    await deliver(engine, cp.envelope("organizationMembership.created", old))
    assert (
        ms((await one(engine, t.organization_memberships, "orgmem_old"))["deleted_at"])
        == cp.T0 + 100
    )
    assert (
        ms((await one(engine, t.organization_memberships, "orgmem_new"))["deleted_at"])
        == cp.T0 + 200
    )
