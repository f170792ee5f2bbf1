"""What the service is doing, at a glance: the instances kept, replica counts, inbox backlog and
failures, the last reconcile and the queue depth. Ids, configured names and counts only: no
personal data, no secrets."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import DEFAULT_INSTANCE, Settings, webhook_path
from service.db.dialect import dialect_of
from service.db.errors import describe
from service.inbox import retention
from service.inbox.instances import instances
from service.inbox.store import Status, inbox
from service.kinds import erasure
from service.kinds.registry import replica_tables
from service.queue import heartbeat
from service.queue.client import connect, queue_name
from service.reconcile.checkpoints import last_finished_at, last_runs
from service.reconcile.modes import last_full_completed

FAILED_SHOWN = 20


async def replica_counts(engine: AsyncEngine) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    async with engine.connect() as conn:
        for table in replica_tables():
            if "deleted_at" in table.c:
                tombstoned = func.count().filter(table.c.deleted_at.is_not(None))
                row = (await conn.execute(select(func.count(), tombstoned))).one()
                counts[table.name] = {"live": row[0] - row[1], "tombstoned": row[1]}
            else:
                total = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
                counts[table.name] = {"live": total, "tombstoned": 0}
    return counts


async def inbox_summary(
    engine: AsyncEngine, *, timeout_seconds: float | None = None
) -> dict[str, Any]:
    """Events by status, the backlog's age, the newest failures; `timeout_seconds` bounds each
    statement (a scrape must not load the database)."""
    async with engine.connect() as conn:
        if timeout_seconds is not None:
            await dialect_of(conn).limit_statement_time(conn, timeout_seconds)
        grouped = await conn.execute(
            select(
                inbox.c.instance, inbox.c.status, func.count(), func.max(inbox.c.received_at)
            ).group_by(inbox.c.instance, inbox.c.status)
        )
        by_status: dict[str, int] = {}
        by_instance: dict[str, dict[str, int]] = {}
        last_received: dict[str, datetime] = {}
        for name, status, count, newest in grouped:
            by_status[status] = by_status.get(status, 0) + int(count)
            counts = by_instance.setdefault(name or DEFAULT_INSTANCE, {s.value: 0 for s in Status})
            counts[status] = counts.get(status, 0) + int(count)
            if newest is not None:
                newest = newest if newest.tzinfo else newest.replace(tzinfo=UTC)
                known = last_received.get(name or DEFAULT_INSTANCE)
                last_received[name or DEFAULT_INSTANCE] = max(newest, known or newest)
        oldest = (
            await conn.execute(
                select(func.min(inbox.c.received_at)).where(inbox.c.status == Status.PENDING)
            )
        ).scalar_one()
        failed = (
            await conn.execute(
                select(
                    inbox.c.instance,
                    inbox.c.svix_id,
                    inbox.c.event_type,
                    inbox.c.object_id,
                    inbox.c.received_at,
                    inbox.c.attempts,
                    inbox.c.last_error,
                )
                .where(inbox.c.status == Status.FAILED)
                .order_by(inbox.c.received_at.desc())
                .limit(FAILED_SHOWN)
            )
        ).all()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return {
        "by_status": {s.value: int(by_status.get(s.value, 0)) for s in Status},
        "by_instance": by_instance,
        # The newest delivery each instance's endpoint took (still in the inbox).
        "last_received_at": {name: at.isoformat() for name, at in last_received.items()},
        "backlog": int(by_status.get(Status.PENDING.value, 0)),
        "oldest_pending_age_seconds": (
            round((datetime.now(UTC) - oldest).total_seconds(), 1) if oldest else None
        ),
        "failed": [
            {
                "instance": f.instance or DEFAULT_INSTANCE,
                "svix_id": f.svix_id,
                "event_type": f.event_type,
                "object_id": f.object_id,
                "received_at": f.received_at.isoformat(),
                "attempts": f.attempts,
                "error": f.last_error,
            }
            for f in failed
        ],
    }


async def last_reconcile(
    engine: AsyncEngine, *, timeout_seconds: float | None = None, instance: str | None = None
) -> dict[str, Any] | None:
    """The newest reconcile run (of `instance` only, when given)."""
    async with engine.connect() as conn:
        if timeout_seconds is not None:
            await dialect_of(conn).limit_statement_time(conn, timeout_seconds)
        found = await last_runs(conn, 1, instance)
        if not found:
            return None
        full = await last_full_completed(conn, found[0]["instance"] or DEFAULT_INSTANCE)
    run = found[0]
    summary = run["summary"] or {}
    return {
        "instance": run["instance"] or DEFAULT_INSTANCE,
        "id": run["id"],
        "trigger": run["trigger"],
        "status": run["status"],
        "started_at": run["started_at"].isoformat(),
        "finished_at": run["finished_at"].isoformat() if run["finished_at"] else None,
        "totals": {
            key: sum(int(p.get(key, 0)) for p in summary.values())
            for key in ("created", "updated", "tombstoned", "requests")
        },
        "error": run["error"],
        "mode": run.get("mode") or "full",
        "last_full_completed_at": full.isoformat() if full else None,
    }


async def last_success(
    engine: AsyncEngine, *, instance: str, timeout_seconds: float | None = None
) -> datetime | None:
    """When the instance's newest completed reconcile finished (None: never)."""
    async with engine.connect() as conn:
        if timeout_seconds is not None:
            await dialect_of(conn).limit_statement_time(conn, timeout_seconds)
        return await last_finished_at(conn, instance)


