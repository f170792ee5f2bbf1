"""The inbox: its table, the states an event moves through, and its operations (record a
delivery, take it for apply, settle it, find what to sweep)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    Update,
    and_,
    bindparam,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.dialect import dialect_of
from service.db.types import UTCDateTime, metadata, partial_index


class Status(StrEnum):
    PENDING = "pending"  # durable, not yet applied: the sweep re-enqueues these
    APPLIED = "applied"
    IGNORED = "ignored"  # a type we do not replicate; acknowledged, never retried
    FAILED = "failed"  # can never apply as it is; kept with its error for operators
    DISCARDED = "discarded"  # a failed event an operator gave up on (`discard`); body forgotten


inbox = Table(
    "clerk_replica_inbox",
    metadata,
    Column("svix_id", String(255), primary_key=True),
    Column("event_type", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    # The verified body exactly as received; NULL for ignored types (no reason to keep PII).
    Column("body", Text),
    # Envelope `timestamp`, normalised to epoch ms; a deletion's tombstone time.
    Column("event_timestamp_ms", BigInteger),
    Column("object_id", String(255)),
    Column("received_at", UTCDateTime, nullable=False),
    Column("applied_at", UTCDateTime),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    # After a transient failure: batch claims leave the event alone until then (backoff).
    Column("retry_after", UTCDateTime),
    # The configured instance whose endpoint took the delivery (`default` for the plain
    # endpoint; NULL for rows from before several instances).
    Column("instance", String(64)),
)
Index("ix_clerk_replica_inbox_status_received_at", inbox.c.status, inbox.c.received_at)
# Retention (service/inbox/retention.py) finds what to forget without scanning the inbox: bodies
# still kept by applied events, and settled rows, each by the time they were settled.
partial_index(
    "ix_clerk_replica_inbox_kept_bodies",
    inbox.c.applied_at,
    where=and_(inbox.c.status == Status.APPLIED.value, inbox.c.body.is_not(None)),
)
partial_index(
    "ix_clerk_replica_inbox_settled",
    inbox.c.applied_at,
    where=inbox.c.status.in_([Status.APPLIED.value, Status.IGNORED.value]),
)
# Erasure (service/kinds/erasure.py) finds the events about a deleted person that still hold a
# body; bodies are forgotten after retention, so this index stays the size of the recent inbox.
partial_index(
    "ix_clerk_replica_inbox_bodies_by_object",
    inbox.c.object_id,
    where=inbox.c.body.is_not(None),
)

MAX_ERROR_LENGTH = 2000


class Delivery(NamedTuple):
    """A delivery as the inbox stores it (a named tuple: ingest makes one per request, and
    a frozen dataclass costs several times as much to build)."""

    svix_id: str
    event_type: str
    body: str | None
    event_timestamp_ms: int | None
    object_id: str | None
    status: Status
    instance: str | None = None  # the configured instance whose endpoint took it


@dataclass(frozen=True)
class Claimed:
    svix_id: str
    event_type: str
    body: str | None
    event_timestamp_ms: int | None
    received_at: datetime
    object_id: str | None = None
    instance: str | None = None


async def record(conn: AsyncConnection, delivery: Delivery, now: datetime) -> bool:
    """Store a delivery once; False when this svix-id was stored before (a redelivery)."""
    return delivery.svix_id in await record_many(conn, [(delivery, now)])


# The columns a delivery fills, in the order of `inbox_columns`.
RECORD_COLUMNS = (
    "svix_id",
    "event_type",
    "status",
    "body",
    "event_timestamp_ms",
    "object_id",
    "received_at",
    "applied_at",
    "instance",
)

Recorder = Callable[[Sequence[tuple[Delivery, datetime]]], Awaitable[set[str]]]


async def recorder(conn: AsyncConnection) -> Recorder:
    """A `record_many` bound to `conn`, for a writer that keeps its connection: the database's
    fastest insert path (on PostgreSQL, one array per column straight to the driver)."""
    insert = await dialect_of(conn).inserter(conn, inbox, RECORD_COLUMNS, "svix_id")

    async def record(deliveries: Sequence[tuple[Delivery, datetime]]) -> set[str]:
        return await insert(inbox_columns(deliveries))

    return record


async def record_many(
    conn: AsyncConnection, deliveries: Sequence[tuple[Delivery, datetime]]
) -> set[str]:
    """Store deliveries (with their arrival times) once each; returns the svix-ids that are new."""
    return await (await recorder(conn))(deliveries)


def inbox_columns(deliveries: Sequence[tuple[Delivery, datetime]]) -> list[list[Any]]:
    """One row per svix-id (the first delivery of it wins), as one list per column in
    RECORD_COLUMNS order, built without a dict per row."""
    columns: list[list[Any]] = [[] for _ in RECORD_COLUMNS]
    ids, types, statuses, bodies, stamps, objects, received, applied, instances = columns
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
        instances.append(delivery.instance)
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
            inbox.c.instance,
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
        row.instance,
    )


async def take_as_applied(
    conn: AsyncConnection, svix_ids: Sequence[str], now: datetime
) -> list[Claimed]:
    """Take the given events if they are pending, marking them applied in the caller's
    transaction: it commits them applied together with their writes (after settling those
    that could not apply), or rolls back and leaves them pending.

    The UPDATE takes the row lock before anything is read: a second worker with the same id
    waits, then finds it no longer pending.
    """
    stmt = _claiming(now).where(
        inbox.c.svix_id.in_(list(svix_ids)), inbox.c.status == Status.PENDING.value
    )
    return [_claimed(row) for row in await conn.execute(stmt)]


def _due(now: datetime) -> Any:
    return and_(
        inbox.c.status == Status.PENDING.value,
        or_(inbox.c.retry_after.is_(None), inbox.c.retry_after <= now),
    )


async def take_due_as_applied(conn: AsyncConnection, limit: int, now: datetime) -> list[Claimed]:
    """Take up to `limit` due pending events, oldest first, as `take_as_applied` does.

    Where writers run concurrently, the rows are locked skipping those another worker holds,
    so workers take disjoint batches without waiting on each other; a single-writer database
    serialises them already.
    """
    oldest = select(inbox.c.svix_id).where(_due(now)).order_by(inbox.c.received_at).limit(limit)
    oldest = dialect_of(conn).skip_locked(oldest)
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


async def find(conn: AsyncConnection, svix_id: str) -> dict[str, Any] | None:
    """One event's row (body included), or None."""
    row = (await conn.execute(select(inbox).where(inbox.c.svix_id == svix_id))).first()
    return None if row is None else dict(row._mapping)


async def discard(conn: AsyncConnection, svix_id: str, now: datetime) -> bool:
    """Give up on a failed event: recorded as discarded (its error kept), its body forgotten.
    False when no failed event has this id."""
    result = await conn.execute(
        update(inbox)
        .where(inbox.c.svix_id == svix_id, inbox.c.status == Status.FAILED.value)
        .values(status=Status.DISCARDED.value, body=None, applied_at=now, retry_after=None)
    )
    return bool(result.rowcount)


def grace_cutoff(now: datetime, grace_seconds: int) -> datetime:
    return now - timedelta(seconds=grace_seconds)
