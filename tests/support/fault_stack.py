"""A whole deployment of real processes for fault tests: its own PostgreSQL and Redis (so they
can be stopped for real without touching other tests), `serve` and `worker` subprocesses."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from service.dev.ports import free_port, wait_for_port
from service.dev.processes import Children, start_embedded_redis, stop
from service.operate.migrate import upgrade
from tests.support import clerk_payloads as cp
from tests.support.commands import CLI, env
from tests.support.embedded_postgres import EmbeddedPostgres, start_postgres
from tests.support.measured import REPORT
from tests.support.signing import SECRET, new_svix_id, signed_headers


@dataclass
class Stack:
    workdir: Path
    # A stopped, migrated data directory (`migrated_cluster`) to start from instead of initdb.
    template: Path | None = None
    redis_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    pg: EmbeddedPostgres | None = None
    pg_url: str = ""
    # Same session as pytest, output discarded; stopped within 20 s or killed.
    children: Children = field(default_factory=lambda: Children("discard", stop_timeout=20))

    @property
    def redis(self) -> subprocess.Popen[bytes] | None:
        return self.children.running.get("redis")

    @property
    def web(self) -> subprocess.Popen[bytes] | None:
        return self.children.running.get("web")

    @property
    def worker(self) -> subprocess.Popen[bytes] | None:
        return self.children.running.get("worker")

    # -- servers -----------------------------------------------------------------------------

    def start_pg(self) -> None:
        # Its data stays when stopped: start_pg again is a restart of the same database.
        pgdata = self.workdir / "pg" / "pgdata"
        if self.template is not None and not pgdata.exists():
            copy_cluster(self.template, pgdata)
        self.pg = start_postgres(pgdata, keep_data=True)
        self.pg_url = self.pg.url

    def stop_pg(self) -> None:
        assert self.pg is not None
        self.pg.stop()
        self.pg = None

    def start_redis(self) -> None:
        # The same port every time: a restarted Redis is where the processes left it.
        self.children.adopt("redis", start_embedded_redis(self.redis_port, self.workdir))

    def stop_redis(self) -> None:
        redis = self.children.running.pop("redis")
        stop(redis, timeout=10)

    def env(self) -> dict[str, str]:
        return env(
            database_url=self.pg_url,
            redis_url=f"redis://127.0.0.1:{self.redis_port}/0",
            clerk_webhook_signing_secret=SECRET,
            sweep_interval_seconds="2",
            sweep_grace_seconds="1",
            worker_job_timeout_seconds="5",
            db_connect_timeout_seconds="2",
            redis_timeout_seconds="0.5",
            log_format="json",
        )

    def start_web(self) -> None:
        self.children.spawn("web", [CLI, "serve", "--port", str(self.web_port)], self.env())
        wait_for_port(self.web_port, timeout=30)

    def start_worker(self) -> None:
        self.children.spawn("worker", [CLI, "worker"], self.env())

    @staticmethod
    def kill(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
        """Send `sig` (SIGKILL after 20 s); the stack may start the process again."""
        if proc is not None:
            stop(proc, timeout=20, sig=sig)

    def up(self) -> Stack:
        self.start_pg()
        if self.template is None:
            upgrade(self.pg_url)
        self.start_redis()
        self.start_web()
        self.start_worker()
        return self

    def down(self) -> None:
        self.children.stop("worker", "web")
        if self.redis is not None:
            self.stop_redis()
        if self.pg is not None:
            self.stop_pg()

    # -- traffic -----------------------------------------------------------------------------

    def send(
        self, first: int, count: int, *, make: Callable[[int], dict[str, object]] | None = None
    ) -> dict[str, int | None]:
        """POST `count` signed user events (user_N at updated_at N); svix-id -> HTTP status,
        or None when the request got no answer."""
        make = make or (
            lambda i: cp.envelope(
                "user.updated", cp.user(f"user_{i:06d}", updated_at=cp.T0 + i, created_at=cp.T0)
            )
        )

        def one(i: int) -> tuple[str, int | None]:
            body = json.dumps(make(i))
            svix_id = new_svix_id()
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{self.web_port}/webhooks/clerk",
                    content=body,
                    headers=signed_headers(body, svix_id=svix_id),
                    timeout=10,
                )
                return svix_id, response.status_code
            except httpx.HTTPError:
                return svix_id, None

        with ThreadPoolExecutor(max_workers=8) as pool:
            return dict(pool.map(one, range(first, first + count)))

    def query(self, sql: str) -> list[asyncpg.Record]:
        async def run() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(self.pg_url)
            try:
                return list(await conn.fetch(sql))
            finally:
                await conn.close()

        return asyncio.run(run())

    def statuses(self) -> dict[str, str]:
        return {
            r["svix_id"]: r["status"]
            for r in self.query("SELECT svix_id, status FROM clerk_replica_inbox")
        }

    def wait_applied(self, ids: set[str], timeout: float = 90) -> float:
        """Seconds until every id is applied (fails after `timeout`)."""
        started = time.monotonic()
        while True:
            statuses = self.statuses()
            if all(statuses.get(i) == "applied" for i in ids):
                return time.monotonic() - started
            assert time.monotonic() - started < timeout, {
                i: statuses.get(i) for i in ids if statuses.get(i) != "applied"
            }
            time.sleep(0.25)


def migrated_cluster(workdir: Path) -> Path:
    """A PostgreSQL data directory made by initdb and migrated to head, its server stopped:
    each stack copies it (`copy_cluster`) rather than running initdb and the migrations."""
    pgdata = workdir / "pgdata"
    server = start_postgres(pgdata, keep_data=True)
    try:
        upgrade(server.url)
    finally:
        server.stop()
    return pgdata


def copy_cluster(template: Path, pgdata: Path) -> None:
    """A copy of a stopped data directory, modes and owners kept (as root, the embedded server
    runs as a user of its own, which must own every file), without the server's log."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template, pgdata, ignore=shutil.ignore_patterns("log", ".handle_pids.json"))
    for source, _dirs, files in os.walk(template):
        target = pgdata / Path(source).relative_to(template)
        for name in [".", *files]:
            if (target / name).exists():
                owner = (Path(source) / name).stat()
                os.chown(target / name, owner.st_uid, owner.st_gid)


def report(
    name: str, *, sent: int, acknowledged: int, applied: int, lost: int, recovered_in: float
) -> None:
    REPORT.append(
        f"{name:<44} sent {sent:>4}  acknowledged {acknowledged:>4}  applied {applied:>4}  "
        f"lost {lost}  recovered in {recovered_in:5.1f} s"
    )
