"""Reconcile against a Backend API that takes a real round trip, at the key's budget.

Clerk answers a page in roughly 100-300 ms, so one request at a time leaves most of the key's
budget unspent. The fake here waits 150 ms +- 50 ms before each answer (BENCH_LATENCY_MS,
BENCH_JITTER_MS) and enforces Clerk's production limit of 1,000 requests per 10 s, its objects
made and encoded only when a page asks for them, so an instance of millions costs it no
memory. Each run is the real reconcile (what `clerk-replica reconcile` runs) in its own
process, so its peak RSS is its own, into a fresh database:

- baseline: one request at a time (RECONCILE_CONCURRENCY=1, the reconcile before segments),
  at a share of 0.5, over a smaller instance of the same shape (its rate does not depend on
  size: every page costs it one round trip);
- measured: RECONCILE_CONCURRENCY=0 (the default), at a share of 0.5 (500 requests per 10 s)
  and at a share of 1.0 (1,000).

Figures: objects/s per kind, the ratio to the budget in force (budget/s x 500 objects a page),
the ratio to the baseline, API requests per 1,000 objects, requests in flight at most, 429s,
peak RSS.

    .venv/bin/python -m tests.benchmarks.bench_reconcile_latency

Sizes: BENCH_LATENCY_USERS (1000000), BENCH_LATENCY_ORGS (100000), BENCH_LATENCY_MEMBERSHIPS
(1000000); the baseline's are a tenth (at least 5,000). TEST_POSTGRES_URL as bench_reconcile.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from service import process
from service.config import Settings
from service.logs import configure_logging
from tests.benchmarks.bench_reconcile import KEY, _peak_rss_mib, _per_1000, database, serving

USERS = int(os.environ.get("BENCH_LATENCY_USERS", "1000000"))
ORGS = int(os.environ.get("BENCH_LATENCY_ORGS", "100000"))
MEMBERSHIPS = int(os.environ.get("BENCH_LATENCY_MEMBERSHIPS", "1000000"))
LATENCY_MS = float(os.environ.get("BENCH_LATENCY_MS", "150"))
JITTER_MS = float(os.environ.get("BENCH_JITTER_MS", "50"))
KINDS = ("organizations", "users", "memberships")
CLERK_LIMIT_PER_10S = 1000  # a production instance's Backend API limit
PAGE = 500


def _small(n: int) -> int:
    return max(5000, n // 10)


# -- child processes ---------------------------------------------------------------------------


def serve_fake(users: int, orgs: int, memberships: int) -> None:
    """Child: a lazily made instance behind the latency and the limit; prints its URL, serves
    until stdin closes."""
    from tests.support.clerk_instances import synthetic_instance
    from tests.support.fake_clerk import FakeClerk, serve

    made_users, made_orgs, made_memberships = synthetic_instance(users, orgs, memberships)
    fake = FakeClerk(
        users=made_users.lazily(),
        organizations=made_orgs.lazily(),  # type: ignore[arg-type]
        latency_seconds=LATENCY_MS / 1000,
        jitter_seconds=JITTER_MS / 1000,
    )
    fake.memberships = made_memberships.lazily()  # type: ignore[assignment]
    fake.rate_limit_per_10s = CLERK_LIMIT_PER_10S
    with serve(fake) as url:
        print(url, flush=True)
        sys.stdin.read()


async def _reconcile(settings: Settings) -> dict[str, Any]:
    from service.reconcile.modes import ReconcileOptions
    from service.reconcile.run import run_reconcile

    report = await run_reconcile(settings, ReconcileOptions(kinds=KINDS))
    if not report.ok:
        raise SystemExit(f"reconcile failed: {report.summary()}")
    return {"passes": {p.kind: p.counts() for p in report.passes}}


def measure(database_url: str, clerk_url: str, per_10s: int, concurrency: int) -> None:
    """Child: one reconcile; prints its figures as JSON on the last line."""
    settings = Settings(
        database_url=database_url,
        redis_url="redis://unused",
        clerk_secret_key=KEY,
        clerk_api_url=clerk_url,
        reconcile_max_requests_per_10s=per_10s,
        reconcile_concurrency=concurrency,
        log_level="warning",
    )
    configure_logging(settings)
    started = time.perf_counter()
    result = process.run(_reconcile(settings))
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_mib"] = _peak_rss_mib()
    passes = result["passes"].values()
    result["requests"] = sum(p["requests"] for p in passes)
    result["throttled"] = sum(p["throttled"] for p in passes)
    result["peak_in_flight"] = max(p["in_flight"] for p in passes)
    print(json.dumps(result), flush=True)


# -- the parent --------------------------------------------------------------------------------


def _child(*args: object) -> list[str]:
    return [sys.executable, "-m", "tests.benchmarks.bench_reconcile_latency", *map(str, args)]


@contextmanager
def fake_process(users: int, orgs: int, memberships: int) -> Iterator[str]:
    with serving(_child("serve", users, orgs, memberships)) as url:
        yield url


def run_once(clerk_url: str, per_10s: int, concurrency: int) -> dict[str, Any]:
    from service.operate.migrate import upgrade

    with database() as url:
        upgrade(url)
        done = subprocess.run(
            _child("measure", url, clerk_url, per_10s, concurrency),
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"reconcile run failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _rate(run: dict[str, Any], name: str | None = None) -> float:
    passes = run["passes"]
    if name is not None:
        return float(passes[name]["listed"] / passes[name]["seconds"])
    listed = sum(passes[n]["listed"] for n in KINDS)
    return float(listed / sum(passes[n]["seconds"] for n in KINDS))


def main() -> None:
    with fake_process(_small(USERS), _small(ORGS), _small(MEMBERSHIPS)) as small_url:
        single = run_once(small_url, 500, 1)
    with fake_process(USERS, ORGS, MEMBERSHIPS) as url:
        measured = {per_10s: run_once(url, per_10s, 0) for per_10s in (500, 1000)}

    def budget(per_10s: int) -> float:
        return per_10s / 10 * PAGE

    rows: list[tuple[str, str, str]] = []
    for name in (*KINDS, None):
        label = name or "all three"
        rows.append(
            (
                f"baseline: one at a time, {label}/s",
                f"{_rate(single, name):,.0f}",
                f"{_rate(single, name) / budget(500):.2f}",
            )
        )
    for per_10s, run in measured.items():
        share = per_10s / CLERK_LIMIT_PER_10S
        for name in (*KINDS, None):
            label = name or "all three"
            rate = _rate(run, name)
            rows.append(
                (
                    f"share {share:.1f}: {label}/s (/ budget; / baseline)",
                    f"{rate:,.0f}",
                    f"{rate / budget(per_10s):.2f}; {rate / _rate(single, name):.2f}",
                )
            )
        rows += [
            (f"share {share:.1f}: requests per 1,000 objects", f"{_per_1000(run):.2f}", ""),
            (f"share {share:.1f}: requests in flight at most", str(run["peak_in_flight"]), ""),
            (f"share {share:.1f}: 429 answers", str(run["throttled"]), ""),
            (f"share {share:.1f}: peak RSS, MiB", f"{run['peak_rss_mib']:.0f}", ""),
        ]
    rows.append(
        ("baseline: requests per 1,000 objects", f"{_per_1000(single):.2f}", ""),
    )
    rows.append(("baseline: peak RSS, MiB", f"{single['peak_rss_mib']:.0f}", ""))
    seconds = [run["seconds"] for run in measured.values()]
    title = (
        f"reconcile at {LATENCY_MS:.0f} +- {JITTER_MS:.0f} ms a round trip: {USERS:,} users, "
        f"{ORGS:,} organizations, {MEMBERSHIPS:,} memberships (baseline: a tenth); PostgreSQL; "
        f"{os.cpu_count()} cores; budget/s x {PAGE} objects a page; runs took "
        f"{statistics.fmean(seconds):.0f} s on average"
    )
    print(f"\n{title}", file=sys.stderr, flush=True)
    print(f"{'figure':<58}{'value':>12}  {'ratio':<14}")
    for figure, value, ratio in rows:
        print(f"{figure:<58}{value:>12}  {ratio:<14}")
    from tests.benchmarks.measure import record

    record("bench_reconcile_latency", title, ("figure", "value", "ratio"), rows)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve_fake(*map(int, sys.argv[2:5]))
    elif sys.argv[1:2] == ["measure"]:
        measure(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