async def workers(settings: Settings) -> dict[str, Any]:
    """Worker liveness from their heartbeats; `error` names why Redis did not say."""
    redis = connect(settings)
    try:
        return {**await heartbeat.liveness(redis, settings), "error": None}
    except Exception as exc:
        return {"alive": None, "last_heartbeat": None, "error": describe(exc)}
    finally:
        await redis.aclose()
        await redis.connection_pool.disconnect()


async def queue_depth(settings: Settings) -> dict[str, Any]:
    redis = connect(settings)
    try:
        depth = await asyncio.wait_for(
            redis.zcard(queue_name(settings)), timeout=settings.redis.timeout_seconds
        )
        return {"depth": int(depth), "error": None}
    except Exception as exc:
        return {"depth": None, "error": describe(exc)}
    finally:
        await redis.aclose()
        await redis.connection_pool.disconnect()


async def retention_summary(settings: Settings, engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return await retention.summary(conn, retention.Retention.of(settings), datetime.now(UTC))


async def erasure_summary(settings: Settings, engine: AsyncEngine) -> dict[str, Any]:
    """Whether deletions erase, and how many deleted users the sweep has yet to erase."""
    async with engine.connect() as conn:
        left = await erasure.remaining(conn)
    return {
        "erase_deleted_users": settings.database.erase_deleted_users,
        "deleted_users_to_erase": left,
    }


async def instances_summary(settings: Settings, engine: AsyncEngine) -> list[dict[str, Any]]:
    """Each configured instance: its endpoint, what reconcile found it is, its last run."""
    async with engine.connect() as conn:
        known = {row.name: row for row in await conn.execute(select(instances))}
    found: list[dict[str, Any]] = []
    for name in settings.instance_names():
        row = known.get(name)
        run = await last_reconcile(engine, instance=name)
        succeeded = await last_success(engine, instance=name)
        found.append(
            {
                "name": name,
                "endpoint": webhook_path(name),
                "instance_id": row.instance_id if row else None,
                "environment_type": row.environment_type if row else None,
                "last_reconcile": (
                    {"id": run["id"], "status": run["status"], "started_at": run["started_at"]}
                    if run
                    else None
                ),
                "last_complete_reconcile_at": succeeded.isoformat() if succeeded else None,
            }
        )
    return found


async def collect(settings: Settings, engine: AsyncEngine) -> dict[str, Any]:
    return {
        "instances": await instances_summary(settings, engine),
        "replica": await replica_counts(engine),
        "inbox": await inbox_summary(engine),
        "retention": await retention_summary(settings, engine),
        "erasure": await erasure_summary(settings, engine),
        "last_reconcile": await last_reconcile(engine),
        "queue": await queue_depth(settings),
        "workers": await workers(settings),
    }
