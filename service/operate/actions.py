"""Operator actions shared by the CLI and tests: replay, status, trusted SQL."""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from service.config import ConfigError, Settings
from service.db.dialect import dialect_of
from service.db.engine import create_engine
from service.inbox import store
from service.operate import status
from service.queue.client import Enqueuer, connect


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
        async with engine.begin() as conn:
            ids = await store.requeue(conn, svix_id=svix_id, since=since, reapply=reapply)
        if ids:
            # If Redis is down the events stay pending, and the worker's sweep finds them.
            with suppress(Exception):
                await enqueuer.wake()
        return len(ids)
    finally:
        await enqueuer.close()
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
