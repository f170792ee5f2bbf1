"""Apply stored events in batches: one take, one set-based write per kind, one commit.

This is the only apply path. A batch is taken from the due pending events (`apply_batch`) or
named (`apply_one`: a batch of one). Events of a batch are applied together, which is only
sound because the writes are order-independent (service/kinds/writes.py). A batch the database
refuses is taken again once (a deadlock against a concurrent writer), then falls back to one
batch per event, so one bad event costs its batch the speed-up, never its neighbours' progress.
In a batch of one, a transient failure backs the event off and a permanent one marks it
failed.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.apply.plan import Planned, bindings_for, event_of, feed_sources, plan, run_planned
from service.clerk.payloads import PayloadError
from service.clerk.rows import RowOptions
from service.config import DEFAULT_INSTANCE
from service.db.errors import TransientError, describe, is_transient
from service.feed import sources
from service.inbox import instances, store
from service.inbox.store import Claimed, Status
from service.kinds.registry import is_replicated
from service.logs import get_logger
from service.metrics import APPLY_SECONDS, EVENTS, LAG_SECONDS

log = get_logger(__name__)

# A database that fails this many events in a row is down, not picky: stop and back off.
_TRANSIENT_STREAK = 3
_BACKOFF_BASE_SECONDS = 1.0
_BACKOFF_CAP_SECONDS = 120.0

Take = Callable[[AsyncConnection, datetime], Awaitable[list[Claimed]]]


@dataclass
class BatchResult:
    claimed: int = 0
    outcomes: Counter[Status] = field(default_factory=Counter)
    retried: int = 0  # backing off after a transient error
    # Set when some event is backing off after a transient error: when to look again.
    retry_at: datetime | None = None


async def apply_batch(
    engine: AsyncEngine, options: RowOptions, limit: int, *, max_attempts: int | None = None
) -> BatchResult:
    """Take up to `limit` due pending events and apply them; an empty result means idle.

    An event whose transient failures reach `max_attempts` is marked failed (None: it keeps
    backing off). Raises TransientError when the database looks unavailable (the events stay
    pending).
    """

    async def take(conn: AsyncConnection, now: datetime) -> list[Claimed]:
        return await store.take_due_as_applied(conn, limit, now)

    return await _apply(engine, options, take, single=None, max_attempts=max_attempts)


async def apply_one(
    engine: AsyncEngine, svix_id: str, options: RowOptions, *, max_attempts: int | None = None
) -> Status | None:
    """Apply the inbox event `svix_id` at most once: its status afterwards, or None when it was
    not pending (applied before, or an unknown id).

    Raises TransientError when it should be retried later; permanent problems are recorded
    on the inbox row (status failed, with the error) and do not raise.
    """

    async def take(conn: AsyncConnection, now: datetime) -> list[Claimed]:
        return await store.take_as_applied(conn, [svix_id], now)

    result = await _apply(engine, options, take, single=svix_id, max_attempts=max_attempts)
    return next(iter(result.outcomes), None)


def retry_delay_seconds(attempts: int) -> float:
    """Exponential backoff with full jitter, so retrying workers do not stampede a database
    that just came back."""
    ceiling = min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return random.uniform(ceiling / 2, ceiling)


async def _apply(
    engine: AsyncEngine,
    options: RowOptions,
    take: Take,
    *,
    single: str | None,
    max_attempts: int | None,
) -> BatchResult:
    for attempt in (1, 2):
        started = time.perf_counter()
        result = BatchResult()
        claimed: list[Claimed] = []
        try:
            async with engine.begin() as conn:
                claimed = await take(conn, datetime.now(UTC))
                result.claimed = len(claimed)
                known = await bindings_for(conn, claimed, options)
                planned, settled, learned = _plan_all(claimed, options, known)
                await instances.bind_deliveries(conn, learned)
                # Object ids first: an erasure in the writes finds events by them.
                await store.set_object_ids(
                    conn,
                    [
                        (c.svix_id, p.object_id)
                        for c, p in planned
                        if p.object_id is not None and p.object_id != c.object_id
                    ],
                )
                events = feed_sources([(c.svix_id, p) for c, p in planned])
                async with sources.attributed(conn, enabled=options.change_feed, events=events):
                    await run_planned(
                        conn, [p for _, p in planned], erase=options.erase_deleted_users
                    )
                for status, items in settled.items():
                    await store.settle_many(conn, status, items)
        except Exception as exc:
            if single is not None:
                event_type = claimed[0].event_type if claimed else "unknown"
                instance = _instance(claimed[0]) if claimed else DEFAULT_INSTANCE
                return await _one_failed(engine, single, event_type, instance, exc, max_attempts)
            if result.claimed == 0:
                raise TransientError(describe(exc)) from exc
            if attempt == 1 and is_transient(exc):
                # A deadlock or lock timeout against a concurrent writer rolled the whole
                # batch back: take it again before paying for one event at a time.
                log.info("batch.retry", events=result.claimed, error=describe(exc))
                continue
            log.warning("batch.fallback", events=result.claimed, error=describe(exc))
            return await _one_by_one([c.svix_id for c in claimed], engine, options, max_attempts)
        break
    _count(claimed, planned, settled, result, time.perf_counter() - started)
    return result


def _plan_all(
    claimed: list[Claimed], options: RowOptions, known: instances.Bindings
) -> tuple[
    list[tuple[Claimed, Planned]], dict[Status, list[tuple[str, str | None]]], dict[str, str]
]:
    """Plan each event as of its endpoint's instance; the names bound by their first
    delivery here are returned to be recorded."""
    planned: list[tuple[Claimed, Planned]] = []
    settled: dict[Status, list[tuple[str, str | None]]] = {Status.IGNORED: [], Status.FAILED: []}
    learned: dict[str, str] = {}
    for c in claimed:
        if not is_replicated(c.event_type):
            settled[Status.IGNORED].append((c.svix_id, None))
            continue
        try:
            event = event_of(c)
            name = _instance(c)
            refusal = known.refusal(name, event.instance_id)
            if refusal is not None:
                raise PayloadError(refusal)
            if name not in known.by_name and event.instance_id is not None:
                known = known.learn(name, event.instance_id)
                learned[name] = event.instance_id
            event = replace(event, instance_id=known.instance_for(name, event.instance_id))
            planned.append((c, plan(event, options)))
        except PayloadError as exc:
            settled[Status.FAILED].append((c.svix_id, str(exc)))
            log.warning(
                "event.failed",
                instance=_instance(c),
                svix_id=c.svix_id,
                event_type=c.event_type,
                error=str(exc),
            )
    return planned, settled, learned


def _count(
    claimed: list[Claimed],
    planned: list[tuple[Claimed, Planned]],
    settled: dict[Status, list[tuple[str, str | None]]],
    result: BatchResult,
    elapsed: float,
) -> None:
    now = datetime.now(UTC)
    for c, p in planned:
        EVENTS.labels(_instance(c), c.event_type, Status.APPLIED.value).inc()
        APPLY_SECONDS.labels(c.event_type).observe(elapsed / len(claimed))
        LAG_SECONDS.observe(max(0.0, (now - c.received_at).total_seconds()))
        if len(claimed) == 1:
            log.info(
                "event.applied",
                instance=_instance(c),
                svix_id=c.svix_id,
                event_type=c.event_type,
                object_id=p.object_id,
            )
    if planned:
        result.outcomes[Status.APPLIED] += len(planned)
    by_id = {c.svix_id: c for c in claimed}
    for status, items in settled.items():
        for svix_id, _error in items:
            event = by_id[svix_id]
            EVENTS.labels(_instance(event), event.event_type, status.value).inc()
        if items:
            result.outcomes[status] += len(items)
    if len(claimed) > 1:
        log.info("batch.applied", events=len(claimed), seconds=round(elapsed, 4))


def _instance(claimed: Claimed) -> str:
    """The configured instance an event came through (rows from before: the default)."""
    return claimed.instance or DEFAULT_INSTANCE


async def _one_failed(
    engine: AsyncEngine,
    svix_id: str,
    event_type: str,
    instance: str,
    exc: Exception,
    max_attempts: int | None,
) -> BatchResult:
    """A batch of one that the database refused: back off (transient) or mark it failed (a
    permanent refusal, or transient ones that reached `max_attempts`)."""
    error = describe(exc)
    bound = log.bind(instance=instance, svix_id=svix_id, event_type=event_type)
    if is_transient(exc):
        if not await _note_retry(engine, svix_id, error, max_attempts):
            bound.warning("event.retry", error=error)
            EVENTS.labels(instance, event_type, "retry").inc()
            raise TransientError(error) from exc
        error = f"{error} (gave up after {max_attempts} attempts)"
    # A refusal that retrying cannot fix (e.g. a value too long for a column), or one that
    # has been retried long enough.
    try:
        async with engine.begin() as conn:
            await store.settle(conn, svix_id, Status.FAILED, error=error)
    except Exception as again:
        raise TransientError(describe(again)) from again
    bound.error("event.failed", error=error)
    EVENTS.labels(instance, event_type, Status.FAILED.value).inc()
    return BatchResult(claimed=1, outcomes=Counter({Status.FAILED: 1}))


async def _note_retry(
    engine: AsyncEngine, svix_id: str, error: str, max_attempts: int | None
) -> bool:
    """Count a transient failure and back the event off; True when it has used up its
    attempts instead (the caller marks it failed)."""
    try:
        async with engine.begin() as conn:
            attempts = await store.attempts(conn, svix_id) + 1
            if max_attempts is not None and attempts >= max_attempts:
                await store.note_retry(conn, svix_id, error, None)
                return True
            retry_after = datetime.now(UTC) + timedelta(seconds=retry_delay_seconds(attempts))
            await store.note_retry(conn, svix_id, error, retry_after)
    except Exception:  # the database may be the thing that is down; the retry still happens
        log.debug("event.note_retry_failed", svix_id=svix_id)
    return False


async def _one_by_one(
    ids: list[str], engine: AsyncEngine, options: RowOptions, max_attempts: int | None
) -> BatchResult:
    """Each event in its own batch: a permanent failure is recorded on its own row, a
    transient one backs that event off; a streak of transient ones means the database is down."""
    result = BatchResult(claimed=len(ids))
    streak = 0
    for svix_id in ids:
        try:
            outcome = await apply_one(engine, svix_id, options, max_attempts=max_attempts)
            streak = 0
        except TransientError:
            streak += 1
            result.retried += 1
            if streak >= _TRANSIENT_STREAK:
                raise
            continue
        if outcome is not None:
            result.outcomes[outcome] += 1
    if result.retried:
        async with engine.connect() as conn:
            result.retry_at = await store.next_retry_at(conn)
    return result
