"""Reconcile checkpoints on PostgreSQL and SQLite: which run resumes, where a pass stands, and
the seen ids deletion detection reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.reconcile import checkpoints
from service.reconcile.checkpoints import RunStatus, runs, seen

KINDS = ("organizations", "users")


async def open_run(
    engine: AsyncEngine, kinds: tuple[str, ...] = KINDS, *, restart: bool = False
) -> tuple[int, bool]:
    async with engine.begin() as conn:
        return await checkpoints.open_run(conn, trigger="cli", kinds=kinds, restart=restart)


async def age(engine: AsyncEngine, run_id: int, status: RunStatus, by: timedelta) -> None:
    """Make the run look as if it had started `by` ago and now stood at `status`."""
    async with engine.begin() as conn:
        await conn.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(status=status, started_at=datetime.now(UTC) - by, error="earlier")
        )


async def run_row(engine: AsyncEngine, run_id: int) -> dict[str, object]:
    async with engine.connect() as conn:
        return dict((await conn.execute(select(runs).where(runs.c.id == run_id))).one()._mapping)


async def seen_ids(engine: AsyncEngine) -> list[tuple[int, str, str]]:
    async with engine.connect() as conn:
        result = await conn.execute(select(seen).order_by(*seen.c))
        return [(r.run_id, r.kind, r.object_id) for r in result]


async def add_seen(engine: AsyncEngine, run_id: int, kind: str, ids: list[str]) -> None:
    async with engine.begin() as conn:
        await checkpoints.add_seen(conn, run_id, kind, ids)


async def test_a_first_run_starts_a_new_run(engine: AsyncEngine) -> None:
    run_id, resumed = await open_run(engine)
    assert resumed is False
    row = await run_row(engine, run_id)
    assert (row["trigger"], row["status"], row["kinds"]) == ("cli", "running", list(KINDS))
    assert row["finished_at"] is None


@pytest.mark.parametrize(
    ("status", "by"),
    [(RunStatus.RUNNING, timedelta(hours=23)), (RunStatus.FAILED, timedelta(minutes=50))],
)
async def test_a_recent_crashed_or_failed_run_resumes(
    engine: AsyncEngine, status: RunStatus, by: timedelta
) -> None:
    run_id, _ = await open_run(engine)
    await age(engine, run_id, status, by)
    # The same kinds in another order are the same run.
    assert await open_run(engine, ("users", "organizations")) == (run_id, True)
    row = await run_row(engine, run_id)
    assert (row["status"], row["error"]) == ("running", None)


@pytest.mark.parametrize(
    ("status", "by"),
    [
        (RunStatus.RUNNING, timedelta(hours=25)),
        (RunStatus.FAILED, timedelta(minutes=70)),
        (RunStatus.COMPLETED, timedelta(minutes=1)),
    ],
)
async def test_an_old_or_completed_run_does_not_resume(
    engine: AsyncEngine, status: RunStatus, by: timedelta
) -> None:
    run_id, _ = await open_run(engine)
    await age(engine, run_id, status, by)
    new_id, resumed = await open_run(engine)
    assert resumed is False and new_id != run_id


async def test_restart_or_other_kinds_start_over_and_abandon_the_old_run(
    engine: AsyncEngine,
) -> None:
    crashed, _ = await open_run(engine)
    await add_seen(engine, crashed, "users", ["user_1"])
    other, resumed = await open_run(engine, ("users",))
    assert resumed is False and other != crashed
    old = await run_row(engine, crashed)
    assert old["status"] == "failed" and "abandoned" in str(old["error"])
    assert await seen_ids(engine) == []  # a run that will never resume keeps no seen ids
    fresh, resumed = await open_run(engine, ("users",), restart=True)
    assert resumed is False and fresh not in (crashed, other)
    assert (await run_row(engine, other))["status"] == "failed"


async def test_progress_is_created_on_first_load_then_saved_and_loaded(
    engine: AsyncEngine,
) -> None:
    run_id, _ = await open_run(engine)
    before = datetime.now(UTC)
    async with engine.begin() as conn:
        first = await checkpoints.load_progress(conn, run_id, "users")
    assert (first.offset, first.cursor, first.listed, first.done, first.counts) == (
        0,
        None,
        False,
        False,
        {},
    )
    assert before - timedelta(seconds=1) <= first.pass_started_at <= datetime.now(UTC)
    async with engine.begin() as conn:
        await checkpoints.save_progress(
            conn, run_id, "users", offset=150, cursor="user_149", counts={"created": 150}
        )
        other = await checkpoints.load_progress(conn, run_id, "organizations")
    assert other.offset == 0
    async with engine.begin() as conn:
        saved = await checkpoints.load_progress(conn, run_id, "users")
        await checkpoints.save_progress(
            conn, run_id, "users", offset=300, cursor=None, counts={}, listed=True, done=True
        )
        finished = await checkpoints.load_progress(conn, run_id, "users")
    assert (saved.offset, saved.cursor, saved.counts) == (150, "user_149", {"created": 150})
    assert saved.pass_started_at == first.pass_started_at  # the pass did not start again
    assert (finished.offset, finished.cursor, finished.listed, finished.done) == (
        300,
        None,
        True,
        True,
    )


async def test_add_seen_is_idempotent_and_clear_seen_clears_one_kind(
    engine: AsyncEngine,
) -> None:
    run_id, _ = await open_run(engine)
    await add_seen(engine, run_id, "users", ["user_1", "user_2"])
    await add_seen(engine, run_id, "users", ["user_2", "user_3", "user_3"])
    await add_seen(engine, run_id, "users", [])
    await add_seen(engine, run_id, "organizations", ["org_1"])
    assert await seen_ids(engine) == [
        (run_id, "organizations", "org_1"),
        (run_id, "users", "user_1"),
        (run_id, "users", "user_2"),
        (run_id, "users", "user_3"),
    ]
    async with engine.begin() as conn:
        await checkpoints.clear_seen(conn, run_id, "users")
    assert await seen_ids(engine) == [(run_id, "organizations", "org_1")]


@pytest.mark.parametrize(
    ("status", "kept"), [(RunStatus.COMPLETED, False), (RunStatus.FAILED, True)]
)
async def test_finish_run_records_the_outcome_and_a_completed_run_keeps_no_seen_ids(
    engine: AsyncEngine, status: RunStatus, kept: bool
) -> None:
    run_id, _ = await open_run(engine)
    await add_seen(engine, run_id, "users", ["user_1"])
    async with engine.begin() as conn:
        await checkpoints.finish_run(
            conn, run_id, status=status, summary={"users": {"created": 1}}, error=None
        )
        (last,) = await checkpoints.last_runs(conn)
    assert (last["id"], last["status"], last["summary"]) == (
        run_id,
        status.value,
        {"users": {"created": 1}},
    )
    assert last["finished_at"] is not None
    assert await seen_ids(engine) == ([(run_id, "users", "user_1")] if kept else [])
