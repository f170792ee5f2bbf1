"""What a reconcile run is asked to do (`ReconcileOptions`) and which listing it does: full
(every object, as the first run) or incremental (only what changed since the instance's last
complete run). Full whenever the incremental one cannot be trusted: asked for, no complete run
to count from, the last run failed or was refused, or the last full run is older than
RECONCILE_FULL_EVERY_DAYS. The why, and what an incremental run can miss:
docs/explanation/reconcile-modes.md."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.config import Settings
from service.kinds.registry import KINDS
from service.reconcile.checkpoints import RunStatus, of_instance, runs


class Mode(StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"


@dataclass(frozen=True)
class Choice:
    mode: Mode
    reason: str
    # Incremental: objects changed at or after this are listed (the last complete run's
    # start, less the margin).
    since: datetime | None = None


def _full() -> Any:
    return or_(runs.c.mode == Mode.FULL, runs.c.mode.is_(None))


async def choose(
    conn: AsyncConnection,
    settings: Settings,
    kinds: Sequence[str],
    *,
    full: bool,
    now: datetime,
    exclude_run: int | None = None,
) -> Choice:
    """The mode of a run of `kinds` of the instance `settings` speak for, starting `now`;
    `exclude_run`: the run being resumed (its own state says nothing of the runs before)."""
    if full:
        return Choice(Mode.FULL, "asked for (--full)")
    mine = of_instance(settings.instance_name)
    if exclude_run is not None:
        mine = mine & (runs.c.id != exclude_run)
    finished = (
        await conn.execute(
            select(runs.c.status, runs.c.kinds, runs.c.started_at, runs.c.finished_at)
            .where(mine, runs.c.status != RunStatus.RUNNING)
            .order_by(runs.c.id.desc())
            .limit(50)
        )
    ).all()
    if finished and finished[0].status != RunStatus.COMPLETED:
        return Choice(Mode.FULL, "the last run failed or was refused")
    wanted = set(kinds)
    complete = next(
        (r for r in finished if r.status == RunStatus.COMPLETED and wanted <= set(r.kinds)),
        None,
    )
    if complete is None:
        return Choice(Mode.FULL, "no complete run of these kinds to count from")
    last_full = await last_full_completed(conn, settings.instance_name, kinds)
    horizon = now - timedelta(days=settings.reconcile.full_every_days)
    if last_full is None or last_full < horizon:
        days = settings.reconcile.full_every_days
        return Choice(Mode.FULL, f"the last full run is older than {days:g} days")
    since = complete.started_at - timedelta(seconds=settings.reconcile.since_margin_seconds)
    return Choice(Mode.INCREMENTAL, "a recent complete run to count from", since)


async def last_full_completed(
    conn: AsyncConnection, instance: str, kinds: Sequence[str] | None = None
) -> datetime | None:
    """When the instance's last full run (of at least `kinds`, when given) completed."""
    rows = await conn.execute(
        select(runs.c.kinds, runs.c.finished_at)
        .where(of_instance(instance), runs.c.status == RunStatus.COMPLETED, _full())
        .order_by(runs.c.id.desc())
        .limit(50)
    )
    wanted = set(kinds or ())
    for row in rows:
        if wanted <= set(row.kinds) and row.finished_at is not None:
            finished: datetime = row.finished_at
            return finished
    return None


def listed_kinds() -> tuple[str, ...]:
    """The kinds reconcile can walk (those Clerk lists instance-wide), parents first."""
    return tuple(k.name for k in KINDS if k.listing is not None)


@dataclass(frozen=True)
class ReconcileOptions:
    kinds: tuple[str, ...] = field(default_factory=listed_kinds)
    dry_run: bool = False
    force: bool = False  # tombstone beyond the safety share
    confirm_deletions: bool = True
    restart: bool = False  # ignore an unfinished run instead of resuming it
    trigger: str = "cli"
    full: bool = False  # list everything, whatever the mode would be
