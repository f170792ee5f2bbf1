"""Batched apply on PostgreSQL and SQLite: many events per transaction, same result as one by one,
and one bad event never holds its batch back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_batch, apply_one
from service.clerk.rows import RowOptions
from service.db.errors import TransientError
from service.inbox import store
from service.inbox.store import Status, inbox
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import inbox_row, one, rows, store_event

U = "user_29w83sxmDNGwOuEthce5gg56FcC"
ORG = "org_29w9IfBrPmcpi0IeBVaKtA7R94W"


def ms(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp() * 1000)


async def test_a_mixed_batch_applies_in_one_go(engine: AsyncEngine) -> None:
    events = [
        cp.envelope("user.created", cp.user(emails=[cp.email("idn_a", "a@example.org")])),
        # Newer snapshot of the same user in the same batch: its identifiers win.
        cp.envelope(
            "user.updated",
            cp.user(updated_at=cp.T0 + 5, emails=[cp.email("idn_b", "b@example.org")]),
        ),
        cp.envelope("organization.created", cp.organization()),
        cp.envelope("organizationMembership.created", cp.membership()),
        cp.envelope("user.updated", {"id": U, "updated_at": "yesterday"}),  # payload error
    ]
    ids = [await store_event(engine, e) for e in events]
    result = await apply_batch(engine, RowOptions(), 100)
    assert result.claimed == 5
    assert result.outcomes == {Status.APPLIED: 4, Status.FAILED: 1}
    assert [r["id"] for r in await rows(engine, t.email_addresses)] == ["idn_b"]
    assert (await one(engine, t.users, U))["updated_at"] == datetime.fromtimestamp(
        (cp.T0 + 5) / 1000, tz=UTC
    )
    assert len(await rows(engine, t.organization_memberships, deleted_at=None)) == 1
    statuses = [(await inbox_row(engine, i))["status"] for i in ids]
    assert statuses == [Status.APPLIED] * 4 + [Status.FAILED]
    assert "updated_at" in (await inbox_row(engine, ids[4]))["last_error"]
    assert (await apply_batch(engine, RowOptions(), 100)).claimed == 0


async def test_batches_take_the_oldest_first_and_respect_the_limit(engine: AsyncEngine) -> None:
    ids = [
        await store_event(engine, cp.envelope("organization.created", cp.organization(f"org_{i}")))
        for i in range(5)
    ]
    first = await apply_batch(engine, RowOptions(), 2)
    assert first.claimed == 2
    assert [(await inbox_row(engine, i))["status"] for i in ids[:3]] == [
        Status.APPLIED,
        Status.APPLIED,
        Status.PENDING,
    ]
    assert (await apply_batch(engine, RowOptions(), 10)).claimed == 3


async def test_a_value_the_database_refuses_fails_alone(engine: AsyncEngine) -> None:
    # An id longer than the column allows: PostgreSQL refuses the whole batch statement; the
    # batch falls back to one event per transaction, so only the bad event fails.
    good = [
        await store_event(engine, cp.envelope("organization.created", cp.organization(f"org_{i}")))
        for i in range(3)
    ]
    bad = await store_event(
        engine, cp.envelope("organization.created", cp.organization("org_" + "x" * 300))
    )
    result = await apply_batch(engine, RowOptions(), 100)
    assert result.claimed == 4
    for svix_id in good:
        assert (await inbox_row(engine, svix_id))["status"] == Status.APPLIED
    if engine.dialect.name == "postgresql":
        assert result.outcomes == {Status.APPLIED: 3, Status.FAILED: 1}
        row = await inbox_row(engine, bad)
        assert row["status"] == Status.FAILED and "x" * 20 not in row["last_error"]
    else:  # SQLite does not enforce lengths
        assert result.outcomes == {Status.APPLIED: 4}


async def test_an_event_backing_off_is_left_until_its_retry_time(engine: AsyncEngine) -> None:
    waiting = await store_event(engine, cp.envelope("user.created", cp.user()))
    soon = datetime.now(UTC) + timedelta(seconds=60)
    async with engine.begin() as conn:
        await store.note_retry(conn, waiting, "OSError: gone", soon)
        assert await store.next_retry_at(conn) is not None
    assert (await apply_batch(engine, RowOptions(), 10)).claimed == 0
    async with engine.begin() as conn:
        await conn.execute(
            update(inbox)
            .where(inbox.c.svix_id == waiting)
            .values(retry_after=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert (await apply_batch(engine, RowOptions(), 10)).outcomes == {Status.APPLIED: 1}
    row = await inbox_row(engine, waiting)
    assert (row["status"], row["retry_after"], row["attempts"]) == (Status.APPLIED, None, 2)


async def test_a_row_ended_twice_in_one_batch_keeps_the_earlier_end(engine: AsyncEngine) -> None:
    gone = {"id": ORG, "object": "organization", "deleted": True}
    await store_event(engine, cp.envelope("organization.deleted", gone, cp.T0 + 9))
    await store_event(engine, cp.envelope("organization.deleted", gone, cp.T0 + 3))
    await store_event(engine, cp.envelope("organization.created", cp.organization()))
    assert (await apply_batch(engine, RowOptions(), 10)).outcomes == {Status.APPLIED: 3}
    assert ms((await one(engine, t.organizations, ORG))["deleted_at"]) == cp.T0 + 3


async def test_a_membership_and_its_parents_deletion_in_one_batch(engine: AsyncEngine) -> None:
    gone = {"id": U, "object": "user", "deleted": True}
    await store_event(engine, cp.envelope("user.deleted", gone, cp.T0 + 50))
    await store_event(engine, cp.envelope("organizationMembership.created", cp.membership()))
    await store_event(engine, cp.envelope("user.created", cp.user()))
    assert (await apply_batch(engine, RowOptions(), 10)).outcomes == {Status.APPLIED: 3}
    [membership] = await rows(engine, t.organization_memberships)
    assert ms(membership["deleted_at"]) == cp.T0 + 50
    assert ms((await one(engine, t.users, U))["deleted_at"]) == cp.T0 + 50


async def test_an_event_failing_transiently_gives_up_after_its_attempts(
    engine: AsyncEngine,
) -> None:
    domain = await store_event(engine, cp.envelope("organizationDomain.created", cp.domain()))
    # A real transient fault: the table is missing (as before a migration).
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE clerk_organization_domains RENAME TO moved_away"))
    try:
        for _ in range(2):
            with pytest.raises(TransientError):
                await apply_one(engine, domain, RowOptions(), max_attempts=3)
            assert (await inbox_row(engine, domain))["status"] == Status.PENDING
        assert await apply_one(engine, domain, RowOptions(), max_attempts=3) is Status.FAILED
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE moved_away RENAME TO clerk_organization_domains"))
    failed = await inbox_row(engine, domain)
    assert failed["status"] == Status.FAILED and failed["attempts"] == 3
    assert "gave up after 3 attempts" in failed["last_error"]
    # Failed with its body, so it can be replayed once the cause is fixed.
    assert failed["body"] is not None
    assert await apply_one(engine, domain, RowOptions()) is None  # no longer pending


async def test_without_a_limit_transient_failures_keep_backing_off(engine: AsyncEngine) -> None:
    domain = await store_event(engine, cp.envelope("organizationDomain.created", cp.domain()))
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE clerk_organization_domains RENAME TO moved_away"))
    try:
        for _ in range(5):
            with pytest.raises(TransientError):
                await apply_one(engine, domain, RowOptions())
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE moved_away RENAME TO clerk_organization_domains"))
    assert (await inbox_row(engine, domain))["attempts"] == 5
    assert await apply_one(engine, domain, RowOptions()) is Status.APPLIED


async def test_each_event_names_its_own_instance_in_a_mixed_batch(engine: AsyncEngine) -> None:
    def of(instance: str, event_type: str, data: dict[str, object]) -> dict[str, object]:
        return {**cp.envelope(event_type, data), "instance_id": instance}

    emails = {k: [cp.email(f"idn_{k}", f"{k}@example.org")] for k in ("a", "b")}
    # Each instance's events come through its own endpoint.
    a_user = of("ins_a", "user.created", cp.user("user_a", emails=emails["a"]))
    await store_event(engine, a_user, instance="a")
    b_user = of("ins_b", "user.created", cp.user("user_b", emails=emails["b"]))
    await store_event(engine, b_user, instance="b")
    b_gone = of("ins_b", "user.deleted", cp.deleted("user", "user_never_seen"))
    await store_event(engine, b_gone, instance="b")
    a_org = of("ins_a", "organization.created", cp.organization("org_a"))
    await store_event(engine, a_org, instance="a")
    result = await apply_batch(engine, RowOptions(), limit=10)
    assert result.outcomes[Status.APPLIED] == 4
    users = {u["id"]: u["instance_id"] for u in await rows(engine, t.users)}
    assert users == {"user_a": "ins_a", "user_b": "ins_b", "user_never_seen": "ins_b"}
    (email,) = await rows(engine, t.email_addresses, user_id="user_a")
    assert email["instance_id"] == "ins_a"  # owned rows too
    assert (await one(engine, t.organizations, "org_a"))["instance_id"] == "ins_a"
