"""Reconcile throughput into PostgreSQL (and SQLite beside it) against a same-run baseline.

The fake Clerk Backend API runs in its own process (real uvicorn, no latency, no rate limit),
its objects made and JSON-encoded before anything is timed, so serving a page costs a join and
never takes CPU from the process measured. Baseline: the same client fetching the same pages
without writing. Subject: the real reconcile (service.reconcile.run.run_reconcile, what
`clerk-replica reconcile` runs) in its own process, so its peak RSS (VmHWM) is its own; then a
"nightly" run over the unchanged instance, which should write nothing but checkpoints; then
the first run again into SQLite (the embedded default), as a ratio to PostgreSQL's. The fake
answers at once here, so these figures show CPU cost; bench_reconcile_latency shows the
reconcile at Clerk's round trip and rate limit.

    .venv/bin/python -m tests.benchmarks.bench_reconcile

Sizes: BENCH_RECONCILE_USERS (100000), BENCH_RECONCILE_ORGS (10000),
BENCH_RECONCILE_MEMBERSHIPS (100000). TEST_POSTGRES_URL: use that server (a database named
bench_rec_<pid> is made and dropped), else a throwaway embedded PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from service import process
from service.config import Settings
from service.logs import configure_logging

# Children import only what they use (pytest, alembic, uvicorn stay out of the measured
# process), so the heavier imports are made where they are needed.
USERS = int(os.environ.get("BENCH_RECONCILE_USERS", "100000"))
ORGS = int(os.environ.get("BENCH_RECONCILE_ORGS", "10000"))
MEMBERSHIPS = int(os.environ.get("BENCH_RECONCILE_MEMBERSHIPS", "100000"))
KINDS = ("organizations", "users", "memberships", "invitations", "domains")
FLOOR_PER_1000 = 2.0  # 500 objects per page
KEY = "sk_test_fake_replica_key"  # tests.support.fake_clerk.KEY, without importing the fake


def _settings(database_url: str, clerk_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url="redis://unused",
        clerk_secret_key=KEY,
        clerk_api_url=clerk_url,
        reconcile_max_requests_per_10s=1_000_000,  # the fake has no limit: neither do we
        log_level="warning",
    )


def _peak_rss_mib() -> float:
    """This process image's peak RSS; ru_maxrss would carry a forking parent's peak."""
    status = Path("/proc/self/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+)", status)
    return int(match.group(1)) / 1024 if match else float("nan")


# -- child processes ---------------------------------------------------------------------------


def serve_fake() -> None:
    """Child: build and encode the instance, print the URL, serve until stdin closes."""
    from tests.support.clerk_instances import synthetic_instance
    from tests.support.fake_clerk import FakeClerk, serve

    users, orgs, memberships = synthetic_instance(USERS, ORGS, MEMBERSHIPS)
    fake = FakeClerk(users=users.encode(), organizations=orgs.encode())  # type: ignore[arg-type]
    fake.memberships = memberships.encode()  # type: ignore[assignment]
    with serve(fake) as url:
        print(url, flush=True)
        sys.stdin.read()


async def _fetch_only(settings: Settings) -> dict[str, Any]:
    from service.kinds.registry import kind
    from service.reconcile.clerk_api import ClerkAPI
    from service.reconcile.paging import Position, pages, total

    api = ClerkAPI(settings)
    passes: dict[str, dict[str, Any]] = {}
    try:
        for name in KINDS:
            listing, started, listed = kind(name).listing, time.perf_counter(), 0
            assert listing is not None
            # The same requests a pass makes: its total first, then every page.
            await total(api, listing)
            async for items in pages(api, listing, settings.reconcile.page_size, Position()):
                listed += len(items)
            passes[name] = {"listed": listed, "seconds": time.perf_counter() - started}
    finally:
        await api.close()
    return {"passes": passes, "requests": api.stats.requests}


async def _reconcile(settings: Settings) -> dict[str, Any]:
    from service.reconcile.modes import ReconcileOptions
    from service.reconcile.run import run_reconcile

    report = await run_reconcile(settings, ReconcileOptions(kinds=KINDS))
    if not report.ok:
        raise SystemExit(f"reconcile failed: {report.summary()}")
    return {
        "passes": {p.kind: p.counts() for p in report.passes},
        "requests": sum(p.requests for p in report.passes),
    }


def measure(mode: str, database_url: str, clerk_url: str) -> None:
    """Child: one fetch-only or reconcile run; prints its figures as JSON on the last line."""
    settings = _settings(database_url, clerk_url)
    configure_logging(settings)
    started, cpu = time.perf_counter(), time.process_time()
    # As `clerk-replica reconcile` runs it: uvloop, the collector tuned (service/process.py).
    result = process.run(_fetch_only(settings) if mode == "fetch" else _reconcile(settings))
    result["seconds"] = time.perf_counter() - started
    result["cpu_seconds"] = time.process_time() - cpu  # every thread of this process
    result["peak_rss_mib"] = _peak_rss_mib()
    print(json.dumps(result), flush=True)


# -- the parent --------------------------------------------------------------------------------


def _child(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.benchmarks.bench_reconcile", *args]


@contextmanager
def fake_process() -> Iterator[str]:
    with serving(_child("serve")) as url:
        yield url


@contextmanager
def serving(argv: list[str]) -> Iterator[str]:
    """A child that prints its URL, then serves until its stdin closes."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("the fake Clerk API process did not start")
        yield url
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


@contextmanager
def database() -> Iterator[str]:
    from tests.support.databases import fresh_pg_database
    from tests.support.embedded_postgres import embedded_postgres

    given = os.environ.get("TEST_POSTGRES_URL")
    if given:
        with fresh_pg_database(given, f"bench_rec_{os.getpid()}") as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as tmp, embedded_postgres(Path(tmp) / "pg") as url:
        yield url


