"""End to end: time from a delivery's POST to its row being visible in PostgreSQL, at a steady
open-loop rate through the real web, Redis and worker processes.

Load: loadgen.py (own process) sends pre-signed user.updated / organization.updated /
organizationMembership.created deliveries at BENCH_RATE (500/s). Each event's clock starts at
its due send time (open loop, so a backlog shows instead of slowing the sender).

Visible: the inbox row for that svix-id has status 'applied'; the worker commits that in the
same transaction as the replica write, so it is exactly when an app's SELECT would see the row.
The benchmark polls for it with asyncpg every BENCH_POLL_MS (2 ms) over the ids that are due and
not yet seen, and stamps each row with the start of the first poll that saw it: the row was
committed at most one poll period plus one poll round trip earlier, which bounds the error
(both are printed). Targets: p50 < 50 ms, p99 < 250 ms.

Baseline: the acknowledgement latency of the same requests, from the same due times. Ingest
must commit the inbox row before answering, so no design shows an event sooner than it is
acknowledged; the ratio is what the queue hop and apply add on top of durable ingest.

Knobs (env): BENCH_SECONDS (15), BENCH_WARMUP_SECONDS (2), BENCH_RATE (500), BENCH_POLL_MS (2),
BENCH_WEB_WORKERS (serve processes; 1), BENCH_WORKERS (worker processes; 1),
BENCH_LOADGEN_CONNECTIONS (16), plus the service's variables (WORKER_CONCURRENCY, LOG_LEVEL
defaults to warning, ...).

    .venv/bin/python -m tests.benchmarks.bench_e2e
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from tests.benchmarks import fsync_probe, loadgen, signed
from tests.benchmarks.measure import CpuMeter, env_float, env_int, percentile, print_table
from tests.benchmarks.stack import Stack, stack, uvicorn_flavour

SECONDS = env_float("BENCH_SECONDS", 15)
WARMUP = env_float("BENCH_WARMUP_SECONDS", 2)
RATE = env_float("BENCH_RATE", 500)
POLL = env_float("BENCH_POLL_MS", 2) / 1000
WEB = env_int("BENCH_WEB_WORKERS", 1)
WORKERS = env_int("BENCH_WORKERS", 1)
LOADGEN_CONNECTIONS = env_int("BENCH_LOADGEN_CONNECTIONS", 16)
DRAIN_SECONDS = 30.0  # after the last send: longer than this counts as not applied

VISIBLE = (
    "SELECT svix_id FROM clerk_replica_inbox WHERE status = 'applied' AND svix_id = ANY($1::text[])"
)


@dataclass
class Run:
    sent: list[loadgen.Result]
    ids: list[str]
    visible: dict[str, float]  # svix-id -> monotonic time of the first poll that saw it applied
    poll_rtts: list[float] = field(default_factory=list)
    cpu: list[tuple[str, str, str, str]] = field(default_factory=list)
    fsyncs: list[float] = field(default_factory=list)  # the disk's, during the run (ms)


async def watch(
    url: str, ids: list[str], start_at: float, rate: float, sender: subprocess.Popen[bytes]
) -> tuple[dict[str, float], list[float]]:
    """Poll until every due id is applied, or DRAIN_SECONDS after the sender finished."""
    conn = await asyncpg.connect(url)
    visible: dict[str, float] = {}
    rtts: list[float] = []
    outstanding: set[str] = set()
    due = 0
    finished_at: float | None = None
    try:
        while True:
            now = time.monotonic()
            while due < len(ids) and start_at + due / rate <= now:
                outstanding.add(ids[due])
                due += 1
            if outstanding:
                started = time.monotonic()
                rows = await conn.fetch(VISIBLE, list(outstanding))
                rtts.append(time.monotonic() - started)
                for row in rows:
                    visible[row[0]] = started
                    outstanding.discard(row[0])
            if due == len(ids) and not outstanding:
                break
            if finished_at is None and sender.poll() is not None:
                finished_at = time.monotonic()
            if finished_at is not None and time.monotonic() - finished_at > DRAIN_SECONDS:
                break
            await asyncio.sleep(POLL)
    finally:
        await conn.close()
    return visible, rtts


def run(running: Stack, ports: list[int], seconds: float, name: str) -> Run:
    path = running.workdir / f"{name}.tsv"
    out = running.workdir / f"{name}.out"
    ids = signed.write(path, signed.deliveries(int(RATE * seconds)))
    start_at = time.monotonic() + 1.0  # the generator's start-up (imports, reading) fits in 1 s
    argv = loadgen.command(path, ports, RATE, LOADGEN_CONNECTIONS, start_at, out)
    meter = CpuMeter(running)
    probe = fsync_probe.start(running.workdir, seconds + 1)
    sender = subprocess.Popen(argv)
    try:
        visible, rtts = asyncio.run(watch(running.pg_url, ids, start_at, RATE, sender))
        sender.wait(60)
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait()
    return Run(loadgen.results(out), ids, visible, rtts, meter.rows(), fsync_probe.collect(probe))


def ms(value: float) -> str:
    return f"{value:.1f} ms"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp, stack(Path(tmp)) as running:
        ports = running.start_web(WEB)
        running.start_workers(WORKERS)
        run(running, ports, WARMUP, "warmup")
        measured = run(running, ports, SECONDS, "measure")

    acked = [r for r in measured.sent if r.ok]
    refused = Counter(r.status for r in measured.sent if not r.ok)
    ack = [(r.acked - r.due) * 1000 for r in acked]
    e2e = [
        (measured.visible[measured.ids[r.index]] - r.due) * 1000
        for r in acked
        if measured.ids[r.index] in measured.visible
    ]
    missing = len(acked) - len(e2e)
    start = min((r.due for r in measured.sent), default=0.0)
    last = max(measured.visible.values(), default=start + 1)
    applied_rate = len(measured.visible) / (last - start)
    ack_rate = len(acked) / (max((r.acked for r in acked), default=start + 1) - start)
    a50, a99, amax = percentile(ack, 50), percentile(ack, 99), max(ack, default=float("nan"))
    e50, e99, emax = percentile(e2e, 50), percentile(e2e, 99), max(e2e, default=float("nan"))
    rtt50 = percentile(measured.poll_rtts, 50) * 1000
    rows = [
        ("baseline: ack latency of the same deliveries, p50", ms(a50), "1.00", ""),
        ("baseline: ack latency, p99", ms(a99), "1.00", ""),
        ("baseline: ack latency, max", ms(amax), "1.00", ""),
        ("POST to applied row visible, p50", ms(e50), f"{e50 / a50:.2f}", "< 50 ms"),
        ("POST to applied row visible, p99", ms(e99), f"{e99 / a99:.2f}", "< 250 ms"),
        ("POST to applied row visible, max", ms(emax), f"{emax / amax:.2f}", ""),
        (
            f"events/s acknowledged (first due to last ack; target {RATE:.0f})",
            f"{ack_rate:.0f}",
            "",
            "",
        ),
        ("events/s applied (first due to last visible)", f"{applied_rate:.0f}", "", ""),
        ("poll period + round trip p50 (error bound)", ms(POLL * 1000 + rtt50), "", ""),
        (f"acknowledged, not applied within {DRAIN_SECONDS:.0f} s", f"{missing}", "", "0"),
    ]
    # Each delivery waits for two commits (inbox, then apply): a disk stall shows in the tail.
    rows += fsync_probe.rows(measured.fsyncs, "visible", e99, emax)
    rows += measured.cpu
    print_table(
        "bench_e2e",
        f"end-to-end benchmark, {os.cpu_count()} cores, {uvicorn_flavour()}, {WEB} serve + "
        f"{WORKERS} worker process(es), WORKER_CONCURRENCY="
        f"{os.environ.get('WORKER_CONCURRENCY', 'default')}, LOG_LEVEL="
        f"{os.environ.get('LOG_LEVEL', 'warning')}, {RATE:.0f}/s for {SECONDS:.0f} s "
        f"(+{WARMUP:.0f} s warm-up), {LOADGEN_CONNECTIONS} connections",
        rows,
    )
    problems = [f"{n} deliveries answered {s or 'nothing'}" for s, n in refused.items()]
    if missing:
        problems.append(f"{missing} acknowledged deliveries not applied")
    if problems:
        print("\nFAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
