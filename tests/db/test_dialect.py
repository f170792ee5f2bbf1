"""The dialect object: each PostgreSQL/SQLite difference, checked on the real databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.dialect import dialect_of
from service.db.engine import create_engine
from service.db.postgresql import PostgreSQL
from service.db.sqlite import SQLite
from service.reconcile.checkpoints import runs, seen
from service.reconcile.lock import locks
from tests.support import tables as t
from tests.support.replica_helpers import rows
from tests.support.settings import make_settings

EXPIRES = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
async def sqlite_engine(sqlite_db_url: str, redis_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(make_settings(sqlite_db_url, redis_url))
    yield engine
    await engine.dispose()


async def add_users(engine: AsyncEngine, *ids: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(t.users), [{"id": i, "first_name": i.upper()} for i in ids])


async def test_dialect_of_picks_the_database_of_the_engine_and_its_connections(
    engine: AsyncEngine, db_url: str
) -> None:
    expected = PostgreSQL if db_url.startswith("postgresql") else SQLite
    assert isinstance(dialect_of(engine), expected)
    async with engine.connect() as conn:
        assert dialect_of(conn) is dialect_of(engine)
    pg = expected is PostgreSQL
    found = dialect_of(engine)
    assert (found.concurrent_writers, found.roles, found.statistics, found.bulk_copy) == (pg,) * 4


@pytest.mark.parametrize("wanted", [["u_a", "u_c"], ["u_b"], [], ["u_x", "u_a"]])
async def test_among_selects_the_rows_in_selects(engine: AsyncEngine, wanted: list[str]) -> None:
    await add_users(engine, "u_a", "u_b", "u_c")
    among = dialect_of(engine).among
    async with engine.connect() as conn:
        by_among = await conn.execute(select(t.users.c.id).where(among(t.users.c.id, wanted)))
        by_in = await conn.execute(select(t.users.c.id).where(t.users.c.id.in_(wanted)))
        got, expected = sorted(by_among.scalars()), sorted(by_in.scalars())
    assert got == expected == sorted(set(wanted) & {"u_a", "u_b", "u_c"})


@pytest.mark.parametrize(
    "wanted",
    [[("u_a", "Ann")], [("u_a", "Bob"), ("u_b", "Bob"), ("u_c", "Cy")], [], [("u_x", "Ann")]],
)
async def test_among_pairs_selects_the_rows_whose_pair_is_given(
    engine: AsyncEngine, wanted: list[tuple[str, str]]
) -> None:
    stored = {("u_a", "Ann"), ("u_b", "Bob"), ("u_c", "Cy")}
    async with engine.begin() as conn:
        await conn.execute(
            insert(t.users),
            [
                {"id": i, "first_name": name, "created_at": EXPIRES, "updated_at": EXPIRES}
                for i, name in sorted(stored)
            ],
        )
    among_pairs = dialect_of(engine).among_pairs
    columns = (t.users.c.id, t.users.c.first_name)
    async with engine.connect() as conn:
        found = await conn.execute(select(t.users.c.id).where(among_pairs(columns, wanted)))
        got = sorted(found.scalars())
    assert got == sorted(i for i, name in wanted if (i, name) in stored)


async def test_inserter_returns_only_new_keys_and_leaves_stored_rows_alone(
    engine: AsyncEngine,
) -> None:
    await add_users(engine, "u_old")
    async with engine.begin() as conn:
        insert_new = await dialect_of(conn).inserter(conn, t.users, ["id", "first_name"], "id")
        assert await insert_new([["u_old", "u_new"], ["Changed", "New"]]) == {"u_new"}
        assert await insert_new([["u_new", "u_third"], ["Again", "Third"]]) == {"u_third"}
        assert await insert_new([[], []]) == set()
    names = {r["id"]: r["first_name"] for r in await rows(engine, t.users)}
    assert names == {"u_old": "U_OLD", "u_new": "New", "u_third": "Third"}


async def test_add_keys_is_idempotent(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        run_id = (
            await conn.execute(
                insert(runs)
                .values(trigger="cli", status="running", kinds=[], started_at=EXPIRES)
                .returning(runs.c.id)
            )
        ).scalar_one()
        add = dialect_of(conn).add_keys
        fixed = {"run_id": run_id, "kind": "users"}
        await add(conn, seen, fixed, "object_id", ["u_1", "u_2", "u_2"])
        await add(conn, seen, fixed, "object_id", ["u_2", "u_3"])
    stored = await rows(engine, seen)
    assert sorted(r["object_id"] for r in stored) == ["u_1", "u_2", "u_3"]
    assert {(r["run_id"], r["kind"]) for r in stored} == {(run_id, "users")}


def lock_record(*names: str) -> bytes:
    """Lock rows in COPY's text format."""
    return "".join(f"{name}\tholder\t{EXPIRES.isoformat()}\n" for name in names).encode()


