"""The inbox forgets: bodies of applied events after INBOX_BODY_RETENTION_HOURS, settled rows
(applied or ignored) after INBOX_ROW_RETENTION_DAYS, in bounded batches the sweep runs; and at
once, the bodies of settled events about a person Clerk deleted (`clear_bodies_about`).

A body is personal data kept only to apply (and replay) its event; the row keeps the svix id,
type, status, object id and times. Rows go once Svix can no longer redeliver them, and a later
redelivery is harmless anyway: the ordering rules keep the newer state. Failed events keep their
body until they are replayed or discarded; failed and discarded rows are deleted
INBOX_FAILED_RETENTION_DAYS after they were received (the status index finds them). Partial
indexes on the settle time (inbox table) make each batch a short index range, however large
the inbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.config import Settings
from service.db.chunks import chunks
from service.db.dialect import dialect_of
from service.inbox.store import Status, inbox

_SETTLED = (Status.APPLIED.value, Status.IGNORED.value)
_GIVEN_UP = (Status.FAILED.value, Status.DISCARDED.value)


@dataclass(frozen=True)
class Retention:
    body_hours: float
    row_days: float
    failed_days: float = 30.0

    @classmethod
    def of(cls, settings: Settings) -> Retention:
        return cls(
            settings.inbox.body_retention_hours,
            settings.inbox.row_retention_days,
            settings.inbox.failed_retention_days,
        )

    def body_cutoff(self, now: datetime) -> datetime:
        return now - timedelta(hours=self.body_hours)

    def row_cutoff(self, now: datetime) -> datetime:
        return now - timedelta(days=self.row_days)

    def failed_cutoff(self, now: datetime) -> datetime:
        return now - timedelta(days=self.failed_days)


def _kept_body(before: datetime) -> Any:
    return and_(
        inbox.c.status == Status.APPLIED.value,
        inbox.c.body.is_not(None),
        inbox.c.applied_at < before,
    )


def _settled(before: datetime) -> Any:
    return and_(inbox.c.status.in_(_SETTLED), inbox.c.applied_at < before)


def _given_up(before: datetime) -> Any:
    return and_(inbox.c.status.in_(_GIVEN_UP), inbox.c.received_at < before)


async def clear_bodies(conn: AsyncConnection, before: datetime, limit: int) -> int:
    """Forget the bodies of up to `limit` events applied before `before`; how many."""
    chosen = select(inbox.c.svix_id).where(_kept_body(before)).limit(limit).scalar_subquery()
    result = await conn.execute(update(inbox).where(inbox.c.svix_id.in_(chosen)).values(body=None))
    return int(result.rowcount or 0)


async def clear_bodies_about(conn: AsyncConnection, object_ids: Sequence[str]) -> int:
    """Forget the bodies of the settled events (failed ones too) about these objects; how many.

    Pending events keep theirs: they still have to apply, and applying one about an erased
    person erases again. An index on the object of events still holding a body keeps this a
    lookup per id.
    """
    among = dialect_of(conn).among
    cleared = 0
    for chunk in chunks(sorted(set(object_ids))):
        result = await conn.execute(
            update(inbox)
            .where(
                among(inbox.c.object_id, chunk),
                inbox.c.body.is_not(None),
                inbox.c.status != Status.PENDING.value,
            )
            .values(body=None)
        )
        cleared += int(result.rowcount or 0)
    return cleared


async def delete_rows(conn: AsyncConnection, before: datetime, limit: int) -> int:
    """Delete up to `limit` rows settled before `before`; how many."""
    chosen = select(inbox.c.svix_id).where(_settled(before)).limit(limit).scalar_subquery()
    result = await conn.execute(delete(inbox).where(inbox.c.svix_id.in_(chosen)))
    return int(result.rowcount or 0)


async def delete_failed(conn: AsyncConnection, before: datetime, limit: int) -> int:
    """Delete up to `limit` failed or discarded rows received before `before`; how many."""
    chosen = select(inbox.c.svix_id).where(_given_up(before)).limit(limit).scalar_subquery()
    result = await conn.execute(delete(inbox).where(inbox.c.svix_id.in_(chosen)))
    return int(result.rowcount or 0)


async def prune(
    engine: AsyncEngine, retention: Retention, now: datetime, *, batch: int, batches: int
) -> tuple[int, int]:
    """Forget what retention says is due, at most `batches` batches of `batch` of each kind,
    each batch its own short transaction; (bodies cleared, rows deleted)."""
    cleared = deleted = 0
    for _ in range(batches):
        async with engine.begin() as conn:
            done = await clear_bodies(conn, retention.body_cutoff(now), batch)
        cleared += done
        if done < batch:
            break
    for forget, cutoff in (
        (delete_rows, retention.row_cutoff(now)),
        (delete_failed, retention.failed_cutoff(now)),
    ):
        for _ in range(batches):
            async with engine.begin() as conn:
                done = await forget(conn, cutoff, batch)
            deleted += done
            if done < batch:
                break
    return cleared, deleted


async def summary(conn: AsyncConnection, retention: Retention, now: datetime) -> dict[str, Any]:
    """What retention holds now: bodies kept, and what the next sweeps will forget."""
    kept = select(func.count()).where(
        inbox.c.body.is_not(None), inbox.c.status == Status.APPLIED.value
    )
    oldest = select(func.min(inbox.c.applied_at)).where(
        inbox.c.body.is_not(None), inbox.c.status == Status.APPLIED.value
    )
    due_bodies = select(func.count()).where(_kept_body(retention.body_cutoff(now)))
    due_rows = select(func.count()).where(_settled(retention.row_cutoff(now)))
    due_failed = select(func.count()).where(_given_up(retention.failed_cutoff(now)))
    oldest_at = (await conn.execute(oldest)).scalar()
    return {
        "body_retention_hours": retention.body_hours,
        "row_retention_days": retention.row_days,
        "applied_bodies_kept": int((await conn.execute(kept)).scalar() or 0),
        "oldest_kept_body_applied_at": oldest_at.isoformat() if oldest_at else None,
        "bodies_due": int((await conn.execute(due_bodies)).scalar() or 0),
        "rows_due": int((await conn.execute(due_rows)).scalar() or 0),
        "failed_retention_days": retention.failed_days,
        "failed_rows_due": int((await conn.execute(due_failed)).scalar() or 0),
    }
