"""`status`: replica counts per table, the inbox at a glance, the last reconcile."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest.mock import ANY

from sqlalchemy import insert, null
from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_one
from service.clerk.rows import RowOptions
from service.config import Settings
from service.inbox import store
from service.inbox.store import Status
from service.kinds.registry import replica_tables
from service.operate.status import (
    erasure_summary,
    inbox_summary,
    instances_summary,
    last_reconcile,
    replica_counts,
)
from service.reconcile.checkpoints import RunStatus, finish_run, open_run
from service.reconcile.instance import Identity, record
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.replica_helpers import store_event

ENDED = datetime(2024, 6, 1, tzinfo=UTC)


async def test_replica_counts_cover_every_table_live_and_tombstoned(engine: AsyncEngine) -> None:
    empty = await replica_counts(engine)
    assert list(empty) == [table.name for table in replica_tables()]
    assert all(c == {"live": 0, "tombstoned": 0} for c in empty.values())
    async with engine.begin() as conn:
        await conn.execute(
            insert(t.users),
            [
                {"id": i, "deleted_at": at}
                for i, at in (("u_1", None), ("u_2", None), ("u_3", ENDED))
            ],
        )
        await conn.execute(insert(t.organizations), [{"id": "o_1", "deleted_at": ENDED}])
        await conn.execute(
            insert(t.email_addresses),
            [{"id": "idn_1", "user_id": "u_1"}, {"id": "idn_2", "user_id": "u_2"}],
        )
    counts = await replica_counts(engine)
    assert counts["clerk_users"] == {"live": 2, "tombstoned": 1}
    assert counts["clerk_organizations"] == {"live": 0, "tombstoned": 1}
    assert counts["clerk_email_addresses"] == {"live": 2, "tombstoned": 0}  # no tombstones
    assert counts["clerk_organization_memberships"] == {"live": 0, "tombstoned": 0}


async def test_inbox_summary_by_status_backlog_and_failures(engine: AsyncEngine) -> None:
    empty = await inbox_summary(engine)
    assert empty["by_status"] == {s.value: 0 for s in Status}
    assert (empty["backlog"], empty["oldest_pending_age_seconds"], empty["failed"]) == (0, None, [])

    await store_event(engine, cp.envelope("email.created", {"id": "ema_1"}))
    await store_event(engine, cp.envelope("user.created", cp.user("user_1")))
    await store_event(engine, cp.envelope("user.created", cp.user("user_2")))
    applied = await store_event(engine, cp.envelope("user.created", cp.user("user_3")))
    broken = await store_event(engine, cp.envelope("user.created", {"id": "user_4"}))
    assert await apply_one(engine, applied, RowOptions()) is Status.APPLIED
    assert await apply_one(engine, broken, RowOptions()) is Status.FAILED

    summary = await inbox_summary(engine)
    assert summary["by_status"] == {
        "pending": 2,
        "applied": 1,
        "ignored": 1,
        "failed": 1,
        "discarded": 0,
    }
    assert summary["backlog"] == 2
    assert 0 <= summary["oldest_pending_age_seconds"] < 60
    (failed,) = summary["failed"]
    assert (failed["svix_id"], failed["event_type"], failed["object_id"]) == (
        broken,
        "user.created",
        "user_4",
    )
    assert failed["attempts"] == 1 and "User payload does not fit" in failed["error"]
    assert datetime.fromisoformat(failed["received_at"]).tzinfo is not None


async def test_last_reconcile_sums_the_passes(engine: AsyncEngine) -> None:
    assert await last_reconcile(engine) is None
    summary = {
        "users": {"created": 3, "updated": 1, "tombstoned": 2, "requests": 4},
        "organizations": {"created": 1, "requests": 2},
    }
    async with engine.begin() as conn:
        first, _ = await open_run(conn, trigger="cron", kinds=["users"], restart=True)
        await finish_run(conn, first, status=RunStatus.FAILED, summary={}, error="boom")
        run_id, _ = await open_run(conn, trigger="cli", kinds=["users"], restart=True)
        await finish_run(conn, run_id, status=RunStatus.COMPLETED, summary=summary, error=None)
    last = await last_reconcile(engine)
    assert last is not None
    assert (last["id"], last["trigger"], last["status"], last["error"]) == (
        run_id,
        "cli",
        "completed",
        None,
    )
    assert last["totals"] == {"created": 4, "updated": 1, "tombstoned": 2, "requests": 6}
    started, finished = (datetime.fromisoformat(last[k]) for k in ("started_at", "finished_at"))
    assert started <= finished
    # A run from before modes was full; an incremental one leaves the last full one as it was.
    assert (last["mode"], last["last_full_completed_at"]) == ("full", last["finished_at"])
    async with engine.begin() as conn:
        nightly, _ = await open_run(conn, trigger="cron", kinds=["users"], restart=True)
        await finish_run(
            conn, nightly, status=RunStatus.COMPLETED, summary={}, error=None, mode="incremental"
        )
    newest = await last_reconcile(engine)
    assert newest is not None and newest["id"] == nightly and newest["mode"] == "incremental"
    assert newest["last_full_completed_at"] == last["finished_at"]


async def test_erasure_summary_counts_deleted_users_still_holding_data(
    engine: AsyncEngine, settings: Settings
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(t.users),
            [
                {"id": "u_live", "raw": {"id": "u_live"}, "deleted_at": None},
                {"id": "u_kept", "raw": {"id": "u_kept"}, "deleted_at": ENDED},
                {"id": "u_erased", "raw": null(), "deleted_at": ENDED},
            ],
        )
    summary = await erasure_summary(settings, engine)
    assert summary == {"erase_deleted_users": True, "deleted_users_to_erase": 1}


async def test_each_instance_shows_its_endpoint_identity_inbox_and_last_run(
    engine: AsyncEngine, settings: Settings
) -> None:
    kept = settings.updated(clerk_instances="prod,staging", clerk_webhook_signing_secret=None)
    async with engine.begin() as conn:
        await record(conn, Identity("prod", "ins_prod", "production"))
        run_id, _ = await open_run(
            conn, trigger="cli", kinds=["users"], restart=True, instance="prod"
        )
        await finish_run(conn, run_id, status=RunStatus.COMPLETED, summary={}, error=None)
        await store.record(conn, _delivery("msg_p", "prod"), datetime.now(UTC))
        await store.record(conn, _delivery("msg_s", "staging"), datetime.now(UTC))
    prod, staging = await instances_summary(kept, engine)
    assert prod == {
        "name": "prod",
        "endpoint": "/webhooks/clerk/prod",
        "instance_id": "ins_prod",
        "environment_type": "production",
        "last_reconcile": {"id": run_id, "status": "completed", "started_at": ANY},
        "last_complete_reconcile_at": ANY,
    }
    finished = datetime.fromisoformat(prod["last_complete_reconcile_at"])
    assert abs((datetime.now(UTC) - finished).total_seconds()) < 60
    assert (staging["instance_id"], staging["last_reconcile"]) == (None, None)
    assert staging["last_complete_reconcile_at"] is None
    assert await last_reconcile(engine, instance="staging") is None
    summary = await inbox_summary(engine)
    assert summary["by_instance"]["prod"]["pending"] == 1
    assert summary["by_instance"]["staging"]["pending"] == 1
    # The newest delivery each instance's endpoint took: the stall gauge's source.
    assert set(summary["last_received_at"]) == {"prod", "staging"}


def _delivery(svix_id: str, instance: str) -> store.Delivery:
    return store.Delivery(svix_id, "user.created", "{}", 1, "user_1", Status.PENDING, instance)
