"""What the console shows, read with bounded queries: each walks an index range of the inbox
((status, received_at): every status named, so the range is the last hour or day, never the
whole table), a LIMIT, or the planner's statistics; no query grows with the inbox's history.

Ids, event types, counts and times only (errors through `events.safe_error`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from service.config import DEFAULT_INSTANCE
from service.db.dialect import dialect_of
from service.inbox.store import Status, inbox
from service.kinds.registry import replica_tables
from service.operate.events import instance_of as _instance_of
from service.operate.events import safe_error
from service.reconcile.checkpoints import RunStatus, progress, runs

BUCKET_SECONDS = 600  # the charts' resolution
BUCKETS = 86400 // BUCKET_SECONDS  # a day
LAG_PER_BUCKET = 20  # the newest applied events of a bucket its lag is taken from
LAG_SAMPLE = 5000  # the most recent applied events the lag percentiles are taken from
EXACT_COUNT_LIMIT = 200_000  # above this estimate, replica counts come from statistics
_ALL_STATUSES = [s.value for s in Status]


@dataclass
class InstanceHealth:
    name: str
    deliveries_hour: int = 0
    deliveries_day: int = 0
    pending: int = 0
    oldest_pending: datetime | None = None
    failed: int = 0
    lag_p50: float | None = None
    lag_p95: float | None = None
    last_delivery: datetime | None = None
    last_complete_reconcile: datetime | None = None


@dataclass
class Bucket:
    start: datetime
    deliveries: int = 0
    lag_avg: float | None = None
    lag_max: float | None = None


@dataclass
class TableCount:
    name: str
    live: int
    ended: int | None  # None: the table keeps no tombstones
    estimated: bool = False


@dataclass
class Run:
    id: int
    instance: str
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    kinds: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


async def health(
    conn: AsyncConnection, names: Sequence[str], now: datetime, day: Sequence[Bucket]
) -> dict[str, InstanceHealth]:
    """Per configured instance: deliveries, backlog, failures, lag, last delivery and last
    complete reconcile. `day` is `activity`'s: with one instance its counts are that
    instance's; with several, the day's rows are read once more, grouped by instance (which the
    index does not hold, so that read visits the table)."""
    found = {name: InstanceHealth(name) for name in names}

    def of(name: str | None) -> InstanceHealth:
        return found.setdefault(name or DEFAULT_INSTANCE, InstanceHealth(name or DEFAULT_INSTANCE))

    hour_ago = now - timedelta(hours=1)
    who = _instance_of(inbox.c.instance)
    if len(names) == 1:
        only = of(names[0])
        only.deliveries_day = sum(b.deliveries for b in day)
        only.deliveries_hour = sum(b.deliveries for b in day if b.start >= hour_ago)
    else:
        windows = (
            select(who, func.count().filter(inbox.c.received_at >= hour_ago), func.count())
            .where(inbox.c.status.in_(_ALL_STATUSES), inbox.c.received_at >= day[0].start)
            .group_by(who)
        )
        for name, hour, count in await conn.execute(windows):
            of(name).deliveries_hour, of(name).deliveries_day = int(hour), int(count)
    backlog = (
        select(who, func.count(), func.min(inbox.c.received_at))
        .where(inbox.c.status == Status.PENDING.value)
        .group_by(who)
    )
    for name, count, oldest in await conn.execute(backlog):
        of(name).pending, of(name).oldest_pending = int(count), oldest
    failed = select(who, func.count()).where(inbox.c.status == Status.FAILED.value).group_by(who)
    for name, count in await conn.execute(failed):
        of(name).failed = int(count)
    await _lags(conn, of, hour_ago)
    for each in found.values():
        each.last_delivery = await _last_delivery(conn, each.name, len(names) == 1)
        each.last_complete_reconcile = await _last_complete(conn, each.name)
    return found


async def _lags(conn: AsyncConnection, of: Any, since: datetime) -> None:
    recent = (
        select(_instance_of(inbox.c.instance), inbox.c.received_at, inbox.c.applied_at)
        .where(inbox.c.status == Status.APPLIED.value, inbox.c.received_at >= since)
        .order_by(inbox.c.received_at.desc())
        .limit(LAG_SAMPLE)
    )
    lags: dict[str, list[float]] = {}
    for name, received, applied in await conn.execute(recent):
        if applied is not None:
            lags.setdefault(name, []).append(max(0.0, (applied - received).total_seconds()))
    for name, values in lags.items():
        values.sort()
        of(name).lag_p50, of(name).lag_p95 = percentile(values, 50), percentile(values, 95)


def percentile(ordered: Sequence[float], pct: float) -> float | None:
    """The nearest-rank percentile of sorted values (None for none)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def _of_instance(column: Any, name: str) -> ColumnElement[bool]:
    if name == DEFAULT_INSTANCE:
        return or_(column == name, column.is_(None))
    return column == name  # type: ignore[no-any-return]