async def test_copy_new_copies_then_refuses_a_stored_key_writing_nothing(
    pg_engine: AsyncEngine,
) -> None:
    dialect = dialect_of(pg_engine)
    async with pg_engine.begin() as conn:
        assert await dialect.copy_new(conn, [(locks, lock_record("a", "b"))])
    async with pg_engine.begin() as conn:
        # The first table's rows are new; the second batch repeats "b": all rolled back.
        batches = [(locks, lock_record("c")), (locks, lock_record("b"))]
        assert not await dialect.copy_new(conn, batches)
        # The transaction is still usable after the refused copy's savepoint.
        assert await conn.scalar(select(func.count()).select_from(locks)) == 2
    assert sorted(r["name"] for r in await rows(pg_engine, locks)) == ["a", "b"]


async def test_copy_new_is_refused_on_sqlite(sqlite_engine: AsyncEngine) -> None:
    async with sqlite_engine.begin() as conn:
        assert not await dialect_of(conn).copy_new(conn, [(locks, lock_record("a"))])
    assert await rows(sqlite_engine, locks) == []


async def test_lock_keys_makes_a_second_transaction_wait(pg_engine: AsyncEngine) -> None:
    dialect = dialect_of(pg_engine)
    async with pg_engine.connect() as first, pg_engine.connect() as second:
        await first.begin()
        await dialect.lock_keys(first, ["user_1"])
        await second.begin()
        # Another key is free.
        await asyncio.wait_for(dialect.lock_keys(second, ["user_2"]), timeout=5)
        waiting = asyncio.create_task(dialect.lock_keys(second, ["user_1"]))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await first.commit()
        await asyncio.wait_for(waiting, timeout=5)
        await second.commit()


async def test_analyze_and_row_estimate_on_postgresql(pg_engine: AsyncEngine) -> None:
    await add_users(pg_engine, *(f"u_{n:03}" for n in range(40)))
    dialect = dialect_of(pg_engine)
    async with pg_engine.begin() as conn:
        await dialect.analyze(conn, [t.users, t.organizations], sample_target=10)
    async with pg_engine.connect() as conn:
        assert await dialect.row_estimate(conn, t.users) == 40.0
        assert await dialect.row_estimate(conn, t.organizations) == 0.0


async def test_analyze_and_row_estimate_are_harmless_on_sqlite(
    sqlite_engine: AsyncEngine,
) -> None:
    await add_users(sqlite_engine, "u_a", "u_b")
    dialect = dialect_of(sqlite_engine)
    async with sqlite_engine.begin() as conn:
        await dialect.analyze(conn, [t.users], sample_target=None)
        assert await dialect.row_estimate(conn, t.users) == 0.0
        await dialect.lock_keys(conn, ["u_a"])  # a single writer needs no locks
    assert len(await rows(sqlite_engine, t.users)) == 2


async def test_skip_locked_lets_a_second_transaction_skip_a_held_row(
    pg_engine: AsyncEngine,
) -> None:
    await add_users(pg_engine, "u_a", "u_b")
    dialect = dialect_of(pg_engine)
    stmt = select(t.users.c.id).order_by(t.users.c.id)
    async with pg_engine.connect() as first, pg_engine.connect() as second:
        await first.begin()
        held = await first.execute(dialect.skip_locked(stmt.where(t.users.c.id == "u_a")))
        assert list(held.scalars()) == ["u_a"]
        await second.begin()
        free = await asyncio.wait_for(second.execute(dialect.skip_locked(stmt)), timeout=5)
        assert list(free.scalars()) == ["u_b"]
        await second.rollback()
        await first.rollback()
    async with pg_engine.connect() as conn:
        again = await conn.execute(dialect.skip_locked(stmt))
        assert list(again.scalars()) == ["u_a", "u_b"]


async def test_null_fraction_from_statistics(engine: AsyncEngine) -> None:
    await add_users(engine, "user_a", "user_b", "user_c", "user_d")
    dialect = dialect_of(engine)
    async with engine.begin() as conn:
        await conn.execute(
            t.users.update().where(t.users.c.id == "user_a").values(deleted_at=EXPIRES)
        )
        await dialect.analyze(conn, [t.users], sample_target=None)
        share = await dialect.null_fraction(conn, t.users, "deleted_at")
    if dialect.statistics:
        assert share == 0.75
    else:
        assert share is None  # SQLite: no statistics, callers count
