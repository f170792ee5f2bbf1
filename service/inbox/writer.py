"""Group commit for ingest: deliveries that arrive together share one INSERT and one commit.

Each request still waits for its own row to be durable before it is acknowledged; it just
shares the round trip with the requests that arrived while the previous commit was in flight.
An idle service writes each delivery at once (a batch of one); under load, batches grow by
themselves, and the per-delivery cost falls from a statement and a commit to a share of one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from service.inbox import store
from service.inbox.store import Delivery


@dataclass
class _Waiting:
    delivery: Delivery
    received_at: datetime
    done: asyncio.Future[bool]


class InboxWriter:
    def __init__(self, engine: AsyncEngine, max_batch: int = 500, flushers: int = 2) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._max_flushers = flushers
        self._waiting: list[_Waiting] = []
        self._flushers: set[asyncio.Task[None]] = set()

    async def record(self, delivery: Delivery) -> bool:
        """Store the delivery durably; False when its svix-id was stored before.

        Raises what the database raised when the commit failed: nothing was stored then.
        """
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(delivery, datetime.now(UTC), done))
        if len(self._flushers) < self._max_flushers:
            # A second flusher overlaps one batch's commit with the next batch's insert.
            task = asyncio.create_task(self._flush())
            self._flushers.add(task)
            task.add_done_callback(self._flushers.discard)
        # Shielded: a client that hangs up must not cancel the commit its neighbours share.
        return await asyncio.shield(done)

    async def _flush(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            try:
                # One INSERT, committed on its own: no BEGIN/COMMIT round trips. Each row is
                # independent, so the statement's own atomicity is all that is needed.
                async with self._engine.connect() as conn:
                    conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                    stored = await store.record_many(
                        conn, [(w.delivery, w.received_at) for w in batch]
                    )
            except Exception as exc:
                for w in batch:
                    if not w.done.done():
                        w.done.set_exception(exc)
                continue
            for w in batch:
                # The first of several deliveries with one svix-id in a batch stores it.
                is_new = w.delivery.svix_id in stored
                stored.discard(w.delivery.svix_id)
                if not w.done.done():
                    w.done.set_result(is_new)

    async def close(self) -> None:
        await asyncio.gather(*self._flushers, return_exceptions=True)
