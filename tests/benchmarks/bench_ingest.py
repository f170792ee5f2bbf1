"""Ingest throughput and acknowledgement latency of the real web process, against a same-run
baseline: the same web server answering a trivial 200.

Subject: `clerk-replica serve` (verify the Svix signature, commit the inbox row, enqueue to
Redis, answer) on a migrated PostgreSQL and a real Redis, no worker. Baseline: uvicorn.run with
serve's arguments around a Starlette app, built as ours is, whose endpoint reads the body and
answers 200 (trivial_app.py); a bare ASGI app is the floor under it. The load comes from other
processes:

1. Max throughput, closed loop: wrk with deliveries.lua, each thread sending its own slice of
   pre-signed unique deliveries, at each of BENCH_WRK_CONNECTIONS (floor, baseline and ingest
   back to back). A server's max is its best rate over the connection counts: ingest waits
   for its commit, so it needs more requests in flight than the baseline to fill its CPU.
   Ratio = ingest's max / the baseline's max (target >= 0.40); each count's own ratio is
   shown too. Any non-2xx answer, socket error or exhausted slice fails the run: a refused
   or duplicate delivery is not ingest work.
2. Fixed rate, open loop: loadgen.py at BENCH_RATE (1,000/s) deliveries per second, latency
   from each delivery's due time (so queueing shows; target p99 < 50 ms), then every
   acknowledged svix-id is looked up in the inbox: none may be missing. The trivial app at the
   same rate is the floor (what the client, loopback and uvicorn alone cost).

Knobs (env): BENCH_SECONDS (10), BENCH_WARMUP_SECONDS (2), BENCH_RATE (1000), BENCH_WEB_WORKERS
(serve processes, one port each; 1), BENCH_WRK_THREADS (2), BENCH_WRK_CONNECTIONS (16,64,128),
BENCH_LOADGEN_CONNECTIONS (16), BENCH_MAX_RATE (15000: sizes the unique deliveries wrk gets),
BENCH_PYSPY (a path: py-spy records the web process during the wrk run, raw collapsed stacks),
plus the service's own variables (LOG_LEVEL defaults to warning, DB_POOL_SIZE, ...).

    .venv/bin/python -m tests.benchmarks.bench_ingest
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.benchmarks import fsync_probe, loadgen, signed
from tests.benchmarks.measure import CpuMeter, env_float, env_int, percentile, print_table
from tests.benchmarks.stack import PYTHON, Stack, stack, uvicorn_flavour

SECONDS = env_float("BENCH_SECONDS", 10)
WARMUP = env_float("BENCH_WARMUP_SECONDS", 2)
RATE = env_float("BENCH_RATE", 1000)
WEB = env_int("BENCH_WEB_WORKERS", 1)
THREADS = env_int("BENCH_WRK_THREADS", 2)
# The machine is shared: one sweep's max moves by a quarter from run to run. The table gives
# the median of several sweeps, and their spread.
SWEEPS = env_int("BENCH_SWEEPS", 3)
CONNECTIONS = [int(c) for c in os.environ.get("BENCH_WRK_CONNECTIONS", "16,64,128").split(",")]
LOADGEN_CONNECTIONS = env_int("BENCH_LOADGEN_CONNECTIONS", 16)
MAX_RATE = env_int("BENCH_MAX_RATE", 15000)
LUA = Path(__file__).with_name("deliveries.lua")


@dataclass
class Closed:
    """A wrk run."""

    rate: float
    p50_ms: float
    p99_ms: float
    requests: int
    problems: list[str]
    cpu: list[tuple[str, str, str, str]] = field(default_factory=list)


@dataclass
class Open:
    """A loadgen run: latencies from due time, in ms; acknowledged svix-ids."""

    rate: float
    latencies: list[float]
    send_lag_max_ms: float
    acked: list[str]
    problems: list[str]
    cpu: list[tuple[str, str, str, str]]
    fsyncs: list[float]  # the disk's fdatasync latencies during the run, in ms


def wrk(
    workdir: Path, ports: list[int], slices: Path, seconds: float, connections: int, *, wrap: bool
) -> Closed:
    env = {
        **os.environ,
        "BENCH_WRK_PORTS": ",".join(map(str, ports)),
        "BENCH_WRK_FILES": str(slices),
        "BENCH_WRK_WRAP": "1" if wrap else "0",
    }
    argv = [
        shutil.which("wrk") or "wrk",
        f"-t{THREADS}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{ports[0]}/webhooks/clerk",
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, cwd=workdir)
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    problems = [
        f"{report[key]} {label}"
        for key, label in [
            ("non2xx", "non-2xx answers"),
            ("exhausted", "requests past the end of a slice (raise BENCH_MAX_RATE)"),
            ("connect", "connect errors"),
            ("read", "read errors"),
            ("write", "write errors"),
            ("timeout", "timeouts"),
        ]
        if report[key]
    ]
    return Closed(
        rate=report["requests"] / (report["duration_us"] / 1e6),
        p50_ms=report["p50_us"] / 1000,
        p99_ms=report["p99_us"] / 1000,
        requests=report["requests"],
        problems=problems,
    )


def closed_loop(
    running: Stack,
    ports: list[int],
    count: int,
    connections: int,
    *,
    wrap: bool,
    spy: bool = False,
) -> Closed:
    """Warm up, then measure; deliveries are signed just before each wrk run."""
    for name, seconds in (("warmup", WARMUP), ("measure", SECONDS)):
        slices = running.workdir / f"{name}-{ports[0]}"
        items = list(signed.deliveries(count if wrap else int(MAX_RATE * seconds) + 1000))
        signed.write_slices(slices, items, THREADS)
        recorder = profile(running, seconds) if spy and name == "measure" else None
        meter = CpuMeter(running)
        result = wrk(running.workdir, ports, slices, seconds, connections, wrap=wrap)
        result.cpu = meter.rows()
        if recorder is not None:
            recorder.wait()
    return result


def open_loop(running: Stack, ports: list[int], rate: float, seconds: float) -> Open:
    """A fixed-rate run, with the disk's fdatasync latency probed alongside (fsync_probe)."""
    path = running.workdir / f"fixed-{ports[0]}.tsv"
    out = running.workdir / f"fixed-{ports[0]}.out"
    ids = signed.write(path, signed.deliveries(int(rate * seconds)))
    start_at = time.monotonic() + 1.0  # the generator's start-up (imports, reading) fits in 1 s
    meter = CpuMeter(running)
    probe = fsync_probe.start(running.workdir, seconds + 1)
    subprocess.run(
        loadgen.command(path, ports, rate, LOADGEN_CONNECTIONS, start_at, out), check=True
    )
    cpu = meter.rows()
    fsyncs = fsync_probe.collect(probe)
    sent = loadgen.results(out)
    acked = [r for r in sent if r.ok]
    statuses = Counter(r.status for r in sent if not r.ok)
    last_ack = max((r.acked for r in acked), default=start_at + 1)
    return Open(
        rate=len(acked) / (last_ack - start_at),
        latencies=[(r.acked - r.due) * 1000 for r in acked],
        send_lag_max_ms=max((r.sent - r.due for r in sent), default=0.0) * 1000,
        acked=[ids[r.index] for r in acked],
        problems=[f"{n} answered {s or 'nothing'}" for s, n in statuses.items()],
        cpu=cpu,
        fsyncs=fsyncs,
    )


