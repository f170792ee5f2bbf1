"""Inbox operations: record a delivery, claim it for apply, settle it, find what to sweep."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Update, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from service.inbox.table import Status, inbox

MAX_ERROR_LENGTH = 2000


class Delivery(NamedTuple):
    """A delivery as the inbox stores it (a named tuple: ingest makes one per request, and
    a frozen dataclass costs three times as much to build)."""

    svix_id: str
    event_type: str
    body: str | None
    event_timestamp_ms: int | None
    object_id: str | None
    status: Status


@dataclass(frozen=True)
class Claimed:
    svix_id: str
    event_type: str
    body: str | None
    event_timestamp_ms: int | None
    received_at: datetime
    object_id: str | None = None


async def record(conn: AsyncConnection, delivery: Delivery, now: datetime) -> bool:
    """Store a delivery once; False when this svix-id was stored before (a redelivery)."""
    return delivery.svix_id in await record_many(conn, [(delivery, now)])


_UNNEST_COLUMNS = (
    "svix_id",
    "event_type",
    "status",
    "body",
    "event_timestamp_ms",
    "object_id",
    "received_at",
    "applied_at",
)
_UNNEST_TYPES = ("text", "text", "text", "text", "int8", "text", "timestamptz", "timestamptz")
_UNNEST_INSERT = (
    f"INSERT INTO {inbox.name} ({', '.join(_UNNEST_COLUMNS)}) "
    "SELECT * FROM unnest("
    + ", ".join(f"${n}::{t}[]" for n, t in enumerate(_UNNEST_TYPES, start=1))
    + ") ON CONFLICT (svix_id) DO NOTHING RETURNING svix_id"
)


def _inbox_rows(deliveries: Sequence[tuple[Delivery, datetime]]) -> list[dict[str, object]]:
    """One row per svix-id (the first delivery of it wins), with its arrival time."""
    rows = zip(*_inbox_columns(deliveries), strict=True)
    return [dict(zip(_UNNEST_COLUMNS, values, strict=True)) for values in rows]


async def record_many(
    conn: AsyncConnection, deliveries: Sequence[tuple[Delivery, datetime]]
) -> set[str]:
    """Store deliveries (with their arrival times) once each; returns the svix-ids that are new.

    One statement per batch: on PostgreSQL through asyncpg (record_many_asyncpg), elsewhere
    an executemany.
    """
    if conn.dialect.name == "postgresql":
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None  # asyncpg's connection, checked out with `conn`
        return await record_many_asyncpg(driver, deliveries)
    stmt = (
        sqlite_insert(inbox)
        .on_conflict_do_nothing(index_elements=[inbox.c.svix_id])
        .returning(inbox.c.svix_id)
    )
    return set((await conn.execute(stmt, _inbox_rows(deliveries))).scalars())


async def record_many_asyncpg(
    driver: Any, deliveries: Sequence[tuple[Delivery, datetime]]
) -> set[str]:
    """record_many on an asyncpg connection, the rows sent as one array per column.

    Ingest's only statement skips SQLAlchemy: its per-execute work (cache key, multi-row
    VALUES, cursor wrapping) cost more CPU than everything else the web process does for a
    delivery. The statement is prepared once per connection (asyncpg's statement cache).
    """
    return {r[0] for r in await driver.fetch(_UNNEST_INSERT, *_inbox_columns(deliveries))}


def _inbox_columns(deliveries: Sequence[tuple[Delivery, datetime]]) -> list[list[Any]]:
    """One row per svix-id (the first delivery of it wins), as one list per column in
    _UNNEST_COLUMNS order: the shape asyncpg's unnest takes, built without a dict per row."""
    columns: list[list[Any]] = [[] for _ in _UNNEST_COLUMNS]
    ids, types, statuses, bodies, stamps, objects, received, applied = columns
    seen: set[str] = set()
    for delivery, now in deliveries:
        if delivery.svix_id in seen:
            continue
        seen.add(delivery.svix_id)
        ids.append(delivery.svix_id)
        types.append(delivery.event_type)
        statuses.append(delivery.status.value)
        bodies.append(delivery.body)
        stamps.append(delivery.event_timestamp_ms)
        objects.append(delivery.object_id)
        received.append(now)
        applied.append(now if delivery.status is Status.IGNORED else None)
    return columns


def _claiming(now: datetime) -> Update:
    return (
        update(inbox)
        .values(
            status=Status.APPLIED.value,
            applied_at=now,
            attempts=inbox.c.attempts + 1,
            last_error=None,
            retry_after=None,
        )
        .returning(
            inbox.c.svix_id,
            inbox.c.event_type,
            inbox.c.body,
            inbox.c.event_timestamp_ms,
            inbox.c.received_at,
            inbox.c.object_id,
        )
    )


def _claimed(row: Any) -> Claimed:
    return Claimed(
        row.svix_id,
        row.event_type,
        row.body,
        row.event_timestamp_ms,
        row.received_at,
        row.object_id,
    )


async def claim(conn: AsyncConnection, svix_id: str, now: datetime) -> Claimed | None:
    """Take a pending event inside the caller's transaction, or None if it is not pending.

    The UPDATE takes the row lock before anything is read: a second worker with the same id
    waits, then finds it no longer pending. If the transaction rolls back, it stays pending.
    """
    stmt = _claiming(now).where(inbox.c.svix_id == svix_id, inbox.c.status == Status.PENDING.value)
    row = (await conn.execute(stmt)).first()
    return None if row is None else _claimed(row)


def _due(now: datetime) -> Any:
    return and_(
        inbox.c.status == Status.PENDING.value,
        or_(inbox.c.retry_after.is_(None), inbox.c.retry_after <= now),
    )


async def claim_batch(conn: AsyncConnection, limit: int, now: datetime) -> list[Claimed]:
    """Take up to `limit` due pending events, oldest first, inside the caller's transaction.

    On PostgreSQL, FOR UPDATE SKIP LOCKED lets concurrent workers take disjoint batches without
    waiting on each other; SQLite serialises writers, so the plain subquery is already safe.
    Like `claim`, a rollback leaves every event pending.
    """
    oldest = select(inbox.c.svix_id).where(_due(now)).order_by(inbox.c.received_at).limit(limit)
    if conn.dialect.name == "postgresql":
        oldest = oldest.with_for_update(skip_locked=True)
    stmt = _claiming(now).where(inbox.c.svix_id.in_(oldest.scalar_subquery()))
    return [_claimed(row) for row in await conn.execute(stmt)]


async def settle(
    conn: AsyncConnection,
    svix_id: str,
    status: Status,
    *,
    object_id: str | None = None,
    error: str | None = None,
) -> None:
    values: dict[str, object] = {"status": status.value}
    if object_id is not None:
        values["object_id"] = object_id
    if error is not None:
        values["last_error"] = error[:MAX_ERROR_LENGTH]
    await conn.execute(update(inbox).where(inbox.c.svix_id == svix_id).values(**values))


async def settle_many(
    conn: AsyncConnection, status: Status, items: Sequence[tuple[str, str | None]]
) -> None:
    """Settle several claimed events at once: (svix_id, error or None) pairs."""
    if not items:
        return
    stmt = (
        update(inbox)
        .where(inbox.c.svix_id == bindparam("b_id"))
        .values(status=status.value, last_error=bindparam("b_error"))
    )
    await conn.execute(
        stmt,
        [{"b_id": i, "b_error": None if e is None else e[:MAX_ERROR_LENGTH]} for i, e in items],
    )


async def set_object_ids(conn: AsyncConnection, items: Sequence[tuple[str, str]]) -> None:
    """Record the object an applied event touched, where ingest could not tell it."""
    if items:
        stmt = (
            update(inbox)
            .where(inbox.c.svix_id == bindparam("b_id"))
            .values(object_id=bindparam("b_object"))
        )
        await conn.execute(stmt, [{"b_id": i, "b_object": o} for i, o in items])


async def next_retry_at(conn: AsyncConnection) -> datetime | None:
    """When the soonest backing-off pending event is due again."""
    stmt = select(func.min(inbox.c.retry_after)).where(
        inbox.c.status == Status.PENDING.value, inbox.c.retry_after.is_not(None)
    )
    value: datetime | None = (await conn.execute(stmt)).scalar()
    return value


async def note_retry(
    conn: AsyncConnection, svix_id: str, error: str, retry_after: datetime | None = None
) -> None:
    """Count a failed attempt that rolled back; the event stays pending until `retry_after`."""
    await conn.execute(
        update(inbox)
        .where(inbox.c.svix_id == svix_id, inbox.c.status == Status.PENDING.value)
        .values(
            attempts=inbox.c.attempts + 1,
            last_error=error[:MAX_ERROR_LENGTH],
            retry_after=retry_after,
        )
    )


async def attempts(conn: AsyncConnection, svix_id: str) -> int:
    stmt = select(inbox.c.attempts).where(inbox.c.svix_id == svix_id)
    return int((await conn.execute(stmt)).scalar() or 0)


async def pending_ids(
    conn: AsyncConnection, *, received_before: datetime, now: datetime, limit: int
) -> list[str]:
    """Due pending events old enough that their first wake-up has surely run (or was lost)."""
    stmt = (
        select(inbox.c.svix_id)
        .where(_due(now), inbox.c.received_at < received_before)
        .order_by(inbox.c.received_at)
        .limit(limit)
    )
    return list((await conn.execute(stmt)).scalars())


async def requeue(
    conn: AsyncConnection,
    *,
    svix_id: str | None = None,
    since: datetime | None = None,
    reapply: bool = False,
) -> list[str]:
    """Move failed events (and applied ones, with `reapply`) back to pending; returns ids.

    Ignored events have no body and stay ignored.
    """
    statuses = [Status.FAILED.value] + ([Status.APPLIED.value] if reapply else [])
    stmt = update(inbox).where(inbox.c.status.in_(statuses), inbox.c.body.is_not(None))
    if svix_id is not None:
        stmt = stmt.where(inbox.c.svix_id == svix_id)
    if since is not None:
        stmt = stmt.where(inbox.c.received_at >= since)
    stmt = stmt.values(status=Status.PENDING.value, retry_after=None).returning(inbox.c.svix_id)
    return list((await conn.execute(stmt)).scalars())


def grace_cutoff(now: datetime, grace_seconds: int) -> datetime:
    return now - timedelta(seconds=grace_seconds)
