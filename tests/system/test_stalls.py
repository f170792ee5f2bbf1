"""A stalled SQLite, locked by another process, answers each delivery 503 in bounded time: the
real `serve` process, before SQLite's busy timeout and well before Svix's 15 s delivery
timeout, so Svix sees an answer and retries; once the lock is gone, deliveries are stored."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from service.dev.ports import free_port, wait_for_port
from tests.support import clerk_payloads as cp
from tests.support.commands import CLI, env, run
from tests.support.signing import SECRET, signed


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Another connection's write lock on the database file, held while the block runs."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        held.set()
        release.wait(60)
        other.execute("ROLLBACK")
        other.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join(30)


def test_a_locked_sqlite_answers_503_in_bounded_time(tmp_path: Path, redis_url: str) -> None:
    database = tmp_path / "replica.db"
    url = f"sqlite:///{database}"
    assert run("migrate", database_url=url).returncode == 0
    port = free_port()
    proc = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=env(
            database_url=url,
            redis_url=redis_url,
            clerk_webhook_signing_secret=SECRET,
            queue_prefix=f"stall-{port}",
            ingest_db_timeout_seconds="2",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        hook = f"http://127.0.0.1:{port}/webhooks/clerk"
        body, headers = signed(cp.envelope("user.created", cp.user()))
        with locked(database):
            started = time.monotonic()
            stalled = httpx.post(hook, content=body, headers=headers, timeout=30)
            waited = time.monotonic() - started
        assert stalled.status_code == 503 and stalled.json()["error"] == "unavailable"
        assert waited < 5, waited  # SQLite's busy timeout is 10 s, Svix gives up at 15 s
        deadline = time.monotonic() + 20
        while True:  # Svix retries; once the lock is gone the delivery is stored
            retried = httpx.post(hook, content=body, headers=headers, timeout=30)
            if retried.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert retried.status_code == 200, retried.text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
