"""A lease lock in the database: two reconciles never run at once, across machines, and a
crashed holder's lease simply expires."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from sqlalchemy import Column, String, Table, delete, update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.db.dialect import dialect_of
from service.db.types import UTCDateTime, metadata

locks = Table(
    "clerk_replica_locks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)


class AlreadyRunning(RuntimeError):
    """Another process holds the lease."""


class LeaseLost(RuntimeError):
    """The lease expired while we held it (a stall longer than its TTL): stop at once."""


class LeaseLock:
    def __init__(self, engine: AsyncEngine, name: str, ttl_seconds: int) -> None:
        self._engine = engine
        self._name = name
        self._ttl = timedelta(seconds=ttl_seconds)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"

    async def acquire(self) -> bool:
        now = datetime.now(UTC)
        values = (
            dialect_of(self._engine)
            .insert(locks)
            .values(name=self._name, holder=self.holder, expires_at=now + self._ttl)
        )
        stmt = values.on_conflict_do_update(
            index_elements=[locks.c.name],
            set_={"holder": values.excluded.holder, "expires_at": values.excluded.expires_at},
            where=locks.c.expires_at < now,
        ).returning(locks.c.holder)
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def renew(self) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(locks)
                .where(locks.c.name == self._name, locks.c.holder == self.holder)
                .values(expires_at=datetime.now(UTC) + self._ttl)
            )
        return bool(result.rowcount)

    async def release(self) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                delete(locks).where(locks.c.name == self._name, locks.c.holder == self.holder)
            )

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Hold the lease for the block, renewing it in the background; AlreadyRunning if not."""
        if not await self.acquire():
            raise AlreadyRunning(f"another process holds the {self._name!r} lock")

        owner = asyncio.current_task()
        lost = False

        async def keep_alive() -> None:
            nonlocal lost
            while True:
                await asyncio.sleep(self._ttl.total_seconds() / 3)
                try:
                    renewed = await self.renew()
                except Exception:
                    continue  # a blip is fine: the lease outlives two missed renewals
                if not renewed:
                    lost = True
                    if owner is not None:
                        owner.cancel()
                    return

        renewer = asyncio.create_task(keep_alive())
        try:
            yield
        except asyncio.CancelledError:
            if lost and owner is not None:
                owner.uncancel()
                raise LeaseLost(f"lost the {self._name!r} lock to another process") from None
            raise
        finally:
            renewer.cancel()
            with suppress(asyncio.CancelledError):
                await renewer
            await self.release()
