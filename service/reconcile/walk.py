"""Walking a pass's segments side by side while one writer writes their pages in order.

How many walk at once is measured, not guessed: enough requests in flight to spend the key's
budget at the round trip the pass just timed (budget per second x latency, with headroom for
jitter), one when Clerk answers at once (nothing to overlap), or RECONCILE_CONCURRENCY. No
Clerk instance allows more than CLERK_MAX_PER_SECOND: a larger budget (a test server's) is
read as that, so an API that answers at once and without limit gets one walker, not a crowd
whose extra requests and memory buy nothing. The rate limiter is the API client's, shared by
everything in flight, so more walkers never mean more requests per second than the budget.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from contextlib import suppress
from dataclasses import replace

from service.config import Settings
from service.db.dialect import dialect_of
from service.reconcile.paging import pages
from service.reconcile.pass_view import Page, PassView
from service.reconcile.report import ProgressCallback

MAX_WALKERS = 24  # in flight per pass, whatever the measurement: each may hold a page
_HEADROOM = 1.5  # more in flight than latency x budget, for the jitter of round trips
CLERK_MAX_PER_SECOND = 100  # a production instance's Backend API limit: 1,000 per 10 s


def walkers(settings: Settings, latency: float) -> int:
    """Requests to keep in flight for one pass, `latency` seconds a round trip."""
    if settings.reconcile.concurrency:
        return settings.reconcile.concurrency
    per_second = min(CLERK_MAX_PER_SECOND, settings.clerk_requests_per_10s() / 10)
    return max(1, min(MAX_WALKERS, math.ceil(per_second * latency * _HEADROOM)))


async def walk(run: PassView, on_progress: ProgressCallback, count: int | None) -> None:
    """Walk the unfinished segments, `run.walkers` at once, while a writer writes their pages.

    Memory stays flat whatever the instance's size: a walker takes a slot before it asks for a
    page and the writer gives it back when it takes the page, so at most `run.walkers` pages
    are being fetched or wait as Clerk sent them, and the writer holds the two it builds and
    writes. When the writer is the slower, walkers wait for slots instead of piling up pages.
    Each walker pages on its own copy of its segment's position: a page carries where the
    segment stands after it, and only a committed page moves the segment's checkpoint there.
    Pages commit in the order they were queued, so a segment's checkpoint only ever moves
    forward.
    """
    slots = asyncio.Semaphore(max(1, run.walkers))
    queue: asyncio.Queue[Page | BaseException | None] = asyncio.Queue()  # bounded by the slots
    todo = deque(seg for seg in run.segments if not seg.done)
    page_size = run.settings.reconcile.page_size

    async def walk_segments() -> None:
        while todo:
            seg = todo.popleft()
            fetching = replace(seg.position)
            listed = pages(
                run.api, run.listing, page_size, fetching, count, bounds=seg.params(), end=seg.end
            )
            while True:
                await slots.acquire()  # given back by the writer, or here if no page came
                try:
                    items = await anext(listed)
                except StopAsyncIteration:
                    slots.release()
                    break
                except BaseException:
                    slots.release()
                    raise
                await queue.put(Page(len(items), seg, replace(fetching), items=items))
            # The segment's end holds no slot.
            await queue.put(Page(0, seg, replace(fetching), ends_segment=True))

    async def all_walkers() -> None:
        try:
            await asyncio.gather(*(walk_segments() for _ in range(min(run.walkers, len(todo)))))
        except Exception as exc:  # handed over in order, after the pages before it
            await queue.put(exc)
            return
        await queue.put(None)

    fetcher = asyncio.create_task(all_walkers())
    # Where writers run concurrently, the next page is written while the current one commits,
    # so this process prepares one page's statements while the server executes the other's.
    # Pages still commit in order.
    # Two pages in flight must not write the same row: the later would hold its lock while
    # waiting for the earlier to commit, and the earlier wait for the lock. So never for kinds
    # that write rows beyond their own objects (embedded objects, kind rules), nor for two
    # pages that share an object (segments overlap at their edges).
    overlap = (
        not run.dry
        and dialect_of(run.engine).concurrent_writers
        and not run.kind.embeds
        and run.kind.before_upsert is None
    )
    writing: list[asyncio.Task[None]] = []  # at most two pages: committing, and next
    previous: set[str] = set()
    try:
        while (page := await queue.get()) is not None:
            if isinstance(page, BaseException):
                raise page
            if not page.ends_segment:
                slots.release()
            # Built here, not by the walker (a page waiting in the queue is no larger than
            # Clerk's answer, and the CPU is this process's either way), while the page before
            # is being written, whether or not the two may be written at once.
            await run.build_page(page)
            ids = set(page.ids)
            if writing and (not overlap or not previous.isdisjoint(ids)):
                await writing.pop(0)
                on_progress(run.report, count)
            previous = ids
            before = writing[-1] if writing else None
            writing.append(asyncio.create_task(run.apply_page(page, after=before)))
            if len(writing) == 2:
                await writing.pop(0)
                on_progress(run.report, count)
        while writing:
            await writing.pop(0)
            on_progress(run.report, count)
    finally:
        for task in (fetcher, *writing):
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):  # the first error is raised
                await task
