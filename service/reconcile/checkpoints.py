"""Runs, per-resource progress and seen ids: what makes a crashed reconcile resumable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.dialect import dialect_of
from service.reconcile.tables import RunStatus, progress, runs, seen

# A crashed run (still marked running; we hold the lock, so its process died) resumes within
# a day. A run that failed (API errors, a refused deletion) resumes only soon after, when an
# operator fixes the cause and reruns; the next nightly run starts over, so it lists everything.
RESUME_CRASHED = timedelta(hours=24)
RESUME_FAILED = timedelta(hours=1)


@dataclass
class Progress:
    pass_started_at: datetime
    offset: int
    cursor: str | None
    listed: bool
    done: bool
    counts: dict[str, Any]


async def open_run(
    conn: AsyncConnection, *, trigger: str, resources: Sequence[str], restart: bool
) -> tuple[int, bool]:
    """Resume the latest unfinished run over the same resources, or start one.

    Returns (run id, resumed). Callers hold the reconcile lock, so a run still marked
    running belongs to a process that died.
    """
    now = datetime.now(UTC)
    if not restart:
        row = (
            await conn.execute(
                select(runs.c.id, runs.c.resources, runs.c.status, runs.c.started_at)
                .order_by(runs.c.id.desc())
                .limit(1)
            )
        ).first()
        window = {RunStatus.RUNNING: RESUME_CRASHED, RunStatus.FAILED: RESUME_FAILED}
        if (
            row is not None
            and row.status in window
            and sorted(row.resources) == sorted(resources)
            and row.started_at > now - window[RunStatus(row.status)]
        ):
            await conn.execute(
                update(runs).where(runs.c.id == row.id).values(status=RunStatus.RUNNING, error=None)
            )
            return int(row.id), True
    # Runs that will never resume keep no seen ids (a crashed run left them behind).
    await conn.execute(delete(seen))
    await conn.execute(
        update(runs)
        .where(runs.c.status == RunStatus.RUNNING)
        .values(
            status=RunStatus.FAILED, error="abandoned: the process died and the run was not resumed"
        )
    )
    run_id = (
        await conn.execute(
            insert(runs)
            .values(
                trigger=trigger, status=RunStatus.RUNNING, resources=list(resources), started_at=now
            )
            .returning(runs.c.id)
        )
    ).scalar_one()
    return int(run_id), False


async def load_progress(conn: AsyncConnection, run_id: int, resource: str) -> Progress:
    row = (
        await conn.execute(
            select(progress).where(progress.c.run_id == run_id, progress.c.resource == resource)
        )
    ).first()
    if row is not None:
        return Progress(
            row.pass_started_at, row.offset, row.cursor, row.listed, row.done, dict(row.counts)
        )
    started = datetime.now(UTC)
    await conn.execute(
        insert(progress).values(
            run_id=run_id,
            resource=resource,
            pass_started_at=started,
            offset=0,
            listed=False,
            done=False,
            counts={},
        )
    )
    return Progress(started, 0, None, False, False, {})


async def save_progress(
    conn: AsyncConnection,
    run_id: int,
    resource: str,
    *,
    offset: int,
    cursor: str | None,
    counts: dict[str, Any],
    listed: bool = False,
    done: bool = False,
) -> None:
    await conn.execute(
        update(progress)
        .where(progress.c.run_id == run_id, progress.c.resource == resource)
        .values(offset=offset, cursor=cursor, counts=counts, listed=listed, done=done)
    )


async def add_seen(conn: AsyncConnection, run_id: int, resource: str, ids: Sequence[str]) -> None:
    if not ids:
        return
    await dialect_of(conn).add_keys(
        conn, seen, {"run_id": run_id, "resource": resource}, "object_id", ids
    )


async def clear_seen(conn: AsyncConnection, run_id: int, resource: str) -> None:
    await conn.execute(delete(seen).where(seen.c.run_id == run_id, seen.c.resource == resource))


async def finish_run(
    conn: AsyncConnection,
    run_id: int,
    *,
    status: RunStatus,
    summary: dict[str, Any],
    error: str | None,
) -> None:
    await conn.execute(
        update(runs)
        .where(runs.c.id == run_id)
        .values(status=status, summary=summary, error=error, finished_at=datetime.now(UTC))
    )
    if status is RunStatus.COMPLETED:
        # Seen ids only serve a resume; a completed run needs none.
        await conn.execute(delete(seen).where(seen.c.run_id == run_id))


async def last_runs(conn: AsyncConnection, limit: int = 1) -> list[dict[str, Any]]:
    result = await conn.execute(select(runs).order_by(runs.c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in result]
