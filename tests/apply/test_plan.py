"""Planning: a stored event -> the writes it makes, and a planned batch equals its events
applied one at a time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.plan import Event, event_of, plan, run_planned
from service.clerk.payloads import PayloadError
from service.clerk.rows import RowOptions
from service.clerk.timestamps import envelope_ms, from_ms
from service.inbox.store import Claimed
from service.kinds import registry
from tests.support import clerk_payloads as cp
from tests.support.replica_helpers import rows

U = "user_29w83sxmDNGwOuEthce5gg56FcC"
ORG = "org_29w9IfBrPmcpi0IeBVaKtA7R94W"
ARRIVED = datetime(2024, 7, 1, tzinfo=UTC)


def claimed(envelope: dict[str, Any] | None, body: str | None = None, n: int = 0) -> Claimed:
    stamp = envelope_ms(envelope.get("timestamp")) if envelope else None
    return Claimed(
        svix_id=f"msg_{n}",
        event_type=envelope["type"] if envelope else "user.created",
        body=json.dumps(envelope) if envelope else body,
        event_timestamp_ms=stamp,
        received_at=ARRIVED,
    )


def planned(envelope: dict[str, Any]) -> Any:
    return plan(event_of(claimed(envelope)), RowOptions())


def test_an_upsert_plans_its_snapshot_and_locks() -> None:
    p = planned(cp.envelope("user.created", cp.user()))
    assert (p.object_id, p.kind.name, p.ending, p.locks) == (U, "users", None, (U,))
    assert p.snapshot is not None and p.snapshot.row["first_name"] == "Example"
    m = planned(cp.envelope("organizationMembership.created", cp.membership()))
    assert m.locks == (U, ORG) and m.ending is None
    assert planned(cp.envelope("organizationDomain.created", cp.domain())).locks == (ORG,)


def test_a_deletion_by_id_users_lock_their_own_id() -> None:
    p = planned(cp.envelope("user.deleted", cp.deleted("user", U), cp.T0 + 5))
    assert (p.object_id, p.snapshot, p.locks) == (U, None, (U,))
    assert p.ending == (U, from_ms(cp.T0 + 5))


def test_a_domain_deletion_takes_no_locks() -> None:
    env = cp.envelope("organizationDomain.deleted", cp.deleted("organization_domain", "d_1"))
    p = planned(env)
    assert (p.object_id, p.snapshot, p.locks, p.kind.name) == ("d_1", None, (), "domains")


def test_a_deletion_carrying_the_object_stores_it_ended_and_locks_its_parents() -> None:
    env = cp.envelope("organizationMembership.deleted", cp.membership(), timestamp=None)
    p = planned(env)
    assert p.snapshot is not None
    assert p.snapshot.row["deleted_at"] == ARRIVED  # no timestamp: the arrival time
    assert p.ending == (p.object_id, ARRIVED)
    assert p.locks == (U, ORG)


def test_a_bad_payload_is_a_payload_error_at_planning() -> None:
    with pytest.raises(PayloadError, match="User payload"):
        planned(cp.envelope("user.created", {"id": U}))
    with pytest.raises(PayloadError, match="Deleted payload"):
        planned(cp.envelope("user.deleted", {"id": ["user_1"], "deleted": True}))


def test_a_deletion_naming_no_object_plans_no_write() -> None:
    p = planned(cp.envelope("user.deleted", {"object": "user", "deleted": True}))
    assert (p.object_id, p.snapshot, p.ending, p.locks) == (None, None, None, ())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "has no body"),
        ("not json", "not a Clerk envelope"),
        ('{"type": "user.created"}', "not a Clerk envelope"),
        ("[1, 2]", "not a Clerk envelope"),
        ('{"type": "user.created", "data": [1]}', "data is not an object"),
        ('{"type": "user.created", "data": "x"}', "data is not an object"),
    ],
)
def test_event_of_refuses_what_is_not_an_event(body: str | None, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        event_of(claimed(None, body))


def test_event_of_reads_the_envelope_time_and_instance() -> None:
    envelope = cp.envelope("user.created", cp.user(), cp.T0 // 1000)
    event = event_of(claimed(envelope))
    instance = envelope["instance_id"]
    assert instance
    assert event == Event(
        "msg_0",
        "user.created",
        cp.user(),
        from_ms(cp.T0 + 999),  # type: ignore[arg-type]
        instance,
    )


def history() -> list[dict[str, Any]]:
    """Mixed events in arrival order, no two snapshots of one object tied on updated_at."""
    t = cp.T0
    m2 = cp.membership("orgmem_2", user_id="user_2", created_at=t + 10, updated_at=t + 10)
    return [
        cp.envelope("organization.created", cp.organization()),
        cp.envelope("user.created", cp.user(updated_at=t + 2, first_name="New")),
        cp.envelope("user.updated", cp.user(updated_at=t + 1, first_name="Old")),
        cp.envelope("user.created", cp.user("user_2", emails=[cp.email("idn_2", "2@x.example")])),
        cp.envelope("organizationMembership.created", cp.membership()),
        cp.envelope("organizationMembership.created", m2),
        cp.envelope("organizationInvitation.created", cp.invitation()),
        cp.envelope("organizationDomain.created", cp.domain()),
        cp.envelope("organizationDomain.created", cp.domain("orgdmn_2", org_id="org_other")),
        cp.envelope("user.deleted", cp.deleted("user", "user_2"), t + 50),
        cp.envelope("organizationDomain.deleted", cp.deleted("organization_domain", "orgdmn_2")),
        cp.envelope("organization.deleted", cp.deleted("organization", "org_gone"), t + 60),
        cp.envelope(
            "organizationMembership.created",
            cp.membership("orgmem_3", org_id="org_gone", user_id=U),
        ),
        cp.envelope("organizationMembership.deleted", cp.membership(updated_at=t + 5), t + 70),
        cp.envelope("user.deleted", cp.deleted("user", "user_never_seen"), t + 80),
    ]


async def contents(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    return {table.name: await rows(engine, table) for table in registry.replica_tables()}


async def clear(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for table in registry.replica_tables():
            await conn.execute(delete(table))


async def test_a_planned_batch_equals_its_events_one_by_one(engine: AsyncEngine) -> None:
    events = [event_of(claimed(env, n=n)) for n, env in enumerate(history())]
    async with engine.begin() as conn:
        await run_planned(conn, [plan(e, RowOptions()) for e in events])
    together = await contents(engine)
    assert len(together["clerk_organization_memberships"]) == 3
    for order in (events, events[::-1]):
        await clear(engine)
        for event in order:
            async with engine.begin() as conn:
                await run_planned(conn, [plan(event, RowOptions())])
        assert await contents(engine) == together
    users = {r["id"]: r for r in together["clerk_users"]}
    assert users[U]["first_name"] == "New" and users["user_2"]["deleted_at"] is not None
    ended = {r["id"]: r["deleted_at"] for r in together["clerk_organization_memberships"]}
    assert ended["orgmem_2"] == from_ms(cp.T0 + 50)
    assert ended["orgmem_3"] == from_ms(cp.T0 + 60)
    assert ended["orgmem_29w8XjGrpzt3jJqPnh2gmXS0c1N"] == from_ms(cp.T0 + 70)
