"""Inbox operations: record a delivery, claim it for apply, settle it, find what to sweep."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from service.inbox.table import Status, inbox

MAX_ERROR_LENGTH = 2000


@dataclass(frozen=True)
class Delivery:
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


async def record(conn: AsyncConnection, delivery: Delivery, now: datetime) -> bool:
    """Store a delivery once; False when this svix-id was stored before (a redelivery)."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(inbox)
        .values(
            svix_id=delivery.svix_id,
            event_type=delivery.event_type,
            status=delivery.status.value,
            body=delivery.body,
            event_timestamp_ms=delivery.event_timestamp_ms,
            object_id=delivery.object_id,
            received_at=now,
            applied_at=now if delivery.status is Status.IGNORED else None,
        )
        .on_conflict_do_nothing(index_elements=[inbox.c.svix_id])
        .returning(inbox.c.svix_id)
    )
    return (await conn.execute(stmt)).first() is not None


async def claim(conn: AsyncConnection, svix_id: str, now: datetime) -> Claimed | None:
    """Take a pending event inside the caller's transaction, or None if it is not pending.

    The UPDATE takes the row lock before anything is read: a second worker with the same id
    waits, then finds it no longer pending. If the transaction rolls back, it stays pending.
    """
    stmt = (
        update(inbox)
        .where(inbox.c.svix_id == svix_id, inbox.c.status == Status.PENDING.value)
        .values(
            status=Status.APPLIED.value,
            applied_at=now,
            attempts=inbox.c.attempts + 1,
            last_error=None,
        )
        .returning(
            inbox.c.event_type, inbox.c.body, inbox.c.event_timestamp_ms, inbox.c.received_at
        )
    )
    row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    return Claimed(svix_id, row.event_type, row.body, row.event_timestamp_ms, row.received_at)


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


async def note_retry(conn: AsyncConnection, svix_id: str, error: str) -> None:
    """Count a failed attempt that rolled back; the event stays pending."""
    await conn.execute(
        update(inbox)
        .where(inbox.c.svix_id == svix_id, inbox.c.status == Status.PENDING.value)
        .values(attempts=inbox.c.attempts + 1, last_error=error[:MAX_ERROR_LENGTH])
    )


async def pending_ids(conn: AsyncConnection, *, received_before: datetime, limit: int) -> list[str]:
    """Pending events old enough that their first enqueue has surely run (or was lost)."""
    stmt = (
        select(inbox.c.svix_id)
        .where(inbox.c.status == Status.PENDING.value, inbox.c.received_at < received_before)
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
    stmt = stmt.values(status=Status.PENDING.value).returning(inbox.c.svix_id)
    return list((await conn.execute(stmt)).scalars())


def grace_cutoff(now: datetime, grace_seconds: int) -> datetime:
    return now - timedelta(seconds=grace_seconds)
