"""The change feed's triggers, on PostgreSQL and SQLite: a change of a kind's row appends one
change in its transaction, naming its event; nothing changes, nothing is appended."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_one
from service.clerk.rows import RowOptions
from service.config import get_settings
from service.db.engine import create_engine
from service.feed import read
from service.feed.table import changes
from service.operate.migrate import upgrade
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import deliver, store_event
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
    woken: asyncio.Queue[str] = asyncio.Queue()
    async with pg_engine.connect() as listener:
        driver = (await listener.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.add_listener("clerk_replica_changes", lambda *a: woken.put_nowait(a[-1]))
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