def profile(running: Stack, seconds: float) -> subprocess.Popen[bytes] | None:
    target = os.environ.get("BENCH_PYSPY")
    if not target:
        return None
    py_spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    argv = [py_spy, "record", "--pid", str(running.pid("web-0")), "--nonblocking", "-r", "500"]
    argv += ["--duration", str(max(1, round(seconds))), "--format", "raw", "-o", target]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def inbox_count(running: Stack, ids: list[str] | None = None) -> int:
    if ids is None:
        return int(running.query("SELECT count(*) FROM clerk_replica_inbox")[0][0])
    sql = "SELECT count(*) FROM clerk_replica_inbox WHERE svix_id = ANY($1::text[])"
    return int(running.query(sql, ids)[0][0])


def ms(value: float) -> str:
    return f"{value:.1f} ms"


@dataclass
class AtConcurrency:
    """The closed-loop runs at one wrk connection count."""

    connections: int
    floor: Closed  # bare ASGI
    baseline: Closed  # the Starlette app's trivial endpoint
    ingest: Closed


def closed_rows(at: AtConcurrency) -> list[tuple[str, str, str, str]]:
    c, base, ingest = f"{at.connections} conns", at.baseline, at.ingest
    return [
        (f"baseline: trivial endpoint, {c}, req/s", f"{base.rate:.0f}", "1.00", ""),
        (f"baseline: trivial endpoint, {c}, p50 / p99", two(base), "", ""),
        (
            f"floor: bare ASGI 200, {c}, req/s",
            f"{at.floor.rate:.0f}",
            f"{at.floor.rate / base.rate:.2f}",
            "",
        ),
        (f"ingest, {c}, deliveries/s", f"{ingest.rate:.0f}", f"{ingest.rate / base.rate:.2f}", ""),
        (f"ingest, {c}, p50 / p99", two(ingest), f"{ingest.p50_ms / base.p50_ms:.2f}", ""),
    ]


