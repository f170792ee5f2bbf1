"""Group commit for ingest: deliveries that arrive together share one INSERT and one commit.

Each request still waits for its own row to be durable before it is acknowledged; it just
shares the round trip with the requests that arrived while the previous write was in flight.
An idle service writes each delivery at once (a batch of one); under load, batches grow by
themselves, and the per-delivery cost falls from a statement and a commit to a share of one.

One flusher keeps one connection, in autocommit: a batch costs one INSERT round trip, not a
pool checkout, a liveness ping, BEGIN and COMMIT. While its write is in flight the next batch
gathers. There is one flusher, not several: each round trip costs the web process more CPU
than a delivery's signature check, and a second flusher halves the batches under load (the
README's performance section has the figures).
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.inbox import store
from service.inbox.store import Delivery


class _Waiting(NamedTuple):
    delivery: Delivery
    received_at: datetime
    done: asyncio.Future[bool]


@dataclass
class _Link:
    """A flusher's connection, and the inbox insert bound to it (made once)."""

    conn: AsyncConnection
    record: store.Recorder


class InboxWriter:
    def __init__(self, engine: AsyncEngine, max_batch: int = 500) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._waiting: list[_Waiting] = []
        self._ready = asyncio.Event()
        self._flushers: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def record(self, delivery: Delivery) -> bool:
        """Store the delivery durably; False when its svix-id was stored before.

        Raises what the database raised when the write failed: nothing was stored then.
        """
        loop = self._loop
        if loop is None or not self._flushers:
            # Kept: on Python 3.11, get_running_loop() makes a getpid() system call each time.
            loop = self._loop = asyncio.get_running_loop()
            self._flushers = [loop.create_task(self._flush())]
        done: asyncio.Future[bool] = loop.create_future()
        self._waiting.append(_Waiting(delivery, datetime.now(UTC), done))
        self._ready.set()
        # A cancelled request cancels only its own future: the flusher's task still writes
        # the batch its neighbours share, and skips settling a future that is already done.
        return await done

    async def _flush(self) -> None:
        link: _Link | None = None
        try:
            while True:
                await self._ready.wait()
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                if not self._waiting:
                    self._ready.clear()
                if batch:
                    link = await self._write(link, batch)
        finally:
            for w in self._waiting:
                if not w.done.done():
                    w.done.set_exception(RuntimeError("the web process is shutting down"))
            if link is not None:
                with suppress(Exception):
                    await link.conn.close()

    async def _connect(self) -> _Link:
        conn = await self._engine.connect()
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            return _Link(conn, await store.recorder(conn))
        except BaseException:
            await conn.close()
            raise

    async def _write(self, link: _Link | None, batch: list[_Waiting]) -> _Link | None:
        """Write one batch and settle its waiters; returns the connection to keep using."""
        rows = [(w.delivery, w.received_at) for w in batch]
        for attempt in range(2):
            kept = link is not None
            try:
                if link is None:
                    link = await self._connect()
                stored = await link.record(rows)
                break
            except Exception as exc:
                if link is not None:
                    with suppress(Exception):
                        await link.conn.invalidate()
                    with suppress(Exception):
                        await link.conn.close()
                    link = None
                # A kept connection may have died with a database restart: one more try on
                # a fresh one. The insert is idempotent, so a write that did land before the
                # connection broke just reports its deliveries as already stored. A fresh
                # connection failing is the database's answer.
                if attempt == 0 and kept:
                    continue
                for w in batch:
                    if not w.done.done():
                        w.done.set_exception(exc)
                return None
        for w in batch:
            # The first of several deliveries with one svix-id in a batch stores it.
            is_new = w.delivery.svix_id in stored
            stored.discard(w.delivery.svix_id)
            if not w.done.done():
                w.done.set_result(is_new)
        return link

    async def close(self) -> None:
        for task in self._flushers:
            task.cancel()
        await asyncio.gather(*self._flushers, return_exceptions=True)
        self._flushers = []
