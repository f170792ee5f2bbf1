"""The real commands, run as a user runs them: migrate, serve, worker, errors."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings, setting
from service.db.engine import create_engine
from service.dev import demo
from service.dev.demo import demo_events
from service.dev.ports import free_port, wait_for_port
from service.inbox.store import Status
from tests.support import clerk_payloads as cp
from tests.support import tables as t
from tests.support.commands import CLI, env, run
from tests.support.replica_helpers import inbox_row, rows
from tests.support.signing import SECRET, signed


@pytest.fixture
def sqlite_file(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/replica.db"


def test_migrate_creates_the_schema(sqlite_file: str) -> None:
    result = run("migrate", database_url=sqlite_file)
    assert result.returncode == 0, result.stderr

    async def count_users() -> int:
        engine = create_engine(Settings(), url=sqlite_file)
        try:
            return len(await rows(engine, t.users))
        finally:
            await engine.dispose()

    assert asyncio.run(count_users()) == 0


def test_serve_without_secret_names_the_variable(sqlite_file: str) -> None:
    result = run("serve", database_url=sqlite_file)
    assert result.returncode == 2
    assert "CLERK_WEBHOOK_SIGNING_SECRET" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_database_url_is_one_clear_line(tmp_path: Path) -> None:
    result = run("migrate", database_url="mysql://nope")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: DATABASE_URL")
    assert "Traceback" not in result.stderr


def test_help_lists_the_commands() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("migrate", "serve", "worker", "replay"):
        assert command in result.stdout


@pytest.fixture
def server(sqlite_file: str, redis_url: str) -> Iterator[tuple[int, str]]:
    assert run("migrate", database_url=sqlite_file).returncode == 0
    port = free_port()
    proc = subprocess.Popen(
        [CLI, "serve", "--port", str(port)],
        env=env(
            database_url=sqlite_file,
            redis_url=redis_url,
            clerk_webhook_signing_secret=SECRET,
            queue_prefix=f"cli-{port}",
            webhook_max_body_bytes="4096",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port)
        yield port, sqlite_file
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        # uvicorn re-raises SIGTERM once it has shut down cleanly.
        assert proc.returncode in (0, -signal.SIGTERM), out
        assert "Application shutdown complete" in out
        # Logs carry ids, never the payload's personal data.
        assert "example@example.org" not in out and SECRET not in out


def test_serve_and_worker_apply_a_delivery(server: tuple[int, str], redis_url: str) -> None:
    port, database_url = server
    body, headers = signed(cp.envelope("user.created", cp.user()))
    response = httpx.post(f"http://127.0.0.1:{port}/webhooks/clerk", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200

    result = run(
        "worker",
        "--burst",
        database_url=database_url,
        redis_url=redis_url,
        queue_prefix=f"cli-{port}",
    )
    assert result.returncode == 0, result.stderr
    assert "example@example.org" not in result.stderr

    async def check() -> None:
        engine: AsyncEngine = create_engine(Settings(), url=database_url)
        try:
            assert (await inbox_row(engine, headers["svix-id"]))["status"] == Status.APPLIED
            (user,) = await rows(engine, t.users)
            assert user["primary_email_address"] == "example@example.org"
        finally:
            await engine.dispose()

    asyncio.run(check())


def test_real_server_refuses_a_chunked_body_over_the_limit(server: tuple[int, str]) -> None:
    port, _ = server
    _, headers = signed(cp.envelope("user.created", cp.user()))
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        request_line = "POST /webhooks/clerk HTTP/1.1\r\nHost: x\r\n"
        sock.sendall(f"{request_line}{head}Transfer-Encoding: chunked\r\n\r\n".encode())
        chunk = b"x" * 1024
        reply = b""
        started = time.monotonic()
        # Keep sending until the server answers: it must answer once past 4 KiB, not wait for all.
        for _ in range(1000):
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break
            sock.settimeout(0.01)
            try:
                reply += sock.recv(4096)
            except TimeoutError:
                continue
            if reply:
                break
        sock.settimeout(5)
        while b"\r\n\r\n" not in reply:
            data = sock.recv(4096)
            if not data:
                break
            reply += data
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert time.monotonic() - started < 10


@contextmanager
def metrics_worker(
    server: tuple[int, str], redis_url: str, prefix: str, **variables: str
) -> Iterator[int]:
    """A `clerk-replica worker` serving its /metrics on a free port (yielded), stopped after."""
    port, database_url = server
    metrics_port = free_port()
    worker = subprocess.Popen(
        [CLI, "worker"],
        env=env(
            database_url=database_url,
            redis_url=redis_url,
            queue_prefix=f"{prefix}-{port}",
            worker_metrics_port=str(metrics_port),
            **variables,
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield metrics_port
    finally:
        worker.terminate()
        worker.wait(20)


def test_worker_serves_its_own_metrics(server: tuple[int, str], redis_url: str) -> None:
    port = server[0]
    with metrics_worker(server, redis_url, "cli") as metrics_port:
        wait_for_port(metrics_port)
        body, headers = signed(cp.envelope("user.created", cp.user()))
        assert (
            httpx.post(
                f"http://127.0.0.1:{port}/webhooks/clerk", content=body, headers=headers
            ).status_code
            == 200
        )
        line = (
            'clerk_replica_events_total{event_type="user.created",instance="default",'
            'outcome="applied"} 1.0'
        )
        deadline = time.monotonic() + 30
        while line not in httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text:
            assert time.monotonic() < deadline
            time.sleep(0.2)


def test_worker_metrics_listen_only_where_they_are_told(
    server: tuple[int, str], redis_url: str
) -> None:
    with metrics_worker(
        server, redis_url, "cli-host", worker_metrics_host="127.0.0.2"
    ) as metrics_port:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.2:{metrics_port}/metrics", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the worker's metrics never listened"
                time.sleep(0.2)
        assert answer.status_code == 200
        with pytest.raises(httpx.ConnectError):  # not on the default address
            httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=1)


def test_send_test_event_demo_fills_the_replica_and_twice_is_harmless(
    server: tuple[int, str], redis_url: str
) -> None:
    port, database_url = server
    url = f"http://127.0.0.1:{port}/webhooks/clerk"
    events = demo_events()
    first = run("send-test-event", "--demo", "--url", url, clerk_webhook_signing_secret=SECRET)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("200 ") == len(events) and "duplicate" not in first.stdout
    again = run("send-test-event", "--demo", "--url", url, clerk_webhook_signing_secret=SECRET)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count('{"status":"duplicate"}') == len(events)
    worker = run(
        "worker",
        "--burst",
        database_url=database_url,
        redis_url=redis_url,
        queue_prefix=f"cli-{port}",
    )
    assert worker.returncode == 0, worker.stderr

    async def check() -> None:
        engine = create_engine(Settings(), url=database_url)
        try:
            users = {u["id"]: u["primary_email_address"] for u in await rows(engine, t.users)}
            assert users == {demo.JOHN: "john@example.com", demo.JANE: "jane@example.com"}
            assert len(await rows(engine, t.organization_memberships)) == 2
        finally:
            await engine.dispose()

    asyncio.run(check())


def test_send_test_event_demo_says_when_nothing_listens(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/webhooks/clerk"
    result = run("send-test-event", "--demo", "--url", url, clerk_webhook_signing_secret=SECRET)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: nothing answered at {url}")
    assert "Traceback" not in result.stderr


def test_version_is_the_packages() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"clerk-replica {version('clerk-replica')}"


def test_config_shows_the_settings_and_connects_to_nothing() -> None:
    unreachable = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = run(
        "config",
        "--json",
        database_url=f"postgresql://app:S3cretPassw0rd@{unreachable}/app",
        redis_url=f"redis://{unreachable}/0",
        clerk_secret_key="sk_live_S3cretKey",
        db_connect_timeout_seconds="30",
    )
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 20  # it did not wait for either server
    shown = json.loads(result.stdout)["settings"]
    assert shown["DATABASE_URL"] == {
        "value": f"postgresql://app:********@{unreachable}/app",
        "source": "environment",
        "description": setting("DATABASE_URL").info.description,
    }
    assert shown["CLERK_SECRET_KEY"]["value"] == "sk_live_********"
    assert shown["PORT"]["source"] == "default"
    assert "S3cret" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "args", [("config",), ("send-test-event", "--list"), ("migrate",), ("reconcile", "--dry-run")]
)
def test_every_command_names_a_lookalike_variable(args: tuple[str, ...], tmp_path: Path) -> None:
    result = run(
        *args,
        database_url=f"sqlite:///{tmp_path}/r.db",
        clerk_webhook_signing_secrt="whsec_NotPrinted",
        clerk_instances="prod",
        clerk_prod_secrt_key="sk_live_NotPrinted",
        clerk_publishable_key="pk_test_NotPrinted",
    )
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: CLERK_PROD_SECRT_KEY is not a clerk-replica setting: did you mean "
        "CLERK_PROD_SECRET_KEY?",
        "warning: CLERK_WEBHOOK_SIGNING_SECRT is not a clerk-replica setting: did you mean "
        "CLERK_WEBHOOK_SIGNING_SECRET?",
    ]
    assert "NotPrinted" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"clerk_webhook_signing_secret": "garbage"}, "CLERK_WEBHOOK_SIGNING_SECRET"),
        ({"clerk_webhook_signing_secret": "whsec_AA"}, "CLERK_WEBHOOK_SIGNING_SECRET"),
        # 23 bytes: one short of what Svix generates.
        ({"clerk_webhook_signing_secret": "whsec_" + "QUJD" * 7 + "QUI"}, "SIGNING_SECRET"),
        (
            {"clerk_webhook_signing_secret": SECRET, "clerk_webhook_signing_secret_previous": "x"},
            "CLERK_WEBHOOK_SIGNING_SECRET_PREVIOUS",
        ),
        (
            {"clerk_instances": "prod", "clerk_prod_webhook_signing_secret": "whsec_c2VjcmV0"},
            "CLERK_PROD_WEBHOOK_SIGNING_SECRET",
        ),
    ],
)
def test_serve_refuses_a_secret_that_is_not_one(
    sqlite_file: str, variables: dict[str, str], named: str
) -> None:
    values: dict[str, Any] = {"database_url": sqlite_file, **variables}
    result = run("serve", "--port", str(free_port()), **values)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and named in line
    assert not [v for v in variables.values() if len(v) >= 7 and v in line]  # no value echoed


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_serve_refuses_a_port_that_is_not_one(sqlite_file: str, port: str) -> None:
    result = run(
        "serve", "--port", port, database_url=sqlite_file, clerk_webhook_signing_secret=SECRET
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: --port: Input should be")


def test_the_worker_metrics_ask_for_the_metrics_token(
    server: tuple[int, str], redis_url: str
) -> None:
    with metrics_worker(
        server, redis_url, "cli-token", metrics_token="scrape-token-3f9a"
    ) as metrics_port:
        wait_for_port(metrics_port)
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        for wrong in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "scrape-token-3f9a"}):
            answer = httpx.get(url, headers=wrong)
            assert answer.status_code == 401 and "clerk_replica" not in answer.text
        answer = httpx.get(url, headers={"Authorization": "Bearer scrape-token-3f9a"})
        assert answer.status_code == 200 and "clerk_replica_events" in answer.text
