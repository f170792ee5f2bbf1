"""Inbox events as the console shows them: the newest failures, one event's metadata, and its
body for an operator who asked for it.

Errors are cut to their first line with anything that looks like a value (quoted text, an
email address, a `(key)=(value)` detail) masked: drivers and payload checks sometimes quote
what they refused, and that may be personal data.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.config import DEFAULT_INSTANCE
from service.inbox.store import Status, inbox


def instance_of(column: Any) -> ColumnElement[str]:
    """Rows from before several instances (NULL) are the default instance's."""
    return func.coalesce(column, DEFAULT_INSTANCE)


async def failed_events(conn: AsyncConnection, limit: int) -> list[dict[str, Any]]:
    """The newest failed events (never their bodies)."""
    stmt = (
        select(
            instance_of(inbox.c.instance).label("instance"),
            inbox.c.svix_id,
            inbox.c.event_type,
            inbox.c.object_id,
            inbox.c.attempts,
            inbox.c.last_error,
            inbox.c.received_at,
        )
        .where(inbox.c.status == Status.FAILED.value)
        .order_by(inbox.c.received_at.desc())
        .limit(limit)
    )
    return [
        {**row._mapping, "last_error": safe_error(row.last_error)}
        for row in await conn.execute(stmt)
    ]


async def event(conn: AsyncConnection, svix_id: str) -> dict[str, Any] | None:
    """An event's metadata, and whether its body is still kept (not the body)."""
    stmt = select(
        instance_of(inbox.c.instance).label("instance"),
        inbox.c.svix_id,
        inbox.c.event_type,
        inbox.c.status,
        inbox.c.object_id,
        inbox.c.attempts,
        inbox.c.last_error,
        inbox.c.received_at,
        inbox.c.applied_at,
        inbox.c.retry_after,
        inbox.c.event_timestamp_ms,
        inbox.c.body.is_not(None).label("has_body"),
    ).where(inbox.c.svix_id == svix_id)
    row = (await conn.execute(stmt)).first()
    if row is None:
        return None
    return {**row._mapping, "last_error": safe_error(row.last_error)}


async def event_body(conn: AsyncConnection, svix_id: str) -> str | None:
    """The stored body (None: never kept, or forgotten by retention or erasure)."""
    stmt = select(inbox.c.body).where(inbox.c.svix_id == svix_id)
    body: str | None = (await conn.execute(stmt)).scalar()
    return body


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_EMAIL = re.compile(r"[^\s@()<>,;:]+@[^\s@()<>,;:]+")
_DETAIL = re.compile(r"\)=\([^)]*\)")


def safe_error(error: str | None, limit: int = 300) -> str | None:
    """An error fit to show: its first line, values masked, at most `limit` characters."""
    if not error:
        return error
    line = error.strip().splitlines()[0] if error.strip() else ""
    line = _DETAIL.sub(")=(…)", line)
    line = _QUOTED.sub("'…'", line)
    line = _EMAIL.sub("…@…", line)
    return line if len(line) <= limit else line[: limit - 1] + "…"
