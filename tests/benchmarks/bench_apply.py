"""Apply throughput into PostgreSQL against a same-run baseline.

Baseline: raw asyncpg, one single-row upsert per transaction (the floor any per-event design
pays). Subject: the real apply path (claim, validate, order-safe writes, settle) on a mix of
user.updated with emails, organization and membership events, one worker slot and ten (arq's
default max_jobs). Prints events/s and the ratio to the baseline.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from service.apply.rows import RowOptions
from service.apply.runner import apply_stored
from service.db import create_engine
from service.logs import configure_logging
from service.migrate import upgrade
from tests import clerk_payloads as cp
from tests.conftest import make_settings
from tests.replica_helpers import store_event
from tests.servers import embedded_postgres

EVENTS = int(os.environ.get("BENCH_EVENTS", "2000"))


def mixed_events(n: int) -> list[dict[str, Any]]:
    events = []
    for i in range(n):
        kind = i % 10
        if kind < 6:
            user = cp.user(
                f"user_{i % 500:05d}",
                updated_at=cp.T0 + i,
                emails=[
                    cp.email(f"idn_{i}", f"u{i}@example.org"),
                    cp.email(f"idn_b{i}", f"b{i}@example.org"),
                ],
            )
            events.append(cp.envelope("user.updated", user))
        elif kind == 6:
            events.append(
                cp.envelope(
                    "organization.updated",
                    cp.organization(f"org_{i % 50:03d}", updated_at=cp.T0 + i),
                )
            )
        else:
            member = cp.membership(
                f"orgmem_{i}",
                org_id=f"org_{i % 50:03d}",
                user_id=f"user_{i % 500:05d}",
                created_at=cp.T0 + i,
                updated_at=cp.T0 + i,
            )
            events.append(cp.envelope("organizationMembership.created", member))
    return events


async def baseline(url: str, n: int) -> float:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP TABLE IF EXISTS bench_baseline")
        await conn.execute(
            "CREATE TABLE bench_baseline (id text PRIMARY KEY, data jsonb, updated_at bigint)"
        )
        started = time.perf_counter()
        for i in range(n):
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO bench_baseline VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE "
                    "SET data = excluded.data, updated_at = excluded.updated_at "
                    "WHERE bench_baseline.updated_at <= excluded.updated_at",
                    f"user_{i % 500:05d}",
                    json.dumps({"i": i}),
                    i,
                )
        return n / (time.perf_counter() - started)
    finally:
        await conn.close()


async def subject(url: str, n: int, slots: int) -> float:
    settings = make_settings(url, "redis://unused", db_pool_size=slots)
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(
                "TRUNCATE clerk_users, clerk_email_addresses, clerk_organizations, "
                "clerk_organization_memberships, clerk_replica_inbox"
            )
        ids = [await store_event(engine, event) for event in mixed_events(n)]
        queue: asyncio.Queue[str] = asyncio.Queue()
        for svix_id in ids:
            queue.put_nowait(svix_id)

        async def slot() -> None:
            while not queue.empty():
                svix_id = queue.get_nowait()
                for _ in range(10):
                    try:
                        await apply_stored(engine, svix_id, RowOptions())
                        break
                    except Exception:
                        await asyncio.sleep(0.01)

        started = time.perf_counter()
        await asyncio.gather(*(slot() for _ in range(slots)))
        return n / (time.perf_counter() - started)
    finally:
        await engine.dispose()


def main() -> None:
    # Production logs one line per event at info; measure the work, not a terminal's speed.
    configure_logging(make_settings("sqlite:///unused", "redis://unused", log_level="warning"))
    with tempfile.TemporaryDirectory() as tmp:
        given = os.environ.get("TEST_POSTGRES_URL")
        servers = None if given else embedded_postgres(Path(tmp) / "pg")
        admin = given or servers.__enter__()  # type: ignore[union-attr]
        try:
            url = admin
            upgrade(url)
            base = asyncio.run(baseline(url, EVENTS))
            one = asyncio.run(subject(url, EVENTS, 1))
            ten = asyncio.run(subject(url, EVENTS, 10))
        finally:
            if servers is not None:
                servers.__exit__(None, None, None)
    rows = [
        ("baseline: asyncpg single-row upsert per transaction", base, 1.0),
        ("apply, 1 slot (events/s)", one, one / base),
        ("apply, 10 slots (events/s)", ten, ten / base),
    ]
    print(
        f"\napply benchmark, {EVENTS} mixed events, PostgreSQL, {os.cpu_count()} cores",
        file=sys.stderr,
    )
    print(f"{'figure':<56}{'per second':>12}{'ratio':>8}")
    for name, value, ratio in rows:
        print(f"{name:<56}{value:>12.0f}{ratio:>8.2f}")


if __name__ == "__main__":
    main()
