"""Liveness and readiness over the real app: 503 names the part that is down."""

from __future__ import annotations

from typing import Any

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


async def test_readyz_is_503_naming_redis_when_it_is_down(client_for: Any, db_url: str) -> None:
    down = make_settings(db_url, f"redis://127.0.0.1:{free_port()}/0", redis_timeout_seconds=1)
    client = await client_for(down)
    response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert (body["ready"], body["database"]) == (False, "ok")
    assert body["redis"] != "ok" and "Error" in body["redis"]


async def test_readyz_is_503_naming_the_database_when_it_is_down(
    client_for: Any, redis_url: str
) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    down = make_settings(dead, redis_url, db_connect_timeout_seconds=1)
    client = await client_for(down)
    response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert (body["ready"], body["redis"]) == (False, "ok")
    assert body["database"] != "ok"