def max_rows(closed: list[AtConcurrency]) -> list[tuple[str, str, str, str]]:
    """Each server's best rate over the connection counts: the max the issue asks about."""
    base = max(closed, key=lambda at: at.baseline.rate)
    floor = max(closed, key=lambda at: at.floor.rate)
    ingest = max(closed, key=lambda at: at.ingest.rate)
    best = ingest.ingest.rate
    return [
        (
            f"max: baseline, trivial endpoint (at {base.connections} conns), req/s",
            f"{base.baseline.rate:.0f}",
            "1.00",
            "",
        ),
        (
            f"max: ingest (at {ingest.connections} conns), deliveries/s",
            f"{best:.0f}",
            f"{best / base.baseline.rate:.2f}",
            ">= 0.40",
        ),
        (
            f"max: floor, bare ASGI 200 (at {floor.connections} conns); ingest against it",
            f"{floor.floor.rate:.0f}",
            f"{best / floor.floor.rate:.2f}",
            "",
        ),
    ]


def sweep_rows(sweeps: list[list[AtConcurrency]]) -> list[tuple[str, str, str, str]]:
    """Ingest's max, and its ratio to the trivial endpoint's max, as the median of the
    sweeps (min-max); the rows after these are the first sweep's."""
    best = [max(at.ingest.rate for at in sweep) for sweep in sweeps]
    ratios = [
        max(at.ingest.rate for at in sweep) / max(at.baseline.rate for at in sweep)
        for sweep in sweeps
    ]

    n = len(sweeps)
    return [
        (
            f"max: ingest, deliveries/s, median of {n} sweeps",
            f"{statistics.median(best):.0f}",
            "",
            f"spread {min(best):.0f}-{max(best):.0f}",
        ),
        (
            f"max: ingest / trivial endpoint, median of {n} sweeps",
            f"{statistics.median(ratios):.2f}",
            "",
            f">= 0.40; spread {min(ratios):.2f}-{max(ratios):.2f}",
        ),
    ]


def two(run: Closed) -> str:
    return f"{run.p50_ms:.1f} / {run.p99_ms:.1f} ms"


