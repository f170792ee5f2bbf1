"""Group commit for ingest: deliveries that arrive together share one INSERT and one commit.

Invariant: a delivery is acknowledged only once its own row is durable; every waiting delivery
gets an answer in bounded time (a `StalledError` past its deadline, refusal past the cap of
waiting deliveries), and a flusher that died is started again. One flusher, one connection in
autocommit. Why: docs/explanation/ingest.md.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.db.dialect import dialect_of
from service.inbox import store
from service.inbox.store import Delivery
from service.logs import get_logger

log = get_logger(__name__)


class StalledError(RuntimeError):
    """The database did not make the delivery durable in time (nothing is acknowledged)."""


class _Waiting(NamedTuple):
    delivery: Delivery
    received_at: datetime
    done: asyncio.Future[bool]
    deadline: float  # time.monotonic()


@dataclass
class _Link:
    """A flusher's connection, and the inbox insert bound to it (made once)."""

    conn: AsyncConnection
    record: store.Recorder


class InboxWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        max_batch: int = 500,
        *,
        timeout_seconds: float = 5.0,
        max_waiting: int = 10_000,
    ) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._timeout = timeout_seconds
        self._max_waiting = max_waiting
        self._tick = min(1.0, max(0.02, timeout_seconds / 10))
        self._waiting: list[_Waiting] = []
        self._inflight: list[_Waiting] = []
        self._ready = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._link: _Link | None = None
        self._cancellable = dialect_of(engine).cancellable
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def alive(self) -> bool:
        """False when the flusher has died (until the next delivery starts it again)."""
        return self._flusher is None or not self._flusher.done()

    async def record(self, delivery: Delivery) -> bool:
        """Store the delivery durably; False when its svix-id was stored before.

        Raises what the database raised when the write failed, StalledError when it did not
        answer in time: nothing is acknowledged then.
        """
        loop = self._loop
        if loop is None or self._flusher is None or self._flusher.done():
            loop = self._start()
        if len(self._waiting) >= self._max_waiting:
            raise StalledError(f"{len(self._waiting)} deliveries already wait for the database")
        done: asyncio.Future[bool] = loop.create_future()
        deadline = time.monotonic() + self._timeout
        self._waiting.append(_Waiting(delivery, datetime.now(UTC), done, deadline))
        self._ready.set()
        # A cancelled request cancels only its own future: the flusher's task still writes
        # the batch its neighbours share, and skips settling a future that is already done.
        return await done

    def _start(self) -> asyncio.AbstractEventLoop:
        # Kept: on Python 3.11, get_running_loop() makes a getpid() system call each time.
        loop = self._loop = asyncio.get_running_loop()
        if self._flusher is not None and self._flusher.done() and not self._closed:
            failure = None if self._flusher.cancelled() else self._flusher.exception()
            log.error("inbox.flusher_restarted", error=repr(failure))
        self._flusher = loop.create_task(self._flush())
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = loop.create_task(self._sweep())
        return loop

    async def _sweep(self) -> None:
        """Fail every waiting delivery past its deadline (they are in arrival order)."""
        while True:
            await asyncio.sleep(self._tick)
            now = time.monotonic()
            for group in (self._inflight, self._waiting):
                for w in group:
                    if w.deadline > now:
                        break
                    if not w.done.done():
                        w.done.set_exception(StalledError(f"not durable within {self._timeout:g}s"))

    async def _flush(self) -> None:
        try:
            while True:
                await self._ready.wait()
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                if not self._waiting:
                    self._ready.clear()
                if batch:
                    self._inflight = batch
                    await self._write(batch)
                    self._inflight = []
        finally:
            if self._closed:
                for w in (*self._inflight, *self._waiting):
                    if not w.done.done():
                        w.done.set_exception(RuntimeError("the web process is shutting down"))
            await self._drop_link(invalidate=False)

    async def _drop_link(self, *, invalidate: bool) -> None:
        link, self._link = self._link, None
        if link is None:
            return
        if invalidate:
            with suppress(Exception):
                await link.conn.invalidate()
        with suppress(Exception):
            await link.conn.close()

    async def _connect(self) -> _Link:
        conn = await self._engine.connect()
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await dialect_of(conn).limit_lock_wait(conn, self._timeout)
            return _Link(conn, await store.recorder(conn))
        except BaseException:
            await conn.close()
            raise

    async def _write(self, batch: list[_Waiting]) -> None:
        """Write one batch and settle its waiters, on the kept connection (`self._link`)."""
        rows = [(w.delivery, w.received_at) for w in batch]
        for attempt in range(2):
            kept = self._link is not None
            try:
                # Where a statement can be abandoned, a half-open connection cannot hold the
                # flusher either; elsewhere the lock wait is bounded (see _connect).
                async with asyncio.timeout(self._timeout if self._cancellable else None):
                    if self._link is None:
                        self._link = await self._connect()
                    stored = await self._link.record(rows)
                break
            except Exception as exc:
                await self._drop_link(invalidate=True)
                # A kept connection may have died with a database restart: one more try on
                # a fresh one. The insert is idempotent, so a write that did land before the
                # connection broke just reports its deliveries as already stored. A fresh
                # connection failing is the database's answer.
                if attempt == 0 and kept:
                    continue
                failure = StalledError("the database did not answer in time")
                for w in batch:
                    if not w.done.done():
                        w.done.set_exception(failure if isinstance(exc, TimeoutError) else exc)
                return
        for w in batch:
            # The first of several deliveries with one svix-id in a batch stores it.
            is_new = w.delivery.svix_id in stored
            stored.discard(w.delivery.svix_id)
            if not w.done.done():
                w.done.set_result(is_new)

    async def close(self) -> None:
        self._closed = True
        tasks = [t for t in (self._flusher, self._sweeper) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._flusher = self._sweeper = None