def run_child(
    mode: str, database_url: str, clerk_url: str, postmaster: int | None = None
) -> dict[str, Any]:
    """One measured child; with `postmaster`, also what the server's CPU spent meanwhile."""
    from tests.benchmarks.measure import server_cpu_seconds

    server = server_cpu_seconds(postmaster) if postmaster else float("nan")
    done = subprocess.run(
        _child(mode, database_url, clerk_url), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["server_cpu_seconds"] = (
        server_cpu_seconds(postmaster) - server if postmaster else float("nan")
    )
    return result


def _rate(result: dict[str, Any], name: str | None = None) -> float:
    passes = result["passes"]
    if name is not None:
        return float(passes[name]["listed"] / passes[name]["seconds"])
    return float(_listed(result) / result["seconds"])


def _listed(result: dict[str, Any]) -> int:
    return sum(int(p["listed"]) for p in result["passes"].values())


def _cpu_per_object(result: dict[str, Any], key: str) -> float:
    """Microseconds of CPU per object listed (NaN where the server is not on this machine)."""
    return float(result[key] * 1e6 / max(_listed(result), 1))


def _per_1000(result: dict[str, Any]) -> float:
    return float(result["requests"] * 1000 / max(_listed(result), 1))


def main() -> None:
    from service.operate.migrate import upgrade
    from tests.benchmarks.measure import local_postmaster

    made = time.perf_counter()
    with fake_process() as clerk_url, database() as url:
        print(f"fake Clerk ready in {time.perf_counter() - made:.1f} s", file=sys.stderr)
        upgrade(url)
        postmaster = local_postmaster(url)
        base = run_child("fetch", url, clerk_url)
        first = run_child("reconcile", url, clerk_url, postmaster)
        nightly = run_child("reconcile", url, clerk_url, postmaster)
        with tempfile.TemporaryDirectory() as tmp:  # the embedded default, beside it
            sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            upgrade(sqlite_url)
            on_sqlite = run_child("reconcile", sqlite_url, clerk_url)

    def written(run: dict[str, Any]) -> int:
        return sum(p["created"] + p["updated"] + p["tombstoned"] for p in run["passes"].values())

    rows: list[tuple[str, str, str]] = [
        ("baseline: fetch only, objects/s", f"{_rate(base):,.0f}", "1.00"),
        ("baseline: fetch only, users/s", f"{_rate(base, 'users'):,.0f}", "1.00"),
    ]
    for label, run in (("first run", first), ("nightly, unchanged", nightly)):
        rows.append(
            (
                f"reconcile {label}: objects/s",
                f"{_rate(run):,.0f}",
                f"{_rate(run) / _rate(base):.2f}",
            )
        )
        for name in ("users", "organizations", "memberships"):
            rate = _rate(run, name)
            rows.append(
                (f"reconcile {label}: {name}/s", f"{rate:,.0f}", f"{rate / _rate(base, name):.2f}")
            )
    for name in ("users", "organizations", "memberships"):
        rate = _rate(on_sqlite, name)
        rows.append(
            (
                f"SQLite first run: {name}/s (ratio: to PostgreSQL's)",
                f"{rate:,.0f}",
                f"{rate / _rate(first, name):.2f}",
            )
        )
    # Where the CPU goes, per object listed; the baseline is the fetch-only client's.
    fetch_us = _cpu_per_object(base, "cpu_seconds")
    rows.append(("CPU per object: fetch only, this client, us", f"{fetch_us:.0f}", "1.00"))
    for label, run in (("first run", first), ("nightly", nightly)):
        for who, key in (("reconcile", "cpu_seconds"), ("PostgreSQL", "server_cpu_seconds")):
            us = _cpu_per_object(run, key)
            ratio = f"{us / fetch_us:.2f}"
            rows.append((f"CPU per object: {label}, {who}, us", f"{us:.0f}", ratio))
    rows += [
        (
            f"API requests per 1,000 objects (floor {FLOOR_PER_1000:.0f})",
            f"{_per_1000(first):.2f}",
            f"{_per_1000(first) / _per_1000(base):.2f}",
        ),
        (
            "peak RSS of the reconcile process, MiB",
            f"{first['peak_rss_mib']:.0f}",
            f"{first['peak_rss_mib'] / base['peak_rss_mib']:.2f}",
        ),
        (
            "peak RSS, nightly run, MiB",
            f"{nightly['peak_rss_mib']:.0f}",
            f"{nightly['peak_rss_mib'] / base['peak_rss_mib']:.2f}",
        ),
    ]
    sys.stderr.flush()
    title = (
        f"reconcile benchmark: {USERS:,} users, {ORGS:,} organizations, {MEMBERSHIPS:,} "
        f"memberships; PostgreSQL; {os.cpu_count()} cores; objects written: first run "
        f"{written(first):,}, nightly {written(nightly):,}; fetch-only peak RSS "
        f"{base['peak_rss_mib']:.0f} MiB"
    )
    print(f"\n{title}", file=sys.stderr, flush=True)
    print(f"{'figure':<52}{'value':>12}{'ratio':>8}")
    for name, value, ratio in rows:
        print(f"{name:<52}{value:>12}{ratio:>8}")
    from tests.benchmarks.measure import record

    record("bench_reconcile", title, ("figure", "value", "ratio"), rows)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve_fake()
    elif sys.argv[1:2] in (["fetch"], ["reconcile"]):
        measure(sys.argv[1], sys.argv[2], sys.argv[3])
    else:
        main()
