"""Every inbox statement on PostgreSQL and SQLite: record once, take for apply (oldest first,
backing-off events left alone, disjoint batches under concurrency), settle, retry, requeue."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from service.inbox import store
from service.inbox.store import Delivery, Status
from tests.support.replica_helpers import inbox_count, inbox_row

T = datetime(2026, 1, 1, tzinfo=UTC)


def delivery(
    svix_id: str,
    status: Status = Status.PENDING,
    *,
    event_type: str = "user.created",
    body: str | None = '{"data": {}}',
) -> Delivery:
    return Delivery(
        svix_id, event_type, None if status is Status.IGNORED else body, 7, None, status
    )


async def stored(engine: AsyncEngine, *ids: str, status: Status = Status.PENDING) -> None:
    """Record `ids` in order, one second apart, so the first is the oldest."""
    async with engine.begin() as conn:
        for n, svix_id in enumerate(ids):
            assert await store.record(conn, delivery(svix_id, status), T + timedelta(seconds=n))


async def status_of(engine: AsyncEngine, svix_id: str) -> Status:
    return Status((await inbox_row(engine, svix_id))["status"])


async def test_record_stores_a_delivery_once(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        assert await store.record(conn, delivery("msg_1"), T) is True
        again = delivery("msg_1", event_type="user.updated")
        assert await store.record(conn, again, T + timedelta(seconds=1)) is False
    row = await inbox_row(engine, "msg_1")
    assert (row["event_type"], row["status"], row["received_at"]) == ("user.created", "pending", T)
    assert (row["applied_at"], row["attempts"], row["event_timestamp_ms"]) == (None, 0, 7)


async def test_record_many_returns_the_new_ids_and_the_first_of_a_batch_wins(
    engine: AsyncEngine,
) -> None:
    await stored(engine, "msg_old")
    batch = [
        (delivery("msg_old"), T),
        (delivery("msg_a", event_type="user.created"), T),
        (delivery("msg_a", event_type="user.deleted"), T + timedelta(seconds=5)),
        (delivery("msg_skip", Status.IGNORED, event_type="email.created"), T),
    ]
    async with engine.begin() as conn:
        assert await store.record_many(conn, batch) == {"msg_a", "msg_skip"}
    assert await inbox_count(engine) == 3
    first = await inbox_row(engine, "msg_a")
    assert (first["event_type"], first["received_at"]) == ("user.created", T)
    ignored = await inbox_row(engine, "msg_skip")
    # An ignored type is settled on arrival and keeps no body.
    assert (ignored["status"], ignored["body"], ignored["applied_at"]) == ("ignored", None, T)


async def test_take_due_takes_the_oldest_first_up_to_the_limit(engine: AsyncEngine) -> None:
    await stored(engine, "msg_1", "msg_2", "msg_3")
    await stored(engine, "msg_done", status=Status.IGNORED)
    now = T + timedelta(minutes=1)
    async with engine.begin() as conn:
        taken = await store.take_due_as_applied(conn, 2, now)
    assert sorted(c.svix_id for c in taken) == ["msg_1", "msg_2"]
    assert taken[0].received_at.tzinfo is not None and taken[0].body == '{"data": {}}'
    row = await inbox_row(engine, "msg_1")
    assert (row["status"], row["applied_at"], row["attempts"]) == ("applied", now, 1)
    async with engine.begin() as conn:
        assert [c.svix_id for c in await store.take_due_as_applied(conn, 10, now)] == ["msg_3"]
        assert await store.take_due_as_applied(conn, 10, now) == []


async def test_take_due_leaves_a_backing_off_event_until_its_retry_time(
    engine: AsyncEngine,
) -> None:
    await stored(engine, "msg_1", "msg_2")
    async with engine.begin() as conn:
        await store.note_retry(conn, "msg_1", "database away", T + timedelta(minutes=5))
        assert await store.next_retry_at(conn) == T + timedelta(minutes=5)
        early = await store.take_due_as_applied(conn, 10, T + timedelta(minutes=4))
        assert [c.svix_id for c in early] == ["msg_2"]
        due = await store.take_due_as_applied(conn, 10, T + timedelta(minutes=5))
        assert [c.svix_id for c in due] == ["msg_1"]
        assert await store.next_retry_at(conn) is None  # applied now: no longer backing off
    row = await inbox_row(engine, "msg_1")
    # Taking it clears the error and the backoff; both attempts are counted.
    assert (row["attempts"], row["last_error"], row["retry_after"]) == (2, None, None)


async def test_concurrent_takes_get_disjoint_batches_on_postgresql(pg_engine: AsyncEngine) -> None:
    await stored(pg_engine, *(f"msg_{n}" for n in range(6)))
    now = T + timedelta(minutes=1)
    async with pg_engine.connect() as first, pg_engine.connect() as second, first.begin():
        mine = await store.take_due_as_applied(first, 3, now)
        # The second transaction skips the rows the first holds instead of waiting on them.
        async with second.begin():
            theirs = await asyncio.wait_for(store.take_due_as_applied(second, 10, now), 5)
    assert sorted(c.svix_id for c in mine) == ["msg_0", "msg_1", "msg_2"]
    assert sorted(c.svix_id for c in theirs) == ["msg_3", "msg_4", "msg_5"]


async def test_take_as_applied_takes_only_pending_events(engine: AsyncEngine) -> None:
    await stored(engine, "msg_1", "msg_2")
    await stored(engine, "msg_ignored", status=Status.IGNORED)
    async with engine.begin() as conn:
        await store.settle(conn, "msg_2", Status.FAILED, error="bad payload")
        ids = ["msg_1", "msg_2", "msg_ignored", "msg_unknown"]
        taken = await store.take_as_applied(conn, ids, T)
        assert [c.svix_id for c in taken] == ["msg_1"]
        assert await store.take_as_applied(conn, ids, T) == []  # taken once only
    assert await status_of(engine, "msg_1") is Status.APPLIED


async def test_a_rolled_back_take_leaves_the_event_pending(engine: AsyncEngine) -> None:
    await stored(engine, "msg_1")
    async with engine.connect() as conn, conn.begin() as transaction:
        assert len(await store.take_as_applied(conn, ["msg_1"], T)) == 1
        await transaction.rollback()
    row = await inbox_row(engine, "msg_1")
    assert (row["status"], row["applied_at"], row["attempts"]) == ("pending", None, 0)


async def test_settle_records_the_outcome_object_and_a_bounded_error(engine: AsyncEngine) -> None:
    await stored(engine, "msg_1", "msg_2")
    async with engine.begin() as conn:
        await store.settle(conn, "msg_1", Status.APPLIED, object_id="user_1")
        await store.settle(conn, "msg_2", Status.FAILED, error="x" * 5000)
    assert (await inbox_row(engine, "msg_1"))["object_id"] == "user_1"
    failed = await inbox_row(engine, "msg_2")
    assert failed["status"] == "failed" and failed["last_error"] == "x" * store.MAX_ERROR_LENGTH


async def test_settle_many_and_set_object_ids(engine: AsyncEngine) -> None:
    await stored(engine, "msg_1", "msg_2", "msg_3")
    async with engine.begin() as conn:
        await store.settle_many(conn, Status.FAILED, [("msg_1", "no user"), ("msg_2", None)])
        await store.settle_many(conn, Status.FAILED, [])
        await store.set_object_ids(conn, [("msg_3", "user_3"), ("msg_1", "user_1")])
        await store.set_object_ids(conn, [])
    one, two, three = [await inbox_row(engine, f"msg_{n}") for n in (1, 2, 3)]
    assert (one["status"], one["last_error"], one["object_id"]) == ("failed", "no user", "user_1")
    assert (two["status"], two["last_error"]) == ("failed", None)
    assert (three["status"], three["object_id"]) == ("pending", "user_3")


async def test_note_retry_counts_attempts_of_pending_events_only(engine: AsyncEngine) -> None:
    await stored(engine, "msg_1", "msg_2")
    async with engine.begin() as conn:
        await store.note_retry(conn, "msg_1", "timeout")
        await store.note_retry(conn, "msg_1", "e" * 3000, T + timedelta(seconds=30))
        await store.settle(conn, "msg_2", Status.APPLIED)
        await store.note_retry(conn, "msg_2", "too late")
        assert await store.attempts(conn, "msg_1") == 2
        assert await store.attempts(conn, "msg_2") == 0
        assert await store.attempts(conn, "msg_unknown") == 0
    row = await inbox_row(engine, "msg_1")
    assert (len(row["last_error"]), row["retry_after"]) == (
        store.MAX_ERROR_LENGTH,
        T + timedelta(seconds=30),
    )
    assert (await inbox_row(engine, "msg_2"))["last_error"] is None


async def test_pending_ids_are_due_events_older_than_the_cutoff(engine: AsyncEngine) -> None:
    await stored(engine, "msg_0", "msg_1", "msg_2", "msg_3")
    now = T + timedelta(minutes=10)
    async with engine.begin() as conn:
        await store.settle(conn, "msg_0", Status.APPLIED)
        await store.note_retry(conn, "msg_1", "later", now + timedelta(minutes=1))
        cutoff = store.grace_cutoff(T + timedelta(seconds=33), 30)  # T + 3 s
        assert cutoff == T + timedelta(seconds=3)
        assert await store.pending_ids(conn, received_before=cutoff, now=now, limit=10) == ["msg_2"]
        wide = T + timedelta(minutes=1)
        assert await store.pending_ids(conn, received_before=wide, now=now, limit=1) == ["msg_2"]
        assert await store.pending_ids(conn, received_before=wide, now=now, limit=10) == [
            "msg_2",
            "msg_3",
        ]


async def test_requeue_moves_failed_events_back_and_applied_ones_with_reapply(
    engine: AsyncEngine,
) -> None:
    await stored(engine, "msg_failed", "msg_applied", "msg_late_failed")
    await stored(engine, "msg_ignored", status=Status.IGNORED)
    async with engine.begin() as conn:
        await store.settle(conn, "msg_failed", Status.FAILED, error="bad")
        await store.settle(conn, "msg_late_failed", Status.FAILED, error="bad")
        await store.settle(conn, "msg_applied", Status.APPLIED)
        await store.note_retry(conn, "msg_failed", "ignored: not pending")
        assert await store.requeue(conn, svix_id="msg_failed") == ["msg_failed"]
        assert await store.requeue(conn, svix_id="msg_applied") == []
        since = T + timedelta(seconds=2)
        assert await store.requeue(conn, since=since, reapply=True) == ["msg_late_failed"]
        assert sorted(await store.requeue(conn, reapply=True)) == ["msg_applied"]
        assert await store.requeue(conn, svix_id="msg_ignored", reapply=True) == []
    for svix_id in ("msg_failed", "msg_applied", "msg_late_failed"):
        assert await status_of(engine, svix_id) is Status.PENDING, svix_id
    assert await status_of(engine, "msg_ignored") is Status.IGNORED


async def test_discard_forgets_the_body_of_a_failed_event_only(engine: AsyncEngine) -> None:
    from service.apply.batch import apply_one
    from service.clerk.rows import RowOptions
    from tests.support import clerk_payloads as cp
    from tests.support.replica_helpers import store_event

    broken = await store_event(engine, cp.envelope("user.created", {"id": "user_broken"}))
    assert await apply_one(engine, broken, RowOptions()) is Status.FAILED
    waiting = await store_event(engine, cp.envelope("user.created", cp.user("user_waiting")))
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        assert not await store.discard(conn, waiting, now)  # pending: not failed
        assert not await store.discard(conn, "msg_nope", now)
        assert await store.discard(conn, broken, now)
        assert not await store.discard(conn, broken, now)  # once
        found = await store.find(conn, broken)
        assert await store.find(conn, "msg_nope") is None
    assert found is not None
    assert (found["status"], found["body"]) == (Status.DISCARDED, None)
    assert found["last_error"] and found["applied_at"] is not None
    assert (await inbox_row(engine, waiting))["body"] is not None