def main() -> None:
    problems: list[str] = []
    sweeps: list[list[AtConcurrency]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp, stack(Path(tmp)) as running:
        asgi_ports = running.start_trivial(WEB)
        starlette_ports = running.start_trivial(WEB, starlette=True)
        web_ports = running.start_web(WEB)

        # Each connection count: the floor, the baseline and ingest back to back, so a noisy
        # neighbour on the shared machine tends to hit all three alike.
        for n, connections in enumerate(CONNECTIONS * SWEEPS):
            if n % len(CONNECTIONS) == 0:
                sweeps.append([])
            closed = sweeps[-1]
            at = f"{connections} connections"
            asgi = closed_loop(running, asgi_ports, 2000, connections, wrap=True)
            problems += [f"bare ASGI (wrk, {at}): {p}" for p in asgi.problems]
            trivial = closed_loop(running, starlette_ports, 2000, connections, wrap=True)
            problems += [f"trivial endpoint (wrk, {at}): {p}" for p in trivial.problems]
            before = inbox_count(running)
            spy = n == 0  # the first sweep's first count
            ingest = closed_loop(running, web_ports, 0, connections, wrap=False, spy=spy)
            problems += [f"ingest (wrk, {at}): {p}" for p in ingest.problems]
            stored = inbox_count(running) - before
            # Warm-up deliveries are stored too; the measured 2xx count must fit in them.
            if stored < ingest.requests:
                problems.append(f"ingest ({at}): {ingest.requests} acknowledged, {stored} stored")
            closed.append(AtConcurrency(connections, asgi, trivial, ingest))
        running.stop("trivial-starlette-")

        trivial_fixed = open_loop(running, asgi_ports, RATE, SECONDS)
        running.stop("trivial-")
        fixed = open_loop(running, web_ports, RATE, SECONDS)
        problems += [f"trivial at {RATE:.0f}/s: {p}" for p in trivial_fixed.problems]
        problems += [f"ingest at {RATE:.0f}/s: {p}" for p in fixed.problems]
        lost = len(fixed.acked) - inbox_count(running, fixed.acked)
        if lost:
            problems.append(f"ingest at {RATE:.0f}/s: {lost} acknowledged but not in the inbox")

    t50, t99 = (percentile(trivial_fixed.latencies, p) for p in (50, 99))
    tmax = max(trivial_fixed.latencies, default=float("nan"))
    f50, f99 = (percentile(fixed.latencies, p) for p in (50, 99))
    fmax = max(fixed.latencies, default=float("nan"))
    at = f"at {RATE:.0f}/s"
    rows = sweep_rows(sweeps) + max_rows(sweeps[0])
    rows += [row for each in sweeps[0] for row in closed_rows(each)]
    rows += [
        (f"baseline: bare ASGI 200 {at}, p50 ack", ms(t50), "1.00", ""),
        (f"baseline: bare ASGI 200 {at}, p99 ack", ms(t99), "1.00", ""),
        (f"baseline: bare ASGI 200 {at}, max ack", ms(tmax), "1.00", ""),
        (f"ingest {at}: achieved deliveries/s", f"{fixed.rate:.0f}", "", ""),
        (f"ingest {at}: p50 ack", ms(f50), f"{f50 / t50:.2f}", ""),
        (f"ingest {at}: p99 ack", ms(f99), f"{f99 / t99:.2f}", "< 50 ms"),
        (f"ingest {at}: max ack", ms(fmax), f"{fmax / tmax:.2f}", ""),
        (f"ingest {at}: loadgen send lag, max", ms(fixed.send_lag_max_ms), "", ""),
        (f"ingest {at}: acknowledged, not in inbox", f"{lost}", "", "0"),
    ]
    rows += fsync_probe.rows(fixed.fsyncs, "ingest", f99, fmax)
    first = sweeps[0][0]
    rows += [
        (f"ingest, {first.connections} conns, {n.lower()}", v, r, t)
        for n, v, r, t in first.ingest.cpu
    ]
    rows += [(f"{at}, {n.lower()}", v, r, t) for n, v, r, t in fixed.cpu]
    print_table(
        "bench_ingest",
        f"ingest benchmark, {os.cpu_count()} cores, {uvicorn_flavour()}, {WEB} serve "
        f"process(es), LOG_LEVEL={os.environ.get('LOG_LEVEL', 'warning')}, {SECONDS:.0f} s "
        f"runs (+{WARMUP:.0f} s warm-up), wrk -t{THREADS}, "
        f"open loop {LOADGEN_CONNECTIONS} connections",
        rows,
    )
    if problems:
        print("\nFAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
