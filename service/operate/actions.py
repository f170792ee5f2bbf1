"""Operator actions shared by the CLI and tests: replay, status, trusted SQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from service.config import ConfigError, Settings, masked_url
from service.db.dialect import dialect_of
from service.db.engine import create_engine
from service.db.errors import describe
from service.inbox import store
from service.operate import status
from service.queue.client import Enqueuer, connect


class NotDone(RuntimeError):
    """An operator action did not do what was asked; the message says what happened."""


async def replay_events(
    settings: Settings,
    *,
    svix_id: str | None = None,
    since: datetime | None = None,
    reapply: bool = False,
) -> int:
    """Move failed (and with `reapply`, applied) events back to pending and queue them."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    engine = create_engine(settings)
    enqueuer = Enqueuer(connect(settings), settings)
    try:
        try:  # before any change: with Redis away, nothing would wake a worker
            await asyncio.wait_for(enqueuer.ping(), timeout=settings.redis.timeout_seconds)
        except Exception as exc:
            raise NotDone(
                f"Redis at {masked_url(settings.redis.url)} did not answer ({describe(exc)}): "
                "nothing was re-queued"
            ) from None
        async with engine.begin() as conn:
            ids = await store.requeue(conn, svix_id=svix_id, since=since, reapply=reapply)
            if svix_id is not None and not ids:
                raise NotDone(await _why_not(conn, svix_id, reapply))
        if ids:
            try:
                await enqueuer.wake()
            except Exception as exc:
                raise NotDone(
                    f"{len(ids)} event(s) are pending again, but no worker was woken "
                    f"({describe(exc)}): a worker's sweep will queue them"
                ) from None
        return len(ids)
    finally:
        await enqueuer.close()
        await engine.dispose()


async def _why_not(conn: AsyncConnection, svix_id: str, reapply: bool) -> str:
    found = await store.find(conn, svix_id)
    wanted = "stored" if reapply else "failed"
    if found is None:
        return f"no such {wanted} event: {svix_id}"
    if found["body"] is None:
        return f"{svix_id} is {found['status']} and its body is forgotten: it cannot be replayed"
    return f"no such {wanted} event: {svix_id} is {found['status']}"


async def inspect_event(settings: Settings, svix_id: str) -> dict[str, Any] | None:
    """One inbox event's row (body included: the caller shows it only when asked), or None."""
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            return await store.find(conn, svix_id)
    finally:
        await engine.dispose()


async def discard_event(settings: Settings, svix_id: str) -> bool:
    """Discard a failed event (store.discard); False when there is no such failed event."""
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            return await store.discard(conn, svix_id, datetime.now(UTC))
    finally:
        await engine.dispose()


async def collect_status(settings: Settings) -> dict[str, Any]:
    engine = create_engine(settings)
    try:
        return await status.collect(settings, engine)
    finally:
        await engine.dispose()


async def run_sql(settings: Settings, statements: list[str]) -> None:
    """Run trusted, generated statements (readonly-sql) in one transaction."""
    engine = create_engine(settings)
    if not dialect_of(engine).roles:
        await engine.dispose()
        raise ConfigError("roles and grants need PostgreSQL; SQLite has no users")
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.exec_driver_sql(statement)
    finally:
        await engine.dispose()
