"""The app as declared, its lifespan's engine and Redis behind it: /readyz names what is down."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.config import Settings
from service.dev.ports import free_port
from tests.support.settings import make_settings

ClientFor = Callable[[Settings], Any]


async def test_readyz_when_both_answer(client_for: ClientFor, settings: Settings) -> None:
    response = await (await client_for(settings)).get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"ready": True, "database": "ok", "redis": "ok"}


async def test_readyz_names_redis_when_it_is_down(client_for: ClientFor, db_url: str) -> None:
    down = make_settings(db_url, f"redis://127.0.0.1:{free_port()}/0", redis_timeout_seconds=0.5)
    response = await (await client_for(down)).get("/readyz")
    body = response.json()
    assert response.status_code == 503 and body["database"] == "ok"
    assert body["ready"] is False and "Connect" in body["redis"]


async def test_readyz_names_the_database_when_it_is_down(
    client_for: ClientFor, redis_url: str
) -> None:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/x"
    response = await (
        await client_for(make_settings(dead, redis_url, db_connect_timeout_seconds=1))
    ).get("/readyz")
    assert response.status_code == 503
    assert response.json()["redis"] == "ok" and response.json()["database"] != "ok"
