"""Apply throughput into PostgreSQL against a same-run baseline, and how it scales.

Baseline: raw asyncpg, one single-row upsert per transaction on one connection (the floor any
per-event design pays). Subject: real `clerk-replica worker` processes draining a backlog of
stored events (a mix of user.updated with two emails, organization and membership events)
while wake-ups keep arriving every window, as they do when deliveries flow. Figures:

- one worker, then two worker processes (scale-out);
- one worker with the replica pre-filled with 10k users, then 1M users (index effects: the
  cost per event must not grow with the table);
- for reference, the old design: one event per transaction (`apply_stored`), ten slots.

Prints events/s and the ratio to the baseline. Set BENCH_PROFILE=1 to print a pyinstrument
profile of an in-process drain instead of the table's worker runs, BENCH_ONLY=touched to run
only the baseline and the 1M-user replica with events on 10k users (about a minute: repeat it,
interleaved between two trees, to compare them), BENCH_ONLY=feed to run 1 and 2 workers with the
change feed off and on (CHANGE_FEED), in the same run, with the CPU the server's processes and
the workers spent per event (Linux /proc; the server's figure means something only on a
server of its own, the embedded one when TEST_POSTGRES_URL is unset): steadier than events/s
on a shared machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, select

from service.apply.batch import apply_one
from service.clerk.rows import RowOptions
from service.config import Settings, get_settings
from service.db.engine import create_engine
from service.dev.processes import embedded_redis
from service.inbox.store import inbox
from service.logs import configure_logging
from service.operate.migrate import upgrade
from service.queue.client import Enqueuer, connect
from tests.support import clerk_payloads as cp
from tests.support.embedded_postgres import embedded_postgres
from tests.support.replica_helpers import store_event
from tests.support.settings import make_settings

EVENTS = int(os.environ.get("BENCH_EVENTS", "10000"))
SMALL, LARGE = (int(n) for n in os.environ.get("BENCH_REPLICA_SIZES", "10000,1000000").split(","))
REPLICA_TABLES = (
    "clerk_users, clerk_email_addresses, clerk_phone_numbers, clerk_external_accounts, "
    "clerk_organizations, clerk_organization_memberships, clerk_organization_invitations, "
    "clerk_organization_domains, clerk_replica_inbox"
)


def mixed_events(n: int, users: int, seed: int = 7) -> list[dict[str, Any]]:
    """60% user.updated (two emails), 10% organization.updated, 30% membership.created, over
    `users` existing users; every snapshot is newer than what the replica holds."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        kind = i % 10
        u = rng.randrange(users)
        if kind < 6:
            user = cp.user(
                f"user_{u:08d}",
                updated_at=cp.T0 + 1_000 + i,
                emails=[
                    cp.email(f"idn_{u:08d}", f"u{u}@example.org"),
                    cp.email(f"idn_b{u:08d}", f"b{u}@example.org"),
                ],
            )
            events.append(cp.envelope("user.updated", user))
        elif kind == 6:
            org = cp.organization(f"org_{u % 1000:04d}", updated_at=cp.T0 + 1_000 + i)
            events.append(cp.envelope("organization.updated", org))
        else:
            member = cp.membership(
                f"orgmem_{i:08d}",
                org_id=f"org_{u % 1000:04d}",
                user_id=f"user_{u:08d}",
                created_at=cp.T0 + 1_000 + i,
                updated_at=cp.T0 + 1_000 + i,
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
        await conn.execute("DROP TABLE IF EXISTS bench_baseline")
        await conn.close()


async def prefill(url: str, users: int) -> None:
    """A replica that already holds `users` users with one email each (set-based SQL)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"TRUNCATE {REPLICA_TABLES}")
        await conn.execute(
            "INSERT INTO clerk_users (id, first_name, primary_email_address, created_at, "
            "updated_at, raw) SELECT 'user_' || lpad(g::text, 8, '0'), 'Example', "
            "'u' || g || '@example.org', to_timestamp($2), to_timestamp($2), "
            '\'{"object": "user"}\'::jsonb FROM generate_series(0, $1 - 1) AS g',
            users,
            cp.T0 / 1000,
        )
        await conn.execute(
            "INSERT INTO clerk_email_addresses (id, user_id, email_address, is_primary) "
            "SELECT 'idn_' || lpad(g::text, 8, '0'), 'user_' || lpad(g::text, 8, '0'), "
            "'u' || g || '@example.org', true FROM generate_series(0, $1 - 1) AS g",
            users,
        )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def store_all(settings: Settings, events: list[dict[str, Any]]) -> None:
    engine = create_engine(settings)
    try:
        for event in events:
            await store_event(engine, event)
    finally:
        await engine.dispose()


@contextmanager
def workers(settings: Settings, count: int) -> Iterator[list[int]]:
    env = os.environ | {
        "CHANGE_FEED": "true" if settings.database.change_feed else "false",
        "DATABASE_URL": settings.database.url,
        "REDIS_URL": settings.redis.url,
        "QUEUE_PREFIX": settings.redis.queue_prefix,
        "LOG_LEVEL": "warning",
        "LOG_FORMAT": "json",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "service", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    try:
        time.sleep(3)  # imports and arq start-up, outside the timed part
        yield [proc.pid for proc in procs]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


# The tables that grow with the user count. (Small ones, like organizations here, are rightly
# scanned by the planner; that costs nothing and does not grow.)
SEQ_SCANS = (
    "SELECT coalesce(sum(seq_scan), 0) FROM pg_stat_user_tables "
    "WHERE relname IN ('clerk_users', 'clerk_email_addresses')"
)
# Pages the server had to read in (from the OS, not its shared buffers): what a larger replica
# costs when its indexes outgrow the cache, as opposed to more work per statement.
BLOCKS_READ = "SELECT blks_read FROM pg_stat_database WHERE datname = current_database()"
# WAL written (bytes, and full-page images: the first change to a page after a checkpoint logs
# the whole 8 KiB page): a write to a page touched since the last checkpoint costs its change,
# one to a page not touched since costs the page. Server-wide (pg_stat_wal, PostgreSQL 14+).
WAL = "SELECT wal_bytes::bigint, wal_fpi FROM pg_stat_wal"


@dataclass
class Drain:
    rate: float  # events/s
    scans: int  # sequential scans of the growing tables meanwhile
    blocks_read: int  # pages read into shared buffers meanwhile
    wal_bytes: int  # WAL written meanwhile (the whole server)
    wal_fpi: int  # full-page images among it
    server_cpu: float = 0.0  # CPU seconds the server's processes spent meanwhile
    worker_cpu: float = 0.0  # CPU seconds the workers spent meanwhile


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU of the processes (those gone count nothing)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def family(parent: int) -> list[int]:
    """`parent` and its children (a postmaster and its backends)."""
    found = [parent]
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and parent_of(int(entry.name)) == parent:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


async def drain(settings: Settings, n: int, worker_pids: Sequence[int] = ()) -> Drain:
    """Wake the workers every window, as flowing deliveries would, until nothing is pending.

    Besides events/s: the sequential scans of the replica tables meanwhile (every statement on
    the apply path should be an index lookup, whatever the table's size), and the pages read in.
    """
    enqueuer = Enqueuer(connect(settings), settings)
    conn = await asyncpg.connect(settings.database.url.replace("+asyncpg", ""))
    try:
        postmaster = parent_of(await conn.fetchval("SELECT pg_backend_pid()"))
        await asyncio.sleep(1)  # table statistics are flushed about once a second
        scans, blocks = await conn.fetchval(SEQ_SCANS), await conn.fetchval(BLOCKS_READ)
        wal = await conn.fetchrow(WAL)
        server, workers_cpu = cpu_seconds(family(postmaster)), cpu_seconds(worker_pids)
        started = time.perf_counter()
        while True:
            await enqueuer.wake()
            pending = await conn.fetchval(
                f"SELECT count(*) FROM {inbox.name} WHERE status = 'pending'"
            )
            if pending == 0:
                rate = n / (time.perf_counter() - started)
                server = cpu_seconds(family(postmaster)) - server
                workers_cpu = cpu_seconds(worker_pids) - workers_cpu
                break
            await asyncio.sleep(settings.worker.wake_window_ms / 1000)
        await asyncio.sleep(1.5)
        wal_after = await conn.fetchrow(WAL)
        return Drain(
            rate,
            int(await conn.fetchval(SEQ_SCANS) - scans),
            int(await conn.fetchval(BLOCKS_READ) - blocks),
            int(wal_after[0] - wal[0]),
            int(wal_after[1] - wal[1]),
            server,
            workers_cpu,
        )
    finally:
        await conn.close()
        await enqueuer.close()


def worker_run(
    url: str,
    redis_url: str,
    count: int,
    users: int,
    touched: int | None = None,
    *,
    feed: bool = True,
) -> Drain:
    """Drain EVENTS events over `touched` of `users` replicated users (all by default), with
    the change feed on or off (`feed`: its triggers and the writers' lock)."""
    settings = make_settings(url, redis_url, change_feed=feed)
    feed_triggers(url, feed)
    asyncio.run(prefill(url, users))
    asyncio.run(store_all(settings, mixed_events(EVENTS, touched or users)))
    # Write back what the set-up dirtied (a million-row prefill): otherwise the checkpoint it
    # sets off runs during the timed drain, and every run starts just after a checkpoint.
    asyncio.run(checkpoint(url))
    with workers(settings, count) as pids:
        return asyncio.run(drain(settings, EVENTS, pids))


def feed_triggers(url: str, on: bool) -> None:
    """Migrate with CHANGE_FEED on or off: the triggers are made, or dropped, at head."""
    os.environ["CHANGE_FEED"] = "true" if on else "false"
    get_settings.cache_clear()
    try:
        upgrade(url)
    finally:
        os.environ.pop("CHANGE_FEED")
        get_settings.cache_clear()


def feed_beside(url: str, redis_url: str) -> list[tuple[str, Drain, Drain]]:
    """(figure, feed off, feed on) drains with 1 and 2 workers, in this run, alternating."""
    found: list[tuple[str, Drain, Drain]] = []
    for count in (1, 2):
        off = worker_run(url, redis_url, count, SMALL, feed=False)
        on = worker_run(url, redis_url, count, SMALL, feed=True)
        found.append((f"{count} worker(s)", off, on))
    return found


def cpu_per_event(run: Drain) -> str:
    server, workers = (seconds / EVENTS * 1e6 for seconds in (run.server_cpu, run.worker_cpu))
    return f"server {server:.0f} us, workers {workers:.0f} us"


async def checkpoint(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CHECKPOINT")
    except asyncpg.InsufficientPrivilegeError:
        print("note: no CHECKPOINT privilege; runs may overlap a checkpoint", file=sys.stderr)
    finally:
        await conn.close()


async def per_event(url: str, n: int, slots: int) -> float:
    settings = make_settings(url, "redis://unused", db_pool_size=slots)
    await prefill(url, SMALL)
    await store_all(settings, mixed_events(n, SMALL))
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            ids = [
                r[0] for r in await conn.execute(inbox.select().with_only_columns(inbox.c.svix_id))
            ]
        queue: asyncio.Queue[str] = asyncio.Queue()
        for svix_id in ids:
            queue.put_nowait(svix_id)

        async def slot() -> None:
            while not queue.empty():
                svix_id = queue.get_nowait()
                for _ in range(10):
                    try:
                        await apply_one(engine, svix_id, RowOptions())
                        break
                    except Exception:
                        await asyncio.sleep(0.01)

        started = time.perf_counter()
        await asyncio.gather(*(slot() for _ in range(slots)))
        return n / (time.perf_counter() - started)
    finally:
        await engine.dispose()


async def profile(url: str) -> None:
    from pyinstrument import Profiler

    from service.apply.batch import apply_batch

    settings = make_settings(url, "redis://unused")
    await prefill(url, SMALL)
    await store_all(settings, mixed_events(EVENTS, SMALL))
    engine = create_engine(settings)
    profiler = Profiler(async_mode="enabled")
    try:
        profiler.start()
        while (await apply_batch(engine, RowOptions(), settings.worker.batch_size)).claimed:
            pass
        profiler.stop()
    finally:
        await engine.dispose()
    print(profiler.output_text(unicode=False, color=False, show_all=False))


@contextmanager
def servers(tmp: Path) -> Iterator[tuple[str, str]]:
    with ExitStack() as stack:
        pg = os.environ.get("TEST_POSTGRES_URL") or stack.enter_context(
            embedded_postgres(tmp / "pg")
        )
        redis = (
            os.environ.get("TEST_REDIS_URL")
            or stack.enter_context(embedded_redis(tmp / "redis"))[0]
        )
        yield pg, redis


async def drain_any(settings: Settings, n: int) -> float:
    """events/s of a drain on either database (what `drain` measures, without its PostgreSQL
    statistics), waking the workers every window until nothing is pending."""
    enqueuer = Enqueuer(connect(settings), settings)
    engine = create_engine(settings)
    pending = select(func.count()).select_from(inbox).where(inbox.c.status == "pending")
    try:
        started = time.perf_counter()
        while True:
            await enqueuer.wake()
            async with engine.connect() as conn:
                if (await conn.execute(pending)).scalar_one() == 0:
                    return n / (time.perf_counter() - started)
            await asyncio.sleep(settings.worker.wake_window_ms / 1000)
    finally:
        await engine.dispose()
        await enqueuer.close()


def empty_replica_run(url: str, redis_url: str) -> float:
    """events/s of one worker applying EVENTS events to an empty replica: the same on
    PostgreSQL and SQLite (which has no prefill of its own here)."""
    settings = make_settings(url, redis_url)
    asyncio.run(store_all(settings, mixed_events(EVENTS, SMALL)))
    with workers(settings, 1):
        return asyncio.run(drain_any(settings, EVENTS))


def sqlite_beside_postgres(tmp: Path, url: str, redis_url: str) -> tuple[float, float]:
    """(PostgreSQL, SQLite) events/s, one worker each, an empty replica each, in this run."""
    asyncio.run(prefill(url, 0))  # empty: what SQLite starts from
    on_pg = empty_replica_run(url, redis_url)
    sqlite_url = f"sqlite:///{tmp / 'bench.db'}"
    upgrade(sqlite_url)
    return on_pg, empty_replica_run(sqlite_url, redis_url)


def wal_per_event(run: Drain) -> str:
    return f"{run.wal_bytes / EVENTS / 1024:.1f} ({run.wal_fpi / EVENTS:.2f})"


def main() -> None:
    configure_logging(make_settings("sqlite:///unused", "redis://unused", log_level="warning"))
    with tempfile.TemporaryDirectory() as tmp, servers(Path(tmp)) as (url, redis_url):
        upgrade(url)
        if os.environ.get("BENCH_PROFILE"):
            asyncio.run(profile(url))
            return
        base = asyncio.run(baseline(url, 5000))
        if os.environ.get("BENCH_ONLY") == "feed":
            print(f"baseline {base:.0f}/s; {EVENTS} mixed events, {SMALL:,} users")
            for figure, off, on in feed_beside(url, redis_url):
                print(
                    f"{figure}: feed off {off.rate:.0f}/s, on {on.rate:.0f}/s, "
                    f"on/off {on.rate / off.rate:.2f}; CPU per event off: {cpu_per_event(off)}; "
                    f"on: {cpu_per_event(on)}"
                )
            return
        if os.environ.get("BENCH_ONLY") == "touched":
            hot = worker_run(url, redis_url, 1, LARGE, touched=SMALL)
            scenario = f"{LARGE:,} users, events on {SMALL:,}"
            print(f"baseline {base:.0f}/s; {scenario}: {hot.rate:.0f}/s, {hot.rate / base:.2f}")
            return
        small_run = worker_run(url, redis_url, 1, SMALL)
        two = worker_run(url, redis_url, 2, SMALL).rate
        large_run = worker_run(url, redis_url, 1, LARGE)
        # The same events as the small run, in the large replica: the table's size alone,
        # without a working set that outgrows the server's cache.
        hot = worker_run(url, redis_url, 1, LARGE, touched=SMALL)
        one, large = small_run.rate, large_run.rate
        old_design = asyncio.run(per_event(url, min(EVENTS, 2000), 10))
        on_pg, on_sqlite = sqlite_beside_postgres(Path(tmp), url, redis_url)
    title = (
        f"apply benchmark: {EVENTS} mixed events, PostgreSQL, {os.cpu_count()} cores; "
        f"replica of {SMALL:,} users unless stated"
    )
    print(f"\n{title}", file=sys.stderr)
    rows = [
        ("baseline: asyncpg single-row upsert per transaction", f"{base:.0f}", 1.0),
        ("apply, 1 worker (events/s)", f"{one:.0f}", one / base),
        ("apply, 2 workers (events/s)", f"{two:.0f}", two / base),
        (f"apply, 1 worker, replica of {LARGE:,} users", f"{large:.0f}", large / base),
        ("old design: 1 event per transaction, 10 slots", f"{old_design:.0f}", old_design / base),
        ("2 workers / 1 worker", "", two / one),
        (f"cost per event, {LARGE:,} users / {SMALL:,} users", "", one / large),
        (
            f"apply, 1 worker, {LARGE:,} users, events on {SMALL:,} of them",
            f"{hot.rate:.0f}",
            hot.rate / base,
        ),
        (f"cost per event, that / {SMALL:,} users", "", one / hot.rate),
        ("apply, 1 worker, empty replica, PostgreSQL (events/s)", f"{on_pg:.0f}", on_pg / base),
        (
            "apply, 1 worker, empty replica, SQLite; ratio to PostgreSQL",
            f"{on_sqlite:.0f}",
            on_sqlite / on_pg,
        ),
        (f"sequential scans of users + emails, {SMALL:,} users", f"{small_run.scans}", None),
        (f"sequential scans of users + emails, {LARGE:,} users", f"{large_run.scans}", None),
        (
            f"pages read into shared buffers per event, {SMALL:,} users",
            f"{small_run.blocks_read / EVENTS:.2f}",
            None,
        ),
        (
            f"pages read into shared buffers per event, {LARGE:,} users",
            f"{large_run.blocks_read / EVENTS:.2f}",
            None,
        ),
        (
            f"pages read into shared buffers per event, {LARGE:,} users, {SMALL:,} touched",
            f"{hot.blocks_read / EVENTS:.2f}",
            None,
        ),
    ]
    for label, run in ((f"{SMALL:,} users", small_run), (f"{LARGE:,} users", large_run)):
        rows.append((f"WAL per event, {label}: KiB (full-page images)", wal_per_event(run), None))
    rows.append((f"WAL per event, {LARGE:,} users, {SMALL:,} touched", wal_per_event(hot), None))
    print(f"{'figure':<72}{'value':>12}{'ratio':>8}")
    shown_rows = [(n, v, "" if r is None else f"{r:.2f}") for n, v, r in rows]
    for name, value, shown in shown_rows:
        print(f"{name:<72}{value:>12}{shown:>8}")
    from tests.benchmarks.measure import record

    record("bench_apply", title, ("figure", "value", "ratio"), shown_rows)


if __name__ == "__main__":
    main()
