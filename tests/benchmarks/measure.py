"""What the benchmarks measure and print: settings from the environment, percentiles, the CPU
each process of a stack or a PostgreSQL server used, the table every figure is printed in, and
the JSON file each benchmark's latest table is recorded in (docs/benchmarks/<name>.json, shown
by docs/benchmarks.md after ./scripts/docs --generate)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from tests.benchmarks.stack import Stack


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, str(default)))


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of unsorted values; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def _machine_ticks() -> tuple[float, float]:
    """(idle, total) jiffies over all cores since boot."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)


@dataclass
class CpuMeter:
    """Who used the CPU over a run: each process of the stack, this benchmark process (the load
    generator is separate; the poller is not), and the whole machine, where other people's work
    on a shared machine shows. Started on creation; rows() reads it."""

    stack: Stack
    started: float = field(default_factory=time.monotonic)
    procs: dict[str, float] = field(init=False)
    own: float = field(default_factory=time.process_time)
    machine: tuple[float, float] = field(default_factory=_machine_ticks)

    def __post_init__(self) -> None:
        self.procs = cpu_seconds(self.stack)

    def rows(self) -> list[tuple[str, str, str, str]]:
        seconds = time.monotonic() - self.started
        now = cpu_seconds(self.stack)
        used = {name: now[name] - self.procs.get(name, 0.0) for name in now}
        used["this benchmark process"] = time.process_time() - self.own
        idle, total = _machine_ticks()
        spent = total - self.machine[1]
        busy = (1 - (idle - self.machine[0]) / spent) * (os.cpu_count() or 1) if spent else 0.0
        rows = [(f"CPU over the run: {n}", f"{u / seconds:.2f}", "", "") for n, u in used.items()]
        rows.append(("CPU over the run: whole machine, everyone (cores)", f"{busy:.2f}", "", ""))
        return rows


def print_table(benchmark: str, title: str, rows: list[tuple[str, str, str, str]]) -> None:
    """figure, value, ratio to its baseline, target; recorded as `benchmark`'s results."""
    print(f"\n{title}")
    print(f"{'figure':<58}{'value':>14}{'ratio':>10}  target")
    for name, value, ratio, target in rows:
        print(f"{name:<58}{value:>14}{ratio:>10}  {target}")
    record(benchmark, title, ("figure", "value", "ratio", "target"), rows)


# Where each benchmark's latest results go; BENCH_RESULTS_DIR puts them elsewhere.
RESULTS_DIR = Path(__file__).resolve().parents[2] / "docs" / "benchmarks"


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": str(os.cpu_count()),
        "cpu": model or platform.processor() or platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def record(
    benchmark: str, title: str, header: Sequence[str], rows: Sequence[Sequence[object]]
) -> Path:
    """Write this run's table as <RESULTS_DIR>/<benchmark>.json (replacing the last run's:
    history lives in git), each value as printed."""
    directory = Path(os.environ.get("BENCH_RESULTS_DIR", RESULTS_DIR))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{benchmark}.json"
    result = {
        "benchmark": benchmark,
        "title": title,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "header": list(header),
        "rows": [["" if value is None else str(value) for value in row] for row in rows],
    }
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"results recorded in {path}", file=sys.stderr)
    return path


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU time (user + system) each running process has used so far, from /proc; for the
    embedded PostgreSQL, the postmaster with every backend, live or reaped."""
    used = {}
    for name, proc in stack.children.running.items():
        if (stat := _stat(proc.pid)) is not None:
            used[name] = stat[0] + stat[1]
    pidfile = stack.workdir / "pg" / "pgdata" / "postmaster.pid"
    if pidfile.exists() and (postmaster := int(pidfile.read_text().split()[0])):
        used["postgres (all backends)"] = server_cpu_seconds(postmaster)
    return used


def server_cpu_seconds(postmaster: int) -> float:
    """CPU time a PostgreSQL server has used so far: the postmaster, the backends it has reaped
    (their time is its children's) and every live backend."""
    total = sum((_stat(postmaster) or (0.0,) * 5)[:4])
    for entry in Path("/proc").iterdir():
        stat = _stat(int(entry.name)) if entry.name.isdigit() else None
        if stat is not None and stat[4] == postmaster:
            total += stat[0] + stat[1]
    return total


def local_postmaster(url: str) -> int | None:
    """The pid of the server behind `url` when it runs on this machine (its data directory's
    postmaster.pid is here and names a postgres process), else None: a remote server's CPU
    cannot be read."""
    pidfile = Path(asyncio.run(_data_directory(url))) / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split()[0])
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError, IndexError):
        return None
    return pid if name in ("postgres", "postmaster") else None


async def _data_directory(url: str) -> str:
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        return str(await conn.fetchval("SHOW data_directory"))
    finally:
        await conn.close()


def _stat(pid: int) -> tuple[float, float, float, float, int] | None:
    """utime, stime, cutime, cstime (seconds) and parent pid of a process, if it still runs."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(fields[n]) / tick for n in (11, 12, 13, 14))
    return utime, stime, cutime, cstime, int(fields[1])
