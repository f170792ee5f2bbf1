"""The console's first page on a large PostgreSQL inbox: how long GET /console/ takes, and each
of its reads, with BENCH_CONSOLE_ROWS inbox rows (ten million by default) spread over the row
retention's thirty days the way a busy install keeps them (mostly applied, bodies forgotten
after a week, some ignored, a backlog and a few hundred failures), and a replica of
BENCH_CONSOLE_USERS users (so its counts come from statistics).

The rows are made by the database itself (INSERT ... SELECT generate_series) in a database of
the benchmark's own, dropped at the end. Prints one JSON object: the setup, the load's time,
and per measured part the median and the slowest of BENCH_CONSOLE_REPEATS runs (the first,
cold run reported apart).

    TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m tests.benchmarks.bench_console
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from service.db.engine import create_engine
from service.dev.processes import embedded_redis
from service.logs import configure_logging
from service.operate import events, overview
from service.operate.migrate import upgrade
from service.web.app import create_app
from tests.support.console import console_settings, sign_in
from tests.support.databases import fresh_pg_database, libpq_url
from tests.support.embedded_postgres import embedded_postgres

ROWS = int(os.environ.get("BENCH_CONSOLE_ROWS", "10000000"))
USERS = int(os.environ.get("BENCH_CONSOLE_USERS", "1000000"))
REPEATS = int(os.environ.get("BENCH_CONSOLE_REPEATS", "7"))
DATABASE = "clerk_replica_bench_console"

# Row i is received i * (30 days / ROWS) before now: the newest first. Every 10th is ignored,
# the newest thousand are pending, one in 40,000 failed, the rest applied after a short lag.
_FILL_INBOX = """
INSERT INTO clerk_replica_inbox
  (svix_id, event_type, status, body, object_id, received_at, applied_at, attempts, instance)
SELECT
  'msg_bench' || i,
  CASE WHEN i % 10 = 0 THEN 'session.created' ELSE 'user.updated' END,
  CASE WHEN i <= 1000 THEN 'pending'
       WHEN i % 40000 = 7 THEN 'failed'
       WHEN i % 10 = 0 THEN 'ignored'
       ELSE 'applied' END,
  CASE WHEN i % 10 <> 0 AND i * $2::float8 < 7 * 86400
       THEN '{"type":"user.updated","data":{"id":"user_' || (i % 100000) || '"}}' END,
  'user_' || (i % 100000),
  now() - make_interval(secs => i * $2::float8),
  CASE WHEN i <= 1000 OR i % 40000 = 7 THEN NULL
       ELSE now() - make_interval(secs => i * $2::float8) + make_interval(secs => (i % 50) / 20.0)
  END,
  CASE WHEN i % 40000 = 7 THEN 20 ELSE 1 END,
  'default'
FROM generate_series(1, $1::int) AS i
"""
_FAILED_ERRORS = (
    "UPDATE clerk_replica_inbox SET last_error = 'PayloadError: missing id' WHERE status = 'failed'"
)
_FILL_USERS = """
INSERT INTO clerk_users (id, deleted_at)
SELECT 'user_b' || i, CASE WHEN i % 20 = 0 THEN now() END FROM generate_series(1, $1::int) AS i
"""


@contextmanager
def servers(workdir: Path) -> Iterator[tuple[str, str]]:
    given = os.environ.get("TEST_POSTGRES_URL")
    with embedded_redis(workdir / "redis") as (redis_url, _proc):
        if given:
            yield libpq_url(given), redis_url
            return
        with embedded_postgres(workdir / "pg") as admin:
            yield admin, redis_url


async def fill(url: str) -> dict[str, float]:
    conn = await asyncpg.connect(url)
    spacing = 30 * 86400 / max(ROWS, 1)
    took: dict[str, float] = {}
    try:
        start = time.perf_counter()
        await conn.execute(_FILL_INBOX, ROWS, spacing)
        await conn.execute(_FAILED_ERRORS)
        took["inbox_insert_seconds"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        await conn.execute(_FILL_USERS, USERS)
        took["users_insert_seconds"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        took["vacuum_analyze_seconds"] = round(time.perf_counter() - start, 1)
        size = await conn.fetchval("SELECT pg_total_relation_size('clerk_replica_inbox')")
        took["inbox_bytes"] = float(size)
    finally:
        await conn.close()
    return took


async def timed(work: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    runs = []
    for _ in range(REPEATS + 1):
        start = time.perf_counter()
        await work()
        runs.append((time.perf_counter() - start) * 1000)
    cold, warm = runs[0], runs[1:]
    return {
        "cold_ms": round(cold, 1),
        "median_ms": round(statistics.median(warm), 1),
        "max_ms": round(max(warm), 1),
    }


async def measure(url: str, redis_url: str) -> dict[str, Any]:
    settings = console_settings(url, redis_url, clerk_webhook_signing_secret_previous=None)
    app = create_app(settings)
    figures: dict[str, Any] = {}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as client,
    ):
        await sign_in(client)

        async def page() -> None:
            answer = await client.get("/console/")
            assert answer.status_code == 200, answer.status_code

        figures["first_page"] = await timed(page)
        engine = create_engine(settings)
        try:
            now = datetime.now(UTC)
            async with engine.connect() as conn:
                day = await overview.activity(conn, now)
            parts: dict[str, Callable[[Any], Awaitable[Any]]] = {
                "activity": lambda c: overview.activity(c, now),
                "health": lambda c: overview.health(c, ["default"], now, day),
                "failed_events": lambda c: events.failed_events(c, 20),
                "reconcile_runs": lambda c: overview.reconcile_runs(c, 8),
                "replica_counts": overview.replica_counts,
            }
            for name, part in parts.items():

                async def one(part: Callable[[Any], Awaitable[Any]] = part) -> None:
                    async with engine.connect() as conn:
                        await part(conn)

                figures[name] = await timed(one)
        finally:
            await engine.dispose()
    return figures


def main() -> None:
    configure_logging(
        console_settings("sqlite:///unused.db", "redis://unused", log_level="warning")
    )
    with (
        tempfile.TemporaryDirectory() as tmp,
        servers(Path(tmp)) as (admin, redis_url),
        fresh_pg_database(admin, DATABASE) as url,
    ):
        upgrade(url)
        setup = asyncio.run(fill(url))
        figures = asyncio.run(measure(url, redis_url))
    print(
        json.dumps(
            {
                "benchmark": "console first page",
                "inbox_rows": ROWS,
                "replica_users": USERS,
                "repeats": REPEATS,
                "setup": setup,
                **figures,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
