"""The worker's /metrics answers only with METRICS_TOKEN as a bearer token, when one is set."""

from __future__ import annotations

import asyncio

import httpx
from pydantic import SecretStr

from service.config import Settings
from service.dev.ports import free_port
from service.queue.metrics_server import serve_metrics


async def _get(url: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url, headers=headers)


def _scrape(settings: Settings, headers: dict[str, str]) -> httpx.Response:
    server = serve_metrics(settings)
    try:
        url = f"http://127.0.0.1:{settings.worker.metrics_port}/metrics"
        return asyncio.run(_get(url, headers))
    finally:
        server.shutdown()
        server.server_close()


def test_a_scrape_needs_the_token_when_one_is_set() -> None:
    guarded = Settings(worker_metrics_port=free_port(), metrics_token=SecretStr("t0ken-9c1"))
    assert _scrape(guarded, {}).status_code == 401
    assert _scrape(guarded, {"Authorization": "Bearer wrong"}).status_code == 401
    answer = _scrape(guarded, {"Authorization": "Bearer t0ken-9c1"})
    assert answer.status_code == 200 and "clerk_replica_events" in answer.text


def test_without_a_token_anyone_on_its_address_may_scrape() -> None:
    answer = _scrape(Settings(worker_metrics_port=free_port()), {})
    assert answer.status_code == 200 and "clerk_replica_deliveries" in answer.text
