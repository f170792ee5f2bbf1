"""The operator's commands never lie about what they did: replay, inspect, discard, status and
worker, run as a user runs them, against real SQLite, PostgreSQL and Redis. Each names the
database and Redis it used (passwords masked) and exits non-zero when it did not do what was
asked."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from service.apply.batch import apply_one
from service.clerk.rows import RowOptions
from service.config import Settings
from service.dev import runtime
from service.dev.ports import free_port
from service.inbox.store import Status
from tests.support import clerk_payloads as cp
from tests.support.commands import CLI, env, reconcile_cli
from tests.support.fake_clerk import FakeClerk
from tests.support.replica_helpers import inbox_row, store_event


def run(*args: str, **values: str) -> subprocess.CompletedProcess[str]:
    """`clerk-replica *args` with these settings only (tests.support.commands.env)."""
    return subprocess.run(
        [CLI, *args], env=env(**values), capture_output=True, text=True, timeout=120
    )


async def cli(*args: str, **values: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run, *args, **values)


async def failed_event(engine: AsyncEngine) -> str:
    svix_id = await store_event(engine, cp.envelope("user.created", {"id": "user_broken"}))
    assert await apply_one(engine, svix_id, RowOptions()) is Status.FAILED
    return svix_id


def urls(settings: Settings) -> dict[str, str]:
    return {
        "database_url": settings.database.url,
        "redis_url": settings.redis.url,
        "queue_prefix": settings.redis.queue_prefix,
    }


async def test_replay_without_redis_fails_and_changes_nothing(
    settings: Settings, engine: AsyncEngine
) -> None:
    svix_id = await failed_event(engine)
    nowhere = f"redis://:hunter2secret@127.0.0.1:{free_port()}/0"
    result = await cli(
        "replay", **{**urls(settings), "redis_url": nowhere, "redis_timeout_seconds": "0.5"}
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "did not answer" in result.stderr and "nothing was re-queued" in result.stderr
    assert "re-queued 1" not in result.stdout
    assert "hunter2secret" not in result.stdout + result.stderr
    assert "using redis: redis://:***@127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr
    assert (await inbox_row(engine, svix_id))["status"] == Status.FAILED


async def test_replay_of_an_unknown_id_fails_and_a_known_one_is_queued(
    settings: Settings, engine: AsyncEngine
) -> None:
    svix_id = await failed_event(engine)
    missing = await cli("replay", "--id", "msg_nope", **urls(settings))
    assert missing.returncode == 1
    assert missing.stderr.strip().endswith("error: no such failed event: msg_nope")
    done = await cli("replay", "--id", svix_id, **urls(settings))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "re-queued 1 failed event(s)"
    assert "using database: " in done.stderr and "(DATABASE_URL)" in done.stderr
    assert (await inbox_row(engine, svix_id))["status"] == Status.PENDING
    again = await cli("replay", "--id", svix_id, **urls(settings))
    assert again.returncode == 1 and f"{svix_id} is pending" in again.stderr


async def test_commands_find_a_running_dev_by_its_state_file(
    settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    svix_id = await failed_event(engine)
    state = tmp_path / "state"
    # A running dev (this process stands in for it: the file names a live pid).
    runtime.write(state, redis_url=settings.redis.url, database_url=settings.database.url)
    result = await cli("replay", dev_state_dir=str(state), queue_prefix=settings.redis.queue_prefix)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "re-queued 1 failed event(s)"
    assert f"(the running `clerk-replica dev` (pid {os.getpid()}))" in result.stderr
    assert (await inbox_row(engine, svix_id))["status"] == Status.PENDING


async def test_inspect_shows_metadata_and_the_body_only_when_asked(
    settings: Settings, engine: AsyncEngine
) -> None:
    svix_id = await failed_event(engine)
    shown = await cli("inspect", svix_id, "--json", **urls(settings))
    assert shown.returncode == 0, shown.stderr
    found = json.loads(shown.stdout)
    assert (found["svix_id"], found["status"], found["event_type"]) == (
        svix_id,
        "failed",
        "user.created",
    )
    assert found["last_error"] and found["attempts"] >= 1
    assert found["body"] == "kept (holds personal data): add --body to print it"
    assert "user_broken" not in found["body"]
    with_body = await cli("inspect", svix_id, "--body", **urls(settings))
    assert with_body.returncode == 0 and '"user_broken"' in with_body.stdout
    missing = await cli("inspect", "msg_nope", **urls(settings))
    assert missing.returncode == 1 and "no such event: msg_nope" in missing.stderr


async def test_discard_forgets_the_body_and_fails_for_no_such_failed_event(
    settings: Settings, engine: AsyncEngine
) -> None:
    svix_id = await failed_event(engine)
    done = await cli("discard", svix_id, **urls(settings))
    assert done.returncode == 0, done.stderr
    row = await inbox_row(engine, svix_id)
    assert (row["status"], row["body"]) == (Status.DISCARDED, None)
    shown = await cli("inspect", svix_id, "--body", **urls(settings))
    assert "body                not kept (forgotten" in shown.stdout
    again = await cli("discard", svix_id, **urls(settings))
    assert again.returncode == 1 and f"no such failed event: {svix_id}" in again.stderr
    status = await cli("status", "--json", **urls(settings))
    assert json.loads(status.stdout)["inbox"]["by_status"]["failed"] == 0


@pytest.mark.parametrize("command", [("worker", "--burst"), ("status",)])
def test_on_an_unmigrated_database_worker_and_status_say_migrate(
    command: tuple[str, ...], tmp_path: Path, redis_url: str
) -> None:
    result = run(
        *command,
        database_url=f"sqlite:///{tmp_path}/empty.db",
        redis_url=redis_url,
        queue_prefix=f"unmigrated-{uuid4().hex[:8]}",
        clerk_webhook_signing_secret="whsec_" + "A" * 32,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "error: the database is not migrated: run `clerk-replica migrate`" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_status_says_no_worker_is_alive(tmp_path: Path, redis_url: str) -> None:
    database = f"sqlite:///{tmp_path}/replica.db"
    assert run("migrate", database_url=database).returncode == 0
    result = run("status", database_url=database, redis_url=redis_url, queue_prefix=uuid4().hex[:8])
    assert result.returncode == 0, result.stderr
    assert "workers: NONE alive (no heartbeat for a day)" in result.stdout


def test_serve_on_an_unmigrated_database_says_migrate(tmp_path: Path, redis_url: str) -> None:
    # METRICS_PORT equal to the port stops serve right after its checks: no server needed.
    port = str(free_port())
    result = run(
        "serve",
        "--port",
        port,
        database_url=f"sqlite:///{tmp_path}/empty.db",
        redis_url=redis_url,
        clerk_webhook_signing_secret="whsec_" + "A" * 32,
        metrics_port=port,
    )
    assert "warning: the database is not migrated: run `clerk-replica migrate`" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def fake() -> FakeClerk:
    return FakeClerk()


def test_a_reconcile_refused_at_get_instance_shows_as_failed_not_never(
    sqlite_db_url: str, redis_url: str, clerk_url: str
) -> None:
    refused = reconcile_cli(database_url=sqlite_db_url, clerk_url=clerk_url, key="sk_test_wrong")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "sk_test_wrong" not in refused.stdout + refused.stderr
    values = {"database_url": sqlite_db_url, "redis_url": redis_url}
    report = json.loads(run("status", "--json", **values).stdout)
    run_shown = report["last_reconcile"]
    assert run_shown["status"] == "failed" and run_shown["error"].startswith("GET /instance: ")
    assert report["instances"][0]["last_complete_reconcile_at"] is None
    human = run("status", **values).stdout
    assert "last reconcile: never" not in human and "failed" in human


def test_worker_burst_without_redis_fails(sqlite_db_url: str) -> None:
    nowhere = f"redis://:hunter2secret@127.0.0.1:{free_port()}/0"
    result = run("worker", "--burst", database_url=sqlite_db_url, redis_url=nowhere)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "did not answer" in result.stderr and "nothing was applied" in result.stderr
    assert "hunter2secret" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
