"""Apply pending events in batches: one claim, one set-based write per kind, one commit.

Events of a batch are applied together, which is only sound because the writes are
order-independent (see service.replica.writes and tests/test_convergence.py). A batch that
the database refuses falls back to one event per transaction, so one bad event costs its
batch the speed-up, never its neighbours' progress.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.errors import TransientError, describe, is_transient
from service.apply.handlers import Planned, is_replicated, plan, run_planned
from service.apply.payloads import PayloadError
from service.apply.rows import RowOptions
from service.apply.runner import Outcome, apply_stored, event_of
from service.inbox import store
from service.inbox.store import Claimed
from service.inbox.table import Status
from service.logs import get_logger
from service.metrics import APPLY_SECONDS, EVENTS, LAG_SECONDS

log = get_logger(__name__)

# A database that fails this many events in a row is down, not picky: stop and back off.
_TRANSIENT_STREAK = 3


@dataclass
class BatchResult:
    claimed: int = 0
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    retried: int = 0  # backing off after a transient error
    # Set when some event is backing off after a transient error: when to look again.
    retry_at: datetime | None = None


async def apply_batch(engine: AsyncEngine, options: RowOptions, limit: int) -> BatchResult:
    """Claim up to `limit` due pending events and apply them; an empty result means idle.

    Raises TransientError when the database looks unavailable (the events stay pending).
    """
    for attempt in (1, 2):
        started = time.perf_counter()
        result = BatchResult()
        try:
            async with engine.begin() as conn:
                claimed = await store.claim_batch(conn, limit, datetime.now(UTC))
                result.claimed = len(claimed)
                planned, settled = _plan_all(claimed, options)
                await run_planned(conn, [p for _, p in planned])
                for status, items in settled.items():
                    await store.settle_many(conn, status, items)
                await store.set_object_ids(
                    conn,
                    [(c.svix_id, p.object_id) for c, p in planned if p.object_id != c.object_id],
                )
        except Exception as exc:
            if result.claimed == 0:
                raise TransientError(describe(exc)) from exc
            if attempt == 1 and is_transient(exc):
                # A deadlock or lock timeout against a concurrent writer rolled the whole
                # batch back: take it again before paying for one event at a time.
                log.info("batch.retry", events=result.claimed, error=describe(exc))
                continue
            log.warning("batch.fallback", events=result.claimed, error=describe(exc))
            return await _one_by_one([c.svix_id for c in claimed], engine, options)
        break
    elapsed = time.perf_counter() - started
    for c, _ in planned:
        _observe(c, Outcome.APPLIED, elapsed / len(claimed))
    result.outcomes[Outcome.APPLIED] += len(planned)
    by_id = {c.svix_id: c.event_type for c in claimed}
    for status, items in settled.items():
        for svix_id, _error in items:
            EVENTS.labels(by_id[svix_id], status.value).inc()
        if items:
            result.outcomes[Outcome(status.value)] += len(items)
    if claimed:
        log.info("batch.applied", events=len(claimed), seconds=round(elapsed, 4))
    return result


def _plan_all(
    claimed: list[Claimed], options: RowOptions
) -> tuple[list[tuple[Claimed, Planned]], dict[Status, list[tuple[str, str | None]]]]:
    planned: list[tuple[Claimed, Planned]] = []
    settled: dict[Status, list[tuple[str, str | None]]] = {Status.IGNORED: [], Status.FAILED: []}
    for c in claimed:
        if not is_replicated(c.event_type):
            settled[Status.IGNORED].append((c.svix_id, None))
            continue
        try:
            planned.append((c, plan(event_of(c), options)))
        except PayloadError as exc:
            settled[Status.FAILED].append((c.svix_id, str(exc)))
            log.warning("event.failed", svix_id=c.svix_id, event_type=c.event_type, error=str(exc))
    return planned, settled


def _observe(claimed: Claimed, outcome: Outcome, seconds: float) -> None:
    EVENTS.labels(claimed.event_type, outcome).inc()
    APPLY_SECONDS.labels(claimed.event_type).observe(seconds)
    LAG_SECONDS.observe(max(0.0, (datetime.now(UTC) - claimed.received_at).total_seconds()))


async def _one_by_one(ids: list[str], engine: AsyncEngine, options: RowOptions) -> BatchResult:
    """Each event in its own transaction: a permanent failure is recorded on its own row, a
    transient one backs that event off; a streak of transient ones means the database is down."""
    result = BatchResult(claimed=len(ids))
    streak = 0
    for svix_id in ids:
        try:
            result.outcomes[await apply_stored(engine, svix_id, options)] += 1
            streak = 0
        except TransientError:
            streak += 1
            result.retried += 1
            if streak >= _TRANSIENT_STREAK:
                raise
    if result.retried:
        async with engine.connect() as conn:
            result.retry_at = await store.next_retry_at(conn)
    return result