async def _last_delivery(conn: AsyncConnection, name: str, only: bool) -> datetime | None:
    """The newest delivery (of the instance, unless it is the `only` one): one backward index
    walk per status."""
    newest: datetime | None = None
    for status in _ALL_STATUSES:
        stmt = (
            select(inbox.c.received_at)
            .where(inbox.c.status == status)
            .order_by(inbox.c.received_at.desc())
            .limit(1)
        )
        if not only:
            stmt = stmt.where(_of_instance(inbox.c.instance, name))
        found = (await conn.execute(stmt)).scalar()
        if found is not None and (newest is None or found > newest):
            newest = found
    return newest


async def _last_complete(conn: AsyncConnection, name: str) -> datetime | None:
    stmt = (
        select(runs.c.finished_at)
        .where(runs.c.status == RunStatus.COMPLETED.value, _of_instance(runs.c.instance, name))
        .order_by(runs.c.id.desc())
        .limit(1)
    )
    found: datetime | None = (await conn.execute(stmt)).scalar()
    return found


async def activity(conn: AsyncConnection, now: datetime) -> list[Bucket]:
    """Deliveries and lag (received to applied) per BUCKET_SECONDS over the day before `now`,
    oldest first, every bucket present. Counts are index-only range counts (one statement);
    a bucket's lag is that of its LAG_PER_BUCKET newest applied events (another)."""
    step = timedelta(seconds=BUCKET_SECONDS)
    buckets = [Bucket(now - (BUCKETS - i) * step) for i in range(BUCKETS)]

    def within(i: int) -> ColumnElement[bool]:
        start = buckets[i].start
        return and_(inbox.c.received_at >= start, inbox.c.received_at < start + step)

    counts = union_all(
        *(
            select(literal(i, Integer), func.count()).where(
                inbox.c.status.in_(_ALL_STATUSES), within(i)
            )
            for i in range(BUCKETS)
        )
    )
    for i, count in await conn.execute(counts):
        buckets[int(i)].deliveries = int(count)
    samples = []
    for i in range(BUCKETS):
        newest = (
            select(inbox.c.received_at, inbox.c.applied_at)
            .where(inbox.c.status == Status.APPLIED.value, within(i))
            .order_by(inbox.c.received_at.desc())
            .limit(LAG_PER_BUCKET)
            .subquery()
        )
        samples.append(select(literal(i, Integer), newest.c.received_at, newest.c.applied_at))
    lags: dict[int, list[float]] = {}
    for i, received, applied in await conn.execute(union_all(*samples)):
        if applied is not None:
            lags.setdefault(int(i), []).append(max(0.0, (applied - received).total_seconds()))
    for i, values in lags.items():
        buckets[i].lag_avg, buckets[i].lag_max = sum(values) / len(values), max(values)
    return buckets


async def reconcile_runs(conn: AsyncConnection, limit: int) -> list[Run]:
    """The newest runs with their per-kind counts (a running run's from its checkpoints)."""
    stmt = select(runs).order_by(runs.c.id.desc()).limit(limit)
    found = [
        Run(
            id=row.id,
            instance=row.instance or DEFAULT_INSTANCE,
            trigger=row.trigger,
            status=row.status,
            started_at=row.started_at,
            finished_at=row.finished_at,
            error=safe_error(row.error),
            kinds={name: dict(counts) for name, counts in (row.summary or {}).items()},
        )
        for row in await conn.execute(stmt)
    ]
    running = [run for run in found if run.status == RunStatus.RUNNING.value]
    if running:
        stmt2 = select(progress).where(progress.c.run_id.in_([run.id for run in running]))
        by_id = {run.id: run for run in running}
        for row in await conn.execute(stmt2):
            counts = dict(row.counts or {})
            counts.setdefault("listed", row.offset)
            counts["status"] = "done" if row.done else ("listed" if row.listed else "listing")
            by_id[row.run_id].kinds[row.kind] = counts
    return found


async def replica_counts(conn: AsyncConnection) -> list[TableCount]:
    """Rows per replica table, live and ended: exact for small tables, from the planner's
    statistics for large ones (PostgreSQL), so a big replica costs no scan."""
    dialect = dialect_of(conn)
    counted: list[TableCount] = []
    for table in replica_tables():
        tombstones = "deleted_at" in table.c
        estimate = await dialect.row_estimate(conn, table)
        if estimate > EXACT_COUNT_LIMIT:
            share = await dialect.null_fraction(conn, table, "deleted_at") if tombstones else 1.0
            live = round(estimate * (1.0 if share is None else share))
            ended = None if not tombstones else round(estimate) - live
            counted.append(TableCount(table.name, live, ended, estimated=True))
            continue
        if tombstones:
            ended_count = func.count().filter(table.c.deleted_at.is_not(None))
            total, ended = (await conn.execute(select(func.count(), ended_count))).one()
            counted.append(TableCount(table.name, int(total) - int(ended), int(ended)))
        else:
            total = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            counted.append(TableCount(table.name, int(total), None))
    return counted
