"""The inbox forgets on time: bodies of applied events after their retention, settled rows after
theirs, failed and discarded ones after a retention of their own; in bounded batches, through an
index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_one
from service.clerk.rows import RowOptions
from service.config import Settings
from service.inbox import retention
from service.inbox.store import Status, inbox
from service.queue.client import Enqueuer
from service.queue.worker import job_context, sweep
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import deliver, inbox_count, inbox_row, one, store_event

NOW = datetime.now(UTC)
KEEP = retention.Retention(body_hours=24, row_days=30, failed_days=60)


async def backdate(engine: AsyncEngine, svix_id: str, days: float) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            update(inbox)
            .where(inbox.c.svix_id == svix_id)
            .values(applied_at=NOW - timedelta(days=days), received_at=NOW - timedelta(days=days))
        )


async def applied(engine: AsyncEngine, data: dict[str, object], kind: str = "user.created") -> str:
    svix_id = await store_event(engine, cp.envelope(kind, data))
    assert await apply_one(engine, svix_id, RowOptions()) is Status.APPLIED
    return svix_id


async def test_bodies_of_applied_events_are_forgotten_after_their_retention(
    engine: AsyncEngine,
) -> None:
    old = await applied(engine, cp.user("user_old"))
    recent = await applied(engine, cp.user("user_recent"))
    failed = await store_event(engine, cp.envelope("user.created", {"id": "user_broken"}))
    assert await apply_one(engine, failed, RowOptions()) is Status.FAILED
    pending = await store_event(engine, cp.envelope("user.created", cp.user("user_pending")))
    for svix_id in (old, failed, pending):
        await backdate(engine, svix_id, days=2)
    assert await retention.prune(engine, KEEP, NOW, batch=100, batches=1) == (1, 0)
    forgotten = await inbox_row(engine, old)
    assert forgotten["body"] is None
    assert (forgotten["svix_id"], forgotten["event_type"], forgotten["status"]) == (
        old,
        "user.created",
        Status.APPLIED,
    )
    assert forgotten["object_id"] == "user_old" and forgotten["received_at"] is not None
    for kept in (recent, failed, pending):
        assert (await inbox_row(engine, kept))["body"] is not None
    # The replica keeps what the event applied.
    assert (await one(engine, t.users, "user_old"))["id"] == "user_old"


async def test_settled_rows_are_deleted_after_theirs_failed_ones_kept_longer(
    engine: AsyncEngine,
) -> None:
    old = await applied(engine, cp.user("user_old"))
    ignored = await store_event(engine, cp.envelope("email.created", {"id": "ema_1"}))
    failed = await store_event(engine, cp.envelope("user.created", {"id": "user_broken"}))
    assert await apply_one(engine, failed, RowOptions()) is Status.FAILED
    for svix_id in (old, ignored, failed):
        await backdate(engine, svix_id, days=31)
    assert await retention.prune(engine, KEEP, NOW, batch=100, batches=1) == (1, 2)
    async with engine.connect() as conn:
        left = (await conn.execute(select(inbox.c.svix_id, inbox.c.body))).all()
    assert [(r.svix_id, r.body is not None) for r in left] == [(failed, True)]


async def test_a_redelivery_after_its_row_is_gone_is_harmless(engine: AsyncEngine) -> None:
    first = cp.envelope("user.created", cp.user(first_name="Old"))
    svix_id = await store_event(engine, first)
    await apply_one(engine, svix_id, RowOptions())
    await deliver(
        engine, cp.envelope("user.updated", cp.user(first_name="New", updated_at=cp.T0 + 9))
    )
    await backdate(engine, svix_id, days=31)
    await retention.prune(engine, KEEP, NOW, batch=100, batches=1)
    # Svix redelivers the old event: stored again, applied, and the row does not move back.
    again = await store_event(engine, first, svix_id=svix_id)
    assert await apply_one(engine, again, RowOptions()) is Status.APPLIED
    assert (await one(engine, t.users, cp.user()["id"]))["first_name"] == "New"


async def test_pruning_is_bounded_per_batch(engine: AsyncEngine) -> None:
    ids = [
        await applied(engine, cp.organization(f"org_{n}"), "organization.created") for n in range(5)
    ]
    for svix_id in ids:
        await backdate(engine, svix_id, days=2)
    assert await retention.prune(engine, KEEP, NOW, batch=2, batches=1) == (2, 0)
    assert await retention.prune(engine, KEEP, NOW, batch=2, batches=5) == (3, 0)
    assert [(await inbox_row(engine, i))["body"] for i in ids] == [None] * 5


async def test_retention_takes_fractions_of_an_hour(engine: AsyncEngine) -> None:
    svix_id = await applied(engine, cp.user())
    brief = retention.Retention(body_hours=1 / 3600, row_days=1)
    later = datetime.now(UTC) + timedelta(seconds=2)
    assert await retention.prune(engine, brief, later, batch=10, batches=1) == (1, 0)
    assert (await inbox_row(engine, svix_id))["body"] is None


async def test_the_sweep_forgets_and_status_shows_what_retention_holds(
    settings: Settings, engine: AsyncEngine, redis_url: str
) -> None:
    from service.operate.status import retention_summary
    from service.queue.client import connect

    svix_id = await applied(engine, cp.user())
    brief = settings.updated(inbox_body_retention_hours=1 / 3600)
    held = await retention_summary(settings, engine)
    assert (held["body_retention_hours"], held["row_retention_days"]) == (168, 30)
    assert (held["applied_bodies_kept"], held["bodies_due"], held["rows_due"]) == (1, 0, 0)
    await backdate(engine, svix_id, days=1)
    assert (await retention_summary(brief, engine))["bodies_due"] == 1
    enqueuer = Enqueuer(connect(brief), brief)
    try:
        await sweep(job_context(brief, engine, enqueuer))
    finally:
        await enqueuer.close()
    assert (await inbox_row(engine, svix_id))["body"] is None
    assert await inbox_count(engine) == 1
    assert (await retention_summary(brief, engine))["applied_bodies_kept"] == 0


async def test_each_batch_is_an_index_range(pg_engine: AsyncEngine) -> None:
    # A large inbox as retention keeps it: a month of settled rows, few bodies still kept, and
    # only what fell due since the last sweep past the cutoffs.
    async with pg_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO clerk_replica_inbox (svix_id, event_type, status, body, "
                "received_at, applied_at, attempts) "
                "SELECT 'msg_' || n, 'user.updated', "
                "CASE WHEN n % 50 = 0 THEN 'failed' ELSE 'applied' END, "
                "CASE WHEN n % 1000 = 0 OR n > 30000 THEN '{}' END, "
                "now() - CASE WHEN n > 30000 THEN interval '40 days' ELSE n * interval '80 s' END, "
                "now() - CASE WHEN n > 30000 THEN interval '40 days' ELSE n * interval '80 s' END, "
                "1 FROM generate_series(1, 30020) AS n"
            )
        )
    async with pg_engine.begin() as conn:
        await conn.execute(text("ANALYZE clerk_replica_inbox"))
    async with pg_engine.connect() as conn:
        for name, where in (
            ("ix_clerk_replica_inbox_kept_bodies", "status = 'applied' AND body IS NOT NULL"),
            ("ix_clerk_replica_inbox_settled", "status IN ('applied', 'ignored')"),
        ):
            plan = (
                await conn.execute(
                    text(
                        "EXPLAIN SELECT svix_id FROM clerk_replica_inbox "
                        f"WHERE {where} AND applied_at < now() - interval '30 days' LIMIT 1000"
                    )
                )
            ).scalars()
            assert name in "\n".join(plan), name


async def test_failed_and_discarded_rows_follow_a_retention_of_their_own(
    engine: AsyncEngine,
) -> None:
    from service.inbox import store
    from service.operate.status import inbox_summary

    keep = retention.Retention(body_hours=24, row_days=365, failed_days=7)
    old_failed = await store_event(engine, cp.envelope("user.created", {"id": "user_broken_1"}))
    discarded = await store_event(engine, cp.envelope("user.created", {"id": "user_broken_2"}))
    recent_failed = await store_event(engine, cp.envelope("user.created", {"id": "user_broken_3"}))
    old_pending = await store_event(engine, cp.envelope("user.created", cp.user("user_waiting")))
    for svix_id in (old_failed, discarded, recent_failed):
        assert await apply_one(engine, svix_id, RowOptions()) is Status.FAILED
    async with engine.begin() as conn:
        assert await store.discard(conn, discarded, NOW)
    for svix_id in (old_failed, discarded, old_pending):
        await backdate(engine, svix_id, days=8)
    async with engine.connect() as conn:
        due = await retention.summary(conn, keep, NOW)
    assert (due["failed_retention_days"], due["failed_rows_due"]) == (7, 2)
    assert (await inbox_summary(engine))["by_status"]["failed"] == 2
    assert await retention.prune(engine, keep, NOW, batch=1, batches=5) == (0, 2)
    remaining = {r["svix_id"] for r in await rows_of(engine)}
    assert remaining == {recent_failed, old_pending}
    await backdate(engine, recent_failed, days=8)
    await retention.prune(engine, keep, NOW, batch=10, batches=1)
    assert (await inbox_summary(engine))["by_status"]["failed"] == 0


async def rows_of(engine: AsyncEngine) -> list[dict[str, object]]:
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(select(inbox))]
