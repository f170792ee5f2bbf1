"""Store events in the inbox and apply them the way the worker does; read rows back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_one
from service.clerk.rows import RowOptions
from service.inbox import store
from service.inbox.store import Status, inbox
from service.ingest.endpoint import delivery_for
from service.ingest.envelope import parse_envelope
from tests.support.signing import new_svix_id


async def store_event(
    engine: AsyncEngine,
    envelope: dict[str, Any],
    svix_id: str | None = None,
    *,
    instance: str | None = None,
) -> str:
    """Record an event exactly as ingest does after verifying it (at the endpoint of the
    configured `instance`; None: the default one)."""
    svix_id = svix_id or new_svix_id()
    body = json.dumps(envelope).encode()
    delivery = delivery_for(svix_id, body, parse_envelope(body), instance=instance)
    async with engine.begin() as conn:
        await store.record(conn, delivery, datetime.now(UTC))
    return svix_id


async def deliver(
    engine: AsyncEngine,
    envelope: dict[str, Any],
    options: RowOptions | None = None,
    *,
    instance: str | None = None,
) -> Status | None:
    svix_id = await store_event(engine, envelope, instance=instance)
    return await apply_one(engine, svix_id, options or RowOptions())


async def rows(engine: AsyncEngine, table: Table, **where: Any) -> list[dict[str, Any]]:
    stmt = select(table).order_by(table.c[table.primary_key.columns.keys()[0]])
    for column, value in where.items():
        stmt = stmt.where(table.c[column] == value)
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(stmt)]


async def one(engine: AsyncEngine, table: Table, id: str) -> dict[str, Any]:
    found = await rows(engine, table, id=id)
    assert len(found) == 1, f"expected one row with id {id}, found {len(found)}"
    return found[0]


async def inbox_row(engine: AsyncEngine, svix_id: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (await conn.execute(select(inbox).where(inbox.c.svix_id == svix_id))).first()
    assert row is not None, f"no inbox row {svix_id}"
    return dict(row._mapping)


async def inbox_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return len((await conn.execute(select(inbox.c.svix_id))).all())


@asynccontextmanager
async def feed_notifications(engine: AsyncEngine) -> AsyncIterator[asyncio.Queue[str]]:
    """LISTEN clerk_replica_changes (PostgreSQL) while the block runs: the payloads, in order."""
    woken: asyncio.Queue[str] = asyncio.Queue()
    async with engine.connect() as listener:
        driver = (await listener.get_raw_connection()).driver_connection
        assert driver is not None
        await driver.add_listener("clerk_replica_changes", lambda *a: woken.put_nowait(a[-1]))
        yield woken
