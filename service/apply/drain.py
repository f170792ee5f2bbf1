"""The drain loop: take batches while the inbox has due events, until a job's window closes.

A queue job (service/queue/worker.py) calls `Drainer.drain` and knows nothing of batches; the
drainer knows nothing of the queue beyond a `wake` callback that asks for a later job.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_batch
from service.clerk.rows import RowOptions
from service.db.dialect import dialect_of
from service.db.errors import TransientError, describe
from service.logs import get_logger

log = get_logger(__name__)

# A job keeps looking this long past its window's end: a web process whose clock runs a little
# ahead of this worker's may still commit an event it counts in that window.
_CLOCK_MARGIN_SECONDS = 0.02
# While its window is open, an idle job looks again this often.
_IDLE_POLL_SECONDS = 0.01

# Asks for a drain at a time (None: now, by a fresh job); may fail when the queue is down.
Wake = Callable[[datetime | None], Awaitable[object]]


@dataclass
class Drainer:
    """Drains one worker process's share of the inbox; shared by all of its jobs."""

    engine: AsyncEngine
    options: RowOptions
    wake: Wake
    batch_size: int
    streams: int  # batches at once while there is a backlog, where writers may run concurrently
    time_budget_seconds: float  # a job hands a long backlog to a fresh job after this
    max_attempts: int | None = None  # transient failures before an event is marked failed
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    latest_until: float = 0.0  # the latest window end of any job started

    async def drain(self, until: float) -> dict[str, int]:
        """Apply batches until the inbox is empty and the window ending at `until` (epoch
        seconds) has closed; returns the count of each outcome.

        One job per worker process drains at a time: a job for a later window waits for the
        current one, which then stops at its next empty take (the later job covers its window
        too). When a batch comes back full there is a backlog: helper streams join (claims
        skip each other's rows), so the database works on one batch while Python prepares the
        next; they stop at their first empty take.

        Raises TransientError when the database is down (the events stay pending).
        """
        self.latest_until = max(self.latest_until, until)
        stop_by = time.monotonic() + self.time_budget_seconds
        run = _Run(self, stop_by)
        helpers = self.streams - 1 if dialect_of(self.engine).concurrent_writers else 0
        running: list[asyncio.Task[None]] = []
        async with self.lock:
            while self.latest_until <= until:  # else a later job covers this window
                if time.monotonic() >= stop_by:
                    await self._wake_quietly(None)  # time is up, maybe with work left: hand over
                    break
                claimed = await run.batch()
                if claimed is None:
                    break
                if claimed >= self.batch_size and not running:
                    running = [asyncio.create_task(run.helper()) for _ in range(helpers)]
                if claimed:
                    continue
                remaining = until + _CLOCK_MARGIN_SECONDS - time.time()
                if remaining <= 0:
                    break
                await asyncio.sleep(min(_IDLE_POLL_SECONDS, remaining))
            await asyncio.gather(*running)
        if run.down:
            raise run.down[0]
        return dict(run.totals)

    async def _wake_quietly(self, at: datetime | None) -> None:
        try:
            await self.wake(at)
        except Exception as exc:  # the queue is down: the sweep wakes a worker later
            log.warning("apply.wake_failed", error=describe(exc))


@dataclass
class _Run:
    """One drain's streams and what they found."""

    drainer: Drainer
    stop_by: float
    totals: Counter[str] = field(default_factory=Counter)
    down: list[TransientError] = field(default_factory=list)  # the first stream to see it

    async def batch(self) -> int | None:
        """Apply one batch; how many events it took, or None when the database is down."""
        d = self.drainer
        try:
            result = await apply_batch(
                d.engine, d.options, d.batch_size, max_attempts=d.max_attempts
            )
        except TransientError as exc:
            self.down.append(exc)
            return None
        self.totals.update({o.value: n for o, n in result.outcomes.items() if n})
        if result.retry_at is not None:
            await d._wake_quietly(result.retry_at)
        return result.claimed

    async def helper(self) -> None:
        while time.monotonic() < self.stop_by and not self.down and await self.batch():
            pass
