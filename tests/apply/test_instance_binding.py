"""Instances kept apart, on PostgreSQL and SQLite: an event's instance is its endpoint's (bound
to one Clerk instance id by configuration, reconcile or the first delivery); an envelope naming
another is refused and applies nothing; and a write of one instance never changes, ends or
erases a row recorded for another (rows naming none are claimed)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_batch, apply_one
from service.clerk.rows import RowOptions
from service.inbox.store import Status
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import deliver, inbox_row, one, rows, store_event

PROD, STAGING = "ins_prod", "ins_staging"
VICTIM = "user_prod_victim"


def event(instance_id: str | None, event_type: str, data: dict[str, Any], at: int = cp.T0) -> Any:
    env = cp.envelope(event_type, data, at)
    if instance_id is None:
        del env["instance_id"]
    else:
        env["instance_id"] = instance_id
    return env


def victim(**fields: Any) -> dict[str, Any]:
    return cp.user(VICTIM, emails=[cp.email("idn_victim", "victim@example.org")], **fields)


async def two_instances(engine: AsyncEngine) -> None:
    """prod holds a user with a membership; staging has taken one delivery of its own."""
    assert await deliver(engine, event(PROD, "user.created", victim()), instance="prod") == (
        Status.APPLIED
    )
    member = cp.membership("orgmem_victim", org_id="org_prod", user_id=VICTIM)
    await deliver(engine, event(PROD, "organizationMembership.created", member), instance="prod")
    staging_user = cp.user("user_staging_own")
    await deliver(engine, event(STAGING, "user.created", staging_user), instance="staging")


async def test_staging_signed_events_never_change_a_prod_row(engine: AsyncEngine) -> None:
    await two_instances(engine)
    # Signed with staging's secret, posted to staging, naming staging: only the ids are prod's.
    renamed = victim(first_name="Mallory", updated_at=cp.T0 + 10)
    assert await deliver(engine, event(STAGING, "user.updated", renamed), instance="staging") is (
        Status.APPLIED
    )
    deletion = event(STAGING, "user.deleted", cp.deleted("user", VICTIM), cp.T0 + 20)
    assert await deliver(engine, deletion, instance="staging") is Status.APPLIED
    org_gone = event(STAGING, "organization.deleted", cp.deleted("organization", "org_prod"))
    assert await deliver(engine, org_gone, instance="staging") is Status.APPLIED

    user = await one(engine, t.users, VICTIM)
    assert (user["first_name"], user["deleted_at"], user["instance_id"]) == ("Example", None, PROD)
    assert user["raw"] is not None and user["primary_email_address"] is not None
    assert len(await rows(engine, t.email_addresses, user_id=VICTIM)) == 1
    member = await one(engine, t.organization_memberships, "orgmem_victim")
    assert member["deleted_at"] is None and member["raw"] is not None
    # staging's own bare tombstone for the organization it never had is its own.
    assert (await one(engine, t.organizations, "org_prod"))["instance_id"] == STAGING
    # prod's own events still apply.
    again = victim(first_name="Janet", updated_at=cp.T0 + 30)
    await deliver(engine, event(PROD, "user.updated", again), instance="prod")
    assert (await one(engine, t.users, VICTIM))["first_name"] == "Janet"


async def test_an_envelope_naming_another_instance_is_refused(engine: AsyncEngine) -> None:
    await two_instances(engine)
    forged = event(PROD, "user.updated", victim(first_name="Mallory", updated_at=cp.T0 + 10))
    svix_id = await store_event(engine, forged, instance="staging")
    assert await apply_one(engine, svix_id, RowOptions()) is Status.FAILED
    error = (await inbox_row(engine, svix_id))["last_error"]
    assert "ins_prod" in error and "staging" in error and "ins_staging" in error
    assert (await one(engine, t.users, VICTIM))["first_name"] == "Example"


async def test_one_instance_id_belongs_to_one_name(engine: AsyncEngine) -> None:
    await deliver(engine, event(PROD, "user.created", victim()), instance="prod")
    # staging's first delivery names prod's instance: not learned, refused.
    forged = event(PROD, "user.updated", victim(first_name="Mallory", updated_at=cp.T0 + 10))
    svix_id = await store_event(engine, forged, instance="staging")
    assert await apply_one(engine, svix_id, RowOptions()) is Status.FAILED
    assert "prod" in (await inbox_row(engine, svix_id))["last_error"]
    # In one batch, the first of two unbound names to name an id takes it; the other is refused.
    first = await store_event(
        engine, event("ins_new", "user.created", cp.user("u_a")), instance="a"
    )
    second = await store_event(
        engine, event("ins_new", "user.created", cp.user("u_b")), instance="b"
    )
    result = await apply_batch(engine, RowOptions(), limit=10)
    assert result.outcomes == {Status.APPLIED: 1, Status.FAILED: 1}
    status = {n: (await inbox_row(engine, s))["status"] for n, s in (("a", first), ("b", second))}
    (winner,) = [n for n, s in status.items() if s == Status.APPLIED]
    assert (await one(engine, t.users, f"u_{winner}"))["instance_id"] == "ins_new"
    assert [u["id"] for u in await rows(engine, t.users) if u["id"] in ("u_a", "u_b")] == [
        f"u_{winner}"
    ]


async def test_a_configured_instance_id_binds_before_any_delivery(engine: AsyncEngine) -> None:
    options = RowOptions(instance_ids=(("prod", PROD),))
    forged = event("ins_attacker", "user.created", victim())
    svix_id = await store_event(engine, forged, instance="prod")
    assert await apply_one(engine, svix_id, options) is Status.FAILED
    assert await rows(engine, t.users) == []
    # An envelope naming no instance takes its endpoint's.
    bare = await store_event(engine, event(None, "user.created", victim()), instance="prod")
    assert await apply_one(engine, bare, options) is Status.APPLIED
    assert (await one(engine, t.users, VICTIM))["instance_id"] == PROD


async def test_rows_naming_no_instance_are_claimed(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(t.users), [{"id": VICTIM}])
    await deliver(engine, event(PROD, "user.created", victim()), instance="prod")
    user = await one(engine, t.users, VICTIM)
    assert (user["first_name"], user["instance_id"]) == ("Example", PROD)


async def test_one_instance_is_unchanged(engine: AsyncEngine) -> None:
    """The default endpoint learns its instance from its first delivery and goes on."""
    assert await deliver(engine, cp.envelope("user.created", victim())) is Status.APPLIED
    deletion = cp.envelope("user.deleted", cp.deleted("user", VICTIM), cp.T0 + 20)
    assert await deliver(engine, deletion) is Status.APPLIED
    user = await one(engine, t.users, VICTIM)
    assert (user["instance_id"], user["first_name"]) == (cp.INSTANCE_ID, None)
    assert user["deleted_at"] is not None
