"""The COPY path for new objects writes exactly what the upserts would, and steps aside
(writing nothing) whenever it cannot."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import JSON, Numeric, Table, Text, cast, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.clerk.rows import RowOptions, Snapshot
from service.kinds import registry, writes
from service.kinds.registry import kind
from service.replica import bulk
from tests.support import clerk_payloads as cp
from tests.support import tables as t

USERS = kind("users")
ORGANIZATIONS = kind("organizations")
USER_TABLES = USERS.tables


async def copy_users(conn: AsyncConnection, snaps: list[Snapshot]) -> bool:
    return await bulk.copy_new(conn, t.users, [o.table for o in USERS.owns], snaps)


def snapshots(options: RowOptions) -> list[Snapshot]:
    """Users with every kind of identifier, nulls, JSON nulls and nested metadata."""
    made = []
    for n in range(5):
        data = cp.user(
            f"user_{n}",
            emails=[cp.email(f"idn_{n}a", f"a{n}@example.org"), cp.email(f"idn_{n}b", "b@x.y")],
            phone_numbers=[cp.phone(f"idn_{n}p", f"+1555000{n}")] if n % 2 else [],
            primary_phone_number_id=f"idn_{n}p" if n % 2 else None,
            external_accounts=[cp.external_account(f"eac_{n}")] if n != 3 else [],
            web3_wallets=[cp.web3_wallet(f"idn_{n}w", f"0x{n:040x}")] if n % 2 else [],
            primary_web3_wallet_id=f"idn_{n}w" if n == 1 else None,
            enterprise_accounts=[cp.enterprise_account(f"ent_{n}")] if n != 2 else [],
            public_metadata={"plan": "pro", "seats": n, "nested": {"a": [1, None, "x"]}},
            unsafe_metadata=None,
            username=None if n % 2 else f"name{n}",
            last_sign_in_at=None if n == 2 else cp.T0 + n,
        )
        if n == 4:  # what COPY's text format must escape, and what it must leave alone
            data["first_name"] = "tab\there\nnew line\r\\N back\\slash \u00e9\U0001f600 'q\""
            data["last_name"] = "\\N"
            data["public_metadata"] = {"path": "C:\\x\\y", "text": "a\tb\nc", "quote": '"'}
        made.append(USERS.build(data, options))
    return made


async def table_rows(engine: AsyncEngine, table: Table) -> list[dict[str, Any]]:
    """Every column; JSON ones as text, where JSON null ('null') and SQL NULL differ."""
    columns = [
        cast(c, Text).label(c.name) if isinstance(c.type, JSON) else c for c in table.columns
    ]
    async with engine.connect() as conn:
        result = await conn.execute(select(*columns).order_by(table.c.id))
        return [dict(r._mapping) for r in result]


async def clear(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for table in (*USER_TABLES, t.organizations):
            await conn.execute(delete(table))


async def test_copied_rows_equal_upserted_rows(pg_engine: AsyncEngine) -> None:
    for options in (RowOptions(), RowOptions(store_private_metadata=False)):
        users = snapshots(options)
        orgs = [
            ORGANIZATIONS.build(cp.organization(f"org_{n}", members_count=None), options)
            for n in range(3)
        ]
        async with pg_engine.begin() as conn:
            await writes.upsert(conn, USERS, users)
            await writes.upsert(conn, ORGANIZATIONS, orgs)
        upserted = {
            tb.name: await table_rows(pg_engine, tb) for tb in (*USER_TABLES, t.organizations)
        }
        await clear(pg_engine)

        async with pg_engine.begin() as conn:
            assert await copy_users(conn, users) is True
            assert await bulk.copy_new(conn, t.organizations, [], orgs) is True
        copied = {
            tb.name: await table_rows(pg_engine, tb) for tb in (*USER_TABLES, t.organizations)
        }
        await clear(pg_engine)

        assert all(copied[name] for name in copied)  # every table got rows
        assert copied == upserted


async def test_an_id_already_stored_rolls_the_copy_back_and_keeps_the_transaction(
    pg_engine: AsyncEngine,
) -> None:
    users = snapshots(RowOptions())
    async with pg_engine.begin() as conn:
        await writes.upsert(conn, USERS, users[2:3])  # a webhook got there first
    async with pg_engine.begin() as conn:
        assert await copy_users(conn, users) is False
        assert [r["id"] for r in await table_rows(pg_engine, t.users)] == ["user_2"]
        # The transaction is still usable: the upserts take over, as reconcile does.
        await writes.upsert(conn, USERS, users)
    assert [r["id"] for r in await table_rows(pg_engine, t.users)] == [s.id for s in users]
    emails = await table_rows(pg_engine, t.email_addresses)
    assert len(emails) == 2 * len(users)


async def test_an_identifier_held_by_another_user_rolls_the_copy_back(
    pg_engine: AsyncEngine,
) -> None:
    users = snapshots(RowOptions())
    moved = USERS.build(
        cp.user("user_old", emails=[cp.email("idn_0a", "a0@example.org")]), RowOptions()
    )
    async with pg_engine.begin() as conn:
        await writes.upsert(conn, USERS, [moved])
    async with pg_engine.begin() as conn:
        assert await copy_users(conn, users) is False
    assert [r["id"] for r in await table_rows(pg_engine, t.users)] == ["user_old"]


async def test_one_id_twice_is_left_to_the_upserts(pg_engine: AsyncEngine) -> None:
    users = snapshots(RowOptions())
    async with pg_engine.begin() as conn:
        assert await copy_users(conn, [users[0], users[0]]) is False
    assert await table_rows(pg_engine, t.users) == []


async def test_sqlite_has_no_copy(sqlite_db_url: str, redis_url: str) -> None:
    from service.db.engine import create_engine
    from tests.support.settings import make_settings

    engine = create_engine(make_settings(sqlite_db_url, redis_url))
    try:
        async with engine.begin() as conn:
            assert await copy_users(conn, snapshots(RowOptions())) is False
        assert await table_rows(engine, t.users) == []
    finally:
        await engine.dispose()


def test_every_column_of_every_kind_has_a_copy_spelling() -> None:
    for k in registry.KINDS:
        for table in k.tables:
            bulk.line_of(table)  # raises TypeError for a type COPY's text format lacks


def test_a_type_without_a_spelling_is_refused() -> None:
    with pytest.raises(TypeError, match="no COPY text encoding"):
        bulk.spelling(Numeric())


def test_a_subset_and_snapshots_encoded_elsewhere_spell_as_if_encoded_alone() -> None:
    users = snapshots(RowOptions())
    owned = [o.table for o in USERS.owns]
    encoded = bulk.encode(t.users, owned, users[:3])
    chosen = [users[2], users[4], users[0]]  # one of them not in `encoded`
    assert encoded.subset(chosen) == bulk.encode(t.users, owned, chosen).subset(chosen)
    assert encoded.subset(users[:3]) == bulk.encode(t.users, owned, users[:3]).subset(users[:3])
    assert [table for table, _ in encoded.subset(chosen)] == [t.users, *owned]


async def test_copied_with_an_encoding_made_beforehand(pg_engine: AsyncEngine) -> None:
    users = snapshots(RowOptions())
    async with pg_engine.begin() as conn:
        await writes.upsert(conn, USERS, users)
    upserted = {tb.name: await table_rows(pg_engine, tb) for tb in USER_TABLES}
    await clear(pg_engine)
    encoded = bulk.encode(t.users, [o.table for o in USERS.owns], users)
    async with pg_engine.begin() as conn:
        assert await bulk.copy_new(conn, t.users, [o.table for o in USERS.owns], users, encoded)
    assert {tb.name: await table_rows(pg_engine, tb) for tb in USER_TABLES} == upserted
