"""Choosing a run's mode from the runs table, on PostgreSQL and SQLite: incremental only after a
complete run of the same types, while the last full one is recent and the last run did not
fail; full when asked for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.reconcile import checkpoints, modes
from service.reconcile.checkpoints import RunStatus, runs

KINDS = ("organizations", "users")


async def finished(
    engine: AsyncEngine,
    mode: str | None,
    status: RunStatus = RunStatus.COMPLETED,
    kinds: tuple[str, ...] = KINDS,
) -> int:
    async with engine.begin() as conn:
        run_id, _ = await checkpoints.open_run(conn, trigger="cli", kinds=kinds, restart=True)
        await checkpoints.finish_run(conn, run_id, status=status, summary={}, error=None)
        if mode is not None:
            await checkpoints.set_mode(conn, run_id, mode)
    return run_id


async def choose(
    engine: AsyncEngine, settings: Settings, *, full: bool = False, now: datetime | None = None
) -> modes.Choice:
    async with engine.connect() as conn:
        return await modes.choose(conn, settings, KINDS, full=full, now=now or datetime.now(UTC))


async def test_the_mode_follows_the_runs_before(engine: AsyncEngine, settings: Settings) -> None:
    first = await choose(engine, settings)
    assert (first.mode, first.reason) == ("full", "no complete run of these kinds to count from")

    await finished(engine, None, kinds=("users",))  # fewer kinds: nothing to count from
    assert (await choose(engine, settings)).mode == "full"

    run_id = await finished(engine, None)  # a run from before modes was a full listing
    async with engine.connect() as conn:
        started = (await checkpoints.last_runs(conn))[0]["started_at"]
    nightly = await choose(engine, settings)
    assert nightly.mode == "incremental"
    assert nightly.since == started - timedelta(seconds=settings.reconcile.since_margin_seconds)
    assert (await choose(engine, settings, full=True)).reason == "asked for (--full)"

    await finished(engine, "incremental")  # counts from the newest complete run
    async with engine.connect() as conn:
        newest = (await checkpoints.last_runs(conn))[0]["started_at"]
        assert await modes.last_full_completed(conn, "default") is not None
    assert (await choose(engine, settings)).since == newest - timedelta(minutes=5)

    later = datetime.now(UTC) + timedelta(days=settings.reconcile.full_every_days, hours=1)
    weekly = await choose(engine, settings, now=later)
    assert (weekly.mode, weekly.reason) == ("full", "the last full run is older than 7 days")

    async with engine.begin() as conn:  # the only full run, long ago
        await conn.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(finished_at=datetime.now(UTC) - timedelta(days=8))
        )
    assert (await choose(engine, settings)).mode == "full"
    await finished(engine, "full")
    assert (await choose(engine, settings)).mode == "incremental"

    await finished(engine, "incremental", RunStatus.FAILED)  # failed or refused
    after_failure = await choose(engine, settings)
    assert (after_failure.mode, after_failure.reason) == (
        "full",
        "the last run failed or was refused",
    )
