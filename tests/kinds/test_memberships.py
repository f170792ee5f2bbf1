"""Memberships on PostgreSQL and SQLite: one live membership per (organization, user), whatever
order the events arrive in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from service.inbox.table import Status
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import deliver, one, rows

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
