"""Liveness and readiness over the real app: 503 says which part is down, never why (the
driver's message carries hosts, ports and user names)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog

from service.config import Settings
from service.dev.ports import free_port
from tests.support.settings import make_settings


async def test_healthz_is_always_ok(client_for: Any, settings: Settings) -> None:
    client = await client_for(settings)
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_is_200_when_the_database_and_redis_answer(
    client_for: Any, settings: Settings
) -> None:
    client = await client_for(settings)
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "database": "ok", "redis": "ok"}


async def test_readyz_names_redis_when_it_is_down_and_logs_why(
    client_for: Any, db_url: str
) -> None:
    port = free_port()
    down = make_settings(db_url, f"redis://127.0.0.1:{port}/0", redis_timeout_seconds=0.5)
    client = await client_for(down)
    with structlog.testing.capture_logs() as logged:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "database": "ok", "redis": "down"}
    assert str(port) not in response.text and "127.0.0.1" not in response.text
    (line,) = [e for e in logged if e["event"] == "readyz.down"]
    assert line["part"] == "redis" and line["error"]


async def test_readyz_names_the_database_when_it_is_down(client_for: Any, redis_url: str) -> None:
    port = free_port()
    dead = f"postgresql://clerk_reader@127.0.0.1:{port}/nothing"
    down = make_settings(dead, redis_url, db_connect_timeout_seconds=1)
    client = await client_for(down)
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "database": "down", "redis": "ok"}
    for detail in (str(port), "127.0.0.1", "clerk_reader", "nothing"):
        assert detail not in response.text


async def test_healthz_fails_while_the_inbox_writer_is_dead(
    client_for: Any, settings: Settings
) -> None:
    import asyncio

    client = await client_for(settings)
    app = client._transport.app  # the app this client serves, its lifespan running
    writer = app.state.web.inbox
    await writer.record(_delivery("msg_starts_the_flusher"))
    flusher = writer._flusher
    flusher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flusher
    response = await client.get("/healthz")
    assert response.status_code == 503 and response.json()["inbox_writer"] == "down"
    await writer.record(_delivery("msg_restarts_it"))
    assert (await client.get("/healthz")).status_code == 200


def _delivery(svix_id: str) -> Any:
    from service.inbox.store import Delivery, Status

    return Delivery(svix_id, "user.created", "{}", 1, "user_1", Status.PENDING)


async def test_readyz_is_not_ready_on_an_unmigrated_or_behind_database(
    client_for: Any, redis_url: str, tmp_path: Any
) -> None:
    from service.operate.migrate import downgrade, upgrade

    empty = f"sqlite:///{tmp_path}/empty.db"
    client = await client_for(make_settings(empty, redis_url))
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "ready": False,
        "database": "not migrated",
        "redis": "ok",
        "reason": "the database is not migrated: run `clerk-replica migrate`",
    }
    behind = f"sqlite:///{tmp_path}/behind.db"
    await asyncio.to_thread(upgrade, behind)  # alembic runs its own event loop
    await asyncio.to_thread(downgrade, behind, "-1")
    client = await client_for(make_settings(behind, redis_url))
    response = await client.get("/readyz")
    assert response.status_code == 503
    reason = response.json()["reason"]
    assert "not this version's latest" in reason and "clerk-replica migrate" in reason
    await asyncio.to_thread(upgrade, behind)
    assert (await client.get("/readyz")).json() == {"ready": True, "database": "ok", "redis": "ok"}
