"""The reconcile runs (what happened), each pass's progress and segments (where to resume) and
seen ids (deletion detection without holding them in memory), with their statements: what makes
a crashed reconcile resumable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from service.config import DEFAULT_INSTANCE
from service.db.dialect import dialect_of
from service.db.types import JSONValue, UTCDateTime, metadata
from service.reconcile.paging import Position
from service.reconcile.segments import Segment


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


runs = Table(
    "clerk_replica_reconcile_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trigger", String(16), nullable=False),  # cli | cron
    Column("status", String(16), nullable=False),
    Column("kinds", JSONValue, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("summary", JSONValue),
    Column("error", Text),
    Column("instance", String(64)),  # the configured instance listed (NULL: the default)
    Column("mode", String(16)),  # full | incremental (NULL: before modes, a full run)
)

progress = Table(
    "clerk_replica_reconcile_progress",
    metadata,
    Column(
        "run_id",
        Integer,
        ForeignKey(runs.c.id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("kind", String(32), primary_key=True),
    # Objects created after the pass started may be missing from it: never tombstone those.
    Column("pass_started_at", UTCDateTime, nullable=False),
    Column("cursor", Text),  # the last id seen (users' starting_after)
    Column("offset", Integer, nullable=False, default=0),
    Column("listed", Boolean, nullable=False, default=False),
    Column("done", Boolean, nullable=False, default=False),
    Column("counts", JSONValue, nullable=False),
)

segments = Table(
    "clerk_replica_reconcile_segments",
    metadata,
    Column("run_id", Integer, ForeignKey(runs.c.id, ondelete="CASCADE"), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("segment", Integer, primary_key=True),
    # What the segment covers: an offset window [start, end), or created_at bounds (ms).
    Column("start_offset", Integer, nullable=False, default=0),
    Column("end_offset", Integer),
    Column("created_after_ms", BigInteger),
    Column("created_before_ms", BigInteger),
    # Where its walk stands.
    Column("offset", Integer, nullable=False, default=0),
    Column("cursor", Text),
    Column("done", Boolean, nullable=False, default=False),
)

seen = Table(
    "clerk_replica_reconcile_seen",
    metadata,
    Column("run_id", Integer, ForeignKey(runs.c.id, ondelete="CASCADE"), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("object_id", Text, primary_key=True),
)

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


def of_instance(instance: str) -> ColumnElement[bool]:
    """Runs of the instance (runs from before several instances were the default's)."""
    if instance == DEFAULT_INSTANCE:
        return or_(runs.c.instance == instance, runs.c.instance.is_(None))
    return runs.c.instance == instance


# A run that failed before listing (record_failed_start) finished the instant it started:
# there is nothing in it to resume, and it must not hide the run before it from a resume.
_listed_something = or_(runs.c.finished_at.is_(None), runs.c.finished_at != runs.c.started_at)


async def open_run(
    conn: AsyncConnection,
    *,
    trigger: str,
    kinds: Sequence[str],
    restart: bool,
    instance: str = DEFAULT_INSTANCE,
) -> tuple[int, bool]:
    """Resume the instance's latest unfinished run over the same kinds, or start one.

    Returns (run id, resumed). Callers hold the instance's reconcile lock, so a run of it
    still marked running belongs to a process that died; other instances' runs are theirs.
    """
    now = datetime.now(UTC)
    mine = of_instance(instance)
    if not restart:
        row = (
            await conn.execute(
                select(runs.c.id, runs.c.kinds, runs.c.status, runs.c.started_at)
                .where(mine, _listed_something)
                .order_by(runs.c.id.desc())
                .limit(1)
            )
        ).first()
        window = {RunStatus.RUNNING: RESUME_CRASHED, RunStatus.FAILED: RESUME_FAILED}
        if (
            row is not None
            and row.status in window
            and sorted(row.kinds) == sorted(kinds)
            and row.started_at > now - window[RunStatus(row.status)]
        ):
            await conn.execute(
                update(runs).where(runs.c.id == row.id).values(status=RunStatus.RUNNING, error=None)
            )
            return int(row.id), True
    # Runs that will never resume keep no seen ids (a crashed run left them behind).
    await conn.execute(delete(seen).where(seen.c.run_id.in_(select(runs.c.id).where(mine))))
    await conn.execute(
        update(runs)
        .where(runs.c.status == RunStatus.RUNNING, mine)
        .values(
            status=RunStatus.FAILED, error="abandoned: the process died and the run was not resumed"
        )
    )
    run_id = (
        await conn.execute(
            insert(runs)
            .values(
                trigger=trigger,
                status=RunStatus.RUNNING,
                kinds=list(kinds),
                started_at=now,
                instance=instance,
            )
            .returning(runs.c.id)
        )
    ).scalar_one()
    return int(run_id), False


async def load_progress(conn: AsyncConnection, run_id: int, kind: str) -> Progress:
    row = (
        await conn.execute(
            select(progress).where(progress.c.run_id == run_id, progress.c.kind == kind)
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
            kind=kind,
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
    kind: str,
    *,
    offset: int,
    cursor: str | None,
    counts: dict[str, Any],
    listed: bool = False,
    done: bool = False,
) -> None:
    await conn.execute(
        update(progress)
        .where(progress.c.run_id == run_id, progress.c.kind == kind)
        .values(offset=offset, cursor=cursor, counts=counts, listed=listed, done=done)
    )


async def save_plan(
    conn: AsyncConnection, run_id: int, kind: str, planned: Sequence[Segment]
) -> None:
    """Store a pass's segments before any is walked: a resumed pass keeps the same plan."""
    await conn.execute(delete(segments).where(segments.c.run_id == run_id, segments.c.kind == kind))
    if not planned:
        return
    await conn.execute(
        insert(segments),
        [
            {
                "run_id": run_id,
                "kind": kind,
                "segment": seg.number,
                "start_offset": seg.start,
                "end_offset": seg.end,
                "created_after_ms": seg.after_ms,
                "created_before_ms": seg.before_ms,
                "offset": seg.position.offset,
                "cursor": seg.position.cursor,
                "done": seg.done,
            }
            for seg in planned
        ],
    )


async def load_plan(conn: AsyncConnection, run_id: int, kind: str) -> list[Segment]:
    """A pass's segments as their checkpoints left them (none: the pass has no plan yet)."""
    result = await conn.execute(
        select(segments)
        .where(segments.c.run_id == run_id, segments.c.kind == kind)
        .order_by(segments.c.segment)
    )
    return [
        Segment(
            row.segment,
            start=row.start_offset,
            end=row.end_offset,
            after_ms=row.created_after_ms,
            before_ms=row.created_before_ms,
            position=Position.restore(row.offset, row.cursor),
            done=row.done,
        )
        for row in result
    ]


async def save_segment(conn: AsyncConnection, run_id: int, kind: str, seg: Segment) -> None:
    await conn.execute(
        update(segments)
        .where(
            segments.c.run_id == run_id,
            segments.c.kind == kind,
            segments.c.segment == seg.number,
        )
        .values(offset=seg.position.offset, cursor=seg.position.cursor, done=seg.done)
    )


async def add_seen(conn: AsyncConnection, run_id: int, kind: str, ids: Sequence[str]) -> None:
    if not ids:
        return
    await dialect_of(conn).add_keys(conn, seen, {"run_id": run_id, "kind": kind}, "object_id", ids)


async def clear_seen(conn: AsyncConnection, run_id: int, kind: str) -> None:
    await conn.execute(delete(seen).where(seen.c.run_id == run_id, seen.c.kind == kind))


async def run_mode(conn: AsyncConnection, run_id: int) -> str | None:
    """The mode a run recorded (None: not chosen yet, or a run from before modes)."""
    mode = (await conn.execute(select(runs.c.mode).where(runs.c.id == run_id))).scalar()
    return None if mode is None else str(mode)


async def set_mode(conn: AsyncConnection, run_id: int, mode: str) -> None:
    await conn.execute(update(runs).where(runs.c.id == run_id).values(mode=mode))


async def finish_run(
    conn: AsyncConnection,
    run_id: int,
    *,
    status: RunStatus,
    summary: dict[str, Any],
    error: str | None,
    mode: str | None = None,
) -> None:
    values: dict[str, Any] = {
        "status": status,
        "summary": summary,
        "error": error,
        "finished_at": datetime.now(UTC),
    }
    if mode is not None:
        values["mode"] = mode
    await conn.execute(update(runs).where(runs.c.id == run_id).values(**values))
    if status is RunStatus.COMPLETED:
        # Seen ids only serve a resume; a completed run needs none.
        await conn.execute(delete(seen).where(seen.c.run_id == run_id))


async def last_runs(
    conn: AsyncConnection, limit: int = 1, instance: str | None = None
) -> list[dict[str, Any]]:
    """The newest runs (of `instance` only, when given): running ones first, then by when
    they finished (a resumed run is newer than a failed start recorded before its resume)."""
    stmt = (
        select(runs)
        .order_by(
            (runs.c.status == RunStatus.RUNNING.value).desc(),
            func.coalesce(runs.c.finished_at, runs.c.started_at).desc(),
            runs.c.id.desc(),
        )
        .limit(limit)
    )
    if instance is not None:
        stmt = stmt.where(of_instance(instance))
    result = await conn.execute(stmt)
    return [dict(r._mapping) for r in result]


async def last_finished_at(conn: AsyncConnection, instance: str) -> datetime | None:
    """When the instance's newest completed run finished (None: never)."""
    completed = (of_instance(instance), runs.c.status == RunStatus.COMPLETED)
    found = await conn.execute(select(func.max(runs.c.finished_at)).where(*completed))
    at: datetime | None = found.scalar_one()
    return at


async def record_failed_start(
    conn: AsyncConnection, *, trigger: str, kinds: Sequence[str], instance: str, error: str
) -> int:
    """Record a run that failed before it could start listing (identifying the instance):
    finished at once, failed, with its error; returns its id."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {"trigger": trigger, "status": RunStatus.FAILED}
    values["kinds"] = list(kinds)
    values |= {"started_at": now, "finished_at": now, "summary": {}, "error": error}
    inserted = await conn.execute(
        insert(runs).values(**values, instance=instance).returning(runs.c.id)
    )
    return int(inserted.scalar_one())
