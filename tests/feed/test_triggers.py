"""The change feed's triggers, on PostgreSQL and SQLite: a change of a kind's row appends one
change in its transaction, naming its event; nothing changes, nothing is appended."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import case, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_one
from service.clerk.rows import RowOptions
from service.config import get_settings
from service.db.dialect import dialect_of
from service.db.engine import create_engine
from service.feed import read, triggers
from service.feed.changes import changes
from service.operate.migrate import upgrade
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import deliver, feed_notifications, store_event
from tests.support.settings import make_settings

USER = "user_feed_1"


async def feed(engine: AsyncEngine, since: int = 0) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return list(await read.after(conn, since, 10_000))


def ops(found: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(c["table_name"], c["object_id"], c["op"]) for c in found]


async def test_a_change_appends_once_naming_its_event(engine: AsyncEngine) -> None:
    created = cp.envelope("user.created", cp.user(USER, updated_at=cp.T0))
    svix = await store_event(engine, created)
    await apply_one(engine, svix, RowOptions())
    [change] = await feed(engine)
    assert (change["table_name"], change["object_id"], change["op"]) == (
        "clerk_users",
        USER,
        "upsert",
    )
    assert (change["svix_id"], change["instance_id"], change["run_id"]) == (svix, "ins_123", None)
    assert change["changed_at"] is not None
    # The same snapshot again (a redelivery under a new svix id), and an older one: nothing.
    await deliver(engine, cp.envelope("user.created", cp.user(USER, updated_at=cp.T0)))
    await deliver(engine, cp.envelope("user.updated", cp.user(USER, updated_at=cp.T0 - 5)))
    assert len(await feed(engine)) == 1
    await deliver(engine, cp.envelope("user.updated", cp.user(USER, updated_at=cp.T0 + 5)))
    await deliver(engine, cp.envelope("user.deleted", cp.deleted("user", USER), cp.T0 + 10))
    found = await feed(engine)
    assert ops(found) == [
        ("clerk_users", USER, "upsert"),
        ("clerk_users", USER, "upsert"),
        ("clerk_users", USER, "delete"),
    ]
    assert [c["seq"] for c in found] == sorted(c["seq"] for c in found)
    # A late snapshot from before the deletion is absorbed by the tombstone: the app saw it go.
    await deliver(engine, cp.envelope("user.updated", cp.user(USER, updated_at=cp.T0 + 7)))
    assert len(await feed(engine)) == 3
    assert (await feed(engine, found[1]["seq"])) == found[2:]


async def test_a_statement_over_many_rows_records_each_changed_row_once(
    engine: AsyncEngine,
) -> None:
    """One statement writing several rows (how the feed's PostgreSQL triggers see it): one
    change per row that changed, nothing for the others, whatever the statement."""
    u, now = t.users, datetime.now(UTC)
    ids = ["user_many_0", "user_many_1", "user_many_2"]
    async with engine.begin() as conn:
        await conn.execute(
            insert(u).values([{"id": i, "deleted_at": now if i == ids[2] else None} for i in ids])
        )
    found = await feed(engine)
    assert ops(found) == [
        ("clerk_users", ids[0], "upsert"),
        ("clerk_users", ids[1], "upsert"),
        ("clerk_users", ids[2], "delete"),
    ]
    last = found[-1]["seq"]

    async def statement(stmt: Any) -> list[tuple[str, str, str]]:
        nonlocal last
        async with engine.begin() as conn:
            await conn.execute(stmt)
        grown = await feed(engine, last)
        last = grown[-1]["seq"] if grown else last
        return ops(grown)

    # A new name for 0 and for 2 (ended, staying ended), a new version only for 1.
    renamed = update(u).where(u.c.id.in_(ids))
    named = case((u.c.id.in_([ids[0], ids[2]]), "Ada"), else_=u.c.first_name)
    assert await statement(renamed.values(first_name=named, updated_at=now)) == [
        ("clerk_users", ids[0], "upsert")
    ]
    ended = case((u.c.id == ids[1], now), else_=u.c.deleted_at)
    assert await statement(renamed.values(deleted_at=ended, updated_at=now)) == [
        ("clerk_users", ids[1], "delete")
    ]
    # An upsert inserting 3 and updating 0 (to the same values) and 2 (ended): only 3.
    async with engine.connect() as conn:
        upsert = dialect_of(conn).insert(u)
    rows = [{"id": i, "first_name": "Ada"} for i in (ids[0], "user_many_3", ids[2])]
    stmt = upsert.values(rows).on_conflict_do_update(
        index_elements=[u.c.id],
        set_={"first_name": upsert.excluded.first_name, "updated_at": now},
    )
    assert await statement(stmt) == [("clerk_users", "user_many_3", "upsert")]
    # A statement that changes nothing at all: nothing.
    assert await statement(update(u).where(u.c.id == "user_none").values(first_name="x")) == []


async def test_triggers_made_again_record_each_change_once(engine: AsyncEngine) -> None:
    """`drop` removes what `create` made (and what earlier versions made): a migration that
    rebuilds the triggers does not leave two recording the same change."""
    async with engine.begin() as conn:
        await conn.run_sync(triggers.drop)
        await conn.execute(insert(t.users), [{"id": "user_unrecorded"}])
        await conn.run_sync(triggers.create)
    async with engine.begin() as conn:
        await conn.run_sync(triggers.drop)
        await conn.run_sync(triggers.create)
        await conn.execute(insert(t.users), [{"id": "user_recorded"}])
    assert ops(await feed(engine)) == [("clerk_users", "user_recorded", "upsert")]


async def test_a_deletion_of_an_unknown_object_appends_a_delete(engine: AsyncEngine) -> None:
    await deliver(engine, cp.envelope("user.deleted", cp.deleted("user", "user_never_seen")))
    assert ops(await feed(engine)) == [("clerk_users", "user_never_seen", "delete")]


async def test_children_ended_with_their_parent_name_its_event(engine: AsyncEngine) -> None:
    org = "org_feed_1"
    await deliver(engine, cp.envelope("organization.created", cp.organization(org)))
    for n in range(2):
        member = cp.membership(f"orgmem_feed_{n}", org_id=org, user_id=f"user_feed_{n}")
        await deliver(engine, cp.envelope("organizationMembership.created", member))
    before = (await feed(engine))[-1]["seq"]
    deletion = cp.envelope("organization.deleted", cp.deleted("organization", org), cp.T0 + 10)
    svix = await store_event(engine, deletion)
    await apply_one(engine, svix, RowOptions())
    ended = await feed(engine, before)
    assert sorted(ops(ended)) == [
        ("clerk_organization_memberships", "orgmem_feed_0", "delete"),
        ("clerk_organization_memberships", "orgmem_feed_1", "delete"),
        ("clerk_organizations", org, "delete"),
    ]
    assert {c["svix_id"] for c in ended} == {svix}


async def test_a_rolled_back_change_leaves_nothing(engine: AsyncEngine) -> None:
    with pytest.raises(RuntimeError):
        async with engine.begin() as conn:
            await conn.execute(insert(t.users), [{"id": "user_rolled_back"}])
            assert len(list(await read.after(conn, 0, 10))) == 1  # seen inside, unnamed
            raise RuntimeError("roll back")
    assert await feed(engine) == []


async def test_an_apps_own_write_appends_an_unnamed_change(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(t.users), [{"id": "user_by_hand"}])
    [change] = await feed(engine)
    assert (change["object_id"], change["svix_id"], change["run_id"]) == (
        "user_by_hand",
        None,
        None,
    )


async def test_notify_carries_the_last_seq_at_commit(pg_engine: AsyncEngine) -> None:
    async with feed_notifications(pg_engine) as woken:
        await deliver(pg_engine, cp.envelope("user.created", cp.user("user_notified")))
        payload = await asyncio.wait_for(woken.get(), timeout=10)
        [change] = await feed(pg_engine)
        assert payload == str(change["seq"])
        # A duplicate changes nothing and says nothing.
        await deliver(pg_engine, cp.envelope("user.created", cp.user("user_notified")))
        await asyncio.sleep(0.3)
        assert woken.empty()


def test_change_feed_off_means_no_triggers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path}/nofeed.db"
    monkeypatch.setenv("CHANGE_FEED", "false")
    get_settings.cache_clear()
    try:
        upgrade(url)
    finally:
        get_settings.cache_clear()

    async def check() -> tuple[list[str], int]:
        engine = create_engine(make_settings(url, "redis://unused", change_feed=False))
        try:
            await deliver(engine, cp.envelope("user.created", cp.user("user_unfed")))
            async with engine.connect() as conn:
                found = await conn.execute(
                    text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                )
                count = await conn.scalar(select(changes.c.seq).limit(1))
            return list(found.scalars()), 0 if count is None else 1
        finally:
            await engine.dispose()

    assert asyncio.run(check()) == ([], 0)
    monkeypatch.setenv("CHANGE_FEED", "true")
    try:
        upgrade(url)  # at head again: the triggers come back
    finally:
        get_settings.cache_clear()

    async def triggers() -> int:
        engine = create_engine(make_settings(url, "redis://unused"))
        try:
            async with engine.connect() as conn:
                found = await conn.execute(
                    text("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'")
                )
                return int(found.scalar_one())
        finally:
            await engine.dispose()

    assert asyncio.run(triggers()) > 0
