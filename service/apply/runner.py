"""Apply one stored event in one transaction: claim, validate, write, settle."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncEngine

from service import jsoncodec
from service.apply.errors import TransientError, describe, is_transient
from service.apply.handlers import Event, is_replicated, plan, run_planned
from service.apply.payloads import PayloadError
from service.apply.rows import RowOptions
from service.apply.timestamps import from_ms
from service.inbox import store
from service.inbox.store import Claimed
from service.inbox.table import Status
from service.logs import get_logger
from service.metrics import APPLY_SECONDS, EVENTS, LAG_SECONDS

log = get_logger(__name__)

_BACKOFF_BASE_SECONDS = 1.0
_BACKOFF_CAP_SECONDS = 120.0


class Outcome(StrEnum):
    APPLIED = "applied"
    IGNORED = "ignored"
    FAILED = "failed"
    SKIPPED = "skipped"  # not pending any more: applied before, or unknown id


def event_of(claimed: Claimed) -> Event:
    """The stored delivery as the planners see it; PayloadError if it cannot be one."""
    if claimed.body is None:
        raise PayloadError("the stored event has no body")
    try:
        envelope = jsoncodec.loads(claimed.body)
        data = envelope["data"]
    except (ValueError, KeyError, TypeError):
        raise PayloadError("the stored body is not a Clerk envelope") from None
    if not isinstance(data, dict):
        raise PayloadError("the stored envelope's data is not an object")
    occurred = from_ms(claimed.event_timestamp_ms) or claimed.received_at
    return Event(claimed.svix_id, claimed.event_type, data, occurred)


async def apply_stored(engine: AsyncEngine, svix_id: str, options: RowOptions) -> Outcome:
    """Apply the inbox event `svix_id` at most once.

    Raises TransientError when it should be retried later; permanent problems are recorded
    on the inbox row (status failed, with the error) and do not raise.
    """
    bound = log.bind(svix_id=svix_id)
    started = time.perf_counter()
    event_type = "unknown"
    try:
        async with engine.begin() as conn:
            claimed = await store.claim(conn, svix_id, datetime.now(UTC))
            if claimed is None:
                return Outcome.SKIPPED
            event_type = claimed.event_type
            bound = bound.bind(event_type=event_type)
            if not is_replicated(event_type):
                await store.settle(conn, svix_id, Status.IGNORED)
                EVENTS.labels(event_type, Outcome.IGNORED).inc()
                return Outcome.IGNORED
            try:
                planned = plan(event_of(claimed), options)
            except PayloadError as exc:
                await store.settle(conn, svix_id, Status.FAILED, error=str(exc))
                bound.warning("event.failed", error=str(exc))
                EVENTS.labels(event_type, Outcome.FAILED).inc()
                return Outcome.FAILED
            bound = bound.bind(object_id=planned.object_id)
            await run_planned(conn, [planned])
            await store.settle(conn, svix_id, Status.APPLIED, object_id=planned.object_id)
    except Exception as exc:
        error = describe(exc)
        if is_transient(exc):
            await _note_retry(engine, svix_id, error)
            bound.warning("event.retry", error=error)
            EVENTS.labels(event_type, "retry").inc()
            raise TransientError(error) from exc
        # A database refusal that retrying cannot fix (e.g. a value too long for a column).
        await _mark_failed(engine, svix_id, error)
        bound.error("event.failed", error=error)
        EVENTS.labels(event_type, Outcome.FAILED).inc()
        return Outcome.FAILED
    bound.info("event.applied")
    EVENTS.labels(event_type, Outcome.APPLIED).inc()
    APPLY_SECONDS.labels(event_type).observe(time.perf_counter() - started)
    LAG_SECONDS.observe(max(0.0, (datetime.now(UTC) - claimed.received_at).total_seconds()))
    return Outcome.APPLIED


def retry_delay_seconds(attempts: int) -> float:
    """Exponential backoff with full jitter, so retrying workers do not stampede a database
    that just came back."""
    ceiling = min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return random.uniform(ceiling / 2, ceiling)


async def _note_retry(engine: AsyncEngine, svix_id: str, error: str) -> None:
    try:
        async with engine.begin() as conn:
            attempts = await store.attempts(conn, svix_id) + 1
            retry_after = datetime.now(UTC) + timedelta(seconds=retry_delay_seconds(attempts))
            await store.note_retry(conn, svix_id, error, retry_after)
    except Exception:  # the database may be the thing that is down; the retry still happens
        log.debug("event.note_retry_failed", svix_id=svix_id)


async def _mark_failed(engine: AsyncEngine, svix_id: str, error: str) -> None:
    try:
        async with engine.begin() as conn:
            await store.settle(conn, svix_id, Status.FAILED, error=error)
    except Exception as exc:
        raise TransientError(describe(exc)) from exc
